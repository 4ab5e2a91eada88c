/**
 * 5.2.15 DONE_CONF (server -> clients: completions confirmed).
 *
 *  0 function(1)  1 header length  2 reserved (16)
 *  4 header extensions up to header length;  body: client IDs
 */
import { MessageType } from './constants.js';
import { put16 } from './fields.js';
import type { Extension } from './extensions.js';
import { ok, type Result } from './result.js';
import { decodeExtensionsAndIds, encodeExtensionsAndIdsInto, extensionsAndIdsLength } from './tail.js';

const FIXED = 4;

export interface DoneConf {
  type: 'DONE_CONF';
  extensions: Extension[];
  clientIds: number[];
}

export function decodeDoneConf(b: Uint8Array): Result<DoneConf> {
  const t = decodeExtensionsAndIds(b, FIXED, 'DONE_CONF');
  return t.ok ? ok({ type: 'DONE_CONF', ...t.value }) : t;
}

export function doneConfLength(m: DoneConf): number {
  return extensionsAndIdsLength(FIXED, m);
}

export function encodeDoneConfInto(m: DoneConf, out: Uint8Array, off: number): number {
  put16(out, off + 2, 0);
  return encodeExtensionsAndIdsInto(m, MessageType.DONE_CONF, FIXED, 'DONE_CONF', out, off);
}
