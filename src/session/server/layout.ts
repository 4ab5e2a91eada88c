/**
 * How a file is cut into blocks and sections (black-box, UFTP 4.10.2; protocol.txt gives no formula, see
 * docs/protocol-notes.md "uftp (server)"). The client computes the same layout from the block size of the
 * ANNOUNCE and the file size of the FILEINFO, so it must match exactly:
 *
 *   blocks      = ceil(size / blockSize)
 *   maxPerSec   = blockSize * 8            (one STATUS bitmap of a section fits in one block)
 *   sections    = ceil(blocks / maxPerSec)
 *   small       = floor(blocks / sections), big = small + 1, the first (blocks % sections) sections are big
 *
 * e.g. -b 512 and 4099 blocks: 2 sections, section 0 has 2050 blocks and section 1 has 2049.
 */
export interface Layout {
  readonly size: number;
  readonly blockSize: number;
  readonly blocks: number;
  readonly sections: number;
  /** Blocks in a small section (big ones have one more). */
  readonly small: number;
  /** Number of big sections (they come first). */
  readonly bigCount: number;
}

export function fileLayout(size: number, blockSize: number): Layout {
  const blocks = Math.ceil(size / blockSize);
  const maxPerSec = blockSize * 8;
  const sections = blocks === 0 ? 0 : Math.ceil(blocks / maxPerSec);
  const small = sections === 0 ? 0 : Math.floor(blocks / sections);
  const bigCount = sections === 0 ? 0 : blocks % sections;
  return { size, blockSize, blocks, sections, small, bigCount };
}

/** First block (file-wide index) of section `s`. */
export function sectionStart(l: Layout, s: number): number {
  return s <= l.bigCount ? s * (l.small + 1) : l.bigCount * (l.small + 1) + (s - l.bigCount) * l.small;
}

/** Number of blocks in section `s`. */
export function sectionLength(l: Layout, s: number): number {
  return s < l.bigCount ? l.small + 1 : l.small;
}

/** Section of a file-wide block index. */
export function sectionOf(l: Layout, block: number): number {
  const bigBlocks = l.bigCount * (l.small + 1);
  return block < bigBlocks ? Math.floor(block / (l.small + 1)) : l.bigCount + Math.floor((block - bigBlocks) / l.small);
}

/** Length of block `b` (the last one may be short). */
export function blockLength(l: Layout, b: number): number {
  return b === l.blocks - 1 ? l.size - b * l.blockSize : l.blockSize;
}
