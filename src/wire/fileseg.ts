/**
 * 5.2.11 FILESEG (server -> clients: one block of file data). The data path: no allocation beyond the
 * result object, the data is a subarray of the input.
 *
 *  0 function(1)  1 header length  2 file ID (16)
 *  4 section (16)  6 block number in section (16)
 *  8 header extensions (EXT_TFMCC_DATA_INFO with -C tfmcc) up to header length
 *    body: the data block
 */
import { MessageType, UFTP_HEADER_LEN } from './constants.js';
import { hlenWords, isU16, need, put16, u16 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FILE_ID = 2;
const SECTION = 4;
const SEC_BLOCK = 6;
const FIXED = 8;

export interface FileSeg {
  type: 'FILESEG';
  fileId: number;
  section: number;
  secBlock: number;
  extensions: Extension[];
  /** The block; a subarray of the decoded datagram. */
  data: Uint8Array;
}

export function decodeFileSeg(b: Uint8Array): Result<FileSeg> {
  if (b.length < FIXED) return err('truncated', `FILESEG: ${b.length} bytes, need at least ${FIXED}`);
  const hlen = b[HLEN] * 4;
  if (hlen < FIXED) return err('inconsistent', `FILESEG: header length ${b[HLEN]} words < fixed part of ${FIXED} bytes`);
  if (hlen > b.length) return err('truncated', `FILESEG: header length ${hlen} bytes exceeds message of ${b.length} bytes`);
  let extensions: Extension[] = [];
  if (hlen > FIXED) {
    const exts = decodeExtensions(b, FIXED, hlen, 'FILESEG');
    if (!exts.ok) return exts;
    extensions = exts.value;
  }
  return ok({
    type: 'FILESEG', fileId: u16(b, FILE_ID), section: u16(b, SECTION), secBlock: u16(b, SEC_BLOCK), extensions,
    data: b.subarray(hlen),
  });
}

export function fileSegLength(m: FileSeg): number {
  return FIXED + (m.extensions.length === 0 ? 0 : extensionsLength(m.extensions)) + m.data.length;
}

export function encodeFileSegInto(m: FileSeg, out: Uint8Array, off: number): number {
  need(isU16(m.fileId) && isU16(m.section) && isU16(m.secBlock), 'FILESEG: field out of range');
  const hlen = m.extensions.length === 0 ? FIXED : FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.FILESEG;
  out[off + HLEN] = hlenWords(hlen, 'FILESEG');
  put16(out, off + FILE_ID, m.fileId);
  put16(out, off + SECTION, m.section);
  put16(out, off + SEC_BLOCK, m.secBlock);
  if (hlen > FIXED) encodeExtensionsInto(m.extensions, out, off + FIXED);
  out.set(m.data, off + hlen);
  return hlen + m.data.length;
}

/**
 * A checked, zero-copy view of a whole FILESEG datagram (the data path: nothing decoded past the fixed fields,
 * the block is a subarray).
 */
export class FileSegView {
  private constructor(readonly bytes: Uint8Array, private readonly hlen: number) {}

  static check(d: Uint8Array): Result<FileSegView> {
    const m = UFTP_HEADER_LEN;
    if (d.length < m + FIXED) return err('truncated', `FILESEG: ${d.length - m} bytes, need at least ${FIXED}`);
    const hlen = d[m + HLEN] * 4;
    if (hlen < FIXED) return err('inconsistent', `FILESEG: header length ${d[m + HLEN]} words < fixed part of ${FIXED} bytes`);
    if (m + hlen > d.length) return err('truncated', `FILESEG: header length ${hlen} bytes exceeds message of ${d.length - m} bytes`);
    return ok(new FileSegView(d, hlen));
  }

  get fileId(): number {
    return u16(this.bytes, UFTP_HEADER_LEN + FILE_ID);
  }
  get section(): number {
    return u16(this.bytes, UFTP_HEADER_LEN + SECTION);
  }
  get secBlock(): number {
    return u16(this.bytes, UFTP_HEADER_LEN + SEC_BLOCK);
  }
  /** The raw header extensions (EXT_TFMCC_DATA_INFO with -C tfmcc). */
  get extensions(): Uint8Array {
    return this.bytes.subarray(UFTP_HEADER_LEN + FIXED, UFTP_HEADER_LEN + this.hlen);
  }
  get data(): Uint8Array {
    return this.bytes.subarray(UFTP_HEADER_LEN + this.hlen);
  }
}

/**
 * FileSegView.check without an allocation, for the receive path of a data stream: one reader is kept, and
 * `read(d)` makes check()'s checks on a whole datagram and fills this object's fields (false where check() returns
 * an error; the fields are then meaningless). Nothing is copied; `block(d)` is the data as a subarray, made only
 * when the caller keeps it.
 */
export class FileSegReader {
  fileId = 0;
  section = 0;
  secBlock = 0;
  /** Where the header extensions start and end in the datagram (equal: none). */
  readonly extStart = UFTP_HEADER_LEN + FIXED;
  extEnd = UFTP_HEADER_LEN + FIXED;

  read(d: Uint8Array): boolean {
    const m = UFTP_HEADER_LEN;
    if (d.length < m + FIXED) return false;
    const hlen = d[m + HLEN] * 4;
    if (hlen < FIXED || m + hlen > d.length) return false;
    this.fileId = u16(d, m + FILE_ID);
    this.section = u16(d, m + SECTION);
    this.secBlock = u16(d, m + SEC_BLOCK);
    this.extEnd = m + hlen;
    return true;
  }

  /** The data block of the datagram last read (a subarray of it). */
  block(d: Uint8Array): Uint8Array {
    return d.subarray(this.extEnd);
  }
}
