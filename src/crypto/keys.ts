/**
 * UFTP's key schedule and IV construction (protocol.txt section 4).
 *
 *   master_secret = PRF(pre_master_secret, "master secret", server_random + client_random)[0-47]
 *   key_block     = PRF(master_secret, "key expansion", server_random + client_random)
 *   group block   = PRF(group_master, "key expansion", server_random)
 *   each block:     hmac key (hash_length) | session key (encryption_key_length) | salt (4)
 *   verify_data   = PRF(group_master, "client finished", Hash(handshake_values))[0-11]
 *   handshake_values = group ID + private address + server random + client random + premaster
 *                      [+ client key blob] + group master
 *
 * PRF is the TLS 1.0/1.1 PRF when SHA-1 is the session hash, the TLS 1.2 PRF with the session hash otherwise.
 */
import { createHash } from 'node:crypto';
import type { KeyBlob } from '../wire/keyblob.js';
import { encodeKeyBlob } from '../wire/keyblob.js';
import { prf, type PrfHash } from './prf.js';
import type { HashSuite, KeySuite } from './suites.js';

export const RANDOM_LENGTH = 32;
export const MASTER_SECRET_LENGTH = 48;
export const PREMASTER_LENGTH = 48;
export const GROUP_MASTER_LENGTH = 48;
export const VERIFY_DATA_LENGTH = 12;
export const SALT_LENGTH = 4;

export interface SymmetricKeys {
  readonly hmacKey: Buffer;
  readonly key: Buffer;
  /** 4-byte salt S for IVs. */
  readonly salt: Buffer;
}

function prfHash(h: HashSuite): PrfHash {
  if (h.openssl === 'md5') throw new Error('MD5 is not a UFTP session hash');
  return h.openssl;
}

/** Splits a key block: hmac key, session key, salt. */
export function splitKeyBlock(block: Buffer, hash: HashSuite, suite: KeySuite): SymmetricKeys {
  const h = hash.length;
  const k = suite.keyLength;
  return {
    hmacKey: block.subarray(0, h),
    key: block.subarray(h, h + k),
    salt: block.subarray(h + k, h + k + SALT_LENGTH),
  };
}

export function keyBlockLength(hash: HashSuite, suite: KeySuite): number {
  return hash.length + suite.keyLength + SALT_LENGTH;
}

/** master_secret from the premaster and both randoms. */
export function masterSecret(hash: HashSuite, premaster: Uint8Array, serverRandom: Uint8Array, clientRandom: Uint8Array): Buffer {
  return prf(prfHash(hash), premaster, 'master secret', Buffer.concat([serverRandom, clientRandom]), MASTER_SECRET_LENGTH);
}

/** The unicast (server <-> one client) keys from the master secret. */
export function sessionKeys(
  hash: HashSuite,
  suite: KeySuite,
  master: Uint8Array,
  serverRandom: Uint8Array,
  clientRandom: Uint8Array,
): SymmetricKeys {
  const block = prf(prfHash(hash), master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), keyBlockLength(hash, suite));
  return splitKeyBlock(block, hash, suite);
}

/** The group keys every member derives from the 48-byte group master. */
export function groupKeys(hash: HashSuite, suite: KeySuite, groupMaster: Uint8Array, serverRandom: Uint8Array): SymmetricKeys {
  const block = prf(prfHash(hash), groupMaster, 'key expansion', serverRandom, keyBlockLength(hash, suite));
  return splitKeyBlock(block, hash, suite);
}

export interface HandshakeValues {
  readonly groupId: number;
  /** The private multicast address as on the wire (4 or 16 bytes). */
  readonly privateAddress: Uint8Array;
  readonly serverRandom: Uint8Array;
  readonly clientRandom: Uint8Array;
  readonly premaster: Uint8Array;
  /** The client's public key blob when it sent a CLIENT_KEY. */
  readonly clientKeyBlob?: KeyBlob;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/**
 * The bytes a CLIENT_KEY's signature covers: group ID + private address + server random + client random + premaster.
 * (Black-box: the real client signs exactly these bytes with RSA PKCS#1 v1.5 / SHA-1 in a SHA-1 session.)
 */
export function clientKeySignedData(v: HandshakeValues): Buffer {
  return Buffer.concat([u32(v.groupId), v.privateAddress, v.serverRandom, v.clientRandom, v.premaster]);
}

/** verify_data of KEYINFO_ACK. */
export function verifyData(hash: HashSuite, groupMaster: Uint8Array, v: HandshakeValues): Buffer {
  const parts: Uint8Array[] = [clientKeySignedData(v)];
  if (v.clientKeyBlob) parts.push(encodeKeyBlob(v.clientKeyBlob));
  parts.push(groupMaster);
  const digest = createHash(hash.openssl).update(Buffer.concat(parts)).digest();
  return prf(prfHash(hash), groupMaster, 'client finished', digest, VERIFY_DATA_LENGTH);
}

/**
 * The IV for a message from `uid` with counter `ctr` (protocol.txt 4):
 *   128-bit (AES CBC):     S + UID + CTR
 *   96-bit (AES GCM/CCM):  (S XOR UID) + CTR
 *   64-bit (DES, 3DES):    (S + UID) XOR CTR
 */
export function buildIv(ivLength: number, salt: Uint8Array, uid: number, ctr: bigint): Buffer {
  const c = Buffer.alloc(8);
  c.writeBigUInt64BE(BigInt.asUintN(64, ctr));
  return buildIvInto(Buffer.alloc(16), ivLength, salt, uid, c) as Buffer;
}

/**
 * buildIv from the IV counter as it stands in an ENCRYPTED datagram (8 bytes, big-endian), into `out` (at least
 * ivLength bytes): the datagram path's form, no BigInt and no Buffer of its own. Returns out's first ivLength bytes.
 */
export function buildIvInto(out: Uint8Array, ivLength: number, salt: Uint8Array, uid: number, ctr: Uint8Array): Uint8Array {
  const u = uid >>> 0;
  if (ivLength === 12) {
    const x = (((salt[0] ?? 0) << 24) | ((salt[1] ?? 0) << 16) | ((salt[2] ?? 0) << 8) | (salt[3] ?? 0)) ^ u;
    out[0] = x >>> 24;
    out[1] = x >>> 16;
    out[2] = x >>> 8;
    out[3] = x;
    for (let i = 0; i < 8; i++) out[4 + i] = ctr[i] ?? 0;
    return out.subarray(0, 12);
  }
  if (ivLength !== 16 && ivLength !== 8) throw new Error(`buildIv: no IV construction for ${ivLength} bytes`);
  for (let i = 0; i < SALT_LENGTH; i++) out[i] = salt[i] ?? 0;
  out[4] = u >>> 24;
  out[5] = u >>> 16;
  out[6] = u >>> 8;
  out[7] = u;
  if (ivLength === 16) for (let i = 0; i < 8; i++) out[8 + i] = ctr[i] ?? 0;
  else for (let i = 0; i < 8; i++) out[i] = (out[i] ?? 0) ^ (ctr[i] ?? 0);
  return out.subarray(0, ivLength);
}

