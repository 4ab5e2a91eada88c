/**
 * Per-datagram GCM and CBC, and HMAC, on a context keyed once (native/udp/cipher.c, in the uftp-udp addon).
 *
 * node:crypto cannot give an existing cipher a new IV, so each datagram of an encrypted session cost a
 * createCipheriv: a new OpenSSL context, the AES key schedule (and GCM's hash key) again, several calls into C++
 * and three Buffers, about 11 µs per 1400 bytes here where the cipher itself needs about 1.1. The addon keeps one
 * OpenSSL context per key and direction (the OpenSSL inside Node, the one node:crypto uses) and only re-IVs it.
 *
 * Contexts are found by the key's Uint8Array (a WeakMap: they go with the session's keys) and checked against a
 * copy of its bytes, so a key buffer that is reused for another key gets a new context. CCM, DES (OpenSSL 3's
 * legacy provider), a missing addon or `UFTP_NATIVE_CIPHER=0`: undefined, and cipher.ts uses node:crypto.
 */
import { createRequire } from 'node:module';
import type { KeySuite } from './suites.js';

/** cipherRun's result when the GCM tag does not match or the CBC padding is bad. */
export const PACKET_AUTH_FAILED = -1;

interface CipherAddon {
  cipherOpen(name: string, key: Uint8Array, encrypt: boolean, aead: boolean, tagLength: number): object | undefined;
  cipherRun(handle: object, iv: Uint8Array, aad: Uint8Array | null, input: Uint8Array, out: Uint8Array, outOffset: number): number;
  hmacOpen?(digest: string, key: Uint8Array): object | undefined;
  hmacRun?(handle: object, data: Uint8Array, zeroFrom: number, zeroLength: number, out: Uint8Array, outOffset: number): number;
}

/** A keyed HMAC: run() writes the MAC of `data`, with zeroLength bytes from zeroFrom taken as zeros, into out. */
export interface PacketMac {
  run(data: Uint8Array, zeroFrom: number, zeroLength: number, out: Uint8Array, outOffset: number): number;
}

/** One keyed context. run() returns the bytes written into out at outOffset, or a negative code (cipher.c). */
export interface PacketCipher {
  run(iv: Uint8Array, aad: Uint8Array | undefined, input: Uint8Array, out: Uint8Array, outOffset: number): number;
}

interface Entry {
  readonly openssl: string;
  readonly keyCopy: Buffer;
  enc?: PacketCipher | null;
  dec?: PacketCipher | null;
  mac?: PacketMac | null;
}

let addon: CipherAddon | null | undefined;

function loadAddon(): CipherAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.UFTP_NATIVE_CIPHER === '0' || process.platform !== 'linux') return addon;
  try {
    const a = createRequire(import.meta.url)('uftp-udp') as Partial<CipherAddon>;
    if (typeof a.cipherOpen === 'function' && typeof a.cipherRun === 'function') addon = a as CipherAddon;
  } catch {
    // no addon: node:crypto
  }
  return addon;
}

/** Whether datagram ciphers run on the addon in this process (for the daemons' start-up line and tests). */
export function nativePacketCiphers(): boolean {
  return loadAddon() !== null;
}

/** For tests: read UFTP_NATIVE_CIPHER again on the next use. */
export function resetPacketCiphers(): void {
  addon = undefined;
  contexts = new WeakMap();
}

let contexts = new WeakMap<Uint8Array, Entry>();

/** The cache entry of this key for this algorithm (a new one if the key's bytes or the algorithm changed). */
function entryOf(openssl: string, key: Uint8Array): Entry {
  let e = contexts.get(key);
  if (e === undefined || e.openssl !== openssl || !sameBytes(e.keyCopy, key)) {
    e = { openssl, keyCopy: Buffer.from(key) };
    contexts.set(key, e);
  }
  return e;
}

/** The keyed HMAC for this digest and key, or undefined where node:crypto must do it. */
export function packetMac(digest: string, key: Uint8Array): PacketMac | undefined {
  const a = loadAddon();
  if (a === null || a.hmacOpen === undefined || a.hmacRun === undefined) return undefined;
  const e = entryOf(`hmac-${digest}`, key);
  if (e.mac !== undefined) return e.mac ?? undefined;
  const h = a.hmacOpen(digest, e.keyCopy);
  const run = a.hmacRun;
  e.mac = h === undefined ? null : { run: (data, zeroFrom, zeroLength, out, outOffset) => run(h, data, zeroFrom, zeroLength, out, outOffset) };
  return e.mac ?? undefined;
}

/** The keyed context for this suite, key and direction, or undefined where node:crypto must do it. */
export function packetCipher(suite: KeySuite, key: Uint8Array, encrypt: boolean): PacketCipher | undefined {
  if (suite.mode === 'ccm') return undefined;
  const a = loadAddon();
  if (a === null) return undefined;
  const e = entryOf(suite.openssl, key);
  const have = encrypt ? e.enc : e.dec;
  if (have !== undefined) return have ?? undefined;
  const h = a.cipherOpen(suite.openssl, e.keyCopy, encrypt, suite.mode === 'gcm', suite.tagLength);
  const pc: PacketCipher | null = h === undefined ? null : {
    run: (iv, aad, input, out, outOffset) => a.cipherRun(h, iv, aad ?? null, input, out, outOffset),
  };
  if (encrypt) e.enc = pc;
  else e.dec = pc;
  return pc ?? undefined;
}

/** a and b hold the same bytes (keys: 8-32 bytes, compared in JS, cheaper than a call into C++ per datagram). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
