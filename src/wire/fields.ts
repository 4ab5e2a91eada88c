/**
 * Small shared helpers for the message codecs: big-endian field access on a Uint8Array (no DataView
 * allocation per packet), timestamps, address text, the common "header length / client ID list" checks.
 * Readers never check bounds themselves: every decoder checks lengths first, then reads.
 */
import { err, ok, type Result } from './result.js';

/** A protocol timestamp: seconds since the UNIX epoch and the microsecond part (two 32-bit fields). */
export interface Timestamp {
  sec: number;
  usec: number;
}

export function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
export function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
export function u64(b: Uint8Array, o: number): bigint {
  return (BigInt(u32(b, o)) << 32n) | BigInt(u32(b, o + 4));
}
export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}
export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}
export function put64(b: Uint8Array, o: number, v: bigint): void {
  put32(b, o, Number((v >> 32n) & 0xffffffffn));
  put32(b, o + 4, Number(v & 0xffffffffn));
}
export function readTimestamp(b: Uint8Array, o: number): Timestamp {
  return { sec: u32(b, o), usec: u32(b, o + 4) };
}
export function putTimestamp(b: Uint8Array, o: number, t: Timestamp): void {
  put32(b, o, t.sec);
  put32(b, o + 4, t.usec);
}

/** Round up to a multiple of 4 (all UFTP lengths in "words" are 4-byte words). */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Encoder precondition: violating one is a bug in the caller, so it throws (never on the decode path). */
export function need(cond: boolean, what: string): void {
  if (!cond) throw new RangeError(`wire encode: ${what}`);
}
export function isU8(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xff;
}
export function isU16(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff;
}
export function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}
export function isU64(v: bigint): boolean {
  return v >= 0n && v <= 0xffffffffffffffffn;
}
export function checkTimestamp(t: Timestamp, what: string): void {
  need(isU32(t.sec) && isU32(t.usec), `${what}: timestamp fields must be 32-bit unsigned`);
}

/**
 * Common checks for a message body starting with [function, header length]: at least `fixed` bytes,
 * header length (words) covers the fixed part and fits the body. Returns the header length in bytes.
 */
export function headerBytes(body: Uint8Array, name: string, fixed: number): Result<number> {
  if (body.length < fixed) return err('truncated', `${name}: ${body.length} bytes, need at least ${fixed}`);
  const hlen = body[1] * 4;
  if (hlen < fixed) return err('inconsistent', `${name}: header length ${body[1]} words < fixed part of ${fixed} bytes`);
  if (hlen > body.length) return err('truncated', `${name}: header length ${hlen} bytes exceeds message of ${body.length} bytes`);
  return ok(hlen);
}

/** A body made of 32-bit IDs from `from` to the end. */
export function decodeIdList(body: Uint8Array, from: number, name: string, what = 'client ID list'): Result<number[]> {
  const n = body.length - from;
  if (n % 4 !== 0) return err('inconsistent', `${name}: ${what} of ${n} bytes is not a multiple of 4`);
  const ids = new Array<number>(n / 4);
  for (let i = 0, o = from; o < body.length; i++, o += 4) ids[i] = u32(body, o);
  return ok(ids);
}
export function putIdList(out: Uint8Array, off: number, ids: readonly number[], what: string): number {
  for (let i = 0; i < ids.length; i++) {
    need(isU32(ids[i]), `${what}: client ID ${ids[i]} is not a 32-bit unsigned integer`);
    put32(out, off + i * 4, ids[i]);
  }
  return ids.length * 4;
}

/** Header length byte: the header (incl. extensions) must be a whole number of words that fits 8 bits. */
export function hlenWords(bytes: number, name: string): number {
  need(bytes % 4 === 0, `${name}: header of ${bytes} bytes is not a multiple of 4`);
  need(bytes / 4 <= 255, `${name}: header of ${bytes} bytes exceeds 255 words`);
  return bytes / 4;
}

// ---- addresses: one implementation for every layer, in src/core ---------------------------------

export { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../core/address.js';

// ---- text ------------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8');
const utf8enc = new TextEncoder();
/** Bytes up to the first NUL (or the end), as UTF-8 text (invalid sequences become U+FFFD). */
export function cString(b: Uint8Array, from: number, to: number): string {
  let end = from;
  while (end < to && b[end] !== 0) end++;
  return utf8.decode(b.subarray(from, end));
}
export function cBytes(b: Uint8Array, from: number, to: number): Uint8Array {
  let end = from;
  while (end < to && b[end] !== 0) end++;
  return b.subarray(from, end);
}
export function textBytes(s: string): Uint8Array {
  return utf8enc.encode(s);
}
export function bytesText(b: Uint8Array): string {
  return utf8.decode(b);
}

export function hex(b: Uint8Array, max = 16): string {
  let s = '';
  const n = Math.min(b.length, max);
  for (let i = 0; i < n; i++) s += b[i].toString(16).padStart(2, '0');
  return b.length > max ? `${s}..` : s;
}
export { hex32 } from '../core/ids.js';
