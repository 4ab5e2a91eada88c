/**
 * 5.2.14 COMPLETE (client -> server: file received / skipped / rejected; file ID 0 ends the session).
 *
 *  0 function(1)  1 header length  2 file ID (16)
 *  4 status (CompStat)  5 reserved (24)
 *  8 header extensions (EXT_FREESPACE_INFO for a @FREESPACE query) up to header length
 *    body: client IDs (a proxy relaying completions)
 */
import { MessageType } from './constants.js';
import { isU16, isU8, need, put16, put32, u16 } from './fields.js';
import type { Extension } from './extensions.js';
import { ok, type Result } from './result.js';
import { decodeExtensionsAndIds, encodeExtensionsAndIdsInto, extensionsAndIdsLength } from './tail.js';

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
  const t = decodeExtensionsAndIds(b, FIXED, 'COMPLETE');
  return t.ok ? ok({ type: 'COMPLETE', fileId: u16(b, FILE_ID), status: b[STATUS], ...t.value }) : t;
}

export function completeLength(m: Complete): number {
  return extensionsAndIdsLength(FIXED, m);
}

export function encodeCompleteInto(m: Complete, out: Uint8Array, off: number): number {
  need(isU16(m.fileId) && isU8(m.status), 'COMPLETE: field out of range');
  put16(out, off + FILE_ID, m.fileId);
  put32(out, off + STATUS, 0);
  out[off + STATUS] = m.status;
  return encodeExtensionsAndIdsInto(m, MessageType.COMPLETE, FIXED, 'COMPLETE', out, off);
}
