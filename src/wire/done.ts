/**
 * 5.2.12 DONE (server -> clients: end of section / file; file ID 0 ends the session).
 *
 *  0 function(1)  1 header length  2 file ID (16)
 *  4 section (16)  6 reserved (16)
 *  8 header extensions up to header length;  body: client IDs
 */
import { MessageType } from './constants.js';
import { decodeIdList, headerBytes, hlenWords, isU16, need, put16, putIdList, u16 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FILE_ID = 2;
const SECTION = 4;
const FIXED = 8;

export interface Done {
  type: 'DONE';
  fileId: number;
  section: number;
  extensions: Extension[];
  clientIds: number[];
}

export function decodeDone(b: Uint8Array): Result<Done> {
  const N = 'DONE';
  const h = headerBytes(b, N, FIXED);
  if (!h.ok) return h;
  const exts = decodeExtensions(b, FIXED, h.value, N);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, h.value, N);
  if (!ids.ok) return ids;
  return ok({ type: 'DONE', fileId: u16(b, FILE_ID), section: u16(b, SECTION), extensions: exts.value, clientIds: ids.value });
}

export function doneLength(m: Done): number {
  return FIXED + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

export function encodeDoneInto(m: Done, out: Uint8Array, off: number): number {
  need(isU16(m.fileId) && isU16(m.section), 'DONE: field out of range');
  const hlen = FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.DONE;
  out[off + HLEN] = hlenWords(hlen, 'DONE');
  put16(out, off + FILE_ID, m.fileId);
  put16(out, off + SECTION, m.section);
  put16(out, off + 6, 0);
  encodeExtensionsInto(m.extensions, out, off + FIXED);
  return hlen + putIdList(out, off + hlen, m.clientIds, 'DONE');
}
