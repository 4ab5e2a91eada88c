/**
 * Writes captures: classic pcap and pcapng, and link/IP/UDP framing for a UDP payload.
 * Used by the tests (write, read back, compare) and handy for making small fixtures.
 */

import { LinkType } from './link.js';

export interface PcapOptions {
  readonly linkType: number;
  /** Nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds. */
  readonly nano?: boolean;
  /** Byte order of the file; default little-endian. */
  readonly bigEndian?: boolean;
  readonly snapLen?: number;
}

export interface RecordInput {
  readonly timeNs: bigint;
  readonly data: Uint8Array;
  /** Defaults to data.length. */
  readonly originalLength?: number;
}

function u16(v: number, little: boolean): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, little);
  return b;
}
function u32(v: number, little: boolean): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, little);
  return b;
}
function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
function pad4(b: Uint8Array): Uint8Array {
  const n = (b.length + 3) & ~3;
  if (n === b.length) return b;
  const out = new Uint8Array(n);
  out.set(b);
  return out;
}

export function pcapFileHeader(o: PcapOptions): Uint8Array {
  const le = !o.bigEndian;
  return concat([
    u32(o.nano ? 0xa1b23c4d : 0xa1b2c3d4, le),
    u16(2, le),
    u16(4, le),
    u32(0, le),
    u32(0, le),
    u32(o.snapLen ?? 262144, le),
    u32(o.linkType, le),
  ]);
}

export function pcapRecord(o: PcapOptions, r: RecordInput): Uint8Array {
  const le = !o.bigEndian;
  const sec = r.timeNs / 1_000_000_000n;
  const ns = r.timeNs % 1_000_000_000n;
  const frac = o.nano ? Number(ns) : Number(ns / 1000n);
  return concat([
    u32(Number(sec), le),
    u32(frac, le),
    u32(r.data.length, le),
    u32(r.originalLength ?? r.data.length, le),
    r.data,
  ]);
}

export function writePcap(o: PcapOptions, records: readonly RecordInput[]): Uint8Array {
  return concat([pcapFileHeader(o), ...records.map((r) => pcapRecord(o, r))]);
}

// ---- pcapng ----

function block(type: number, body: Uint8Array, le: boolean): Uint8Array {
  const b = pad4(body);
  const len = b.length + 12;
  return concat([u32(type, le), u32(len, le), b, u32(len, le)]);
}

function option(code: number, value: Uint8Array, le: boolean): Uint8Array {
  return concat([u16(code, le), u16(value.length, le), pad4(value)]);
}

export function pcapngSectionHeader(bigEndian = false): Uint8Array {
  const le = !bigEndian;
  const sectionLen = new Uint8Array(8).fill(0xff); // -1: unknown
  return block(0x0a0d0d0a, concat([u32(0x1a2b3c4d, le), u16(1, le), u16(0, le), sectionLen]), le);
}

export interface PcapngInterfaceOptions {
  readonly linkType: number;
  readonly snapLen?: number;
  /** if_tsresol byte: 6 = microseconds (default), 9 = nanoseconds, 0x80|n = 2^-n. */
  readonly tsresol?: number;
  /** if_tsoffset, seconds. */
  readonly tsoffset?: bigint;
  readonly bigEndian?: boolean;
}

export function pcapngInterface(o: PcapngInterfaceOptions): Uint8Array {
  const le = !o.bigEndian;
  const opts: Uint8Array[] = [];
  if (o.tsresol !== undefined) opts.push(option(9, Uint8Array.of(o.tsresol), le));
  if (o.tsoffset !== undefined) {
    const v = new Uint8Array(8);
    new DataView(v.buffer).setBigInt64(0, o.tsoffset, le);
    opts.push(option(14, v, le));
  }
  if (opts.length > 0) opts.push(u32(0, le));
  return block(1, concat([u16(o.linkType, le), u16(0, le), u32(o.snapLen ?? 0, le), ...opts]), le);
}

/** Units per second for an if_tsresol byte. */
export function tsresolUnits(tsresol: number | undefined): bigint {
  if (tsresol === undefined) return 1_000_000n;
  return tsresol & 0x80 ? 1n << BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
}

export function pcapngEnhancedPacket(
  interfaceId: number,
  iface: PcapngInterfaceOptions,
  r: RecordInput,
): Uint8Array {
  const le = !iface.bigEndian;
  const units = tsresolUnits(iface.tsresol);
  const ns = r.timeNs - (iface.tsoffset ?? 0n) * 1_000_000_000n;
  const ticks = (ns * units) / 1_000_000_000n;
  return block(
    6,
    concat([
      u32(interfaceId, le),
      u32(Number(ticks >> 32n), le),
      u32(Number(ticks & 0xffffffffn), le),
      u32(r.data.length, le),
      u32(r.originalLength ?? r.data.length, le),
      pad4(r.data),
    ]),
    le,
  );
}

export function pcapngSimplePacket(data: Uint8Array, bigEndian = false, originalLength?: number): Uint8Array {
  const le = !bigEndian;
  return block(3, concat([u32(originalLength ?? data.length, le), pad4(data)]), le);
}

// ---- framing ----

export interface UdpFrameInput {
  readonly srcAddr: string;
  readonly dstAddr: string;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
  readonly ipId?: number;
}

export function parseIPv4(s: string): Uint8Array {
  const parts = s.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) {
    throw new Error(`bad IPv4 address ${s}`);
  }
  return Uint8Array.from(parts);
}

export function parseIPv6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let s = text;
  // A dotted-quad tail (::ffff:192.0.2.1) becomes two hex groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const q = parseIPv4(dotted[2]);
    s = `${dotted[1]}${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const hg = head === '' ? [] : head.split(':');
  const tg = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? hg : [...hg, ...new Array<string>(8 - hg.length - tg.length).fill('0'), ...tg];
  if (groups.length !== 8) throw new Error(`bad IPv6 address ${text}`);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function udpHeader(f: UdpFrameInput): Uint8Array {
  const len = 8 + f.payload.length;
  return concat([u16(f.srcPort, false), u16(f.dstPort, false), u16(len, false), u16(0, false), f.payload]);
}

function checksum16(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length % 2) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function ipv4Header(src: Uint8Array, dst: Uint8Array, proto: number, payloadLen: number, id = 0, flagsOffset = 0): Uint8Array {
  const h = new Uint8Array(20);
  h[0] = 0x45;
  h[2] = (20 + payloadLen) >> 8;
  h[3] = (20 + payloadLen) & 0xff;
  h[4] = id >> 8;
  h[5] = id & 0xff;
  h[6] = flagsOffset >> 8;
  h[7] = flagsOffset & 0xff;
  h[8] = 64;
  h[9] = proto;
  h.set(src, 12);
  h.set(dst, 16);
  const c = checksum16(h);
  h[10] = c >> 8;
  h[11] = c & 0xff;
  return h;
}

export function ipv6Header(src: Uint8Array, dst: Uint8Array, nextHeader: number, payloadLen: number): Uint8Array {
  const h = new Uint8Array(40);
  h[0] = 0x60;
  h[4] = payloadLen >> 8;
  h[5] = payloadLen & 0xff;
  h[6] = nextHeader;
  h[7] = 64;
  h.set(src, 8);
  h.set(dst, 24);
  return h;
}

/** The IP packet (v4 or v6 by the address form) carrying a UDP datagram. */
export function udpIpPacket(f: UdpFrameInput): Uint8Array {
  const udp = udpHeader(f);
  if (f.srcAddr.includes(':')) {
    return concat([ipv6Header(parseIPv6(f.srcAddr), parseIPv6(f.dstAddr), 17, udp.length), udp]);
  }
  return concat([ipv4Header(parseIPv4(f.srcAddr), parseIPv4(f.dstAddr), 17, udp.length, f.ipId ?? 0), udp]);
}

/** Wraps an IP packet in the link-layer header of `linkType`. */
export function linkFrame(linkType: number, ip: Uint8Array, vlanIds: readonly number[] = []): Uint8Array {
  const v6 = ip[0] >> 4 === 6;
  const ethertype = v6 ? 0x86dd : 0x0800;
  switch (linkType) {
    case LinkType.ETHERNET: {
      const macs = Uint8Array.of(0x01, 0x00, 0x5e, 0x04, 0x04, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01);
      const tags = vlanIds.map((id) => concat([u16(0x8100, false), u16(id & 0x0fff, false)]));
      return concat([macs, ...tags, u16(ethertype, false), ip]);
    }
    case LinkType.LINUX_SLL: {
      // packet type 4 (outgoing), ARPHRD_ETHER, 6-byte address padded to 8
      return concat([u16(4, false), u16(1, false), u16(6, false), Uint8Array.of(2, 0, 0, 0, 0, 1, 0, 0), u16(ethertype, false), ip]);
    }
    case LinkType.LINUX_SLL2: {
      return concat([u16(ethertype, false), u16(0, false), u32(2, false), u16(1, false), Uint8Array.of(4, 6), Uint8Array.of(2, 0, 0, 0, 0, 1, 0, 0), ip]);
    }
    case LinkType.RAW:
    case LinkType.IPV4:
    case LinkType.IPV6:
      return ip;
    case LinkType.NULL:
      return concat([u32(v6 ? 30 : 2, true), ip]);
    case LinkType.LOOP:
      return concat([u32(v6 ? 30 : 2, false), ip]);
    default:
      throw new Error(`linkFrame: link type ${linkType} not supported`);
  }
}
