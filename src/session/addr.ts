/** Address helpers shared by the proxy machines and the command line. */
import { isIP } from 'node:net';

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

/** SSM ranges of the manual: 232/8 and ff30::/96 (we accept ff3x::/96 for every scope x). */
export function isSsm(addr: string): boolean {
  const v = isIP(addr);
  if (v === 4) return addr.split('.')[0] === '232';
  if (v === 6) {
    const w = expandV6(addr);
    return (w[0] & 0xfff0) === 0xff30 && w.slice(1, 6).every((x) => x === 0);
  }
  return false;
}

/** The eight 16-bit words of an IPv6 address (the caller checked it with isIP). */
export function expandV6(addr: string): number[] {
  let a = addr;
  const pct = a.indexOf('%');
  if (pct >= 0) a = a.slice(0, pct);
  let tail: number[] = [];
  const lastColon = a.lastIndexOf(':');
  if (a.slice(lastColon + 1).includes('.')) {
    const q = a.slice(lastColon + 1).split('.').map(Number);
    tail = [(q[0] << 8) | q[1], (q[2] << 8) | q[3]];
    a = a.slice(0, lastColon + 1) + '0';
  }
  const [head, rest] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':').map((x) => parseInt(x || '0', 16)) : [];
  let words: number[];
  if (rest === undefined) words = h;
  else {
    const r = rest ? rest.split(':').map((x) => parseInt(x || '0', 16)) : [];
    const fill = 8 - tail.length + (tail.length ? 1 : 0) - h.length - r.length;
    words = [...h, ...new Array<number>(Math.max(0, fill)).fill(0), ...r];
  }
  if (tail.length) words = [...words.slice(0, 6), ...tail];
  return words.slice(0, 8);
}

