/**
 * Heartbeats between proxies and PROXY_KEY (protocol.txt 5.2.17, 5.2.18, 5.2.20): the signatures the proxies put
 * in them. The layouts are src/wire's (HbReq, HbResp, ProxyKey); this file only adds what the proxies do with them.
 *
 * Black-box (2026-11-22, real uftpproxyd 4.10.2, see docs/protocol-notes.md "## uftpproxyd"): a client proxy
 * first sends an unsigned HB_REQ (no blob, nonce 0); a server proxy with -s fp= answers HB_AUTH_CHALLENGE with
 * a fresh nonce; the client proxy then sends the HB_REQ with its public key blob and an RSA PKCS#1 v1.5
 * SHA-1 signature of the 4 nonce bytes (network order); later heartbeats are unsigned again and the
 * server proxy answers HB_AUTH_OK while they come from the adopted address. Header: group ID 0, grtt 0.
 */
import type { KeyObject } from 'node:crypto';
import { signData, verifySignature } from '../../crypto/sign.js';
import { blobFingerprint, blobToPublicKey } from '../../crypto/pubkey.js';
import { hex32 } from '../../core/ids.js';
import { HbAuth, UFTP_VER_NUM } from '../../wire/constants.js';
import { signedNonceBytes } from '../../wire/heartbeat.js';
import type { KeyBlob } from '../../wire/keyblob.js';
import { decodePacket, encodePacket, type Message } from '../../wire/packet.js';
import { err, ok, type Result } from '../../wire/result.js';

/** A proxy's signing key and its public blob. */
export interface HeartbeatKey {
  readonly privateKey: KeyObject;
  readonly blob: KeyBlob;
}

export interface HbReqView {
  readonly nonce: number;
  /** Present in a signed HB_REQ. */
  readonly blob?: KeyBlob;
  readonly signature?: Uint8Array;
}

/** A proxy's own message: UFTP header with group ID 0, sequence 0, GRTT 0. */
function own(srcId: number, message: Message): Uint8Array {
  return encodePacket({ header: { version: UFTP_VER_NUM, func: 0, seq: 0, srcId: srcId >>> 0, groupId: 0, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 }, message });
}

export function readHbReq(datagram: Uint8Array): Result<HbReqView> {
  const p = decodePacket(datagram);
  if (!p.ok) return p;
  const m = p.value.message;
  if (m.type !== 'HB_REQ') return err('bad-type', `HB_REQ expected, got ${m.type}`);
  const keyLen = m.publicKey ? 1 : 0;
  const sigLen = m.signedNonce.length;
  if (keyLen === 0 && sigLen === 0) return ok({ nonce: m.nonce });
  if (!m.publicKey || sigLen === 0) return err('inconsistent', `HB_REQ: key ${m.publicKey ? 'present' : 'absent'} with signature length ${sigLen}`);
  return ok({ nonce: m.nonce, blob: m.publicKey, signature: m.signedNonce });
}


const SHA1 = { id: 2, name: 'sha1', openssl: 'sha1', length: 20 } as const;

/**
 * Signs a nonce as the real client proxy does: SHA-1; RSA PKCS#1 v1.5, or for EC keys UFTP's ECDSA layout
 * r length (16) | s length (16) | r | s (black-box: a P-256 signature is 68 bytes, 0x0020 0x0020 r s).
 */
export function signNonce(key: KeyObject, nonce: number): Buffer {
  return signData(key, SHA1, signedNonceBytes(nonce));
}

/** Checks a signed HB_REQ against a fingerprint: the blob's fingerprint must match and the signature verify. */
export function checkSignedHb(req: HbReqView, expectedFingerprint: string, expectedNonce: number): Result<void, string> {
  if (!req.blob || !req.signature) return { ok: false, error: 'heartbeat not signed' };
  if (req.nonce !== expectedNonce) return { ok: false, error: `nonce ${hex32(req.nonce)} is not the one issued (${hex32(expectedNonce)})` };
  const fp = blobFingerprint(req.blob);
  if (fp !== expectedFingerprint) return { ok: false, error: `key fingerprint ${fp} does not match` };
  const key = blobToPublicKey(req.blob);
  if (!key.ok) return { ok: false, error: key.error };
  const good = verifySignature(key.value, SHA1, signedNonceBytes(req.nonce), req.signature);
  return good ? { ok: true, value: undefined } : { ok: false, error: 'signature does not verify' };
}

/** An HB_REQ; signed when `key` is given (with its blob). */
export function buildHbReq(srcId: number, nonce: number, key?: HeartbeatKey): Uint8Array {
  return own(srcId, {
    type: 'HB_REQ',
    nonce: nonce >>> 0,
    publicKey: key ? key.blob : null,
    signedNonce: key ? signNonce(key.privateKey, nonce) : new Uint8Array(0),
    extensions: [],
  });
}

export function buildHbResp(srcId: number, auth: number, nonce: number): Uint8Array {
  return own(srcId, { type: 'HB_RESP', authenticated: auth, nonce: nonce >>> 0, extensions: [] });
}

export function readHbResp(datagram: Uint8Array): Result<{ auth: number; nonce: number }> {
  const p = decodePacket(datagram);
  if (!p.ok) return p;
  const m = p.value.message;
  if (m.type !== 'HB_RESP') return err('bad-type', `HB_RESP expected, got ${m.type}`);
  const auth = m.authenticated;
  if (auth !== HbAuth.OK && auth !== HbAuth.FAILED && auth !== HbAuth.CHALLENGE) return err('bad-value', `HB_RESP: authentication code ${auth}`);
  return ok({ auth, nonce: m.nonce });
}

/** PROXY_KEY: our key blob, the ECDH key (response proxy with -e), and the nonce signed as in HB_REQ. */
export function buildProxyKey(srcId: number, nonce: number, key: HeartbeatKey, dhBlob?: KeyBlob): Uint8Array {
  return own(srcId, { type: 'PROXY_KEY', nonce: nonce >>> 0, publicKey: key.blob, dhKey: dhBlob ?? null, signedNonce: signNonce(key.privateKey, nonce), extensions: [] });
}
