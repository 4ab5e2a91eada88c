/**
 * 5.2.13 STATUS (client -> server: NAKs for one section).
 *
 *  0 function(1)  1 header length  2 file ID (16)
 *  4 section (16)  6 reserved (16)
 *  8 header extensions (EXT_TFMCC_ACK_INFO with -C tfmcc) up to header length
 *    body: NAK bitmap, one bit per block of the section (set = NAK)
 */
import { MessageType, UFTP_HEADER_LEN } from './constants.js';
import { headerBytes, hlenWords, isU16, need, put16, u16 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FILE_ID = 2;
const SECTION = 4;
const FIXED = 8;

export interface Status {
  type: 'STATUS';
  fileId: number;
  section: number;
  extensions: Extension[];
  /** The NAK bitmap as sent (a subarray of the input). See docs/protocol-notes.md for its bit order. */
  naks: Uint8Array;
}

export function decodeStatus(b: Uint8Array): Result<Status> {
  const N = 'STATUS';
  const h = headerBytes(b, N, FIXED);
  if (!h.ok) return h;
  const exts = decodeExtensions(b, FIXED, h.value, N);
  if (!exts.ok) return exts;
  return ok({ type: 'STATUS', fileId: u16(b, FILE_ID), section: u16(b, SECTION), extensions: exts.value, naks: b.subarray(h.value) });
}

export function statusLength(m: Status): number {
  return FIXED + extensionsLength(m.extensions) + m.naks.length;
}

export function encodeStatusInto(m: Status, out: Uint8Array, off: number): number {
  const hlen = writeStatusFixed(out, off, m.fileId, m.section, FIXED + extensionsLength(m.extensions));
  encodeExtensionsInto(m.extensions, out, off + FIXED);
  out.set(m.naks, off + hlen);
  return hlen + m.naks.length;
}

function writeStatusFixed(out: Uint8Array, off: number, fileId: number, section: number, hlen: number): number {
  need(isU16(fileId) && isU16(section), 'STATUS: field out of range');
  out[off + FUNC] = MessageType.STATUS;
  out[off + HLEN] = hlenWords(hlen, 'STATUS');
  put16(out, off + FILE_ID, fileId);
  put16(out, off + SECTION, section);
  put16(out, off + 6, 0);
  return hlen;
}

/**
 * A checked, zero-copy view of a whole STATUS datagram: file, section, the raw header extensions (to pass on
 * unchanged) and the NAK bitmap, both subarrays of the datagram.
 */
export class StatusView {
  private constructor(readonly bytes: Uint8Array, private readonly hlen: number) {}

  static check(d: Uint8Array): Result<StatusView> {
    const m = UFTP_HEADER_LEN;
    if (d.length < m + FIXED) return err('truncated', `STATUS: ${d.length - m} bytes, need at least ${FIXED}`);
    const hlen = d[m + HLEN] * 4;
    if (hlen < FIXED) return err('inconsistent', `STATUS: header length ${hlen} < ${FIXED}`);
    if (m + hlen > d.length) return err('truncated', `STATUS: header length ${hlen} bytes exceeds message of ${d.length - m} bytes`);
    return ok(new StatusView(d, hlen));
  }

  get fileId(): number {
    return u16(this.bytes, UFTP_HEADER_LEN + FILE_ID);
  }
  get section(): number {
    return u16(this.bytes, UFTP_HEADER_LEN + SECTION);
  }
  /** The header extensions as sent (e.g. EXT_TFMCC_ACK_INFO). */
  get extensions(): Uint8Array {
    return this.bytes.subarray(UFTP_HEADER_LEN + FIXED, UFTP_HEADER_LEN + this.hlen);
  }
  get naks(): Uint8Array {
    return this.bytes.subarray(UFTP_HEADER_LEN + this.hlen);
  }
}

/** A STATUS body with extensions given as raw bytes (a proxy's aggregate passes them on as it got them). */
export function encodeStatusRaw(fileId: number, section: number, rawExtensions: Uint8Array, naks: Uint8Array): Uint8Array {
  const hlen = FIXED + rawExtensions.length;
  const out = new Uint8Array(hlen + naks.length);
  writeStatusFixed(out, 0, fileId, section, hlen);
  out.set(rawExtensions, FIXED);
  out.set(naks, hlen);
  return out;
}
