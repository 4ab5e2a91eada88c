/**
 * HB_REQ / HB_RESP (protocol.txt 5.2.17, 5.2.18) and their signatures.
 *
 * HB_REQ:  func | hlen | reserved(16) | key blob length(16) | signed nonce length(16) | nonce(32) | blob | sig
 * HB_RESP: func | hlen | authenticated | reserved | nonce(32)
 *
 * Black-box (2026-11-22, real uftpproxyd 4.10.2, see docs/protocol-notes.md "## uftpproxyd"): a client proxy
 * first sends an unsigned HB_REQ (no blob, nonce 0); a server proxy with -s fp= answers HB_AUTH_CHALLENGE with
 * a fresh nonce; the client proxy then sends the HB_REQ with its public key blob and an RSA PKCS#1 v1.5
 * SHA-1 signature of the 4 nonce bytes (network order); later heartbeats are unsigned again and the
 * server proxy answers HB_AUTH_OK while they come from the adopted address. Header: group ID 0, grtt 0.
 */
import type { KeyObject } from 'node:crypto';
import { signData, verifySignature } from '../crypto/sign.js';
import { blobFingerprint, blobToPublicKey } from '../crypto/pubkey.js';
import { HbAuth, MessageType, UFTP_HEADER_LEN } from '../wire/constants.js';
import { u16, u32, put16, put32 } from '../wire/fields.js';
import { decodeKeyBlob, encodeKeyBlob, type KeyBlob } from '../wire/keyblob.js';
import { err, ok, type Result } from '../wire/result.js';
import { writeHeader } from './proxy-common.js';

export interface HbReqView {
  readonly nonce: number;
  /** Present in a signed HB_REQ. */
  readonly blob?: KeyBlob;
  readonly signature?: Uint8Array;
}

export function readHbReq(b: Uint8Array): Result<HbReqView> {
  const m = UFTP_HEADER_LEN;
  const hlen = b[m + 1] * 4;
  if (hlen < 12) return err('inconsistent', `HB_REQ: header length ${hlen} < 12`);
  const keyLen = u16(b, m + 4);
  const sigLen = u16(b, m + 6);
  if (12 + keyLen + sigLen > hlen) return err('inconsistent', `HB_REQ: key ${keyLen} + signature ${sigLen} bytes overrun header length ${hlen}`);
  const nonce = u32(b, m + 8);
  if (keyLen === 0 && sigLen === 0) return ok({ nonce });
  if (keyLen === 0 || sigLen === 0) return err('inconsistent', `HB_REQ: key length ${keyLen} with signature length ${sigLen}`);
  const blob = decodeKeyBlob(b.subarray(m + 12, m + 12 + keyLen));
  if (!blob.ok) return blob;
  return ok({ nonce, blob: blob.value, signature: b.subarray(m + 12 + keyLen, m + 12 + keyLen + sigLen) });
}

function nonceBytes(nonce: number): Buffer {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(nonce >>> 0);
  return n;
}

const SHA1 = { id: 2, name: 'sha1', openssl: 'sha1', length: 20 } as const;

/**
 * Signs a nonce as the real client proxy does: SHA-1; RSA PKCS#1 v1.5, or for EC keys UFTP's ECDSA layout
 * r length (16) | s length (16) | r | s (black-box: a P-256 signature is 68 bytes, 0x0020 0x0020 r s).
 */
export function signNonce(key: KeyObject, nonce: number): Buffer {
  return signData(key, SHA1, nonceBytes(nonce));
}

/** Checks a signed HB_REQ against a fingerprint: the blob's fingerprint must match and the signature verify. */
export function checkSignedHb(req: HbReqView, expectedFingerprint: string, expectedNonce: number): Result<void, string> {
  if (!req.blob || !req.signature) return { ok: false, error: 'heartbeat not signed' };
  if (req.nonce !== expectedNonce) return { ok: false, error: `nonce ${hexNonce(req.nonce)} is not the one issued (${hexNonce(expectedNonce)})` };
  const fp = blobFingerprint(req.blob);
  if (fp !== expectedFingerprint) return { ok: false, error: `key fingerprint ${fp} does not match` };
  const key = blobToPublicKey(req.blob);
  if (!key.ok) return { ok: false, error: key.error };
  const good = verifySignature(key.value, SHA1, nonceBytes(req.nonce), req.signature);
  return good ? { ok: true, value: undefined } : { ok: false, error: 'signature does not verify' };
}

function hexNonce(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

/** An HB_REQ; signed when `key` is given (with its blob). */
export function buildHbReq(srcId: number, nonce: number, key?: { privateKey: KeyObject; blob: KeyBlob }): Uint8Array {
  let blob: Uint8Array = new Uint8Array(0);
  let sig: Uint8Array = new Uint8Array(0);
  if (key) {
    blob = encodeKeyBlob(key.blob);
    sig = signNonce(key.privateKey, nonce);
  }
  const body = 12 + blob.length + sig.length;
  const padded = (body + 3) & ~3;
  const b = new Uint8Array(UFTP_HEADER_LEN + padded);
  writeHeader(b, { func: MessageType.HB_REQ, seq: 0, srcId, groupId: 0, groupInst: 0 });
  const m = UFTP_HEADER_LEN;
  b[m] = MessageType.HB_REQ;
  b[m + 1] = padded / 4;
  put16(b, m + 4, blob.length);
  put16(b, m + 6, sig.length);
  put32(b, m + 8, nonce >>> 0);
  b.set(blob, m + 12);
  b.set(sig, m + 12 + blob.length);
  return b;
}

export function buildHbResp(srcId: number, auth: number, nonce: number): Uint8Array {
  const b = new Uint8Array(UFTP_HEADER_LEN + 8);
  writeHeader(b, { func: MessageType.HB_RESP, seq: 0, srcId, groupId: 0, groupInst: 0 });
  const m = UFTP_HEADER_LEN;
  b[m] = MessageType.HB_RESP;
  b[m + 1] = 2;
  b[m + 2] = auth;
  put32(b, m + 4, nonce >>> 0);
  return b;
}

export function readHbResp(b: Uint8Array): Result<{ auth: number; nonce: number }> {
  const m = UFTP_HEADER_LEN;
  if (b[m + 1] * 4 < 8) return err('inconsistent', 'HB_RESP: header length < 8');
  const auth = b[m + 2];
  if (auth !== HbAuth.OK && auth !== HbAuth.FAILED && auth !== HbAuth.CHALLENGE) return err('bad-value', `HB_RESP: authentication code ${auth}`);
  return ok({ auth, nonce: u32(b, m + 4) });
}


/**
 * PROXY_KEY (5.2.20): func | hlen | key blob length(16) | DH blob length(16) | signed nonce length(16) |
 * nonce(32) | key blob | DH blob | signed nonce. The nonce is signed as in HB_REQ (signNonce).
 */
export function buildProxyKey(srcId: number, nonce: number, key: { privateKey: KeyObject; blob: KeyBlob }, dhBlob?: KeyBlob): Uint8Array {
  const blob = encodeKeyBlob(key.blob);
  const dh = dhBlob ? encodeKeyBlob(dhBlob) : new Uint8Array(0);
  const sig = signNonce(key.privateKey, nonce);
  const body = 12 + blob.length + dh.length + sig.length;
  const padded = (body + 3) & ~3;
  const b = new Uint8Array(UFTP_HEADER_LEN + padded);
  writeHeader(b, { func: MessageType.PROXY_KEY, seq: 0, srcId, groupId: 0, groupInst: 0 });
  const m = UFTP_HEADER_LEN;
  b[m] = MessageType.PROXY_KEY;
  b[m + 1] = padded / 4;
  put16(b, m + 2, blob.length);
  put16(b, m + 4, dh.length);
  put16(b, m + 6, sig.length);
  put32(b, m + 8, nonce >>> 0);
  b.set(blob, m + 12);
  b.set(dh, m + 12 + blob.length);
  b.set(sig, m + 12 + blob.length + dh.length);
  return b;
}
