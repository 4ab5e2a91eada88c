/**
 * What the proxy state machines share: the I/O-free interface to their driver, and a lean reading of the few
 * fields a proxy needs from a datagram.
 *
 * A proxy forwards most datagrams unchanged (every FILESEG of a transfer), so it does not decode whole
 * messages on the data path: `peekDatagram` checks the 16-byte header (src/wire/header.ts) and the function
 * byte, and the few message-specific readers below check lengths before reading any field. Every reader
 * returns a Result; a malformed datagram is dropped by the caller with a log line, never an exception.
 */
import { MessageType, UFTP_HEADER_LEN, UFTP_VER_NUM, ExtType, AnnounceFlag } from '../wire/constants.js';
import { decodeHeader, type UftpHeader } from '../wire/header.js';
import { formatIPv4, formatIPv6, u16, u32, put16, put32 } from '../wire/fields.js';
import { err, ok, type Result } from '../wire/result.js';
import { decodeRegister } from '../wire/register.js';
import { decodeFileInfoAck } from '../wire/fileinfo.js';
import { decodeComplete } from '../wire/complete.js';
import type { Timestamp } from '../wire/fields.js';

/** A UDP endpoint. `address` is a textual IPv4/IPv6 address. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export function sameEndpoint(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  return a !== undefined && b !== undefined && a.port === b.port && a.address === b.address;
}

export function endpointText(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/**
 * The machines' only way out. The driver (src/proxy/driver.ts) implements it with sockets and a logger; the
 * simulation tests implement it with an in-memory network. Neither side modifies `data` after the call (the
 * driver sends it asynchronously without copying).
 */
export interface ProxyIo {
  send(to: Endpoint, data: Uint8Array, multicast: boolean): void;
  /** Join a multicast group (with `source`: a source-specific join). */
  join(group: string, source?: string): void;
  leave(group: string, source?: string): void;
  log(level: number, message: string): void;
  /** For messages that cost something to build: is this level logged? */
  logEnabled(level: number): boolean;
}

/** Messages a server sends (downstream) and messages clients send (upstream). ABORT and ENCRYPTED go both ways. */
export const DOWNSTREAM_TYPES: ReadonlySet<number> = new Set([
  MessageType.ANNOUNCE,
  MessageType.REG_CONF,
  MessageType.KEYINFO,
  MessageType.FILEINFO,
  MessageType.FILESEG,
  MessageType.DONE,
  MessageType.DONE_CONF,
  MessageType.CONG_CTRL,
  MessageType.ENCRYPTED,
  MessageType.ABORT,
]);
export const UPSTREAM_TYPES: ReadonlySet<number> = new Set([
  MessageType.REGISTER,
  MessageType.CLIENT_KEY,
  MessageType.KEYINFO_ACK,
  MessageType.FILEINFO_ACK,
  MessageType.STATUS,
  MessageType.COMPLETE,
  MessageType.CC_ACK,
  MessageType.ENCRYPTED,
  MessageType.ABORT,
]);

export const TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(MessageType).map(([k, v]) => [v, k]),
);

export function typeName(func: number): string {
  return TYPE_NAMES[func] ?? `type ${func}`;
}

export function hexId(n: number): string {
  return (n >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** "[GROUPID/II]" as the real daemons prefix session log lines. */
export function groupTag(groupId: number, groupInst: number): string {
  return `[${hexId(groupId)}/${groupInst.toString(16).toUpperCase().padStart(2, '0')}]`;
}

/** Header checked; the message body starts at 16. ENCRYPTED bodies are not looked into. */
export function peekDatagram(b: Uint8Array): Result<UftpHeader> {
  const h = decodeHeader(b);
  if (!h.ok) return h;
  if (h.value.func !== MessageType.ENCRYPTED) {
    if (b.length < UFTP_HEADER_LEN + 4) return err('truncated', `${typeName(h.value.func)}: ${b.length} bytes, no message header`);
    if (b[UFTP_HEADER_LEN] !== h.value.func) {
      return err('inconsistent', `${typeName(h.value.func)}: message function ${b[UFTP_HEADER_LEN]} differs from header function ${h.value.func}`);
    }
    const hlen = b[UFTP_HEADER_LEN + 1] * 4;
    if (hlen < 4 || UFTP_HEADER_LEN + hlen > b.length) {
      return err('inconsistent', `${typeName(h.value.func)}: header length ${hlen} does not fit in ${b.length - UFTP_HEADER_LEN} bytes`);
    }
  }
  return h;
}

// --- ANNOUNCE -------------------------------------------------------------------------------------------

export interface AnnounceView {
  readonly flags: number;
  readonly robust: number;
  readonly ccType: number;
  readonly blockSize: number;
  readonly ipv6: boolean;
  readonly publicAddr: string;
  readonly privateAddr: string;
  /** An EXT_ENC_INFO is present: the session is encrypted. */
  readonly encrypted: boolean;
  /** Closed group membership list (empty for an open group). */
  readonly clientIds: number[];
}

export function readAnnounce(b: Uint8Array): Result<AnnounceView> {
  const m = UFTP_HEADER_LEN;
  const hlen = b[m + 1] * 4;
  const flags = b[m + 2];
  const ipv6 = (flags & AnnounceFlag.IPV6) !== 0;
  const alen = ipv6 ? 16 : 4;
  const fixed = 16 + 2 * alen;
  if (hlen < fixed) return err('inconsistent', `ANNOUNCE: header length ${hlen} < ${fixed}`);
  const robust = b[m + 3];
  if (robust === 0) return err('inconsistent', 'ANNOUNCE: robustness factor 0');
  const pub = ipv6 ? formatIPv6(b, m + 16) : formatIPv4(b, m + 16);
  const priv = ipv6 ? formatIPv6(b, m + 16 + alen) : formatIPv4(b, m + 16 + alen);
  let encrypted = false;
  let off = m + fixed;
  const end = m + hlen;
  while (off < end) {
    if (off + 2 > end) return err('inconsistent', 'ANNOUNCE: truncated extension');
    const etype = b[off];
    const elen = b[off + 1] * 4;
    if (elen === 0 || off + elen > end) return err('inconsistent', `ANNOUNCE: extension ${etype} length ${elen} overruns the header`);
    if (etype === ExtType.ENC_INFO) encrypted = true;
    off += elen;
  }
  const bodyLen = b.length - end;
  if (bodyLen % 4 !== 0) return err('inconsistent', `ANNOUNCE: client list of ${bodyLen} bytes is not a multiple of 4`);
  const clientIds: number[] = [];
  for (let o = end; o < b.length; o += 4) clientIds.push(u32(b, o));
  return ok({ flags, robust, ccType: b[m + 4], blockSize: u16(b, m + 6), ipv6, publicAddr: pub, privateAddr: priv, encrypted, clientIds });
}

// --- responses a client proxy aggregates ---------------------------------------------------------------

/** Timestamp in microseconds since the epoch (secs*1e6+usecs; exact in a double until the year 2255). */
export function readTimestampUs(b: Uint8Array, o: number): number {
  return u32(b, o) * 1e6 + u32(b, o + 4);
}

export function writeTimestampUs(b: Uint8Array, o: number, us: number): void {
  const secs = Math.floor(us / 1e6);
  put32(b, o, secs >>> 0);
  put32(b, o + 4, Math.floor(us - secs * 1e6) >>> 0);
}

export interface RegisterView {
  readonly keyInfoLen: number;
  readonly timestampUs: number;
  readonly clientIds: number[];
}

/** The wire codec's REGISTER, as the aggregation needs it (the body starts after the UFTP header). */
export function readRegister(b: Uint8Array): Result<RegisterView> {
  const r = decodeRegister(b.subarray(UFTP_HEADER_LEN));
  if (!r.ok) return r;
  return ok({ keyInfoLen: r.value.keyInfo.length, timestampUs: timestampUs(r.value.timestamp), clientIds: r.value.clientIds });
}

export interface FileInfoAckView {
  readonly fileId: number;
  readonly flags: number;
  readonly timestampUs: number;
  readonly clientIds: number[];
}

export function readFileInfoAck(b: Uint8Array): Result<FileInfoAckView> {
  const r = decodeFileInfoAck(b.subarray(UFTP_HEADER_LEN));
  if (!r.ok) return r;
  const m = r.value;
  return ok({ fileId: m.fileId, flags: m.flags, timestampUs: timestampUs(m.timestamp), clientIds: m.clientIds });
}

export interface CompleteView {
  readonly fileId: number;
  readonly status: number;
  readonly clientIds: number[];
}

export function readComplete(b: Uint8Array): Result<CompleteView> {
  const r = decodeComplete(b.subarray(UFTP_HEADER_LEN));
  if (!r.ok) return r;
  return ok({ fileId: r.value.fileId, status: r.value.status, clientIds: r.value.clientIds });
}

function timestampUs(t: Timestamp): number {
  return t.sec * 1e6 + t.usec;
}

export interface StatusView {
  readonly fileId: number;
  readonly section: number;
  /** Extensions (raw bytes, e.g. EXT_TFMCC_ACK_INFO), to pass on. */
  readonly extensions: Uint8Array;
  readonly naks: Uint8Array;
}

export function readStatus(b: Uint8Array): Result<StatusView> {
  const m = UFTP_HEADER_LEN;
  const hlen = b[m + 1] * 4;
  if (hlen < 8) return err('inconsistent', `STATUS: header length ${hlen} < 8`);
  return ok({ fileId: u16(b, m + 2), section: u16(b, m + 4), extensions: b.subarray(m + 8, m + hlen), naks: b.subarray(m + hlen) });
}

// --- building a proxy's own messages -------------------------------------------------------------------

export interface OwnHeader {
  func: number;
  seq: number;
  srcId: number;
  groupId: number;
  groupInst: number;
  grtt?: number;
}

/** Writes a UFTP header (UFTP ID 0x40, gsize 0) at 0. */
export function writeHeader(b: Uint8Array, h: OwnHeader): void {
  b[0] = UFTP_VER_NUM;
  b[1] = h.func;
  put16(b, 2, h.seq & 0xffff);
  put32(b, 4, h.srcId >>> 0);
  put32(b, 8, h.groupId >>> 0);
  b[12] = h.groupInst;
  b[13] = h.grtt ?? 0;
  b[14] = 0;
  b[15] = 0;
}

export function writeIds(b: Uint8Array, off: number, ids: readonly number[]): void {
  for (let i = 0; i < ids.length; i++) put32(b, off + i * 4, ids[i] >>> 0);
}
