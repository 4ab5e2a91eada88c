/**
 * One table of UFTP's cryptographic choices (protocol.txt 5.3.2 - 5.3.5) and what they mean for node:crypto.
 * Availability is checked against the local OpenSSL once, lazily: DES (single) lives in OpenSSL 3's legacy
 * provider and is usually missing; callers get a clear error naming the cipher.
 */
import { createCipheriv, getHashes } from 'node:crypto';
import { HashType, KeyType, KeyexType, SigType } from '../wire/constants.js';
import { ok, type Result } from '../wire/result.js';

export type CipherMode = 'cbc' | 'gcm' | 'ccm';

export interface KeySuite {
  /** 5.3.2 key type number. */
  readonly id: number;
  /** The name uftp's -Y option uses. */
  readonly name: string;
  /** OpenSSL cipher name. */
  readonly openssl: string;
  /** The cipher used where protocol.txt 4 says "in CBC mode instead" (KEYINFO with GCM/CCM). */
  readonly cbcOpenssl: string;
  readonly mode: CipherMode;
  /** encryption_key_length in bytes. */
  readonly keyLength: number;
  /** IV length in bytes: 16 (AES CBC), 12 (GCM/CCM), 8 (DES/3DES). */
  readonly ivLength: number;
  readonly blockSize: number;
  /** Authentication tag length for GCM/CCM (bytes appended to the ciphertext); 0 for CBC. */
  readonly tagLength: number;
}

export const KEY_SUITES: readonly KeySuite[] = [
  { id: KeyType.DES, name: 'des', openssl: 'des-cbc', cbcOpenssl: 'des-cbc', mode: 'cbc', keyLength: 8, ivLength: 8, blockSize: 8, tagLength: 0 },
  { id: KeyType.DES_EDE3, name: '3des', openssl: 'des-ede3-cbc', cbcOpenssl: 'des-ede3-cbc', mode: 'cbc', keyLength: 24, ivLength: 8, blockSize: 8, tagLength: 0 },
  { id: KeyType.AES128_CBC, name: 'aes128-cbc', openssl: 'aes-128-cbc', cbcOpenssl: 'aes-128-cbc', mode: 'cbc', keyLength: 16, ivLength: 16, blockSize: 16, tagLength: 0 },
  { id: KeyType.AES256_CBC, name: 'aes256-cbc', openssl: 'aes-256-cbc', cbcOpenssl: 'aes-256-cbc', mode: 'cbc', keyLength: 32, ivLength: 16, blockSize: 16, tagLength: 0 },
  { id: KeyType.AES128_GCM, name: 'aes128-gcm', openssl: 'aes-128-gcm', cbcOpenssl: 'aes-128-cbc', mode: 'gcm', keyLength: 16, ivLength: 12, blockSize: 16, tagLength: 16 },
  { id: KeyType.AES256_GCM, name: 'aes256-gcm', openssl: 'aes-256-gcm', cbcOpenssl: 'aes-256-cbc', mode: 'gcm', keyLength: 32, ivLength: 12, blockSize: 16, tagLength: 16 },
  { id: KeyType.AES128_CCM, name: 'aes128-ccm', openssl: 'aes-128-ccm', cbcOpenssl: 'aes-128-cbc', mode: 'ccm', keyLength: 16, ivLength: 12, blockSize: 16, tagLength: 16 },
  { id: KeyType.AES256_CCM, name: 'aes256-ccm', openssl: 'aes-256-ccm', cbcOpenssl: 'aes-256-cbc', mode: 'ccm', keyLength: 32, ivLength: 12, blockSize: 16, tagLength: 16 },
];

export interface HashSuite {
  /** 5.3.3 hash type number. */
  readonly id: number;
  /** The name uftp's -h option uses. */
  readonly name: string;
  /** node:crypto / OpenSSL digest name. */
  readonly openssl: 'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512';
  /** hash_length in bytes. */
  readonly length: number;
}

export const HASH_SUITES: readonly HashSuite[] = [
  { id: HashType.MD5, name: 'md5', openssl: 'md5', length: 16 },
  { id: HashType.SHA1, name: 'sha1', openssl: 'sha1', length: 20 },
  { id: HashType.SHA256, name: 'sha256', openssl: 'sha256', length: 32 },
  { id: HashType.SHA384, name: 'sha384', openssl: 'sha384', length: 48 },
  { id: HashType.SHA512, name: 'sha512', openssl: 'sha512', length: 64 },
];

/** 5.3.4 signature types by -w name. */
export const SIG_TYPES: ReadonlyMap<string, number> = new Map([
  ['hmac', SigType.HMAC],
  ['keyex', SigType.KEYEX],
  ['authenc', SigType.AUTHENC],
]);

/** 5.3.5 key exchange types by -e name. */
export const KEYEX_TYPES: ReadonlyMap<string, number> = new Map([
  ['rsa', KeyexType.RSA],
  ['ecdh_rsa', KeyexType.ECDH_RSA],
  ['ecdh_ecdsa', KeyexType.ECDH_ECDSA],
]);

const availability = new Map<string, boolean>();

/** Whether the local OpenSSL (through node:crypto) offers this cipher. */
export function cipherAvailable(openssl: string): boolean {
  let a = availability.get(openssl);
  if (a === undefined) {
    const s = KEY_SUITES.find((k) => k.openssl === openssl || k.cbcOpenssl === openssl);
    const keyLength = s ? s.keyLength : 16;
    const ivLength = s ? (s.openssl === openssl ? s.ivLength : s.blockSize) : 16;
    try {
      if (s && s.openssl === openssl && s.mode !== 'cbc') {
        createCipheriv(openssl as 'aes-128-gcm', Buffer.alloc(keyLength), Buffer.alloc(ivLength), { authTagLength: s.tagLength });
      } else {
        createCipheriv(openssl, Buffer.alloc(keyLength), Buffer.alloc(ivLength));
      }
      a = true;
    } catch {
      a = false;
    }
    availability.set(openssl, a);
  }
  return a;
}

/** The key suite for a 5.3.2 key type, or an error naming why it cannot be used here. */
export function keySuite(id: number): Result<KeySuite, string> {
  const s = KEY_SUITES.find((k) => k.id === id);
  if (!s) return { ok: false, error: `key type ${id} is not a known symmetric cipher (5.3.2)` };
  if (!cipherAvailable(s.openssl) || !cipherAvailable(s.cbcOpenssl)) {
    return { ok: false, error: `key type ${s.name} (${s.openssl}) is not available in this OpenSSL` };
  }
  return ok(s);
}

/** The key suite for a -Y name ("aes256-gcm"...). */
export function keySuiteByName(name: string): Result<KeySuite, string> {
  const s = KEY_SUITES.find((k) => k.name === name.toLowerCase());
  if (!s) return { ok: false, error: `unknown key type ${name}` };
  return keySuite(s.id);
}

/** The hash suite for a 5.3.3 hash type. */
export function hashSuite(id: number): Result<HashSuite, string> {
  const s = HASH_SUITES.find((h) => h.id === id);
  if (!s) return { ok: false, error: `hash type ${id} is not a known hash (5.3.3)` };
  if (!getHashes().includes(s.openssl)) return { ok: false, error: `hash ${s.name} is not available in this OpenSSL` };
  return ok(s);
}

export function hashSuiteByName(name: string): Result<HashSuite, string> {
  const s = HASH_SUITES.find((h) => h.name === name.toLowerCase());
  if (!s) return { ok: false, error: `unknown hash type ${name}` };
  return hashSuite(s.id);
}
