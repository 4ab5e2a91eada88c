/**
 * Public key blobs (protocol.txt 5.2.3.2 RSA, 5.2.3.3 EC): the byte layout only.
 * Converting a blob to and from a node:crypto KeyObject lives in src/crypto.
 *
 * RSA blob                               EC blob
 *  0  blob type (1)                       0  blob type (2)
 *  1  reserved (0)                        1  curve (5.3.12)
 *  2  modulus length (16 bits)            2  key length (16 bits)
 *  4  public exponent (32 bits)           4  EC public key (key length bytes)
 *  8  modulus (modulus length bytes)     then zero padding to a multiple of 4 bytes
 *
 * UFTP 4.10 pads EC blobs with zeros to a multiple of 4 bytes and counts the padding in the enclosing
 * message's key length field (sect163*: key 42 bytes, blob 48); RSA blobs are never padded. So the encoder
 * pads EC blobs, and the decoder accepts an EC blob with or without that zero padding.
 */
import { KeyBlobType } from './constants.js';
import { err, ok, type Result } from './result.js';

export type KeyBlob =
  | { readonly kind: 'RSA'; readonly exponent: number; readonly modulus: Uint8Array }
  | { readonly kind: 'EC'; readonly curve: number; readonly key: Uint8Array };

const RSA_FIXED = 8;
const EC_FIXED = 4;

export function keyBlobLength(blob: KeyBlob): number {
  return blob.kind === 'RSA' ? RSA_FIXED + blob.modulus.length : (EC_FIXED + blob.key.length + 3) & ~3;
}

/** Decodes a key blob that must fill `bytes` exactly (the enclosing message gives its length). */
export function decodeKeyBlob(bytes: Uint8Array): Result<KeyBlob> {
  if (bytes.length < 4) return err('truncated', `key blob: ${bytes.length} bytes, need at least 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = bytes[0];
  const len = view.getUint16(2);
  if (type === KeyBlobType.RSA) {
    if (bytes.length < RSA_FIXED) return err('truncated', `RSA key blob: ${bytes.length} bytes, need at least ${RSA_FIXED}`);
    if (bytes[1] !== 0) return err('bad-value', `RSA key blob: reserved byte is ${bytes[1]}, must be 0`);
    if (len === 0) return err('bad-value', 'RSA key blob: modulus length 0');
    if (RSA_FIXED + len !== bytes.length) {
      return err('inconsistent', `RSA key blob: modulus length ${len} does not fit blob of ${bytes.length} bytes`);
    }
    return ok({ kind: 'RSA', exponent: view.getUint32(4), modulus: bytes.subarray(RSA_FIXED, RSA_FIXED + len) });
  }
  if (type === KeyBlobType.EC) {
    if (len === 0) return err('bad-value', 'EC key blob: key length 0');
    const exact = EC_FIXED + len;
    if (exact !== bytes.length && ((exact + 3) & ~3) !== bytes.length) {
      return err('inconsistent', `EC key blob: key length ${len} does not fit blob of ${bytes.length} bytes`);
    }
    for (let i = exact; i < bytes.length; i++) {
      if (bytes[i] !== 0) return err('bad-value', `EC key blob: padding byte ${i - exact} after the key is ${bytes[i]}, must be 0`);
    }
    return ok({ kind: 'EC', curve: bytes[1], key: bytes.subarray(EC_FIXED, EC_FIXED + len) });
  }
  return err('bad-type', `key blob: unknown blob type ${type}`);
}

/**
 * A key blob at the start of `bytes`, followed by anything (REGISTER's key info may carry zero padding beyond the
 * blob's own length): the blob's length is read from its header and only those bytes are decoded.
 */
export function decodeKeyBlobPrefix(bytes: Uint8Array): Result<KeyBlob> {
  if (bytes.length >= EC_FIXED && bytes[0] === KeyBlobType.EC) {
    const len = (bytes[2] << 8) | bytes[3];
    if (EC_FIXED + len <= bytes.length) return decodeKeyBlob(bytes.subarray(0, EC_FIXED + len));
  }
  return decodeKeyBlob(bytes);
}

/** Writes `blob` into `out` at `offset`; returns the number of bytes written. */
export function encodeKeyBlobInto(blob: KeyBlob, out: Uint8Array, offset: number): number {
  const bad = blob.kind === 'RSA'
    ? blob.modulus.length === 0 || blob.modulus.length > 0xffff || !Number.isInteger(blob.exponent) || blob.exponent < 0 || blob.exponent > 0xffffffff
    : blob.key.length === 0 || blob.key.length > 0xffff || !Number.isInteger(blob.curve) || blob.curve < 0 || blob.curve > 0xff;
  if (bad) throw new RangeError(`wire encode: ${blob.kind} key blob field out of range`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (blob.kind === 'RSA') {
    out[offset] = KeyBlobType.RSA;
    out[offset + 1] = 0;
    view.setUint16(offset + 2, blob.modulus.length);
    view.setUint32(offset + 4, blob.exponent >>> 0);
    out.set(blob.modulus, offset + RSA_FIXED);
    return RSA_FIXED + blob.modulus.length;
  }
  const len = keyBlobLength(blob);
  out[offset] = KeyBlobType.EC;
  out[offset + 1] = blob.curve;
  view.setUint16(offset + 2, blob.key.length);
  out.set(blob.key, offset + EC_FIXED);
  out.fill(0, offset + EC_FIXED + blob.key.length, offset + len);
  return len;
}

export function encodeKeyBlob(blob: KeyBlob): Uint8Array {
  const out = new Uint8Array(keyBlobLength(blob));
  encodeKeyBlobInto(blob, out, 0);
  return out;
}
