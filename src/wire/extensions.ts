/**
 * Header extensions (protocol.txt 5.2.3.1, 5.2.11.1, 5.2.13.1, 5.2.14.1). Every extension starts with
 * [extension type (8), extension length in 4-byte words (8)]. Unknown types are kept as UNKNOWN with
 * their bytes so a proxy can forward them unchanged ("any unexpected header extension should be ignored").
 *
 * EXT_ENC_INFO                                EXT_TFMCC_DATA_INFO (8 bytes)
 *  0 type(1) 1 len 2 flags 3 keyex<<4|sig      0 type(2) 1 len 2 send rate(16)
 *  4 key type 5 hash type 6 public key len     4 cc seq(16) 6 cc rate(16)
 *  8 DH key len 10 signature len               EXT_TFMCC_ACK_INFO (20 bytes)
 * 12 server random (32)                        0 type(3) 1 len 2 flags 3 reserved 4 cc seq 6 cc rate
 * 44 public key blob, DH key blob, signature,  8 client ID 12 timestamp sec 16 usec
 *    zero padding to the extension length      EXT_FREESPACE_INFO (12 bytes)
 *                                              0 type(7) 1 len 2 reserved(16) 4 free space (64)
 */
import { ExtType } from './constants.js';
import {
  checkTimestamp, hex, isU16, isU32, isU64, isU8, need, pad4, put16, put32, put64, putTimestamp, readTimestamp,
  u16, u32, u64, type Timestamp,
} from './fields.js';
import { decodeKeyBlob, encodeKeyBlobInto, keyBlobLength, type KeyBlob } from './keyblob.js';
import { err, ok, type Result } from './result.js';

const EXT_TYPE = 0;
const EXT_LEN = 1;

// EXT_ENC_INFO
const EI_FLAGS = 2;
const EI_KEYEX_SIG = 3;
const EI_KEY_TYPE = 4;
const EI_HASH_TYPE = 5;
const EI_KEYLEN = 6;
const EI_DHLEN = 8;
const EI_SIGLEN = 10;
const EI_RAND = 12;
const EI_FIXED = 44;
export const RANDOM_LEN = 32;

// EXT_TFMCC_DATA_INFO
const TD_SEND_RATE = 2;
const TD_CC_SEQ = 4;
const TD_CC_RATE = 6;
const TD_LEN = 8;

// EXT_TFMCC_ACK_INFO
const TA_FLAGS = 2;
const TA_CC_SEQ = 4;
const TA_CC_RATE = 6;
const TA_CLIENT_ID = 8;
const TA_TSTAMP = 12;
const TA_LEN = 20;

// EXT_FREESPACE_INFO
const FS_FREESPACE = 4;
const FS_LEN = 12;

export interface ExtEncInfo {
  type: 'EXT_ENC_INFO';
  /** 0x01 CLIENT_AUTH. */
  flags: number;
  keyexType: number;
  sigType: number;
  keyType: number;
  hashType: number;
  serverRandom: Uint8Array;
  publicKey: KeyBlob;
  /** The ephemeral ECDH key; null when the DH key length is 0 (RSA key exchange). */
  dhKey: KeyBlob | null;
  /** Signature over the whole ANNOUNCE datagram (ECDH schemes); empty for RSA key exchange. */
  signature: Uint8Array;
}
export interface ExtTfmccDataInfo {
  type: 'EXT_TFMCC_DATA_INFO';
  /** 16-bit encoded rate as sent (see docs/protocol-notes.md). */
  sendRate: number;
  ccSeq: number;
  ccRate: number;
}
export interface ExtTfmccAckInfo {
  type: 'EXT_TFMCC_ACK_INFO';
  /** CcFlag bits: 0x01 CLR, 0x02 RTT, 0x04 START, 0x08 LEAVE. */
  flags: number;
  ccSeq: number;
  ccRate: number;
  clientId: number;
  timestamp: Timestamp;
}
export interface ExtFreespaceInfo {
  type: 'EXT_FREESPACE_INFO';
  freespace: bigint;
}
export interface ExtUnknown {
  type: 'UNKNOWN';
  extType: number;
  /** The extension's bytes after its type and length bytes (length 4k + 2). */
  data: Uint8Array;
}
export type Extension = ExtEncInfo | ExtTfmccDataInfo | ExtTfmccAckInfo | ExtFreespaceInfo | ExtUnknown;

export function decodeExtensions(b: Uint8Array, start: number, end: number, msg: string): Result<Extension[]> {
  const exts: Extension[] = [];
  let o = start;
  while (o < end) {
    if (end - o < 4) return err('inconsistent', `${msg}: ${end - o} stray bytes at the end of the header extensions`);
    const len = b[o + EXT_LEN] * 4;
    if (len === 0) return err('bad-value', `${msg}: extension type ${b[o]} at offset ${o} has length 0`);
    if (o + len > end) {
      return err('inconsistent', `${msg}: extension type ${b[o]} of ${len} bytes runs past the header end (${end - o} bytes left)`);
    }
    const r = decodeExtension(b.subarray(o, o + len), msg);
    if (!r.ok) return r;
    exts.push(r.value);
    o += len;
  }
  return ok(exts);
}

function fixedLen(name: string, msg: string, got: number, want: number): Result<never> | undefined {
  if (got !== want) return err('inconsistent', `${msg}: ${name} length ${got} bytes, must be ${want}`);
  return undefined;
}

/** Decodes one extension occupying exactly `e` (its length byte already checked against e.length). */
export function decodeExtension(e: Uint8Array, msg: string): Result<Extension> {
  const t = e[EXT_TYPE];
  switch (t) {
    case ExtType.ENC_INFO:
      return decodeEncInfo(e, msg);
    case ExtType.TFMCC_DATA_INFO: {
      const bad = fixedLen('EXT_TFMCC_DATA_INFO', msg, e.length, TD_LEN);
      if (bad) return bad;
      return ok({ type: 'EXT_TFMCC_DATA_INFO', sendRate: u16(e, TD_SEND_RATE), ccSeq: u16(e, TD_CC_SEQ), ccRate: u16(e, TD_CC_RATE) });
    }
    case ExtType.TFMCC_ACK_INFO: {
      const bad = fixedLen('EXT_TFMCC_ACK_INFO', msg, e.length, TA_LEN);
      if (bad) return bad;
      return ok({
        type: 'EXT_TFMCC_ACK_INFO', flags: e[TA_FLAGS], ccSeq: u16(e, TA_CC_SEQ), ccRate: u16(e, TA_CC_RATE),
        clientId: u32(e, TA_CLIENT_ID), timestamp: readTimestamp(e, TA_TSTAMP),
      });
    }
    case ExtType.FREESPACE_INFO: {
      const bad = fixedLen('EXT_FREESPACE_INFO', msg, e.length, FS_LEN);
      if (bad) return bad;
      return ok({ type: 'EXT_FREESPACE_INFO', freespace: u64(e, FS_FREESPACE) });
    }
    default:
      return ok({ type: 'UNKNOWN', extType: t, data: e.subarray(2) });
  }
}

function decodeEncInfo(e: Uint8Array, msg: string): Result<ExtEncInfo> {
  if (e.length < EI_FIXED) return err('truncated', `${msg}: EXT_ENC_INFO of ${e.length} bytes, need at least ${EI_FIXED}`);
  const keylen = u16(e, EI_KEYLEN);
  const dhlen = u16(e, EI_DHLEN);
  const siglen = u16(e, EI_SIGLEN);
  const total = EI_FIXED + keylen + dhlen + siglen;
  if (total > e.length) {
    return err('inconsistent', `${msg}: EXT_ENC_INFO key ${keylen} + DH key ${dhlen} + signature ${siglen} bytes exceed the extension (${e.length} bytes)`);
  }
  if (pad4(total) !== e.length) {
    return err('inconsistent', `${msg}: EXT_ENC_INFO length ${e.length} bytes, its fields need ${pad4(total)}`);
  }
  const pk = decodeKeyBlob(e.subarray(EI_FIXED, EI_FIXED + keylen));
  if (!pk.ok) return err(pk.error.kind, `${msg}: EXT_ENC_INFO public key: ${pk.error.message}`);
  let dhKey: KeyBlob | null = null;
  if (dhlen > 0) {
    const dh = decodeKeyBlob(e.subarray(EI_FIXED + keylen, EI_FIXED + keylen + dhlen));
    if (!dh.ok) return err(dh.error.kind, `${msg}: EXT_ENC_INFO DH key: ${dh.error.message}`);
    dhKey = dh.value;
  }
  const sigStart = EI_FIXED + keylen + dhlen;
  return ok({
    type: 'EXT_ENC_INFO',
    flags: e[EI_FLAGS],
    keyexType: e[EI_KEYEX_SIG] >> 4,
    sigType: e[EI_KEYEX_SIG] & 0x0f,
    keyType: e[EI_KEY_TYPE],
    hashType: e[EI_HASH_TYPE],
    serverRandom: e.subarray(EI_RAND, EI_RAND + RANDOM_LEN),
    publicKey: pk.value,
    dhKey,
    signature: e.subarray(sigStart, sigStart + siglen),
  });
}

export function extensionLength(x: Extension): number {
  switch (x.type) {
    case 'EXT_ENC_INFO':
      return pad4(EI_FIXED + keyBlobLength(x.publicKey) + (x.dhKey ? keyBlobLength(x.dhKey) : 0) + x.signature.length);
    case 'EXT_TFMCC_DATA_INFO':
      return TD_LEN;
    case 'EXT_TFMCC_ACK_INFO':
      return TA_LEN;
    case 'EXT_FREESPACE_INFO':
      return FS_LEN;
    case 'UNKNOWN':
      return 2 + x.data.length;
  }
}

export function extensionsLength(xs: readonly Extension[]): number {
  let n = 0;
  for (let i = 0; i < xs.length; i++) n += extensionLength(xs[i]);
  return n;
}

/** Writes one extension at `off` (padding zeroed); returns its length. */
export function encodeExtensionInto(x: Extension, out: Uint8Array, off: number): number {
  const len = extensionLength(x);
  need(len % 4 === 0 && len / 4 <= 255 && len > 0, `${x.type}: extension length ${len} bytes is not 1..255 words`);
  out.fill(0, off, off + len);
  out[off + EXT_LEN] = len / 4;
  switch (x.type) {
    case 'EXT_ENC_INFO': {
      need(isU8(x.flags) && x.keyexType >= 0 && x.keyexType <= 15 && x.sigType >= 0 && x.sigType <= 15, 'EXT_ENC_INFO: flags/keyex/sig out of range');
      need(isU8(x.keyType) && isU8(x.hashType), 'EXT_ENC_INFO: key/hash type out of range');
      need(x.serverRandom.length === RANDOM_LEN, `EXT_ENC_INFO: server random must be ${RANDOM_LEN} bytes`);
      need(isU16(x.signature.length), 'EXT_ENC_INFO: signature too long');
      out[off] = ExtType.ENC_INFO;
      out[off + EI_FLAGS] = x.flags;
      out[off + EI_KEYEX_SIG] = (x.keyexType << 4) | x.sigType;
      out[off + EI_KEY_TYPE] = x.keyType;
      out[off + EI_HASH_TYPE] = x.hashType;
      const pkLen = keyBlobLength(x.publicKey);
      const dhLen = x.dhKey ? keyBlobLength(x.dhKey) : 0;
      put16(out, off + EI_KEYLEN, pkLen);
      put16(out, off + EI_DHLEN, dhLen);
      put16(out, off + EI_SIGLEN, x.signature.length);
      out.set(x.serverRandom, off + EI_RAND);
      encodeKeyBlobInto(x.publicKey, out, off + EI_FIXED);
      if (x.dhKey) encodeKeyBlobInto(x.dhKey, out, off + EI_FIXED + pkLen);
      out.set(x.signature, off + EI_FIXED + pkLen + dhLen);
      return len;
    }
    case 'EXT_TFMCC_DATA_INFO':
      need(isU16(x.sendRate) && isU16(x.ccSeq) && isU16(x.ccRate), 'EXT_TFMCC_DATA_INFO: field out of range');
      out[off] = ExtType.TFMCC_DATA_INFO;
      put16(out, off + TD_SEND_RATE, x.sendRate);
      put16(out, off + TD_CC_SEQ, x.ccSeq);
      put16(out, off + TD_CC_RATE, x.ccRate);
      return len;
    case 'EXT_TFMCC_ACK_INFO':
      need(isU8(x.flags) && isU16(x.ccSeq) && isU16(x.ccRate) && isU32(x.clientId), 'EXT_TFMCC_ACK_INFO: field out of range');
      checkTimestamp(x.timestamp, 'EXT_TFMCC_ACK_INFO');
      out[off] = ExtType.TFMCC_ACK_INFO;
      out[off + TA_FLAGS] = x.flags;
      put16(out, off + TA_CC_SEQ, x.ccSeq);
      put16(out, off + TA_CC_RATE, x.ccRate);
      put32(out, off + TA_CLIENT_ID, x.clientId);
      putTimestamp(out, off + TA_TSTAMP, x.timestamp);
      return len;
    case 'EXT_FREESPACE_INFO':
      need(isU64(x.freespace), 'EXT_FREESPACE_INFO: free space out of range');
      out[off] = ExtType.FREESPACE_INFO;
      put64(out, off + FS_FREESPACE, x.freespace);
      return len;
    case 'UNKNOWN':
      need(isU8(x.extType), 'UNKNOWN extension: type out of range');
      need(x.extType !== ExtType.ENC_INFO && x.extType !== ExtType.TFMCC_DATA_INFO && x.extType !== ExtType.TFMCC_ACK_INFO && x.extType !== ExtType.FREESPACE_INFO,
        `UNKNOWN extension: type ${x.extType} is a known extension`);
      out[off] = x.extType;
      out.set(x.data, off + 2);
      return len;
  }
}

export function encodeExtensionsInto(xs: readonly Extension[], out: Uint8Array, off: number): number {
  let o = off;
  for (let i = 0; i < xs.length; i++) o += encodeExtensionInto(xs[i], out, o);
  return o - off;
}

export function describeExtension(x: Extension): string {
  switch (x.type) {
    case 'EXT_ENC_INFO':
      return `ENC_INFO(keyex=${x.keyexType} sig=${x.sigType} key=${x.keyType} hash=${x.hashType} flags=0x${x.flags.toString(16)} pk=${x.publicKey.kind}${x.dhKey ? ' dh=' + x.dhKey.kind : ''} siglen=${x.signature.length})`;
    case 'EXT_TFMCC_DATA_INFO':
      return `TFMCC_DATA(rate=${x.sendRate} ccseq=${x.ccSeq} ccrate=${x.ccRate})`;
    case 'EXT_TFMCC_ACK_INFO':
      return `TFMCC_ACK(flags=0x${x.flags.toString(16)} ccseq=${x.ccSeq} ccrate=${x.ccRate} client=0x${x.clientId.toString(16).padStart(8, '0')})`;
    case 'EXT_FREESPACE_INFO':
      return `FREESPACE(${x.freespace})`;
    case 'UNKNOWN':
      return `EXT_${x.extType}(${hex(x.data, 8)})`;
  }
}

/**
 * Zero-copy walk over the extensions in b[start, end): checks each one's length word (non-zero, inside the
 * header) and calls `visit(type, offset, length)`. For views that only need to know what is there.
 */
export function walkExtensions(b: Uint8Array, start: number, end: number, msg: string, visit: (type: number, offset: number, length: number) => void): Result<void> {
  let off = start;
  while (off < end) {
    if (off + 2 > end) return err('inconsistent', `${msg}: truncated extension`);
    const etype = b[off + EXT_TYPE];
    const elen = b[off + EXT_LEN] * 4;
    if (elen === 0 || off + elen > end) return err('inconsistent', `${msg}: extension ${etype} length ${elen} overruns the header`);
    visit(etype, off, elen);
    off += elen;
  }
  return ok(undefined);
}

/**
 * Where the signature of an EXT_ENC_INFO at b[off, off + len) lies, as an absolute span of `b`, or undefined when
 * the extension is too short for its own length fields.
 */
export function encInfoSignatureSpan(b: Uint8Array, off: number, len: number): { offset: number; length: number } | undefined {
  if (len < EI_FIXED || off + len > b.length) return undefined;
  const at = off + EI_FIXED + u16(b, off + EI_KEYLEN) + u16(b, off + EI_DHLEN);
  const siglen = u16(b, off + EI_SIGLEN);
  return at + siglen <= off + len ? { offset: at, length: siglen } : undefined;
}
