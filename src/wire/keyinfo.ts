/**
 * 5.2.7 KEYINFO (server -> clients: the group master, encrypted per client) and
 * 5.2.8 KEYINFO_ACK (client -> server, always inside ENCRYPTED).
 *
 * KEYINFO                                         KEYINFO_ACK
 *  0 function(1) 1 header length 2 reserved(16)    0 function(1) 1 header length 2 reserved(16)
 *  4 IV counter (64)                               4 verify data (12 bytes)
 * 12 header extensions up to header length        16 header extensions up to header length
 *    body: { client ID (32), encrypted group master (48 bytes) } ...
 */
import { MessageType } from './constants.js';
import { headerBytes, hlenWords, isU32, isU64, need, put16, put32, put64, u32, u64 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const IV_CTR = 4;
const KI_FIXED = 12;
export const ENCRYPTED_GROUP_MASTER_LEN = 48;
const KEY_ENTRY = 4 + ENCRYPTED_GROUP_MASTER_LEN;

const VERIFY = 4;
export const VERIFY_DATA_LEN = 12;
const ACK_FIXED = 16;

export interface KeyInfoEntry {
  clientId: number;
  encryptedGroupMaster: Uint8Array;
}
export interface KeyInfo {
  type: 'KEYINFO';
  ivCounter: bigint;
  extensions: Extension[];
  keys: KeyInfoEntry[];
}
export interface KeyInfoAck {
  type: 'KEYINFO_ACK';
  verifyData: Uint8Array;
  extensions: Extension[];
}

export function decodeKeyInfo(b: Uint8Array): Result<KeyInfo> {
  const N = 'KEYINFO';
  const h = headerBytes(b, N, KI_FIXED);
  if (!h.ok) return h;
  const hlen = h.value;
  const exts = decodeExtensions(b, KI_FIXED, hlen, N);
  if (!exts.ok) return exts;
  const n = b.length - hlen;
  if (n % KEY_ENTRY !== 0) return err('inconsistent', `${N}: key list of ${n} bytes is not a multiple of ${KEY_ENTRY}`);
  const keys: KeyInfoEntry[] = [];
  for (let o = hlen; o < b.length; o += KEY_ENTRY) {
    keys.push({ clientId: u32(b, o), encryptedGroupMaster: b.subarray(o + 4, o + KEY_ENTRY) });
  }
  return ok({ type: 'KEYINFO', ivCounter: u64(b, IV_CTR), extensions: exts.value, keys });
}

export function keyInfoLength(m: KeyInfo): number {
  return KI_FIXED + extensionsLength(m.extensions) + KEY_ENTRY * m.keys.length;
}

export function encodeKeyInfoInto(m: KeyInfo, out: Uint8Array, off: number): number {
  need(isU64(m.ivCounter), 'KEYINFO: IV counter out of range');
  const hlen = KI_FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.KEYINFO;
  out[off + HLEN] = hlenWords(hlen, 'KEYINFO');
  put16(out, off + 2, 0);
  put64(out, off + IV_CTR, m.ivCounter);
  encodeExtensionsInto(m.extensions, out, off + KI_FIXED);
  let o = off + hlen;
  for (const k of m.keys) {
    need(isU32(k.clientId), 'KEYINFO: client ID out of range');
    need(k.encryptedGroupMaster.length === ENCRYPTED_GROUP_MASTER_LEN, `KEYINFO: encrypted group master must be ${ENCRYPTED_GROUP_MASTER_LEN} bytes`);
    put32(out, o, k.clientId);
    out.set(k.encryptedGroupMaster, o + 4);
    o += KEY_ENTRY;
  }
  return o - off;
}

export function decodeKeyInfoAck(b: Uint8Array): Result<KeyInfoAck> {
  const N = 'KEYINFO_ACK';
  const h = headerBytes(b, N, ACK_FIXED);
  if (!h.ok) return h;
  if (b.length !== h.value) return err('inconsistent', `${N}: ${b.length - h.value} bytes after the header; KEYINFO_ACK has no body`);
  const exts = decodeExtensions(b, ACK_FIXED, h.value, N);
  if (!exts.ok) return exts;
  return ok({ type: 'KEYINFO_ACK', verifyData: b.subarray(VERIFY, VERIFY + VERIFY_DATA_LEN), extensions: exts.value });
}

export function keyInfoAckLength(m: KeyInfoAck): number {
  return ACK_FIXED + extensionsLength(m.extensions);
}

export function encodeKeyInfoAckInto(m: KeyInfoAck, out: Uint8Array, off: number): number {
  need(m.verifyData.length === VERIFY_DATA_LEN, `KEYINFO_ACK: verify data must be ${VERIFY_DATA_LEN} bytes`);
  const hlen = ACK_FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.KEYINFO_ACK;
  out[off + HLEN] = hlenWords(hlen, 'KEYINFO_ACK');
  put16(out, off + 2, 0);
  out.set(m.verifyData, off + VERIFY);
  encodeExtensionsInto(m.extensions, out, off + ACK_FIXED);
  return hlen;
}
