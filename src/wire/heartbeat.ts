/**
 * 5.2.17 HB_REQ (proxy -> upstream proxy) and 5.2.18 HB_RESP (the answer).
 *
 * HB_REQ                                             HB_RESP
 *  0 function(1) 1 header length 2 reserved(16)       0 function(1) 1 header length
 *  4 public key length (16) 6 signed nonce length      2 authenticated (HbAuth) 3 reserved
 *  8 nonce (32)                                        4 nonce (32)
 * 12 public key blob, signed nonce, zero padding,      8 header extensions up to header length
 *    header extensions up to header length
 *
 * UFTP 4.10 sends an unauthenticated HB_REQ with key length 0, signature length 0, nonce 0 (12 bytes).
 */
import { MessageType } from './constants.js';
import { headerBytes, hlenWords, isU16, isU32, isU8, need, pad4, put16, put32, u16, u32 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { decodeKeyBlob, encodeKeyBlobInto, keyBlobLength, type KeyBlob } from './keyblob.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const KEYLEN = 4;
const SIGLEN = 6;
const NONCE = 8;
const KEYBLOB = 12;
const REQ_FIXED = 12;

const AUTH = 2;
const RESP_NONCE = 4;
const RESP_FIXED = 8;

export interface HbReq {
  type: 'HB_REQ';
  nonce: number;
  /** The proxy's public key; null in an unauthenticated heartbeat (key length 0). */
  publicKey: KeyBlob | null;
  signedNonce: Uint8Array;
  extensions: Extension[];
}
export interface HbResp {
  type: 'HB_RESP';
  /** HbAuth: FAILED 0, OK 1, CHALLENGE 2. */
  authenticated: number;
  nonce: number;
  extensions: Extension[];
}

/** The bytes an HB_REQ's (and PROXY_KEY's) signature covers: the nonce, 4 bytes in network order. */
export function signedNonceBytes(nonce: number): Uint8Array {
  const b = new Uint8Array(4);
  put32(b, 0, nonce >>> 0);
  return b;
}

export function decodeHbReq(b: Uint8Array): Result<HbReq> {
  const N = 'HB_REQ';
  const h = headerBytes(b, N, REQ_FIXED);
  if (!h.ok) return h;
  const hlen = h.value;
  if (b.length !== hlen) return err('inconsistent', `${N}: ${b.length - hlen} bytes after the header; HB_REQ has no body`);
  const klen = u16(b, KEYLEN);
  const slen = u16(b, SIGLEN);
  const end = KEYBLOB + klen + slen;
  if (end > hlen) return err('inconsistent', `${N}: key ${klen} + signature ${slen} bytes run past the header (${hlen} bytes)`);
  let publicKey: KeyBlob | null = null;
  if (klen > 0) {
    const pk = decodeKeyBlob(b.subarray(KEYBLOB, KEYBLOB + klen));
    if (!pk.ok) return err(pk.error.kind, `${N}: public key: ${pk.error.message}`);
    publicKey = pk.value;
  }
  const exts = decodeExtensions(b, pad4(end), hlen, N);
  if (!exts.ok) return exts;
  return ok({ type: 'HB_REQ', nonce: u32(b, NONCE), publicKey, signedNonce: b.subarray(KEYBLOB + klen, end), extensions: exts.value });
}

export function hbReqLength(m: HbReq): number {
  return pad4(REQ_FIXED + (m.publicKey ? keyBlobLength(m.publicKey) : 0) + m.signedNonce.length) + extensionsLength(m.extensions);
}

export function encodeHbReqInto(m: HbReq, out: Uint8Array, off: number): number {
  need(isU32(m.nonce), 'HB_REQ: nonce out of range');
  const klen = m.publicKey ? keyBlobLength(m.publicKey) : 0;
  need(isU16(klen) && isU16(m.signedNonce.length), 'HB_REQ: key or signature too long');
  const end = REQ_FIXED + klen + m.signedNonce.length;
  const extStart = pad4(end);
  const hlen = extStart + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.HB_REQ;
  out[off + HLEN] = hlenWords(hlen, 'HB_REQ');
  put16(out, off + 2, 0);
  put16(out, off + KEYLEN, klen);
  put16(out, off + SIGLEN, m.signedNonce.length);
  put32(out, off + NONCE, m.nonce);
  if (m.publicKey) encodeKeyBlobInto(m.publicKey, out, off + KEYBLOB);
  out.set(m.signedNonce, off + KEYBLOB + klen);
  out.fill(0, off + end, off + extStart);
  encodeExtensionsInto(m.extensions, out, off + extStart);
  return hlen;
}

export function decodeHbResp(b: Uint8Array): Result<HbResp> {
  const N = 'HB_RESP';
  const h = headerBytes(b, N, RESP_FIXED);
  if (!h.ok) return h;
  if (b.length !== h.value) return err('inconsistent', `${N}: ${b.length - h.value} bytes after the header; HB_RESP has no body`);
  const exts = decodeExtensions(b, RESP_FIXED, h.value, N);
  if (!exts.ok) return exts;
  return ok({ type: 'HB_RESP', authenticated: b[AUTH], nonce: u32(b, RESP_NONCE), extensions: exts.value });
}

export function hbRespLength(m: HbResp): number {
  return RESP_FIXED + extensionsLength(m.extensions);
}

export function encodeHbRespInto(m: HbResp, out: Uint8Array, off: number): number {
  need(isU8(m.authenticated) && isU32(m.nonce), 'HB_RESP: field out of range');
  const hlen = RESP_FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.HB_RESP;
  out[off + HLEN] = hlenWords(hlen, 'HB_RESP');
  out[off + AUTH] = m.authenticated;
  out[off + 3] = 0;
  put32(out, off + RESP_NONCE, m.nonce);
  encodeExtensionsInto(m.extensions, out, off + RESP_FIXED);
  return hlen;
}
