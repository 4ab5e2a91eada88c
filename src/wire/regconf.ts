/**
 * 5.2.6 REG_CONF (server -> clients: registrations confirmed, no encryption or via proxy).
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

export interface RegConf {
  type: 'REG_CONF';
  extensions: Extension[];
  clientIds: number[];
}

export function decodeRegConf(b: Uint8Array): Result<RegConf> {
  const t = decodeExtensionsAndIds(b, FIXED, 'REG_CONF');
  return t.ok ? ok({ type: 'REG_CONF', ...t.value }) : t;
}

export function regConfLength(m: RegConf): number {
  return extensionsAndIdsLength(FIXED, m);
}

export function encodeRegConfInto(m: RegConf, out: Uint8Array, off: number): number {
  put16(out, off + 2, 0);
  return encodeExtensionsAndIdsInto(m, MessageType.REG_CONF, FIXED, 'REG_CONF', out, off);
}
