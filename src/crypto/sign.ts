/**
 * Asymmetric operations for UFTP through node:crypto: RSA premaster encryption, RSA/ECDSA signatures, ECDH.
 *
 * Black-box findings (real uftp/uftpd 4.10.2, see docs/protocol-notes.md "## Crypto"):
 *  - the REGISTER key info is the 48-byte premaster RSA-encrypted with OAEP (SHA-1, MGF1-SHA-1, no label);
 *    PKCS#1 v1.5 decryption of a captured REGISTER fails, OAEP succeeds;
 *  - a CLIENT_KEY signature with an RSA key is PKCS#1 v1.5 over the session hash of the signed bytes (publicDecrypt of
 *    a captured one yields a SHA-1 DigestInfo of group ID + private address + randoms + premaster);
 *  - ANNOUNCE signatures (ECDH key exchange) cover the whole datagram with the signature bytes zeroed, hashed with the
 *    session hash; RSA PKCS#1 v1.5, ECDSA in 'uftp' encoding (see EcdsaEncoding).
 */
import {
  constants,
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

/**
 * RSA-OAEP (SHA-1) takes 42 bytes of padding, so a 48-byte premaster needs a modulus of at least 90 bytes. With a
 * smaller key (the real uftp's default generated key is 512 bits) the real programs use PKCS#1 v1.5 (black-box:
 * a 64-byte key info in REGISTER to a 512-bit server key; see docs/protocol-notes.md "uftp (server)").
 */
function oaepFits(key: KeyObject, length: number): boolean {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  return Math.floor(bits / 8) >= length + 42;
}

/** Encryption of the premaster to the server's public key: RSA-OAEP (SHA-1), PKCS#1 v1.5 for keys too small for it. */
export function rsaEncryptPremaster(serverPublic: KeyObject, premaster: Uint8Array): Buffer {
  if (!oaepFits(serverPublic, premaster.length)) return publicEncrypt({ key: serverPublic, padding: constants.RSA_PKCS1_PADDING }, premaster);
  return publicEncrypt({ key: serverPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, premaster);
}

/**
 * The premaster from a REGISTER's key info. One padding per key size (no fallback between them): OAEP when a 48-byte
 * premaster fits it, else PKCS#1 v1.5, unpadded here from a raw RSA decryption because Node 20 refuses PKCS#1 v1.5
 * private decryption (CVE-2023-46809).
 */
export function rsaDecryptPremaster(serverPrivate: KeyObject, keyInfo: Uint8Array): Result<Buffer, string> {
  if (!oaepFits(serverPrivate, 48)) {
    let raw: Buffer;
    try {
      raw = privateDecrypt({ key: serverPrivate, padding: constants.RSA_NO_PADDING }, keyInfo);
    } catch {
      return { ok: false, error: 'RSA premaster: decryption failed' };
    }
    // 00 02 PS (at least 8 nonzero bytes) 00 M
    const sep = raw.indexOf(0, 2);
    if (raw[0] !== 0 || raw[1] !== 2 || sep < 10) return { ok: false, error: 'RSA premaster: bad PKCS#1 v1.5 padding' };
    return ok(Buffer.from(raw.subarray(sep + 1)));
  }
  try {
    return ok(privateDecrypt({ key: serverPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, keyInfo));
  } catch {
    return { ok: false, error: 'RSA premaster: OAEP decryption failed' };
  }
}

/**
 * ECDSA signature encodings: 'uftp' is what the real programs put on the wire (black-box: ANNOUNCE signatures):
 * r length (16 bits), s length (16 bits), r, s, big-endian without leading zero bytes, then zero padding to a
 * multiple of 4 bytes (the signature length fields count the padding). 'der' is X9.62, 'ieee-p1363' is r||s.
 */
export type EcdsaEncoding = 'uftp' | 'der' | 'ieee-p1363';

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** Converts an IEEE P1363 r||s signature to UFTP's length-prefixed form, padded to 4 bytes. */
export function p1363ToUftp(sig: Uint8Array): Buffer {
  const half = sig.length / 2;
  const r = stripZeros(Buffer.from(sig.subarray(0, half)));
  const s = stripZeros(Buffer.from(sig.subarray(half)));
  const len = 4 + r.length + s.length;
  const out = Buffer.alloc(Math.ceil(len / 4) * 4);
  out.writeUInt16BE(r.length, 0);
  out.writeUInt16BE(s.length, 2);
  r.copy(out, 4);
  s.copy(out, 4 + r.length);
  return out;
}

/** Converts UFTP's length-prefixed ECDSA signature to IEEE P1363 r||s with `fieldBytes` per half. */
export function uftpToP1363(sig: Uint8Array, fieldBytes: number): Result<Buffer, string> {
  if (sig.length < 4) return { ok: false, error: `ECDSA signature of ${sig.length} bytes` };
  const b = Buffer.from(sig);
  const rl = b.readUInt16BE(0);
  const sl = b.readUInt16BE(2);
  if (4 + rl + sl > b.length || rl > fieldBytes || sl > fieldBytes) {
    return { ok: false, error: `ECDSA signature: r ${rl} + s ${sl} bytes do not fit ${b.length} bytes / field ${fieldBytes}` };
  }
  const out = Buffer.alloc(2 * fieldBytes);
  b.copy(out, fieldBytes - rl, 4, 4 + rl);
  b.copy(out, 2 * fieldBytes - sl, 4 + rl, 4 + rl + sl);
  return ok(out);
}

/** Bytes per ECDSA signature half (the order's size) for an EC key. */
export function ecdsaFieldBytes(key: KeyObject): number {
  // P1363 output of node is 2 * order size; sign a dummy with a throwaway check-free path
  const jwkish = key.asymmetricKeyDetails?.namedCurve ?? '';
  const cached = FIELD_BYTES.get(jwkish);
  if (cached !== undefined) return cached;
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: jwkish });
  const n = nodeSign('sha256', Buffer.alloc(0), { key: privateKey, dsaEncoding: 'ieee-p1363' }).length / 2;
  FIELD_BYTES.set(jwkish, n);
  return n;
}
const FIELD_BYTES = new Map<string, number>();

/**
 * Signs `data` with an RSA (PKCS#1 v1.5) or EC (ECDSA) private key, hashing with `hash`.
 * ECDSA signatures come in UFTP's wire form unless another encoding is asked for.
 */
export function signData(privateKey: KeyObject, hash: HashSuite, data: Uint8Array, ecdsaEncoding: EcdsaEncoding = 'uftp'): Buffer {
  if (privateKey.asymmetricKeyType === 'rsa') {
    return nodeSign(hash.openssl, data, { key: privateKey, padding: constants.RSA_PKCS1_PADDING });
  }
  if (ecdsaEncoding === 'uftp') {
    return p1363ToUftp(nodeSign(hash.openssl, data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
  }
  return nodeSign(hash.openssl, data, { key: privateKey, dsaEncoding: ecdsaEncoding });
}

export function verifySignature(
  publicKey: KeyObject,
  hash: HashSuite,
  data: Uint8Array,
  signature: Uint8Array,
  ecdsaEncoding: EcdsaEncoding = 'uftp',
): boolean {
  try {
    if (publicKey.asymmetricKeyType === 'rsa') {
      return nodeVerify(hash.openssl, data, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
    if (ecdsaEncoding === 'uftp') {
      const p = uftpToP1363(signature, ecdsaFieldBytes(publicKey));
      if (!p.ok) return false;
      return nodeVerify(hash.openssl, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p.value);
    }
    return nodeVerify(hash.openssl, data, { key: publicKey, dsaEncoding: ecdsaEncoding }, signature);
  } catch {
    return false;
  }
}

/**
 * Signs a whole datagram the UFTP way: the signature covers the datagram with the `length` signature bytes at
 * `offset` set to zero (black-box: ANNOUNCE and ENCRYPTED signatures of the real programs).
 */
export function zeroedForSignature(datagram: Uint8Array, offset: number, length: number): Buffer {
  const b = Buffer.from(datagram);
  b.fill(0, offset, offset + length);
  return b;
}

/**
 * Signs a datagram that carries its own signature (ANNOUNCE's EXT_ENC_INFO, ENCRYPTED with KEYEX). The length of
 * a signature is known only after signing (ECDSA's varies by a byte or two), and the length field is inside what
 * is signed: `build(len)` gives a fresh datagram with a zeroed signature field of `len` bytes and where it is;
 * it is signed, and rebuilt with the new length until the signature fits its field. The one place this loop is
 * written. Returns undefined if `build` fails or the length does not settle within 16 tries.
 */
export function signToFit(
  privateKey: KeyObject,
  hash: HashSuite,
  build: (signatureLength: number) => { bytes: Uint8Array; offset: number } | undefined,
  ecdsaEncoding: EcdsaEncoding = 'uftp',
  firstGuess?: number,
): Uint8Array | undefined {
  let len = firstGuess ?? signData(privateKey, hash, new Uint8Array(0), ecdsaEncoding).length;
  for (let tries = 0; tries < 16; tries++) {
    const out = build(len);
    if (!out) return undefined;
    const sig = signData(privateKey, hash, out.bytes, ecdsaEncoding);
    if (sig.length === len) {
      out.bytes.set(sig, out.offset);
      return out.bytes;
    }
    len = sig.length;
  }
  return undefined;
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

