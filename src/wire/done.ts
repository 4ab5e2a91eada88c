/**
 * 5.2.12 DONE (server -> clients: end of section / file; file ID 0 ends the session).
 *
 *  0 function(1)  1 header length  2 file ID (16)
 *  4 section (16)  6 reserved (16)
 *  8 header extensions up to header length;  body: client IDs
 */
import { MessageType } from './constants.js';
import { isU16, need, put16, u16 } from './fields.js';
import type { Extension } from './extensions.js';
import { ok, type Result } from './result.js';
import { decodeExtensionsAndIds, encodeExtensionsAndIdsInto, extensionsAndIdsLength } from './tail.js';

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
  const t = decodeExtensionsAndIds(b, FIXED, 'DONE');
  return t.ok ? ok({ type: 'DONE', fileId: u16(b, FILE_ID), section: u16(b, SECTION), ...t.value }) : t;
}

export function doneLength(m: Done): number {
  return extensionsAndIdsLength(FIXED, m);
}

export function encodeDoneInto(m: Done, out: Uint8Array, off: number): number {
  need(isU16(m.fileId) && isU16(m.section), 'DONE: field out of range');
  put16(out, off + FILE_ID, m.fileId);
  put16(out, off + SECTION, m.section);
  put16(out, off + 6, 0);
  return encodeExtensionsAndIdsInto(m, MessageType.DONE, FIXED, 'DONE', out, off);
}
