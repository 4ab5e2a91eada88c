/**
 * 5.2.4 REGISTER (client -> server, or proxy -> server aggregated).
 *
 *  0 function(1)  1 header length  2 key info length (16)
 *  4 timestamp sec (32)  8 timestamp usec (32)   (the server's timestamp echoed, adjusted)
 * 12 client random (32 bytes)
 * 44 key info (key info length bytes: RSA-encrypted premaster secret, or the client's ECDH key blob),
 *    zero padded to 4 bytes, then header extensions up to header length
 *    body: client IDs (a proxy relaying registrations)
 */
import { MessageType } from './constants.js';
import {
  checkTimestamp, decodeIdList, headerBytes, hlenWords, isU16, need, pad4, put16, putIdList, putTimestamp,
  readTimestamp, u16, type Timestamp,
} from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, RANDOM_LEN, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const KEYINFO_LEN = 2;
const TSTAMP = 4;
const RANDOM = 12;
const KEYINFO = 44;
const FIXED = 44;

export interface Register {
  type: 'REGISTER';
  timestamp: Timestamp;
  /** 32 bytes; all zero when the session is not encrypted. */
  clientRandom: Uint8Array;
  /** Encrypted premaster secret (RSA) or the client's ECDH public key blob (ECDH); empty without encryption. */
  keyInfo: Uint8Array;
  extensions: Extension[];
  clientIds: number[];
}

export function decodeRegister(b: Uint8Array): Result<Register> {
  const N = 'REGISTER';
  const h = headerBytes(b, N, FIXED);
  if (!h.ok) return h;
  const hlen = h.value;
  const klen = u16(b, KEYINFO_LEN);
  if (KEYINFO + klen > hlen) return err('inconsistent', `${N}: key info length ${klen} runs past the header (${hlen} bytes)`);
  const exts = decodeExtensions(b, Math.min(hlen, pad4(KEYINFO + klen)), hlen, N);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, hlen, N);
  if (!ids.ok) return ids;
  return ok({
    type: 'REGISTER',
    timestamp: readTimestamp(b, TSTAMP),
    clientRandom: b.subarray(RANDOM, RANDOM + RANDOM_LEN),
    keyInfo: b.subarray(KEYINFO, KEYINFO + klen),
    extensions: exts.value,
    clientIds: ids.value,
  });
}

export function registerLength(m: Register): number {
  return pad4(FIXED + m.keyInfo.length) + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

export function encodeRegisterInto(m: Register, out: Uint8Array, off: number): number {
  checkTimestamp(m.timestamp, 'REGISTER');
  need(m.clientRandom.length === RANDOM_LEN, `REGISTER: client random must be ${RANDOM_LEN} bytes`);
  need(isU16(m.keyInfo.length), 'REGISTER: key info too long');
  const extStart = pad4(FIXED + m.keyInfo.length);
  const hlen = extStart + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.REGISTER;
  out[off + HLEN] = hlenWords(hlen, 'REGISTER');
  put16(out, off + KEYINFO_LEN, m.keyInfo.length);
  putTimestamp(out, off + TSTAMP, m.timestamp);
  out.set(m.clientRandom, off + RANDOM);
  out.set(m.keyInfo, off + KEYINFO);
  out.fill(0, off + KEYINFO + m.keyInfo.length, off + extStart);
  encodeExtensionsInto(m.extensions, out, off + extStart);
  return hlen + putIdList(out, off + hlen, m.clientIds, 'REGISTER');
}
