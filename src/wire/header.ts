/**
 * 5.2.1 The UFTP header: 16 bytes in front of every message.
 *
 *  0  UFTP ID (version)   1  function   2  sequence number (16)
 *  4  source ID (32)
 *  8  group ID (32)
 * 12  group instance      13 GRTT (quantized, RFC 5401 3.7.4)   14 group size (quantized)   15 reserved
 *
 * UFTP 4.10 sends UFTP ID 0x40 (protocol.txt says 0x30); anything else is a 'bad-version' error.
 */
import { MESSAGE_NAMES, UFTP_HEADER_LEN, UFTP_VER_NUM } from './constants.js';
import { hex32, isU16, isU32, isU8, need, put16, put32, u16, u32 } from './fields.js';
import { unquantizeGrtt, unquantizeGroupSize } from './quantize.js';
import { err, ok, type Result } from './result.js';

const VERSION = 0;
const FUNC = 1;
const SEQ = 2;
const SRC_ID = 4;
const GROUP_ID = 8;
const GROUP_INST = 12;
const GRTT = 13;
const GSIZE = 14;
const RESERVED = 15;

export interface UftpHeader {
  version: number;
  func: number;
  seq: number;
  srcId: number;
  groupId: number;
  groupInst: number;
  /** The quantized byte; seconds = unquantizeGrtt(grtt). */
  grtt: number;
  /** The quantized byte; clients = unquantizeGroupSize(gsize). */
  gsize: number;
  reserved: number;
}

/** Decodes the first 16 bytes of `b` (the rest is the message and is not looked at). */
export function decodeHeader(b: Uint8Array): Result<UftpHeader> {
  if (b.length < UFTP_HEADER_LEN) return err('truncated', `UFTP header: ${b.length} bytes, need ${UFTP_HEADER_LEN}`);
  if (b[VERSION] !== UFTP_VER_NUM) {
    return err('bad-version', `UFTP header: UFTP ID 0x${b[VERSION].toString(16).padStart(2, '0')}, expected 0x${UFTP_VER_NUM.toString(16)}`);
  }
  const func = b[FUNC];
  if (!MESSAGE_NAMES.has(func)) return err('bad-type', `UFTP header: unknown function ${func}`);
  return ok({
    version: b[VERSION],
    func,
    seq: u16(b, SEQ),
    srcId: u32(b, SRC_ID),
    groupId: u32(b, GROUP_ID),
    groupInst: b[GROUP_INST],
    grtt: b[GRTT],
    gsize: b[GSIZE],
    reserved: b[RESERVED],
  });
}

/** Writes the 16-byte header at `off`; returns 16. Throws RangeError on out-of-range fields (a caller bug). */
export function encodeHeaderInto(h: UftpHeader, out: Uint8Array, off: number): number {
  need(isU8(h.version) && isU8(h.func) && isU16(h.seq) && isU32(h.srcId) && isU32(h.groupId), 'UFTP header: field out of range');
  need(isU8(h.groupInst) && isU8(h.grtt) && isU8(h.gsize) && isU8(h.reserved), 'UFTP header: byte field out of range');
  need(out.length - off >= UFTP_HEADER_LEN, 'UFTP header: output buffer too small');
  out[off + VERSION] = h.version;
  out[off + FUNC] = h.func;
  put16(out, off + SEQ, h.seq);
  put32(out, off + SRC_ID, h.srcId);
  put32(out, off + GROUP_ID, h.groupId);
  out[off + GROUP_INST] = h.groupInst;
  out[off + GRTT] = h.grtt;
  out[off + GSIZE] = h.gsize;
  out[off + RESERVED] = h.reserved;
  return UFTP_HEADER_LEN;
}

export function describeHeader(h: UftpHeader): string {
  const grtt = Number(unquantizeGrtt(h.grtt).toPrecision(3));
  return `seq=${h.seq} src=${hex32(h.srcId)} group=${hex32(h.groupId)}/${h.groupInst} grtt=${grtt}s gsize=${unquantizeGroupSize(h.gsize)}`;
}

/** Named offsets of the header fields (protocol.txt 5.2.1), for the views here and in the message files. */
export const HeaderField = { VERSION, FUNC, SEQ, SRC_ID, GROUP_ID, GROUP_INST, GRTT, GSIZE, RESERVED } as const;

/**
 * A checked, zero-copy view of a datagram's UFTP header (smoltcp's `Packet` level): `HeaderView.check` makes sure
 * the 16 bytes are there, the UFTP ID is 0x40 and the function is known; after that every accessor reads in
 * bounds. Nothing is copied: the view reads and writes `bytes`. Use it where a full decode is not needed (the
 * proxies' data path); `decodeHeader` gives the plain-data Repr.
 */
export class HeaderView {
  private constructor(readonly bytes: Uint8Array) {}

  static check(b: Uint8Array): Result<HeaderView> {
    if (b.length < UFTP_HEADER_LEN) return err('truncated', `UFTP header: ${b.length} bytes, need ${UFTP_HEADER_LEN}`);
    if (b[VERSION] !== UFTP_VER_NUM) {
      return err('bad-version', `UFTP header: UFTP ID 0x${b[VERSION].toString(16).padStart(2, '0')}, expected 0x${UFTP_VER_NUM.toString(16)}`);
    }
    if (!MESSAGE_NAMES.has(b[FUNC])) return err('bad-type', `UFTP header: unknown function ${b[FUNC]}`);
    return ok(new HeaderView(b));
  }

  get func(): number {
    return this.bytes[FUNC];
  }
  get seq(): number {
    return u16(this.bytes, SEQ);
  }
  get srcId(): number {
    return u32(this.bytes, SRC_ID);
  }
  get groupId(): number {
    return u32(this.bytes, GROUP_ID);
  }
  get groupInst(): number {
    return this.bytes[GROUP_INST];
  }
  /** The quantized GRTT byte. */
  get grtt(): number {
    return this.bytes[GRTT];
  }
  get gsize(): number {
    return this.bytes[GSIZE];
  }
  /** The message after the header (a subarray: no copy). */
  get message(): Uint8Array {
    return this.bytes.subarray(UFTP_HEADER_LEN);
  }

  setSeq(seq: number): void {
    put16(this.bytes, SEQ, seq & 0xffff);
  }
  setSrcId(id: number): void {
    put32(this.bytes, SRC_ID, id >>> 0);
  }

  /** The plain-data header (a fresh object). */
  toRepr(): UftpHeader {
    const b = this.bytes;
    return { version: b[VERSION], func: b[FUNC], seq: this.seq, srcId: this.srcId, groupId: this.groupId, groupInst: b[GROUP_INST], grtt: b[GRTT], gsize: b[GSIZE], reserved: b[RESERVED] };
  }
}

