/**
 * Sealing and opening ENCRYPTED messages (protocol.txt 5.2.2) the way the real UFTP 4.10 programs do
 * (black-box findings, docs/protocol-notes.md "## Crypto"):
 *
 *  - the inner message (function byte first) is encrypted with the group key; the IV is built from the group salt,
 *    the Source ID of the UFTP header and the packet's IV counter (keys.ts buildIv);
 *  - CBC ciphers use PKCS#7 padding; the payload length is the ciphertext length;
 *  - HMAC: HMAC(group hmac key, whole datagram with the signature bytes set to zero), full hash length;
 *  - KEYEX: the sender's RSA (PKCS#1 v1.5) or ECDSA signature over the same zeroed datagram, with the session hash;
 *  - AUTHENC (GCM/CCM): no signature; the 16-byte tag is appended to the ciphertext (counted in the payload length)
 *    and the additional authenticated data is the 16-byte UFTP header plus the 12 fixed bytes of ENCRYPTED.
 */
import type { KeyObject } from 'node:crypto';
import { SigType } from '../wire/constants.js';
import { ENCRYPTED_SIGNATURE_OFFSET, EncryptedView, encryptedDatagramLength, encryptedFixedPart, ivCounterBytes, writeEncryptedFixed } from '../wire/encrypted.js';
import type { UftpHeader } from '../wire/header.js';
import { decodeMessageBody, type Message } from '../wire/packet.js';
import { ok, type Result } from '../wire/result.js';
import { decrypt, ciphertextLength, encryptInto, hmacZeroed, macEqual } from './cipher.js';
import { buildIv, buildIvInto, type SymmetricKeys } from './keys.js';
import { signData, signToFit, verifySignature, type EcdsaEncoding } from './sign.js';
import type { HashSuite, KeySuite } from './suites.js';

export interface GroupCrypto {
  readonly keySuite: KeySuite;
  readonly hashSuite: HashSuite;
  /** 5.3.4: HMAC, KEYEX or AUTHENC. */
  readonly sigType: number;
  /** Group HMAC key, group session key and group salt (keys.ts groupKeys). */
  readonly keys: SymmetricKeys;
  /** ECDSA signature encoding for KEYEX with EC keys. */
  readonly ecdsaEncoding?: EcdsaEncoding;
}

/** The IV of the datagram being sealed or opened: the ciphers copy it at once, so one buffer serves them all. */
const ivScratch = new Uint8Array(16);

/** Where the signature starts in a datagram: UFTP header + IV counter + the two lengths. */
export const SIGNATURE_OFFSET = ENCRYPTED_SIGNATURE_OFFSET;

/** The bytes a HMAC/KEYEX signature covers: the datagram with the signature field zeroed. */
export function signedBytes(datagram: Uint8Array, signatureLength: number): Buffer {
  const b = Buffer.from(datagram);
  b.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + signatureLength);
  return b;
}

function signatureLength(g: GroupCrypto, signKey: KeyObject | undefined): Result<number, string> {
  switch (g.sigType) {
    case SigType.HMAC:
      return ok(g.hashSuite.length);
    case SigType.AUTHENC:
      if (g.keySuite.mode === 'cbc') return { ok: false, error: `AUTHENC needs GCM or CCM, not ${g.keySuite.name}` };
      return ok(0);
    case SigType.KEYEX: {
      if (!signKey) return { ok: false, error: 'KEYEX signature needs the sender\'s private key' };
      // the length of a signature is only known after signing; reserve by signing an empty message
      return ok(signData(signKey, g.hashSuite, new Uint8Array(0), g.ecdsaEncoding).length);
    }
    default:
      return { ok: false, error: `signature type ${g.sigType} cannot protect an ENCRYPTED message` };
  }
}

/** The datagram length sealEncryptedInto writes for `innerLength` bytes; undefined for KEYEX or a bad pairing. */
export function sealedLength(g: GroupCrypto, innerLength: number): number | undefined {
  const sigLen = g.sigType === SigType.HMAC ? g.hashSuite.length : g.sigType === SigType.AUTHENC && g.keySuite.mode !== 'cbc' ? 0 : undefined;
  return sigLen === undefined ? undefined : encryptedDatagramLength(sigLen, ciphertextLength(g.keySuite, innerLength));
}

/**
 * sealEncrypted written into `out` from its start, for HMAC and AUTHENC (the data path: no Buffer of its own).
 * Returns the datagram's length, or undefined for KEYEX, whose signature length is only known after signing
 * (sealEncrypted does it), or AUTHENC with a CBC cipher (sealEncrypted says why). Throws RangeError if `out` is
 * shorter than sealedLength.
 */
export function sealEncryptedInto(g: GroupCrypto, header: UftpHeader, inner: Uint8Array, ivCounter: bigint, out: Uint8Array): number | undefined {
  const total = sealedLength(g, inner.length);
  if (total === undefined) return undefined;
  if (out.length < total) throw new RangeError(`sealEncryptedInto: ${total} bytes, buffer has ${out.length}`);
  const hmacLen = g.sigType === SigType.HMAC ? g.hashSuite.length : 0;
  const payloadLength = total - SIGNATURE_OFFSET - hmacLen;
  writeEncryptedFixed(out, header, BigInt.asUintN(64, ivCounter), hmacLen, payloadLength);
  const iv = buildIvInto(ivScratch, g.keySuite.ivLength, g.keys.salt, header.srcId, ivCounterBytes(out));
  const aad = g.keySuite.mode === 'cbc' ? undefined : encryptedFixedPart(out);
  if (encryptInto(g.keySuite, g.keys.key, iv, inner, out, SIGNATURE_OFFSET + hmacLen, aad) !== payloadLength) {
    throw new Error('sealEncryptedInto: payload length mismatch');
  }
  // the HMAC covers the datagram with its signature field zeroed, as writeEncryptedFixed left it
  if (hmacLen > 0) out.set(hmacZeroed(g.hashSuite, g.keys.hmacKey, out.subarray(0, total), SIGNATURE_OFFSET, 0), SIGNATURE_OFFSET);
  return total;
}

/**
 * Builds a whole ENCRYPTED datagram: `header` (its func is set to ENCRYPTED), the inner message bytes
 * (`inner`, function byte first, as encodeMessageBody gives), the sender's IV counter.
 * `signKey` is the sender's private key, needed for KEYEX.
 */
export function sealEncrypted(
  g: GroupCrypto,
  header: UftpHeader,
  inner: Uint8Array,
  ivCounter: bigint,
  signKey?: KeyObject,
): Result<Uint8Array, string> {
  const sl = signatureLength(g, signKey);
  if (!sl.ok) return sl;
  if (g.keySuite.mode !== 'cbc' && g.sigType !== SigType.AUTHENC && g.sigType !== SigType.HMAC && g.sigType !== SigType.KEYEX) {
    return { ok: false, error: 'bad signature type' };
  }
  const quick = sealedLength(g, inner.length);
  if (quick !== undefined) {
    const out = Buffer.allocUnsafe(quick);
    sealEncryptedInto(g, header, inner, ivCounter, out);
    return ok(out);
  }
  // KEYEX: the sender's signature, whose length is only known once made
  const iv = buildIv(g.keySuite.ivLength, g.keys.salt, header.srcId, ivCounter);
  // payload length depends only on the plaintext length and the cipher
  const payloadLength = ciphertextLength(g.keySuite, inner.length);
  const ivc = BigInt.asUintN(64, ivCounter);
  const build = (sigLen: number): Buffer => {
    const out = Buffer.alloc(encryptedDatagramLength(sigLen, payloadLength));
    writeEncryptedFixed(out, header, ivc, sigLen, payloadLength);
    return out;
  };
  const first = build(sl.value);
  const aad = g.keySuite.mode === 'cbc' ? undefined : encryptedFixedPart(first);
  const at = SIGNATURE_OFFSET + sl.value;
  if (encryptInto(g.keySuite, g.keys.key, iv, inner, first, at, aad) !== payloadLength) throw new Error('sealEncrypted: payload length mismatch');
  const payload = first.subarray(at, at + payloadLength);
  if (g.sigType === SigType.KEYEX && signKey) {
    // ECDSA signatures vary in length: signToFit rebuilds with the new length until the signature fits its field
    const signed = signToFit(
      signKey,
      g.hashSuite,
      (len) => {
        const out = len === sl.value ? first : build(len);
        if (out !== first) payload.copy(out, SIGNATURE_OFFSET + len);
        return { bytes: out, offset: SIGNATURE_OFFSET };
      },
      g.ecdsaEncoding,
      sl.value,
    );
    if (!signed) return { ok: false, error: 'KEYEX: could not produce a signature of stable length' };
    return ok(Buffer.from(signed.buffer, signed.byteOffset, signed.byteLength));
  }
  return ok(first);
}

export interface Opened {
  readonly header: UftpHeader;
  readonly ivCounter: bigint;
  /** The decrypted inner message bytes (function byte first). */
  readonly body: Buffer;
  /** The decoded inner message. */
  readonly message: Message;
}

/**
 * Verifies and decrypts an ENCRYPTED datagram. `verifyKey` is the sender's public key (KEYEX only).
 * Errors name what failed: lengths, signature, tag, padding, inner message.
 */
export function openEncrypted(g: GroupCrypto, datagram: Uint8Array, verifyKey?: KeyObject): Result<Opened, string> {
  const v = EncryptedView.check(datagram);
  if (!v.ok) return { ok: false, error: v.error.message };
  const b = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const ivCounter = v.value.ivCounter;
  const sigLen = v.value.signatureLength;
  const signature = v.value.signature;
  const payload = v.value.payload;
  const header = v.value.header.toRepr();
  switch (g.sigType) {
    case SigType.HMAC: {
      const mac = hmacZeroed(g.hashSuite, g.keys.hmacKey, b, SIGNATURE_OFFSET, sigLen);
      if (!macEqual(mac, signature)) return { ok: false, error: 'ENCRYPTED: HMAC mismatch' };
      break;
    }
    case SigType.KEYEX:
      if (!verifyKey) return { ok: false, error: 'ENCRYPTED: KEYEX signature but no key of the sender' };
      if (!verifySignature(verifyKey, g.hashSuite, signedBytes(b, sigLen), signature, g.ecdsaEncoding)) {
        return { ok: false, error: 'ENCRYPTED: signature does not verify with the sender\'s key' };
      }
      break;
    case SigType.AUTHENC:
      if (sigLen !== 0) return { ok: false, error: `ENCRYPTED: AUTHENC with a ${sigLen}-byte signature` };
      break;
    default:
      return { ok: false, error: `ENCRYPTED: signature type ${g.sigType} not usable` };
  }
  const iv = buildIvInto(ivScratch, g.keySuite.ivLength, g.keys.salt, header.srcId, ivCounterBytes(datagram));
  const aad = g.keySuite.mode === 'cbc' ? undefined : v.value.fixedPart;
  const body = decrypt(g.keySuite, g.keys.key, iv, payload, aad);
  if (!body.ok) return { ok: false, error: `ENCRYPTED: ${body.error}` };
  const m = decodeMessageBody(body.value);
  if (!m.ok) return { ok: false, error: `ENCRYPTED: inner message: ${m.error.message}` };
  return ok({ header, ivCounter, body: body.value, message: m.value });
}
