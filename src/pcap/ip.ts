/**
 * IPv4, IPv6 and UDP: from an IP packet to the UDP datagram inside it, reassembling fragments.
 *
 * IPv4 (RFC 791): options skipped by IHL; Ethernet padding beyond Total Length dropped.
 * IPv6 (RFC 8200): extension headers (hop-by-hop, routing, destination options, AH, mobility,
 * HIP, shim6, experimental) skipped; ESP ends the walk (the rest is encrypted).
 * Fragments (IPv4 MF/offset, IPv6 Fragment header) are reassembled; the datagram is reported
 * at the frame that completes it, as Wireshark does. Reassembly state is bounded in count and
 * in capture time, so a capture full of lost fragments cannot grow memory without limit.
 * UDP (RFC 768): checksums are not verified (tshark does not by default either).
 */
import { formatIPv4 as wireFormatIPv4, formatIPv6 as wireFormatIPv6 } from '../wire/fields.js';

export interface UdpDatagram {
  readonly srcAddr: string;
  readonly dstAddr: string;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly ipVersion: 4 | 6;
  /** The UDP payload; shorter than `udpLength - 8` when the capture was cut by a snaplen. */
  readonly payload: Uint8Array;
  /** Payload length the UDP header declares. */
  readonly declaredLength: number;
  /** Number of IP fragments the datagram was reassembled from (1 when not fragmented). */
  readonly fragments: number;
}

export type IpDecode =
  | { readonly kind: 'udp'; readonly datagram: UdpDatagram }
  /** A fragment held for reassembly; the datagram comes with a later frame. */
  | { readonly kind: 'fragment' }
  /** Not UDP, or nothing to decode (ESP, ICMP, TCP...). */
  | { readonly kind: 'other'; readonly reason: string }
  /** Malformed; `ports` given when the UDP header could be read, so a caller can filter by port. */
  | {
      readonly kind: 'error';
      readonly message: string;
      readonly srcAddr?: string;
      readonly dstAddr?: string;
      readonly ports?: { readonly src: number; readonly dst: number };
    };

const PROTO_UDP = 17;
const V6_SKIPPABLE = new Set([0, 43, 60, 135, 139, 140, 253, 254]);
const V6_FRAGMENT = 44;
const V6_AH = 51;
const V6_ESP = 50;
const V6_NONE = 59;

export function formatIPv4(b: Uint8Array): string {
  return wireFormatIPv4(b, 0);
}

/** RFC 5952 text form (the wire codec's), except that IPv4-mapped addresses keep the dotted quad as tshark prints them. */
export function formatIPv6(b: Uint8Array): string {
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; mapped && i < 10; i++) mapped = b[i] === 0;
  return mapped ? `::ffff:${wireFormatIPv4(b, 12)}` : wireFormatIPv6(b, 0);
}

/** "ip:port", with IPv6 addresses in brackets ("[ff02::1]:1044"). */
export function formatEndpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

interface PendingFragments {
  readonly version: 4 | 6;
  readonly srcAddr: string;
  readonly dstAddr: string;
  protocol: number;
  /** Total payload length, known once the last fragment (MF clear) is seen. */
  total: number;
  readonly pieces: { readonly offset: number; readonly data: Uint8Array }[];
  readonly firstSeenNs: bigint;
}

export interface ReassemblyOptions {
  /** Fragment sets kept at once; the oldest is dropped beyond this. Default 1024. */
  readonly maxPending?: number;
  /** A fragment set older than this (capture time) is dropped. Default 60 s. */
  readonly timeoutNs?: bigint;
}

/** Turns IP packets into UDP datagrams, keeping fragment state between calls. */
export class UdpExtractor {
  private readonly pending = new Map<string, PendingFragments>();
  private readonly maxPending: number;
  private readonly timeoutNs: bigint;
  /** Fragment sets dropped unfinished (timeout, overflow, or left at the end). */
  droppedFragmentSets = 0;

  constructor(opts: ReassemblyOptions = {}) {
    this.maxPending = opts.maxPending ?? 1024;
    this.timeoutNs = opts.timeoutNs ?? 60_000_000_000n;
  }

  /** Fragment sets still waiting for pieces. */
  get pendingCount(): number {
    return this.pending.size;
  }

  decode(version: 4 | 6, packet: Uint8Array, timeNs: bigint): IpDecode {
    return version === 4 ? this.decodeV4(packet, timeNs) : this.decodeV6(packet, timeNs);
  }

  private decodeV4(p: Uint8Array, timeNs: bigint): IpDecode {
    if (p.length < 20) return { kind: 'error', message: `IPv4 header cut short (${p.length} bytes)` };
    if (p[0] >> 4 !== 4) return { kind: 'error', message: `IPv4 packet with version ${p[0] >> 4}` };
    const ihl = (p[0] & 0x0f) * 4;
    if (ihl < 20) return { kind: 'error', message: `IPv4 header length ${ihl} < 20` };
    if (p.length < ihl) return { kind: 'error', message: `IPv4 header of ${ihl} bytes cut short (${p.length} captured)` };
    let total = (p[2] << 8) | p[3];
    if (total === 0) total = p.length; // segmentation offload: the length was never filled in
    if (total < ihl) return { kind: 'error', message: `IPv4 total length ${total} < header length ${ihl}` };
    const srcAddr = formatIPv4(p.subarray(12, 16));
    const dstAddr = formatIPv4(p.subarray(16, 20));
    const proto = p[9];
    const flagsOff = (p[6] << 8) | p[7];
    const more = (flagsOff & 0x2000) !== 0;
    const fragOffset = (flagsOff & 0x1fff) * 8;
    const end = Math.min(total, p.length);
    const payload = p.subarray(ihl, end);
    const cut = total > p.length;
    if (more || fragOffset > 0) {
      if (proto !== PROTO_UDP) return { kind: 'other', reason: `IPv4 fragment of protocol ${proto}` };
      if (cut) return { kind: 'error', message: 'IPv4 fragment cut short by the capture: cannot reassemble', srcAddr, dstAddr };
      const id = (p[4] << 8) | p[5];
      return this.fragment(4, `4|${srcAddr}|${dstAddr}|${proto}|${id}`, srcAddr, dstAddr, proto, fragOffset, more, payload, timeNs);
    }
    if (proto !== PROTO_UDP) return { kind: 'other', reason: `IP protocol ${proto}` };
    return udp(4, srcAddr, dstAddr, payload, total - ihl, 1);
  }

  private decodeV6(p: Uint8Array, timeNs: bigint): IpDecode {
    if (p.length < 40) return { kind: 'error', message: `IPv6 header cut short (${p.length} bytes)` };
    if (p[0] >> 4 !== 6) return { kind: 'error', message: `IPv6 packet with version ${p[0] >> 4}` };
    const payloadLen = (p[4] << 8) | p[5];
    const total = payloadLen === 0 ? p.length : 40 + payloadLen; // 0: jumbogram, take what was captured
    const srcAddr = formatIPv6(p.subarray(8, 24));
    const dstAddr = formatIPv6(p.subarray(24, 40));
    const end = Math.min(total, p.length);
    let nh = p[6];
    let at = 40;
    let frag: { offset: number; more: boolean; id: number } | null = null;
    while (true) {
      if (nh === PROTO_UDP) break;
      if (nh === V6_ESP || nh === V6_NONE) return { kind: 'other', reason: `IPv6 next header ${nh}` };
      if (V6_SKIPPABLE.has(nh) || nh === V6_AH || nh === V6_FRAGMENT) {
        if (at + 8 > end) return { kind: 'error', message: `IPv6 extension header ${nh} cut short`, srcAddr, dstAddr };
        const next = p[at];
        if (nh === V6_FRAGMENT) {
          const offMore = (p[at + 2] << 8) | p[at + 3];
          const id = ((p[at + 4] << 24) | (p[at + 5] << 16) | (p[at + 6] << 8) | p[at + 7]) >>> 0;
          frag = { offset: offMore & 0xfff8, more: (offMore & 1) !== 0, id };
          nh = next;
          at += 8;
          // Atomic fragment (offset 0, M clear: RFC 6946) is a whole packet.
          if (frag.offset === 0 && !frag.more) frag = null;
          else break;
          continue;
        }
        const len = nh === V6_AH ? (p[at + 1] + 2) * 4 : (p[at + 1] + 1) * 8;
        nh = next;
        at += len;
        continue;
      }
      return { kind: 'other', reason: `IPv6 next header ${nh}` };
    }
    if (at > end) return { kind: 'error', message: 'IPv6 extension headers run past the packet', srcAddr, dstAddr };
    const payload = p.subarray(at, end);
    if (frag !== null) {
      // The Fragment header's Next Header names the upper layer only in the first fragment.
      if (total > p.length) return { kind: 'error', message: 'IPv6 fragment cut short by the capture: cannot reassemble', srcAddr, dstAddr };
      return this.fragment(6, `6|${srcAddr}|${dstAddr}|${frag.id}`, srcAddr, dstAddr, frag.offset === 0 ? nh : -1, frag.offset, frag.more, payload, timeNs);
    }
    if (nh !== PROTO_UDP) return { kind: 'other', reason: `IPv6 next header ${nh}` };
    return udp(6, srcAddr, dstAddr, payload, total - at, 1);
  }

  private expire(now: bigint): void {
    for (const [k, v] of this.pending) {
      if (now - v.firstSeenNs > this.timeoutNs) {
        this.pending.delete(k);
        this.droppedFragmentSets++;
      }
    }
  }

  private fragment(
    version: 4 | 6,
    key: string,
    srcAddr: string,
    dstAddr: string,
    protocol: number,
    offset: number,
    more: boolean,
    data: Uint8Array,
    timeNs: bigint,
  ): IpDecode {
    this.expire(timeNs);
    let set = this.pending.get(key);
    if (set === undefined) {
      if (this.pending.size >= this.maxPending) {
        const oldest = this.pending.keys().next();
        if (!oldest.done) this.pending.delete(oldest.value);
        this.droppedFragmentSets++;
      }
      set = { version, srcAddr, dstAddr, protocol: -1, total: -1, pieces: [], firstSeenNs: timeNs };
      this.pending.set(key, set);
    }
    if (offset === 0 && protocol >= 0) set.protocol = protocol;
    if (!more) set.total = offset + data.length;
    // Copy: the frame's bytes are a view into a stream chunk we should not pin for long.
    set.pieces.push({ offset, data: data.slice() });
    if (set.total < 0) return { kind: 'fragment' };
    // Complete when the pieces cover [0, total) without a gap.
    const sorted = [...set.pieces].sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const piece of sorted) {
      if (piece.offset > covered) return { kind: 'fragment' };
      covered = Math.max(covered, piece.offset + piece.data.length);
    }
    if (covered < set.total) return { kind: 'fragment' };
    this.pending.delete(key);
    const whole = new Uint8Array(set.total);
    for (const piece of sorted) whole.set(piece.data.subarray(0, Math.max(0, set.total - piece.offset)), piece.offset);
    if (set.protocol !== PROTO_UDP) {
      if (set.protocol < 0) return { kind: 'error', message: 'reassembled IP packet lacks its first fragment header', srcAddr, dstAddr };
      return { kind: 'other', reason: `reassembled IP protocol ${set.protocol}` };
    }
    return udp(version, srcAddr, dstAddr, whole, whole.length, set.pieces.length);
  }
}

/** `payload` is what was captured of the IP payload; `ipPayloadLen` what the IP header says it is. */
function udp(
  version: 4 | 6,
  srcAddr: string,
  dstAddr: string,
  payload: Uint8Array,
  ipPayloadLen: number,
  fragments: number,
): IpDecode {
  if (payload.length < 8) {
    return { kind: 'error', message: `UDP header cut short (${payload.length} of 8 bytes)`, srcAddr, dstAddr };
  }
  const src = (payload[0] << 8) | payload[1];
  const dst = (payload[2] << 8) | payload[3];
  let len = (payload[4] << 8) | payload[5];
  if (len === 0 && version === 6) len = ipPayloadLen; // jumbogram
  if (len < 8) return { kind: 'error', message: `UDP length ${len} < 8`, srcAddr, dstAddr, ports: { src, dst } };
  if (len > ipPayloadLen) {
    return {
      kind: 'error',
      message: `UDP length ${len} exceeds the IP payload of ${ipPayloadLen} bytes`,
      srcAddr,
      dstAddr,
      ports: { src, dst },
    };
  }
  return {
    kind: 'udp',
    datagram: {
      srcAddr,
      dstAddr,
      srcPort: src,
      dstPort: dst,
      ipVersion: version,
      payload: payload.subarray(8, Math.min(len, payload.length)),
      declaredLength: len - 8,
      fragments,
    },
  };
}
