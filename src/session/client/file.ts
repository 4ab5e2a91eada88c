/**
 * One file being received: how it is cut into blocks and sections, which blocks are in, the NAK bitmaps of
 * STATUS, and the write cache (-c). Pure bookkeeping; writes leave as effects.
 *
 * Sections (black-box, the real uftp 4.10.2 with -b 512 and a 5,000,000-byte file: "Blocks: 9766, Sections: 3,
 * small section size: 3255, big section size: 3256, # big sections: 1", section 1 starting at block 3256):
 *  blocks = ceil(size / blocksize); a section holds at most blocksize * 8 blocks (its NAK bitmap fits in one
 *  block); sections = ceil(blocks / that); the blocks are spread evenly, the first (blocks % sections) sections
 *  one block bigger.
 * NAK bitmap (docs/protocol-notes.md): bit i of a section is naks[i >> 3] & (1 << (i & 7)), ceil(n / 8) bytes.
 */

export interface Layout {
  readonly size: number;
  readonly blockSize: number;
  readonly blocks: number;
  readonly sections: number;
  readonly bigSize: number;
  readonly bigCount: number;
}

/** Sections are numbered with 16 bits on the wire. */
export const MAX_SECTIONS = 65536;

export function layout(size: number, blockSize: number): Layout | undefined {
  if (blockSize <= 0 || !Number.isSafeInteger(size) || size < 0) return undefined;
  const blocks = Math.ceil(size / blockSize);
  const perSection = blockSize * 8;
  const sections = Math.max(1, Math.ceil(blocks / perSection));
  if (sections > MAX_SECTIONS) return undefined;
  const small = Math.floor(blocks / sections);
  const bigCount = blocks % sections;
  return { size, blockSize, blocks, sections, bigSize: bigCount > 0 ? small + 1 : small, bigCount };
}

export function sectionStart(l: Layout, s: number): number {
  const small = l.bigCount > 0 ? l.bigSize - 1 : l.bigSize;
  return s < l.bigCount ? s * l.bigSize : l.bigCount * l.bigSize + (s - l.bigCount) * small;
}

export function sectionSize(l: Layout, s: number): number {
  const small = l.bigCount > 0 ? l.bigSize - 1 : l.bigSize;
  return s < l.bigCount ? l.bigSize : small;
}

/** Length a block must have: blocksize, except the last. */
export function blockLength(l: Layout, block: number): number {
  return block === l.blocks - 1 ? l.size - block * l.blockSize : l.blockSize;
}

/**
 * Cache buffers for reuse: a fresh 1 MiB buffer per flush costs page faults on first touch; the disk layer gives a
 * buffer back once its write is done. Bounded: at most `keep` buffers wait for reuse, and only buffers of the size
 * it hands out (a short run's exact-size copy, see Reception.flush, is not kept).
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  private size = 0;
  constructor(private readonly keep = 16) {}

  take(size: number): Buffer {
    this.size = size;
    for (let b = this.free.pop(); b !== undefined; b = this.free.pop()) {
      if (b.byteLength === size) return Buffer.from(b);
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** `data` (a view of a buffer this pool handed out) is no longer used. */
  give(data: Uint8Array): void {
    const b = data.buffer;
    if (this.free.length < this.keep && data.byteOffset === 0 && b instanceof ArrayBuffer && b.byteLength === this.size) this.free.push(b);
  }
}

export class Reception {
  /** Per-section bitmaps of blocks received, made when the first block of a section comes (bounded by data). */
  private readonly got: (Uint8Array | undefined)[];
  /** Blocks received per section. */
  private readonly gotInSection: Uint32Array;
  received = 0;
  /** The write cache: a run of consecutive blocks not yet handed to the driver. */
  private cache: Buffer | undefined;
  private cacheOffset = 0;
  private cacheLen = 0;

  constructor(
    readonly l: Layout,
    private readonly cacheSize: number,
    private readonly pool?: BufferPool,
  ) {
    this.got = new Array<Uint8Array | undefined>(l.sections);
    this.gotInSection = new Uint32Array(l.sections);
  }

  get complete(): boolean {
    return this.received === this.l.blocks;
  }

  has(section: number, secBlock: number): boolean {
    const m = this.got[section];
    return m !== undefined && (m[secBlock >> 3] & (1 << (secBlock & 7))) !== 0;
  }

  /**
   * Records a block; returns the writes to make (offset, bytes) as the cache fills or a run breaks, or
   * 'dup' / 'bad' for a block already in or not of this file (wrong section, block number or length).
   */
  add(section: number, secBlock: number, data: Uint8Array, out: { offset: number; data: Uint8Array }[]): 'new' | 'dup' | 'bad' {
    if (section >= this.l.sections) return 'bad';
    if (secBlock >= sectionSize(this.l, section)) return 'bad';
    const block = sectionStart(this.l, section) + secBlock;
    if (data.length !== blockLength(this.l, block)) return 'bad';
    let m = this.got[section];
    if (m === undefined) {
      m = new Uint8Array((sectionSize(this.l, section) + 7) >> 3);
      this.got[section] = m;
    }
    const bit = 1 << (secBlock & 7);
    if ((m[secBlock >> 3] & bit) !== 0) return 'dup';
    m[secBlock >> 3] |= bit;
    this.gotInSection[section]++;
    this.received++;
    const offset = block * this.l.blockSize;
    if (this.cacheSize < data.length) {
      out.push({ offset, data: Uint8Array.from(data) });
      return 'new';
    }
    if (this.cache !== undefined && this.cacheLen > 0 && (this.cacheOffset + this.cacheLen !== offset || this.cacheLen + data.length > this.cache.length)) {
      this.flush(out);
    }
    if (this.cache === undefined) {
      this.cache = this.pool ? this.pool.take(this.cacheSize) : Buffer.allocUnsafe(this.cacheSize);
      this.cacheLen = 0;
    }
    if (this.cacheLen === 0) this.cacheOffset = offset;
    this.cache.set(data, this.cacheLen);
    this.cacheLen += data.length;
    return 'new';
  }

  /**
   * Hands the cached run to the driver. A long run takes the cache buffer with it (a new one is taken for the next
   * run); a short one (at most a quarter of the buffer) is copied into a buffer of its own size and the cache buffer
   * kept. Blocks scattered over the file (the passes after a lossy first one: one run per block or so) would
   * otherwise cost a whole cache buffer each: measured at 20% loss, 1 MiB of memory outside V8's heap per ~5
   * blocks, a garbage collection every millisecond ("external memory pressure", 235 in a 16 MiB session), drops,
   * and more scattered passes (docs/benchmarks.md, "uftpd").
   */
  flush(out: { offset: number; data: Uint8Array }[]): void {
    const c = this.cache;
    const n = this.cacheLen;
    this.cacheLen = 0;
    if (c === undefined || n === 0) return;
    if (n * 4 <= c.length) {
      const copy = Buffer.allocUnsafe(n);
      c.copy(copy, 0, 0, n);
      out.push({ offset: this.cacheOffset, data: copy });
      return;
    }
    out.push({ offset: this.cacheOffset, data: c.subarray(0, n) });
    this.cache = undefined;
  }

  /** The file's last flush: the cache buffer, if it is kept, goes back to the pool. */
  close(out: { offset: number; data: Uint8Array }[]): void {
    this.flush(out);
    if (this.cache !== undefined) this.pool?.give(this.cache);
    this.cache = undefined;
  }

  /** The received-block bitmaps, base64 per section (null: nothing of it), for a restart (-T). */
  exportSections(): (string | null)[] {
    const out: (string | null)[] = [];
    for (let i = 0; i < this.l.sections; i++) {
      const m = this.got[i];
      out.push(m === undefined ? null : Buffer.from(m).toString('base64'));
    }
    return out;
  }

  /** Takes the bitmaps a failed session saved; false when they do not fit this layout (then nothing is taken). */
  loadSections(sections: readonly (string | null)[]): boolean {
    if (sections.length !== this.l.sections) return false;
    const maps: (Uint8Array | undefined)[] = [];
    for (let i = 0; i < sections.length; i++) {
      const b64 = sections[i];
      if (b64 === null) {
        maps.push(undefined);
        continue;
      }
      const m = Uint8Array.from(Buffer.from(b64, 'base64'));
      if (m.length !== (sectionSize(this.l, i) + 7) >> 3) return false;
      maps.push(m);
    }
    this.received = 0;
    maps.forEach((m, i) => {
      this.got[i] = m;
      let n = 0;
      if (m !== undefined) for (let b = 0; b < sectionSize(this.l, i); b++) if (m[b >> 3] & (1 << (b & 7))) n++;
      this.gotInSection[i] = n;
      this.received += n;
    });
    return true;
  }

  /** Missing blocks of a section. */
  missing(section: number): number {
    return sectionSize(this.l, section) - this.gotInSection[section];
  }

  /** The NAK bitmap of a section: a set bit for every block not received. */
  naks(section: number): Uint8Array {
    const n = sectionSize(this.l, section);
    const out = new Uint8Array((n + 7) >> 3);
    const m = this.got[section];
    for (let i = 0; i < n; i++) {
      if (m === undefined || (m[i >> 3] & (1 << (i & 7))) === 0) out[i >> 3] |= 1 << (i & 7);
    }
    return out;
  }
}
