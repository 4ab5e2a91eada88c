/**
 * Asymmetric operations for UFTP through node:crypto: RSA premaster encryption, RSA/ECDSA signatures, ECDH.
 *
 * Black-box findings (real uftp/uftpd 4.10.2, see docs/protocol-notes.md "## Crypto"):
 *  - the REGISTER key info is the 48-byte premaster RSA-encrypted with OAEP (SHA-1, MGF1-SHA-1, no label);
 *    PKCS#1 v1.5 decryption of a captured REGISTER fails, OAEP succeeds;
 *  - a CLIENT_KEY signature with an RSA key is PKCS#1 v1.5 over the session hash of the signed bytes (publicDecrypt of
 *    a captured one yields a SHA-1 DigestInfo of group ID + private address + randoms + premaster).
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  createHash,
  privateDecrypt,
  publicEncrypt,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { ok, type Result } from '../wire/result.js';
import type { HashSuite } from './suites.js';

/** RSA-OAEP (SHA-1) encryption of the premaster to the server's public key. */
export function rsaEncryptPremaster(serverPublic: KeyObject, premaster: Uint8Array): Buffer {
  return publicEncrypt({ key: serverPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, premaster);
}

export function rsaDecryptPremaster(serverPrivate: KeyObject, keyInfo: Uint8Array): Result<Buffer, string> {
  try {
    return ok(privateDecrypt({ key: serverPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, keyInfo));
  } catch {
    return { ok: false, error: 'RSA premaster: OAEP decryption failed' };
  }
}

/** ECDSA signature encodings: DER (X9.62 SEQUENCE of r, s) or IEEE P1363 (r||s, fixed width). */
export type EcdsaEncoding = 'der' | 'ieee-p1363';

/**
 * Signs `data` with an RSA (PKCS#1 v1.5) or EC (ECDSA) private key, hashing with `hash`.
 */
export function signData(privateKey: KeyObject, hash: HashSuite, data: Uint8Array, ecdsaEncoding: EcdsaEncoding = 'der'): Buffer {
  if (privateKey.asymmetricKeyType === 'rsa') {
    return nodeSign(hash.openssl, data, { key: privateKey, padding: constants.RSA_PKCS1_PADDING });
  }
  return nodeSign(hash.openssl, data, { key: privateKey, dsaEncoding: ecdsaEncoding });
}

export function verifyData(
  publicKey: KeyObject,
  hash: HashSuite,
  data: Uint8Array,
  signature: Uint8Array,
  ecdsaEncoding: EcdsaEncoding = 'der',
): boolean {
  try {
    if (publicKey.asymmetricKeyType === 'rsa') {
      return nodeVerify(hash.openssl, data, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
    return nodeVerify(hash.openssl, data, { key: publicKey, dsaEncoding: ecdsaEncoding }, signature);
  } catch {
    return false;
  }
}

/** A fresh ephemeral EC key pair on `curve` (OpenSSL name) for ECDH. */
export function generateEcdhKey(curve: string): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: curve });
}

/** The ECDH premaster: SHA-1 of the shared secret (the X coordinate of the shared point). */
export function ecdhPremaster(ownPrivate: KeyObject, peerPublic: KeyObject): Result<Buffer, string> {
  try {
    const shared = diffieHellman({ privateKey: ownPrivate, publicKey: peerPublic });
    return ok(createHash('sha1').update(shared).digest());
  } catch (e) {
    return { ok: false, error: `ECDH failed: ${(e as Error).message}` };
  }
}

/** Re-exported for callers that build keys from PEM/DER themselves. */
export { createPrivateKey, createPublicKey };
