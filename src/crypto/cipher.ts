/**
 * Symmetric encryption and HMAC for UFTP, all OpenSSL: node:crypto, and for the per-datagram GCM and CBC of a
 * session the packet ciphers of the uftp-udp addon (packet-cipher.ts: the same OpenSSL, a context keyed once).
 * CBC uses OpenSSL's standard PKCS#7 padding (black-box: the real uftpd rejects a KEYINFO whose padding is wrong
 * with "DecryptFinal failed ... bad decrypt"). GCM/CCM append the authentication tag to the ciphertext.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  timingSafeEqual,
  type CipherCCMTypes,
  type CipherGCMTypes,
} from 'node:crypto';
import { ok, type Result } from '../wire/result.js';
import { packetCipher, packetMac, PACKET_AUTH_FAILED, type PacketCipher } from './packet-cipher.js';
import type { HashSuite, KeySuite } from './suites.js';

/** The bytes encrypt() gives for `plaintextLength` bytes: CBC pads to the next whole block, GCM/CCM add the tag. */
export function ciphertextLength(suite: KeySuite, plaintextLength: number): number {
  return suite.mode === 'cbc'
    ? (Math.floor(plaintextLength / suite.blockSize) + 1) * suite.blockSize
    : plaintextLength + suite.tagLength;
}

/**
 * Encrypts into `out` at `offset` (room for ciphertextLength bytes); returns the bytes written. The datagram path:
 * no Buffer of its own, and a keyed context per key where the addon is there.
 */
export function encryptInto(suite: KeySuite, key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number, aad?: Uint8Array): number {
  const pc = packetCipher(suite, key, true);
  if (pc !== undefined) return runSeal(pc, suite, iv, plaintext, out, offset, aad);
  const b = encryptWithNode(suite, key, iv, plaintext, aad);
  out.set(b, offset);
  return b.length;
}

/** Encrypts with the suite's own mode (CBC, or GCM/CCM with the tag appended). */
export function encrypt(suite: KeySuite, key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const pc = packetCipher(suite, key, true);
  if (pc === undefined) return encryptWithNode(suite, key, iv, plaintext, aad);
  const out = Buffer.allocUnsafe(ciphertextLength(suite, plaintext.length));
  return out.subarray(0, runSeal(pc, suite, iv, plaintext, out, 0, aad));
}

/** A keyed context's encryption; a refusal is a bug of the caller (an output too small, an IV of another length). */
function runSeal(pc: PacketCipher, suite: KeySuite, iv: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number, aad?: Uint8Array): number {
  const n = pc.run(iv, aad, plaintext, out, offset);
  if (n < 0) throw new Error(`encryptInto: ${suite.name} refused (${n}): ${plaintext.length} bytes into ${out.length - offset}`);
  return n;
}

function encryptWithNode(suite: KeySuite, key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  if (suite.mode === 'cbc') return encryptCbc(suite.openssl, key, iv, plaintext);
  const opts = { authTagLength: suite.tagLength };
  if (suite.mode === 'gcm') {
    const c = createCipheriv(suite.openssl as CipherGCMTypes, key, iv, opts);
    if (aad && aad.length > 0) c.setAAD(aad);
    return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  }
  const c = createCipheriv(suite.openssl as CipherCCMTypes, key, iv, opts);
  if (aad && aad.length > 0) c.setAAD(aad, { plaintextLength: plaintext.length });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** Decrypts and, for GCM/CCM, checks the tag; the error says what failed. */
export function decrypt(suite: KeySuite, key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Result<Buffer, string> {
  if (suite.mode !== 'cbc' && ciphertext.length < suite.tagLength) return { ok: false, error: `${suite.name}: ${ciphertext.length} bytes, shorter than the tag` };
  const pc = packetCipher(suite, key, false);
  if (pc !== undefined) {
    const out = Buffer.allocUnsafe(Math.max(ciphertext.length, 1));
    const n = pc.run(iv, aad, ciphertext, out, 0);
    if (n >= 0) return ok(out.subarray(0, n));
    if (n === PACKET_AUTH_FAILED) return { ok: false, error: decryptFailure(suite) };
    // anything else (an IV of the wrong length): node:crypto says what it makes of it
  }
  if (suite.mode === 'cbc') return decryptCbc(suite.openssl, key, iv, ciphertext);
  const body = ciphertext.subarray(0, ciphertext.length - suite.tagLength);
  const tag = ciphertext.subarray(ciphertext.length - suite.tagLength);
  try {
    const opts = { authTagLength: suite.tagLength };
    if (suite.mode === 'gcm') {
      const d = createDecipheriv(suite.openssl as CipherGCMTypes, key, iv, opts);
      d.setAuthTag(tag);
      if (aad && aad.length > 0) d.setAAD(aad);
      return ok(Buffer.concat([d.update(body), d.final()]));
    }
    const d = createDecipheriv(suite.openssl as CipherCCMTypes, key, iv, opts);
    d.setAuthTag(tag);
    if (aad && aad.length > 0) d.setAAD(aad, { plaintextLength: body.length });
    return ok(Buffer.concat([d.update(body), d.final()]));
  } catch {
    return { ok: false, error: decryptFailure(suite) };
  }
}

function decryptFailure(suite: KeySuite): string {
  return suite.mode === 'cbc' ? `${suite.openssl}: bad decrypt (wrong key or padding)` : `${suite.name}: authentication tag mismatch`;
}

/** CBC with PKCS#7 padding under an OpenSSL cipher name. */
export function encryptCbc(openssl: string, key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Buffer {
  const c = createCipheriv(openssl, key, iv);
  return Buffer.concat([c.update(plaintext), c.final()]);
}

export function decryptCbc(openssl: string, key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Result<Buffer, string> {
  try {
    const d = createDecipheriv(openssl, key, iv);
    return ok(Buffer.concat([d.update(ciphertext), d.final()]));
  } catch {
    return { ok: false, error: `${openssl}: bad decrypt (wrong key or padding)` };
  }
}

/**
 * The HMAC of `data` with `zeroLength` bytes from `zeroFrom` taken as zeros: UFTP's HMAC signature covers the
 * datagram with its signature field zeroed, so a receiver checks it without a copy. On the addon's keyed HMAC
 * where it is there (packet-cipher.ts), node:crypto otherwise.
 */
export function hmacZeroed(hash: HashSuite, key: Uint8Array, data: Uint8Array, zeroFrom: number, zeroLength: number): Buffer {
  const pm = packetMac(hash.openssl, key);
  if (pm !== undefined) {
    const out = Buffer.allocUnsafe(hash.length);
    if (pm.run(data, zeroFrom, zeroLength, out, 0) === hash.length) return out;
  }
  return hmac(hash, key, data.subarray(0, zeroFrom), new Uint8Array(zeroLength), data.subarray(zeroFrom + zeroLength));
}

export function hmac(hash: HashSuite, key: Uint8Array, ...data: Uint8Array[]): Buffer {
  const h = createHmac(hash.openssl, key);
  for (const d of data) h.update(d);
  return h.digest();
}

/** Constant-time comparison of two MACs (false when the lengths differ). */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
