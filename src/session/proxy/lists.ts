/**
 * -C client lists and -S server lists (man uftpproxyd):
 *   client list:  ID[|fingerprint]             e.g. 0x00001111|66:1E:...:BC
 *   server list:  ID|IP[|fingerprint]          e.g. 0x11112222|192.168.1.101|66:1E:...:BC
 * An ID is 0x followed by up to 8 hex digits, or an IPv4 address (the ID a host gets by default).
 * Blank lines and lines starting with '#' are skipped. Errors name the line.
 */
import { isIP } from 'node:net';
import { idOfIPv4 } from '../../core/address.js';

export interface ClientListEntry {
  readonly id: number;
  readonly fingerprint?: string;
}

export interface ServerListEntry {
  readonly id: number;
  readonly address: string;
  readonly fingerprint?: string;
}

export { isSsm } from '../../core/address.js';

const FP = /^([0-9a-fA-F]{2}:){19}[0-9a-fA-F]{2}$/;

export function parseId(raw: string): number | undefined {
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(raw)) {
    const n = parseInt(raw.slice(2), 16) >>> 0;
    return n === 0 || n === 0xffffffff ? undefined : n;
  }
  if (isIP(raw) === 4) return idOfIPv4(raw);
  return undefined;
}

function lines(text: string): [number, string][] {
  const out: [number, string][] = [];
  text.split(/\r?\n/).forEach((l, i) => {
    const t = l.trim();
    if (t.length > 0 && !t.startsWith('#')) out.push([i + 1, t]);
  });
  return out;
}

export function parseClientList(text: string): { ok: true; value: ClientListEntry[] } | { ok: false; error: string } {
  const out: ClientListEntry[] = [];
  for (const [n, l] of lines(text)) {
    const parts = l.split('|').map((p) => p.trim());
    if (parts.length > 2) return { ok: false, error: `line ${n}: expected ID[|fingerprint]` };
    const id = parseId(parts[0]);
    if (id === undefined) return { ok: false, error: `line ${n}: '${parts[0]}' is not a client ID (0xnnnnnnnn) or IPv4 address` };
    const fp = parts[1];
    if (fp !== undefined && fp !== '' && !FP.test(fp)) return { ok: false, error: `line ${n}: '${fp}' is not a key fingerprint` };
    out.push({ id, fingerprint: fp ? fp.toUpperCase() : undefined });
  }
  return { ok: true, value: out };
}

export function parseServerList(text: string): { ok: true; value: ServerListEntry[] } | { ok: false; error: string } {
  const out: ServerListEntry[] = [];
  for (const [n, l] of lines(text)) {
    const parts = l.split('|').map((p) => p.trim());
    if (parts.length < 2 || parts.length > 3) return { ok: false, error: `line ${n}: expected ID|IP[|fingerprint]` };
    const id = parseId(parts[0]);
    if (id === undefined) return { ok: false, error: `line ${n}: '${parts[0]}' is not a server ID (0xnnnnnnnn)` };
    if (isIP(parts[1]) === 0) return { ok: false, error: `line ${n}: '${parts[1]}' is not an IP address` };
    const fp = parts[2];
    if (fp !== undefined && fp !== '' && !FP.test(fp)) return { ok: false, error: `line ${n}: '${fp}' is not a key fingerprint` };
    out.push({ id, address: parts[1], fingerprint: fp ? fp.toUpperCase() : undefined });
  }
  return { ok: true, value: out };
}
