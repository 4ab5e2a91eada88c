/**
 * IP address helpers for the UDP driver: parsing to bytes, SSM ranges, the unique-ID rule.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** 4 or 6 for an IP literal (an IPv6 zone "%eth0" is allowed), 0 otherwise. */
export function ipFamily(addr: string): 0 | 4 | 6 {
  if (isIPv4(addr)) return 4;
  if (isIPv6(stripZone(addr))) return 6;
  return 0;
}

/** "fe80::1%eth0" -> "fe80::1". */
export function stripZone(addr: string): string {
  const i = addr.indexOf('%');
  return i < 0 ? addr : addr.slice(0, i);
}

/** The 4 bytes of an IPv4 literal, or undefined. */
export function parseIPv4(addr: string): Uint8Array | undefined {
  if (!isIPv4(addr)) return undefined;
  return Uint8Array.from(addr.split('.').map(Number));
}

/** The 16 bytes of an IPv6 literal (zone ignored, embedded IPv4 allowed), or undefined. */
export function parseIPv6(addr: string): Uint8Array | undefined {
  const a = stripZone(addr);
  if (!isIPv6(a)) return undefined;
  const out = new Uint8Array(16);
  let head = a;
  let tail = '';
  const dbl = a.indexOf('::');
  if (dbl >= 0) {
    head = a.slice(0, dbl);
    tail = a.slice(dbl + 2);
  }
  const words = (s: string): number[] => {
    if (s.length === 0) return [];
    const r: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const v4 = parseIPv4(part) as Uint8Array;
        r.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else r.push(parseInt(part, 16));
    }
    return r;
  };
  const h = words(head);
  const t = words(tail);
  const all = dbl >= 0 ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i] >> 8;
    out[2 * i + 1] = all[i] & 0xff;
  }
  return out;
}

/** IPv4 multicast (224.0.0.0/4) or IPv6 multicast (ff00::/8). */
export function isMulticastAddress(addr: string): boolean {
  const v4 = parseIPv4(addr);
  if (v4) return v4[0] >= 224 && v4[0] <= 239;
  const v6 = parseIPv6(addr);
  return v6 !== undefined && v6[0] === 0xff;
}

/**
 * A source-specific multicast address: 232.0.0.0/8 for IPv4; for IPv6 the man page's ff30::/96, read as
 * RFC 4607's FF3x::/96 (any scope x): ff3x:0:0:0:0:0:xxxx:xxxx.
 */
export function isSsmAddress(addr: string): boolean {
  const v4 = parseIPv4(addr);
  if (v4) return v4[0] === 232;
  const v6 = parseIPv6(addr);
  if (!v6) return false;
  if (v6[0] !== 0xff || (v6[1] & 0xf0) !== 0x30) return false;
  for (let i = 2; i < 12; i++) if (v6[i] !== 0) return false;
  return true;
}

/**
 * The unique ID the man page derives from an address: an IPv4 address is the UID; for IPv6 the last 4 bytes.
 * Returned as an unsigned 32-bit number (network byte order read big-endian, so 10.63.0.1 -> 0x0a3f0001).
 */
export function uidFromAddress(addr: string): number | undefined {
  const v4 = parseIPv4(addr);
  const b = v4 ?? parseIPv6(addr)?.subarray(12);
  if (!b) return undefined;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

/** 0x0a3f0001 -> "0x0A3F0001" (as UFTP prints IDs). */
export function formatUid(uid: number): string {
  return '0x' + (uid >>> 0).toString(16).toUpperCase().padStart(8, '0');
}
