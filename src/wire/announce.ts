/**
 * 5.2.3 ANNOUNCE (server -> public multicast address).
 *
 *  0 function(1)  1 header length (words)  2 flags  3 robust
 *  4 cc type      5 reserved               6 block size (16)
 *  8 timestamp sec (32)  12 timestamp usec (32)
 * 16 public multicast address (4, or 16 with the IPV6 flag)
 *    private multicast address (same size)
 *    header extensions (EXT_ENC_INFO) up to header length
 *    body: client IDs (closed group membership)
 */
import { AnnounceFlag, ExtType, MessageType, UFTP_HEADER_LEN } from './constants.js';
import {
  checkTimestamp, decodeIdList, formatIPv4, formatIPv6, hlenWords, isU16, isU8, need, parseIPv4, parseIPv6, put16,
  putIdList, putTimestamp, readTimestamp, u16, u32, type Timestamp,
} from './fields.js';
import { decodeExtensions, encInfoSignatureSpan, encodeExtensionsInto, extensionsLength, walkExtensions, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FLAGS = 2;
const ROBUST = 3;
const CC_TYPE = 4;
const BLOCK_SIZE = 6;
const TSTAMP = 8;
const PUBLIC_MCAST = 16;
const FIXED = 16;

export interface Announce {
  type: 'ANNOUNCE';
  /** AnnounceFlag bits. The IPV6 bit is set/cleared on encode from the address family of the addresses. */
  flags: number;
  robust: number;
  ccType: number;
  blockSize: number;
  timestamp: Timestamp;
  /** Dotted IPv4, or IPv6 in RFC 5952 form, per the IPV6 flag. */
  publicMcast: string;
  privateMcast: string;
  extensions: Extension[];
  clientIds: number[];
}

export function decodeAnnounce(b: Uint8Array): Result<Announce> {
  const N = 'ANNOUNCE';
  if (b.length < FIXED) return err('truncated', `${N}: ${b.length} bytes, need at least ${FIXED}`);
  const flags = b[FLAGS];
  const v6 = (flags & AnnounceFlag.IPV6) !== 0;
  const alen = v6 ? 16 : 4;
  const fixed = FIXED + 2 * alen;
  if (b.length < fixed) return err('truncated', `${N}: ${b.length} bytes, need at least ${fixed} with ${v6 ? 'IPv6' : 'IPv4'} addresses`);
  const hlen = b[HLEN] * 4;
  if (hlen < fixed) return err('inconsistent', `${N}: header length ${b[HLEN]} words < fixed part of ${fixed} bytes`);
  if (hlen > b.length) return err('truncated', `${N}: header length ${hlen} bytes exceeds message of ${b.length} bytes`);
  const fmt = v6 ? formatIPv6 : formatIPv4;
  const exts = decodeExtensions(b, fixed, hlen, N);
  if (!exts.ok) return exts;
  const ids = decodeIdList(b, hlen, N);
  if (!ids.ok) return ids;
  return ok({
    type: 'ANNOUNCE',
    flags,
    robust: b[ROBUST],
    ccType: b[CC_TYPE],
    blockSize: u16(b, BLOCK_SIZE),
    timestamp: readTimestamp(b, TSTAMP),
    publicMcast: fmt(b, PUBLIC_MCAST),
    privateMcast: fmt(b, PUBLIC_MCAST + alen),
    extensions: exts.value,
    clientIds: ids.value,
  });
}

function addrs(m: Announce): { pub: Uint8Array; priv: Uint8Array; v6: boolean } {
  const p4 = parseIPv4(m.publicMcast);
  if (p4) {
    const q4 = parseIPv4(m.privateMcast);
    need(q4 !== undefined, `ANNOUNCE: private address ${m.privateMcast} is not IPv4 like the public one`);
    return { pub: p4, priv: q4 as Uint8Array, v6: false };
  }
  const p6 = parseIPv6(m.publicMcast);
  need(p6 !== undefined, `ANNOUNCE: public address ${m.publicMcast} is neither IPv4 nor IPv6`);
  const q6 = parseIPv6(m.privateMcast);
  need(q6 !== undefined, `ANNOUNCE: private address ${m.privateMcast} is not IPv6 like the public one`);
  return { pub: p6 as Uint8Array, priv: q6 as Uint8Array, v6: true };
}

export function announceLength(m: Announce): number {
  const v6 = parseIPv4(m.publicMcast) === undefined;
  return FIXED + (v6 ? 32 : 8) + extensionsLength(m.extensions) + 4 * m.clientIds.length;
}

export function encodeAnnounceInto(m: Announce, out: Uint8Array, off: number): number {
  need(isU8(m.flags) && isU8(m.robust) && isU8(m.ccType) && isU16(m.blockSize), 'ANNOUNCE: field out of range');
  checkTimestamp(m.timestamp, 'ANNOUNCE');
  const a = addrs(m);
  const alen = a.pub.length;
  const extStart = FIXED + 2 * alen;
  const hlen = extStart + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.ANNOUNCE;
  out[off + HLEN] = hlenWords(hlen, 'ANNOUNCE');
  out[off + FLAGS] = a.v6 ? m.flags | AnnounceFlag.IPV6 : m.flags & ~AnnounceFlag.IPV6;
  out[off + ROBUST] = m.robust;
  out[off + CC_TYPE] = m.ccType;
  out[off + 5] = 0;
  put16(out, off + BLOCK_SIZE, m.blockSize);
  putTimestamp(out, off + TSTAMP, m.timestamp);
  out.set(a.pub, off + PUBLIC_MCAST);
  out.set(a.priv, off + PUBLIC_MCAST + alen);
  encodeExtensionsInto(m.extensions, out, off + extStart);
  return hlen + putIdList(out, off + hlen, m.clientIds, 'ANNOUNCE');
}

/**
 * A checked, zero-copy view of a whole ANNOUNCE datagram (UFTP header included) for what a proxy needs without
 * a full decode: the fixed fields, the two multicast addresses, whether an EXT_ENC_INFO is there, where its
 * signature lies (offsets into the datagram), and the closed-group client list. `check` verifies the fixed part,
 * the header length, every extension's length word and the client list's length before anything is read.
 */
export class AnnounceView {
  private constructor(
    readonly bytes: Uint8Array,
    /** Start of the header extensions and end of the message header (offsets into the datagram). */
    private readonly extStart: number,
    private readonly hdrEnd: number,
    /** The EXT_ENC_INFO (offset, length) in the datagram, if there is one. */
    private readonly encInfo: { offset: number; length: number } | undefined,
  ) {}

  static check(d: Uint8Array): Result<AnnounceView> {
    const N = 'ANNOUNCE';
    const m = UFTP_HEADER_LEN;
    if (d.length < m + FIXED) return err('truncated', `${N}: ${d.length - m} bytes, need at least ${FIXED}`);
    const v6 = (d[m + FLAGS] & AnnounceFlag.IPV6) !== 0;
    const fixed = FIXED + 2 * (v6 ? 16 : 4);
    const hlen = d[m + HLEN] * 4;
    if (hlen < fixed) return err('inconsistent', `${N}: header length ${hlen} < ${fixed}`);
    if (m + hlen > d.length) return err('truncated', `${N}: header length ${hlen} bytes exceeds message of ${d.length - m} bytes`);
    let encInfo: { offset: number; length: number } | undefined;
    const w = walkExtensions(d, m + fixed, m + hlen, N, (t, o, l) => {
      if (t === ExtType.ENC_INFO && !encInfo) encInfo = { offset: o, length: l };
    });
    if (!w.ok) return w;
    if ((d.length - m - hlen) % 4 !== 0) return err('inconsistent', `${N}: client list of ${d.length - m - hlen} bytes is not a multiple of 4`);
    return ok(new AnnounceView(d, m + fixed, m + hlen, encInfo));
  }

  get flags(): number {
    return this.bytes[UFTP_HEADER_LEN + FLAGS];
  }
  get robust(): number {
    return this.bytes[UFTP_HEADER_LEN + ROBUST];
  }
  get ccType(): number {
    return this.bytes[UFTP_HEADER_LEN + CC_TYPE];
  }
  get blockSize(): number {
    return u16(this.bytes, UFTP_HEADER_LEN + BLOCK_SIZE);
  }
  get ipv6(): boolean {
    return (this.flags & AnnounceFlag.IPV6) !== 0;
  }
  get publicAddr(): string {
    return this.ipv6 ? formatIPv6(this.bytes, UFTP_HEADER_LEN + PUBLIC_MCAST) : formatIPv4(this.bytes, UFTP_HEADER_LEN + PUBLIC_MCAST);
  }
  get privateAddr(): string {
    return this.ipv6 ? formatIPv6(this.bytes, UFTP_HEADER_LEN + PUBLIC_MCAST + 16) : formatIPv4(this.bytes, UFTP_HEADER_LEN + PUBLIC_MCAST + 4);
  }
  /** An EXT_ENC_INFO is present: the session is encrypted. */
  get encrypted(): boolean {
    return this.encInfo !== undefined;
  }
  /** The EXT_ENC_INFO signature's place in the datagram (signed with these bytes zeroed), if any. */
  get signatureSpan(): { offset: number; length: number } | undefined {
    return this.encInfo ? encInfoSignatureSpan(this.bytes, this.encInfo.offset, this.encInfo.length) : undefined;
  }
  /** Where the header extensions start (offset into the datagram). */
  get extensionsOffset(): number {
    return this.extStart;
  }
  /** Closed group membership list (empty for an open group); a fresh array. */
  clientIds(): number[] {
    const ids: number[] = [];
    for (let o = this.hdrEnd; o < this.bytes.length; o += 4) ids.push(u32(this.bytes, o));
    return ids;
  }
}
