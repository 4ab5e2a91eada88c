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
import { MessageType, UFTP_HEADER_LEN } from './constants.js';
import { encodeHeaderInto, HeaderView, type UftpHeader } from './header.js';

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
export const ENCRYPTED_SIGNATURE_OFFSET = UFTP_HEADER_LEN + SIG;

/**
 * A checked, zero-copy view of a whole ENCRYPTED datagram: the UFTP header (valid, function ENCRYPTED), the IV
 * counter, and signature and payload filling the datagram exactly. The signature and payload are subarrays; the
 * first `fixedLength` bytes (header + IV counter + lengths) are the additional data of GCM/CCM.
 */
export class EncryptedView {
  private constructor(readonly bytes: Uint8Array, readonly header: HeaderView) {}

  static check(d: Uint8Array): Result<EncryptedView> {
    const h = HeaderView.check(d);
    if (!h.ok) return h;
    if (h.value.func !== MessageType.ENCRYPTED) return err('bad-type', `not ENCRYPTED (function ${h.value.func})`);
    const b = d.subarray(UFTP_HEADER_LEN);
    if (b.length < ENCRYPTED_FIXED) return err('truncated', `ENCRYPTED: ${d.length} bytes, too short`);
    const slen = u16(b, SIGLEN);
    const plen = u16(b, PAYLEN);
    if (ENCRYPTED_FIXED + slen + plen !== b.length) {
      return err('inconsistent', `ENCRYPTED: signature ${slen} + payload ${plen} bytes do not fill the ${b.length - ENCRYPTED_FIXED} bytes present`);
    }
    return ok(new EncryptedView(d, h.value));
  }

  get ivCounter(): bigint {
    return u64(this.bytes, UFTP_HEADER_LEN + IV_CTR);
  }
  get signatureLength(): number {
    return u16(this.bytes, UFTP_HEADER_LEN + SIGLEN);
  }
  get signatureOffset(): number {
    return ENCRYPTED_SIGNATURE_OFFSET;
  }
  get signature(): Uint8Array {
    return this.bytes.subarray(ENCRYPTED_SIGNATURE_OFFSET, ENCRYPTED_SIGNATURE_OFFSET + this.signatureLength);
  }
  get payload(): Uint8Array {
    return this.bytes.subarray(ENCRYPTED_SIGNATURE_OFFSET + this.signatureLength);
  }
  /** UFTP header + IV counter + the two lengths: GCM/CCM's additional authenticated data. */
  get fixedPart(): Uint8Array {
    return this.bytes.subarray(0, ENCRYPTED_SIGNATURE_OFFSET);
  }
}

/** The IV counter's 8 bytes as they stand in an ENCRYPTED datagram (a subarray): IVs are built from them. */
export function ivCounterBytes(datagram: Uint8Array): Uint8Array {
  return datagram.subarray(UFTP_HEADER_LEN + IV_CTR, UFTP_HEADER_LEN + IV_CTR + 8);
}

/** UFTP header + IV counter + lengths of an ENCRYPTED datagram being built (GCM/CCM's additional data). */
export function encryptedFixedPart(datagram: Uint8Array): Uint8Array {
  return datagram.subarray(0, ENCRYPTED_SIGNATURE_OFFSET);
}

/** Length of an ENCRYPTED datagram with the given signature and payload lengths. */
export function encryptedDatagramLength(signatureLength: number, payloadLength: number): number {
  return ENCRYPTED_SIGNATURE_OFFSET + signatureLength + payloadLength;
}

/**
 * Writes the fixed part of an ENCRYPTED datagram (header with function ENCRYPTED, IV counter, lengths) at the
 * start of `out`, and zeroes the signature field after it. The caller puts the payload at
 * ENCRYPTED_SIGNATURE_OFFSET + signatureLength and the signature at ENCRYPTED_SIGNATURE_OFFSET.
 */
export function writeEncryptedFixed(out: Uint8Array, header: UftpHeader, ivCounter: bigint, signatureLength: number, payloadLength: number): void {
  need(isU64(ivCounter) && isU16(signatureLength) && isU16(payloadLength), 'ENCRYPTED: field out of range');
  need(out.length >= encryptedDatagramLength(signatureLength, payloadLength), 'ENCRYPTED: output buffer too small');
  encodeHeaderInto({ ...header, func: MessageType.ENCRYPTED }, out, 0);
  put64(out, UFTP_HEADER_LEN + IV_CTR, ivCounter);
  put16(out, UFTP_HEADER_LEN + SIGLEN, signatureLength);
  put16(out, UFTP_HEADER_LEN + PAYLEN, payloadLength);
  out.fill(0, ENCRYPTED_SIGNATURE_OFFSET, ENCRYPTED_SIGNATURE_OFFSET + signatureLength);
}

/**
 * The same ENCRYPTED datagram with a zeroed signature field of another length (header, IV counter and payload
 * unchanged): what a proxy re-signs with its own key.
 */
export function withSignatureLength(v: EncryptedView, signatureLength: number): Uint8Array {
  const payload = v.payload;
  const out = new Uint8Array(encryptedDatagramLength(signatureLength, payload.length));
  out.set(v.fixedPart);
  put16(out, UFTP_HEADER_LEN + SIGLEN, signatureLength);
  out.set(payload, ENCRYPTED_SIGNATURE_OFFSET + signatureLength);
  return out;
}

export function describeEncrypted(m: Encrypted): string {
  return `ivctr=${m.ivCounter} sig=${m.signature.length}B payload=${m.payload.length}B ${hex(m.payload, 4)}`;
}
