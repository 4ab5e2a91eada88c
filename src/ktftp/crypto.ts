/**
 * KTFTP cryptography, all OpenSSL through node:crypto: X25519 ephemeral key agreement, HKDF-SHA256 key schedule,
 * AES-256-GCM sealing with a per-direction 64-bit sequence number in the nonce and a replay window,
 * and the static-key signatures (RSASSA-PSS/SHA-256 or ECDSA/SHA-256) that authenticate the handshake. The
 * per-packet AES-256-GCM is src/crypto/cipher.ts's: a context keyed once where the addon is there.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  sign,
  verify,
  constants as cryptoConstants,
  type KeyObject,
} from 'node:crypto';
import { decrypt, encryptInto } from '../crypto/cipher.js';
import { KEY_SUITES, type KeySuite } from '../crypto/suites.js';
import { KeyType } from '../wire/constants.js';
import { AEAD_TAG_LEN, SEALED_HEADER_LEN, decodeSealed, writeSealedHeader } from './wire.js';

/** UFTP's AES-256-GCM suite: the same cipher and 16-byte tag (AEAD_TAG_LEN), sealed by the same code. */
const AES_256_GCM = KEY_SUITES.find((k) => k.id === KeyType.AES256_GCM) as KeySuite;

export const SERVER_SIG_LABEL = 'KTFTP-v1 server signature';
export const CLIENT_SIG_LABEL = 'KTFTP-v1 client signature';
export const KEY_INFO = 'KTFTP-v1 key expansion';

export interface Ephemeral {
  readonly privateKey: KeyObject;
  /** Raw 32-byte X25519 public value. */
  readonly publicRaw: Buffer;
}

const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** An X25519 key from its raw 32-byte private value (for test vectors). */
export function ephemeralFromPrivate(raw: Uint8Array): Ephemeral {
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  const der = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return { privateKey, publicRaw: der.subarray(der.length - 32) };
}

export function generateEphemeral(): Ephemeral {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { privateKey, publicRaw: der.subarray(der.length - 32) };
}

/** X25519 shared secret with a peer's raw public value; null if the value is not a usable point. */
export function agree(own: Ephemeral, peerRaw: Uint8Array): Buffer | null {
  if (peerRaw.length !== 32) return null;
  try {
    const peer = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peerRaw]), format: 'der', type: 'spki' });
    const shared = diffieHellman({ privateKey: own.privateKey, publicKey: peer });
    if (shared.every((x) => x === 0)) return null; // low-order point
    return shared;
  } catch {
    return null;
  }
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export interface SessionKeys {
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
  readonly clientIv: Buffer;
  readonly serverIv: Buffer;
}

/** HKDF-SHA256(ikm = shared secret, salt = transcript hash, info = KEY_INFO) -> 72 bytes. */
export function deriveKeys(shared: Uint8Array, transcriptHash: Uint8Array): SessionKeys {
  const okm = Buffer.from(hkdfSync('sha256', shared, transcriptHash, KEY_INFO, 72));
  return { clientKey: okm.subarray(0, 32), serverKey: okm.subarray(32, 64), clientIv: okm.subarray(64, 68), serverIv: okm.subarray(68, 72) };
}

function sigParams(key: KeyObject): { padding?: number; saltLength?: number; dsaEncoding?: 'der' } {
  if (key.asymmetricKeyType === 'rsa') return { padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  return { dsaEncoding: 'der' };
}

export function signWith(privateKey: KeyObject, label: string, data: Uint8Array): Buffer {
  return sign('sha256', Buffer.concat([Buffer.from(label, 'latin1'), data]), { key: privateKey, ...sigParams(privateKey) });
}

export function verifyWith(publicKey: KeyObject, label: string, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify('sha256', Buffer.concat([Buffer.from(label, 'latin1'), data]), { key: publicKey, ...sigParams(publicKey) }, signature);
  } catch {
    return false;
  }
}

/** Parses a DER SubjectPublicKeyInfo as sent in the handshake; only RSA and EC keys are accepted. */
export function publicKeyFromDer(der: Uint8Array): KeyObject | null {
  try {
    const k = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    return k.asymmetricKeyType === 'rsa' || k.asymmetricKeyType === 'ec' ? k : null;
  } catch {
    return null;
  }
}

export function publicKeyDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** Width of the replay window: a packet older than this many sequence numbers behind the newest is refused. */
export const REPLAY_WINDOW = 1024;

/**
 * One direction's AEAD: the sender increments `seq` for every packet (retransmissions too), the receiver
 * refuses any seq it has already accepted or that fell behind the window. Nonce = iv(4) || seq(8).
 */
export class Sealer {
  private seq = 0;
  /** iv(4) || seq(8); the cipher copies it, so one buffer serves every packet. */
  private readonly nonce = Buffer.alloc(12);
  constructor(private readonly key: Buffer, iv: Buffer) {
    iv.copy(this.nonce, 0, 0, 4);
  }

  seal(inner: Uint8Array): Buffer {
    const seq = this.seq++;
    // The header is written straight into the packet (no separate header or nonce buffers per packet).
    const out = Buffer.allocUnsafe(SEALED_HEADER_LEN + inner.length + AEAD_TAG_LEN);
    writeSealedHeader(out, seq);
    out.copy(this.nonce, 4, 2, SEALED_HEADER_LEN);
    encryptInto(AES_256_GCM, this.key, this.nonce, inner, out, SEALED_HEADER_LEN, out.subarray(0, SEALED_HEADER_LEN));
    return out;
  }
}

export type OpenResult = { ok: true; inner: Buffer; seq: number } | { ok: false; reason: 'malformed' | 'forged' | 'replayed' | 'stale' };

export class Opener {
  private max = -1;
  private readonly seen = new Uint8Array(REPLAY_WINDOW);
  private readonly nonce = Buffer.alloc(12);
  constructor(private readonly key: Buffer, iv: Buffer) {
    iv.copy(this.nonce, 0, 0, 4);
  }

  open(packet: Uint8Array): OpenResult {
    const env = decodeSealed(packet);
    if (!env.ok) return { ok: false, reason: 'malformed' };
    const seq = env.value.seq;
    if (this.max >= 0 && seq <= this.max - REPLAY_WINDOW) return { ok: false, reason: 'stale' };
    if (seq <= this.max && this.seen[seq % REPLAY_WINDOW] === 1) return { ok: false, reason: 'replayed' };
    const body = env.value.body;
    this.nonce.set(env.value.header.subarray(2), 4);
    const opened = decrypt(AES_256_GCM, this.key, this.nonce, body, env.value.header);
    if (!opened.ok) return { ok: false, reason: 'forged' };
    const inner = opened.value;
    // Only an authentic packet moves the window.
    if (seq > this.max) {
      const from = Math.max(this.max + 1, seq - REPLAY_WINDOW + 1);
      for (let s = from; s < seq; s++) this.seen[s % REPLAY_WINDOW] = 0;
      this.max = seq;
    }
    this.seen[seq % REPLAY_WINDOW] = 1;
    return { ok: true, inner, seq };
  }
}

/**
 * Packets sealed ahead of need (while the peer is busy), used only when exactly the same inner bytes are sent
 * next, in the same order. Anything else discards what is left and is sealed fresh, so sequence numbers on the
 * wire still only grow (a discarded packet's number is never used) and no nonce is used twice.
 */
export class SealAhead {
  private inner: Buffer[] = [];
  private sealed: Buffer[] = [];
  private i = 0;
  constructor(private readonly sealer: Sealer) {}

  /** Nothing sealed ahead is left. */
  get empty(): boolean {
    return this.i >= this.inner.length;
  }

  /** Seals `inners` now, for later. Only when empty (an earlier batch must not be sent after this one). */
  prepare(inners: Buffer[]): void {
    if (!this.empty || inners.length === 0) return;
    this.inner = inners;
    this.sealed = inners.map((b) => this.sealer.seal(b));
    this.i = 0;
  }

  seal(inner: Buffer): Buffer {
    if (this.i < this.inner.length) {
      if (this.inner[this.i].equals(inner)) return this.sealed[this.i++];
      this.inner = [];
      this.sealed = [];
      this.i = 0;
    }
    return this.sealer.seal(inner);
  }
}

/** The pair of sealers for one side of a session. */
export function sessionCiphers(keys: SessionKeys, side: 'client' | 'server'): { sealer: Sealer; opener: Opener } {
  return side === 'client'
    ? { sealer: new Sealer(keys.clientKey, keys.clientIv), opener: new Opener(keys.serverKey, keys.serverIv) }
    : { sealer: new Sealer(keys.serverKey, keys.serverIv), opener: new Opener(keys.clientKey, keys.clientIv) };
}
