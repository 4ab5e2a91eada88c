/**
 * 5.2.2 ENCRYPTED. Unlike every other message it has no function byte: the body starts at the IV counter
 * (the UFTP header's function says ENCRYPTED).
 *
 *  0 IV counter (64)
 *  8 signature length (16)  10 payload length (16)
 * 12 signature (signature length bytes), then the encrypted payload (payload length bytes); nothing after.
 */
import { hex, isU16, isU64, need, put16, put64, u16, u64 } from './fields.js';
import { err, ok, type Result } from './result.js';

const IV_CTR = 0;
const SIGLEN = 8;
const PAYLEN = 10;
const SIG = 12;
export const ENCRYPTED_FIXED = 12;

export interface Encrypted {
  type: 'ENCRYPTED';
  ivCounter: bigint;
  /** HMAC or RSA/ECDSA signature; empty with an authenticated cipher (GCM/CCM). */
  signature: Uint8Array;
  /** The ciphertext (a subarray of the input). */
  payload: Uint8Array;
}

export function decodeEncrypted(b: Uint8Array): Result<Encrypted> {
  const N = 'ENCRYPTED';
  if (b.length < ENCRYPTED_FIXED) return err('truncated', `${N}: ${b.length} bytes, need at least ${ENCRYPTED_FIXED}`);
  const slen = u16(b, SIGLEN);
  const plen = u16(b, PAYLEN);
  const total = ENCRYPTED_FIXED + slen + plen;
  if (total > b.length) return err('truncated', `${N}: signature ${slen} + payload ${plen} bytes exceed the ${b.length - ENCRYPTED_FIXED} bytes present`);
  if (total < b.length) return err('inconsistent', `${N}: ${b.length - total} bytes after signature ${slen} + payload ${plen} bytes`);
  return ok({ type: 'ENCRYPTED', ivCounter: u64(b, IV_CTR), signature: b.subarray(SIG, SIG + slen), payload: b.subarray(SIG + slen, total) });
}

export function encryptedLength(m: Encrypted): number {
  return ENCRYPTED_FIXED + m.signature.length + m.payload.length;
}

export function encodeEncryptedInto(m: Encrypted, out: Uint8Array, off: number): number {
  need(isU64(m.ivCounter) && isU16(m.signature.length) && isU16(m.payload.length), 'ENCRYPTED: field out of range');
  put64(out, off + IV_CTR, m.ivCounter);
  put16(out, off + SIGLEN, m.signature.length);
  put16(out, off + PAYLEN, m.payload.length);
  out.set(m.signature, off + SIG);
  out.set(m.payload, off + SIG + m.signature.length);
  return ENCRYPTED_FIXED + m.signature.length + m.payload.length;
}

/** Offset of the signature inside a whole datagram (UFTP header + ENCRYPTED), for sign/verify in src/crypto. */
export const ENCRYPTED_SIGNATURE_OFFSET = 16 + SIG;

export function describeEncrypted(m: Encrypted): string {
  return `ivctr=${m.ivCounter} sig=${m.signature.length}B payload=${m.payload.length}B ${hex(m.payload, 4)}`;
}
