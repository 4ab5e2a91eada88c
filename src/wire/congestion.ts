/**
 * 5.2.21 CONG_CTRL (server -> clients, once per GRTT with -C tfmcc) and 5.2.22 CC_ACK (client -> server).
 *
 * CONG_CTRL                                          CC_ACK
 *  0 function(1) 1 header length 2 reserved(16)       0 function(1) 1 header length 2 reserved(16)
 *  4 cc seq (16) 6 cc rate (16)                       4 header extensions (EXT_TFMCC_ACK_INFO)
 *  8 timestamp sec (32) 12 timestamp usec (32)
 * 16 header extensions up to header length
 *    body: CC items, 8 bytes each: client ID (32), flags (8), RTT (8, quantized like GRTT), reserved (16)
 */
import { MessageType } from './constants.js';
import {
  checkTimestamp, headerBytes, hlenWords, isU16, isU32, isU8, need, put16, put32, putTimestamp, readTimestamp,
  u16, u32, type Timestamp,
} from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';
import { bareMessageLength, decodeBareMessage, encodeBareMessageInto } from './tail.js';

const FUNC = 0;
const HLEN = 1;
const CC_SEQ = 4;
const CC_RATE = 6;
const TSTAMP = 8;
const CC_FIXED = 16;
const ITEM = 8;

export interface CcItem {
  clientId: number;
  /** CcFlag bits. */
  flags: number;
  /** Quantized RTT byte (unquantizeGrtt gives seconds). */
  rtt: number;
}
export interface CongCtrl {
  type: 'CONG_CTRL';
  ccSeq: number;
  ccRate: number;
  timestamp: Timestamp;
  extensions: Extension[];
  items: CcItem[];
}
export interface CcAck {
  type: 'CC_ACK';
  extensions: Extension[];
}

export function decodeCongCtrl(b: Uint8Array): Result<CongCtrl> {
  const N = 'CONG_CTRL';
  const h = headerBytes(b, N, CC_FIXED);
  if (!h.ok) return h;
  const hlen = h.value;
  const exts = decodeExtensions(b, CC_FIXED, hlen, N);
  if (!exts.ok) return exts;
  const n = b.length - hlen;
  if (n % ITEM !== 0) return err('inconsistent', `${N}: CC item list of ${n} bytes is not a multiple of ${ITEM}`);
  const items: CcItem[] = [];
  for (let o = hlen; o < b.length; o += ITEM) items.push({ clientId: u32(b, o), flags: b[o + 4], rtt: b[o + 5] });
  return ok({ type: 'CONG_CTRL', ccSeq: u16(b, CC_SEQ), ccRate: u16(b, CC_RATE), timestamp: readTimestamp(b, TSTAMP), extensions: exts.value, items });
}

export function congCtrlLength(m: CongCtrl): number {
  return CC_FIXED + extensionsLength(m.extensions) + ITEM * m.items.length;
}

export function encodeCongCtrlInto(m: CongCtrl, out: Uint8Array, off: number): number {
  need(isU16(m.ccSeq) && isU16(m.ccRate), 'CONG_CTRL: field out of range');
  checkTimestamp(m.timestamp, 'CONG_CTRL');
  const hlen = CC_FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.CONG_CTRL;
  out[off + HLEN] = hlenWords(hlen, 'CONG_CTRL');
  put16(out, off + 2, 0);
  put16(out, off + CC_SEQ, m.ccSeq);
  put16(out, off + CC_RATE, m.ccRate);
  putTimestamp(out, off + TSTAMP, m.timestamp);
  encodeExtensionsInto(m.extensions, out, off + CC_FIXED);
  let o = off + hlen;
  for (const it of m.items) {
    need(isU32(it.clientId) && isU8(it.flags) && isU8(it.rtt), 'CONG_CTRL: CC item out of range');
    put32(out, o, it.clientId);
    out[o + 4] = it.flags;
    out[o + 5] = it.rtt;
    put16(out, o + 6, 0);
    o += ITEM;
  }
  return o - off;
}

export function decodeCcAck(b: Uint8Array): Result<CcAck> {
  const exts = decodeBareMessage(b, 'CC_ACK');
  return exts.ok ? ok({ type: 'CC_ACK', extensions: exts.value }) : exts;
}

export function ccAckLength(m: CcAck): number {
  return bareMessageLength(m.extensions);
}

export function encodeCcAckInto(m: CcAck, out: Uint8Array, off: number): number {
  return encodeBareMessageInto(MessageType.CC_ACK, 'CC_ACK', m.extensions, out, off);
}
