/**
 * 5.2.6 REG_CONF (server -> clients: registrations confirmed, no encryption or via proxy).
 *
 *  0 function(1)  1 header length  2 reserved (16)
 *  4 header extensions up to header length;  body: client IDs
 */
import { MessageType } from './constants.js';
import { decodeIdList, headerBytes, hlenWords, put16, putIdList } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FIXED = 4;

export interface RegConf {
  type: 'REG_CONF';
  extensions: Extension[];
  clientIds: number[];
}

export function decodeRegConf(b: Uint8Array): Result<RegConf> {
  const N = 'REG_CONF';
  const h = headerBytes(b, N, FIXED);
  if (!h.ok) return h;
  const exts = decodeExtensions(b, FIXED, h.value, N);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, h.value, N);
  if (!ids.ok) return ids;
  return ok({ type: 'REG_CONF', extensions: exts.value, clientIds: ids.value });
}

export function regConfLength(m: RegConf): number {
  return FIXED + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

export function encodeRegConfInto(m: RegConf, out: Uint8Array, off: number): number {
  const hlen = FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.REG_CONF;
  out[off + HLEN] = hlenWords(hlen, 'REG_CONF');
  put16(out, off + 2, 0);
  encodeExtensionsInto(m.extensions, out, off + FIXED);
  return hlen + putIdList(out, off + hlen, m.clientIds, 'REG_CONF');
}
