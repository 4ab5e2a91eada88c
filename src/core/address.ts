/**
 * Addresses and ports, once for every layer: IP text <-> bytes (the wire codec re-exports these), multicast and
 * SSM ranges, and dgram's per-send lookup answered at once for IP literals.
 * (src/net keeps its own copies of parseIPv4/parseIPv6 and literalLookup for now: that folder belongs to the
 * socket engine's work in progress; they are to be folded into these.)
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';

/** UFTP's port (server, client and proxy listen here unless told otherwise). */
export const DEFAULT_PORT = 1044;

export function formatIPv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952 canonical text: lower case, longest run (>= 2) of zero groups compressed, first one on ties. */
export function formatIPv6(b: Uint8Array, o: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[o + i * 2] << 8) | b[o + i * 2 + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
/** Parses dotted-quad IPv4 into 4 bytes, or undefined. */
export function parseIPv4(s: string): Uint8Array | undefined {
  const m = V4.exec(s);
  if (!m) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const v = Number(m[i + 1]);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

/** Parses IPv6 text (with optional "::" and an optional trailing dotted IPv4) into 16 bytes, or undefined. */
export function parseIPv6(s: string): Uint8Array | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseSide = (t: string): number[] | undefined => {
    if (t === '') return [];
    const parts = t.split(':');
    const vals: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (!v4) return undefined;
        vals.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        vals.push(parseInt(p, 16));
      }
    }
    return vals;
  };
  let groups: number[];
  if (dbl >= 0) {
    const left = parseSide(s.slice(0, dbl));
    const right = parseSide(s.slice(dbl + 2));
    if (!left || !right || left.length + right.length > 7) return undefined;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = parseSide(s);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i] >> 8;
    out[i * 2 + 1] = groups[i] & 0xff;
  }
  return out;
}

/** The eight 16-bit words of an IPv6 address (a %zone is ignored; all zero if it does not parse). */
export function ipv6Words(addr: string): number[] {
  const pct = addr.indexOf('%');
  const b = parseIPv6(pct >= 0 ? addr.slice(0, pct) : addr) ?? new Uint8Array(16);
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[i * 2] << 8) | b[i * 2 + 1]);
  return w;
}

/** A multicast address, IPv4 (224/4) or IPv6 (ff00::/8). */
export function isMulticast(addr: string): boolean {
  const v = isIP(addr);
  if (v === 4) {
    const first = Number(addr.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  if (v === 6) return /^ff/i.test(addr);
  return false;
}

/** SSM ranges of the uftpproxyd manual: 232/8 and ff30::/96 (we accept ff3x::/96 for every scope x). */
export function isSsm(addr: string): boolean {
  const v = isIP(addr);
  if (v === 4) return addr.split('.')[0] === '232';
  if (v === 6) {
    const w = ipv6Words(addr);
    return (w[0] & 0xfff0) === 0xff30 && w.slice(1, 6).every((x) => x === 0);
  }
  return false;
}

/** The 32-bit ID of an IPv4 address (the ID a host gets by default), or undefined. */
export function idOfIPv4(addr: string): number | undefined {
  const b = parseIPv4(addr);
  return b ? ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0 : undefined;
}

/** The ID an IPv6 host gets by default: the last 4 bytes of the address. */
export function idOfIPv6(addr: string): number {
  const w = ipv6Words(addr);
  return ((w[6] << 16) | w[7]) >>> 0;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * dgram resolves the address of every unconnected send through its `lookup`; the default (dns.lookup) answers an
 * IP literal only after a regex and a process.nextTick, so each datagram costs a tick and two closures. This one
 * answers a literal at once (the send goes out in the same turn); anything else still goes to dns.lookup.
 */
export function literalLookup(address: string, family: unknown, cb: LookupCallback): void {
  const f = isIP(address);
  if (f === 0) {
    dnsLookup(address, { family: family === 6 ? 6 : family === 4 ? 4 : 0 }, cb);
    return;
  }
  cb(null, address, f);
}
