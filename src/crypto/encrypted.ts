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
import { SigType, MessageType, UFTP_HEADER_LEN } from '../wire/constants.js';
import { ENCRYPTED_FIXED } from '../wire/encrypted.js';
import { decodeHeader, encodeHeaderInto, type UftpHeader } from '../wire/header.js';
import { decodeMessageBody, type Message } from '../wire/packet.js';
import { ok, type Result } from '../wire/result.js';
import { decrypt, encrypt, hmac, macEqual } from './cipher.js';
import { buildIv, type SymmetricKeys } from './keys.js';
import { signData, verifySignature, type EcdsaEncoding } from './sign.js';
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

/** Where the signature starts in a datagram: UFTP header + IV counter + the two lengths. */
export const SIGNATURE_OFFSET = UFTP_HEADER_LEN + ENCRYPTED_FIXED;

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
  const iv = buildIv(g.keySuite.ivLength, g.keys.salt, header.srcId, ivCounter);
  const fixed = Buffer.alloc(SIGNATURE_OFFSET);
  encodeHeaderInto({ ...header, func: MessageType.ENCRYPTED }, fixed, 0);
  fixed[1] = MessageType.ENCRYPTED;
  // payload length depends only on the plaintext length and the cipher
  const payloadLength =
    g.keySuite.mode === 'cbc'
      ? (Math.floor(inner.length / g.keySuite.blockSize) + 1) * g.keySuite.blockSize
      : inner.length + g.keySuite.tagLength;
  fixed.writeBigUInt64BE(BigInt.asUintN(64, ivCounter), UFTP_HEADER_LEN);
  fixed.writeUInt16BE(sl.value, UFTP_HEADER_LEN + 8);
  fixed.writeUInt16BE(payloadLength, UFTP_HEADER_LEN + 10);
  const aad = g.keySuite.mode === 'cbc' ? undefined : fixed;
  const payload = encrypt(g.keySuite, g.keys.key, iv, inner, aad);
  if (payload.length !== payloadLength) throw new Error('sealEncrypted: payload length mismatch');
  const out = Buffer.concat([fixed, Buffer.alloc(sl.value), payload]);
  if (g.sigType === SigType.HMAC) {
    hmac(g.hashSuite, g.keys.hmacKey, out).copy(out, SIGNATURE_OFFSET);
  } else if (g.sigType === SigType.KEYEX && signKey) {
    let sig = signData(signKey, g.hashSuite, out, g.ecdsaEncoding);
    // ECDSA signatures vary in length: rebuild with the new length until the signature fits its field
    let cur = out;
    for (let tries = 0; sig.length !== cur.readUInt16BE(UFTP_HEADER_LEN + 8); tries++) {
      if (tries > 16) return { ok: false, error: 'KEYEX: could not produce a signature of stable length' };
      cur = Buffer.concat([cur.subarray(0, SIGNATURE_OFFSET), Buffer.alloc(sig.length), payload]);
      cur.writeUInt16BE(sig.length, UFTP_HEADER_LEN + 8);
      sig = signData(signKey, g.hashSuite, cur, g.ecdsaEncoding);
    }
    sig.copy(cur, SIGNATURE_OFFSET);
    return ok(cur);
  }
  return ok(out);
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
  const h = decodeHeader(datagram);
  if (!h.ok) return { ok: false, error: h.error.message };
  if (h.value.func !== MessageType.ENCRYPTED) return { ok: false, error: `not ENCRYPTED (function ${h.value.func})` };
  if (datagram.length < SIGNATURE_OFFSET) return { ok: false, error: `ENCRYPTED: ${datagram.length} bytes, too short` };
  const b = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const ivCounter = b.readBigUInt64BE(UFTP_HEADER_LEN);
  const sigLen = b.readUInt16BE(UFTP_HEADER_LEN + 8);
  const payLen = b.readUInt16BE(UFTP_HEADER_LEN + 10);
  if (SIGNATURE_OFFSET + sigLen + payLen !== b.length) {
    return { ok: false, error: `ENCRYPTED: signature ${sigLen} + payload ${payLen} bytes do not fill the ${b.length - SIGNATURE_OFFSET} bytes present` };
  }
  const signature = b.subarray(SIGNATURE_OFFSET, SIGNATURE_OFFSET + sigLen);
  const payload = b.subarray(SIGNATURE_OFFSET + sigLen);
  switch (g.sigType) {
    case SigType.HMAC: {
      const mac = hmac(g.hashSuite, g.keys.hmacKey, signedBytes(b, sigLen));
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
  const iv = buildIv(g.keySuite.ivLength, g.keys.salt, h.value.srcId, ivCounter);
  const aad = g.keySuite.mode === 'cbc' ? undefined : b.subarray(0, SIGNATURE_OFFSET);
  const body = decrypt(g.keySuite, g.keys.key, iv, payload, aad);
  if (!body.ok) return { ok: false, error: `ENCRYPTED: ${body.error}` };
  const m = decodeMessageBody(body.value);
  if (!m.ok) return { ok: false, error: `ENCRYPTED: inner message: ${m.error.message}` };
  return ok({ header: h.value, ivCounter, body: body.value, message: m.value });
}
