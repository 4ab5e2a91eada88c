/**
 * 5.2.13 STATUS (client -> server: NAKs for one section).
 *
 *  0 function(1)  1 header length  2 file ID (16)
 *  4 section (16)  6 reserved (16)
 *  8 header extensions (EXT_TFMCC_ACK_INFO with -C tfmcc) up to header length
 *    body: NAK bitmap, one bit per block of the section (set = NAK)
 */
import { MessageType } from './constants.js';
import { headerBytes, hlenWords, isU16, need, put16, u16 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { ok, type Result } from './result.js';

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
  need(isU16(m.fileId) && isU16(m.section), 'STATUS: field out of range');
  const hlen = FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.STATUS;
  out[off + HLEN] = hlenWords(hlen, 'STATUS');
  put16(out, off + FILE_ID, m.fileId);
  put16(out, off + SECTION, m.section);
  put16(out, off + 6, 0);
  encodeExtensionsInto(m.extensions, out, off + FIXED);
  out.set(m.naks, off + hlen);
  return hlen + m.naks.length;
}
