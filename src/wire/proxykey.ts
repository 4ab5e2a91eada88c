/**
 * 5.2.19 KEY_REQ (client -> response proxy) and 5.2.20 PROXY_KEY (response proxy -> clients).
 *
 * KEY_REQ                                           PROXY_KEY
 *  0 function(1) 1 header length 2 reserved(16)      0 function(1) 1 header length 2 public key length (16)
 *  4 header extensions up to header length           4 DH key length (16)  6 signed nonce length (16)
 *                                                    8 nonce (32)
 *                                                   12 public key blob, DH key blob, signed nonce, zero padding,
 *                                                      header extensions up to header length
 */
import { MessageType } from './constants.js';
import { headerBytes, hlenWords, isU16, isU32, need, pad4, put16, put32, u16, u32 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { decodeKeyBlob, encodeKeyBlobInto, keyBlobLength, type KeyBlob } from './keyblob.js';
import { err, ok, type Result } from './result.js';
import { bareMessageLength, decodeBareMessage, encodeBareMessageInto } from './tail.js';

const FUNC = 0;
const HLEN = 1;

const KEYLEN = 2;
const DHLEN = 4;
const SIGLEN = 6;
const NONCE = 8;
const KEYBLOB = 12;
const PK_FIXED = 12;

export interface KeyReq {
  type: 'KEY_REQ';
  extensions: Extension[];
}
export interface ProxyKey {
  type: 'PROXY_KEY';
  nonce: number;
  publicKey: KeyBlob;
  /** The proxy's ECDH key; null when the DH key length is 0. */
  dhKey: KeyBlob | null;
  signedNonce: Uint8Array;
  extensions: Extension[];
}

export function decodeKeyReq(b: Uint8Array): Result<KeyReq> {
  const exts = decodeBareMessage(b, 'KEY_REQ');
  return exts.ok ? ok({ type: 'KEY_REQ', extensions: exts.value }) : exts;
}

export function keyReqLength(m: KeyReq): number {
  return bareMessageLength(m.extensions);
}

export function encodeKeyReqInto(m: KeyReq, out: Uint8Array, off: number): number {
  return encodeBareMessageInto(MessageType.KEY_REQ, 'KEY_REQ', m.extensions, out, off);
}

export function decodeProxyKey(b: Uint8Array): Result<ProxyKey> {
  const N = 'PROXY_KEY';
  const h = headerBytes(b, N, PK_FIXED);
  if (!h.ok) return h;
  const hlen = h.value;
  if (b.length !== hlen) return err('inconsistent', `${N}: ${b.length - hlen} bytes after the header; PROXY_KEY has no body`);
  const klen = u16(b, KEYLEN);
  const dlen = u16(b, DHLEN);
  const slen = u16(b, SIGLEN);
  const end = KEYBLOB + klen + dlen + slen;
  if (end > hlen) return err('inconsistent', `${N}: key ${klen} + DH key ${dlen} + signature ${slen} bytes run past the header (${hlen} bytes)`);
  const pk = decodeKeyBlob(b.subarray(KEYBLOB, KEYBLOB + klen));
  if (!pk.ok) return err(pk.error.kind, `${N}: public key: ${pk.error.message}`);
  let dhKey: KeyBlob | null = null;
  if (dlen > 0) {
    const dh = decodeKeyBlob(b.subarray(KEYBLOB + klen, KEYBLOB + klen + dlen));
    if (!dh.ok) return err(dh.error.kind, `${N}: DH key: ${dh.error.message}`);
    dhKey = dh.value;
  }
  const exts = decodeExtensions(b, pad4(end), hlen, N);
  if (!exts.ok) return exts;
  return ok({
    type: 'PROXY_KEY', nonce: u32(b, NONCE), publicKey: pk.value, dhKey,
    signedNonce: b.subarray(KEYBLOB + klen + dlen, end), extensions: exts.value,
  });
}

export function proxyKeyLength(m: ProxyKey): number {
  const blobs = keyBlobLength(m.publicKey) + (m.dhKey ? keyBlobLength(m.dhKey) : 0);
  return pad4(PK_FIXED + blobs + m.signedNonce.length) + extensionsLength(m.extensions);
}

export function encodeProxyKeyInto(m: ProxyKey, out: Uint8Array, off: number): number {
  need(isU32(m.nonce), 'PROXY_KEY: nonce out of range');
  const klen = keyBlobLength(m.publicKey);
  const dlen = m.dhKey ? keyBlobLength(m.dhKey) : 0;
  need(isU16(klen) && isU16(dlen) && isU16(m.signedNonce.length), 'PROXY_KEY: key or signature too long');
  const end = PK_FIXED + klen + dlen + m.signedNonce.length;
  const extStart = pad4(end);
  const hlen = extStart + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.PROXY_KEY;
  out[off + HLEN] = hlenWords(hlen, 'PROXY_KEY');
  put16(out, off + KEYLEN, klen);
  put16(out, off + DHLEN, dlen);
  put16(out, off + SIGLEN, m.signedNonce.length);
  put32(out, off + NONCE, m.nonce);
  encodeKeyBlobInto(m.publicKey, out, off + KEYBLOB);
  if (m.dhKey) encodeKeyBlobInto(m.dhKey, out, off + KEYBLOB + klen);
  out.set(m.signedNonce, off + KEYBLOB + klen + dlen);
  out.fill(0, off + end, off + extStart);
  encodeExtensionsInto(m.extensions, out, off + extStart);
  return hlen;
}
