/**
 * 5.2.14 COMPLETE (client -> server: file received / skipped / rejected; file ID 0 ends the session).
 *
 *  0 function(1)  1 header length  2 file ID (16)
 *  4 status (CompStat)  5 reserved (24)
 *  8 header extensions (EXT_FREESPACE_INFO for a @FREESPACE query) up to header length
 *    body: client IDs (a proxy relaying completions)
 */
import { MessageType } from './constants.js';
import { decodeIdList, headerBytes, hlenWords, isU16, isU8, need, put16, put32, putIdList, u16 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FILE_ID = 2;
const STATUS = 4;
const FIXED = 8;

export interface Complete {
  type: 'COMPLETE';
  fileId: number;
  /** CompStat: NORMAL, SKIPPED, OVERWRITE, REJECTED. */
  status: number;
  extensions: Extension[];
  clientIds: number[];
}

export function decodeComplete(b: Uint8Array): Result<Complete> {
  const N = 'COMPLETE';
  const h = headerBytes(b, N, FIXED);
  if (!h.ok) return h;
  const exts = decodeExtensions(b, FIXED, h.value, N);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, h.value, N);
  if (!ids.ok) return ids;
  return ok({ type: 'COMPLETE', fileId: u16(b, FILE_ID), status: b[STATUS], extensions: exts.value, clientIds: ids.value });
}

export function completeLength(m: Complete): number {
  return FIXED + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

export function encodeCompleteInto(m: Complete, out: Uint8Array, off: number): number {
  need(isU16(m.fileId) && isU8(m.status), 'COMPLETE: field out of range');
  const hlen = FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.COMPLETE;
  out[off + HLEN] = hlenWords(hlen, 'COMPLETE');
  put16(out, off + FILE_ID, m.fileId);
  put32(out, off + STATUS, 0);
  out[off + STATUS] = m.status;
  encodeExtensionsInto(m.extensions, out, off + FIXED);
  return hlen + putIdList(out, off + hlen, m.clientIds, 'COMPLETE');
}
