/**
 * 5.2.5 CLIENT_KEY (client -> server, with REGISTER, when the server asks for client authentication).
 *
 *  0 function(1)  1 header length  2 reserved (16)
 *  4 public key length (16)  6 signed verify data length (16)
 *  8 public key blob, signed verify data, zero padding to 4 bytes, header extensions up to header length
 */
import { MessageType } from './constants.js';
import { headerBytes, hlenWords, isU16, need, pad4, put16, u16 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { decodeKeyBlob, encodeKeyBlobInto, keyBlobLength, type KeyBlob } from './keyblob.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const KEYLEN = 4;
const VERIFYLEN = 6;
const KEYBLOB = 8;
const FIXED = 8;

export interface ClientKey {
  type: 'CLIENT_KEY';
  publicKey: KeyBlob;
  /** The client's RSA/ECDSA signature over the verify data. */
  verifyData: Uint8Array;
  extensions: Extension[];
}

export function decodeClientKey(b: Uint8Array): Result<ClientKey> {
  const N = 'CLIENT_KEY';
  const h = headerBytes(b, N, FIXED);
  if (!h.ok) return h;
  const hlen = h.value;
  const klen = u16(b, KEYLEN);
  const vlen = u16(b, VERIFYLEN);
  const end = KEYBLOB + klen + vlen;
  if (end > hlen) return err('inconsistent', `${N}: key ${klen} + signature ${vlen} bytes run past the header (${hlen} bytes)`);
  if (b.length !== hlen) return err('inconsistent', `${N}: ${b.length - hlen} bytes after the header; CLIENT_KEY has no body`);
  const pk = decodeKeyBlob(b.subarray(KEYBLOB, KEYBLOB + klen));
  if (!pk.ok) return err(pk.error.kind, `${N}: public key: ${pk.error.message}`);
  const exts = decodeExtensions(b, Math.min(hlen, pad4(end)), hlen, N);
  if (!exts.ok) return exts;
  return ok({ type: 'CLIENT_KEY', publicKey: pk.value, verifyData: b.subarray(KEYBLOB + klen, end), extensions: exts.value });
}

export function clientKeyLength(m: ClientKey): number {
  return pad4(FIXED + keyBlobLength(m.publicKey) + m.verifyData.length) + extensionsLength(m.extensions);
}

export function encodeClientKeyInto(m: ClientKey, out: Uint8Array, off: number): number {
  const klen = keyBlobLength(m.publicKey);
  need(isU16(klen) && isU16(m.verifyData.length), 'CLIENT_KEY: key or signature too long');
  const end = FIXED + klen + m.verifyData.length;
  const extStart = pad4(end);
  const hlen = extStart + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.CLIENT_KEY;
  out[off + HLEN] = hlenWords(hlen, 'CLIENT_KEY');
  put16(out, off + 2, 0);
  put16(out, off + KEYLEN, klen);
  put16(out, off + VERIFYLEN, m.verifyData.length);
  encodeKeyBlobInto(m.publicKey, out, off + KEYBLOB);
  out.set(m.verifyData, off + KEYBLOB + klen);
  out.fill(0, off + end, off + extStart);
  encodeExtensionsInto(m.extensions, out, off + extStart);
  return hlen;
}
