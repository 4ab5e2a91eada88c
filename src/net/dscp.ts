/**
 * DSCP / TOS on a node:dgram socket through the uftp-dscp N-API addon (native/dscp): node:dgram has no setTOS.
 * The addon is a file: dependency built by `npm ci` (its install script is allowed in package.json).
 */
import { createRequire } from 'node:module';
import type * as dgram from 'node:dgram';
import { constants as osConstants } from 'node:os';
import type { Result } from '../wire/result.js';

/** One getifaddrs(3) entry as the addon returns it. */
export interface NativeIfAddr {
  readonly name: string;
  readonly family: 4 | 6;
  readonly address: string;
  readonly netmask: string;
  /** ifa_flags: IFF_UP 0x1, IFF_LOOPBACK 0x8, IFF_RUNNING 0x40, IFF_MULTICAST 0x1000... */
  readonly flags: number;
  readonly scopeid: number;
}

interface DscpAddon {
  setTos(fd: number, family: number, tos: number): number;
  getTos(fd: number, family: number): number;
  interfaces?(): NativeIfAddr[];
}

let addon: DscpAddon | undefined;
let loadError: string | undefined;

function load(): DscpAddon | undefined {
  if (addon || loadError) return addon;
  try {
    addon = createRequire(import.meta.url)('uftp-dscp') as DscpAddon;
  } catch (e) {
    loadError = `DSCP support unavailable: the uftp-dscp native addon did not load (${(e as Error).message.split('\n')[0]}); run npm ci`;
  }
  return addon;
}

function errnoName(errno: number): string {
  for (const [name, n] of Object.entries(osConstants.errno)) if (n === errno) return name;
  return `errno ${errno}`;
}

/**
 * The file descriptor of a bound dgram socket. Read from dgram's internal state (the public `_handle` getter
 * prints a deprecation warning); undefined before bind or if Node's internals change.
 */
export function socketFd(sock: dgram.Socket): number | undefined {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  if (!sym) return undefined;
  const state = (sock as unknown as Record<symbol, { handle?: { fd?: number } } | undefined>)[sym];
  const fd = state?.handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Sets the TOS byte (IPv4) / traffic class (IPv6) of outgoing packets to dscp << 2 (ECN bits 0). */
export function setDscp(sock: dgram.Socket, family: 4 | 6, dscp: number): Result<void, string> {
  if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63) return { ok: false, error: `dscp ${dscp} out of range 0-63` };
  return setTosByte(sock, family, dscp << 2);
}

/** Sets the whole TOS byte / traffic class: DSCP in the high six bits, ECN in the low two. */
export function setTosByte(sock: dgram.Socket, family: 4 | 6, tos: number): Result<void, string> {
  const a = load();
  if (!a) return { ok: false, error: loadError as string };
  const fd = socketFd(sock);
  if (fd === undefined) return { ok: false, error: 'cannot set DSCP: socket not bound (no file descriptor)' };
  const rc = a.setTos(fd, family, tos & 0xff);
  return rc === 0 ? { ok: true, value: undefined } : { ok: false, error: `Error setting dscp: ${errnoName(rc)}` };
}

/** The TOS byte / traffic class currently set on the socket. */
export function getTos(sock: dgram.Socket, family: 4 | 6): Result<number, string> {
  const a = load();
  if (!a) return { ok: false, error: loadError as string };
  const fd = socketFd(sock);
  if (fd === undefined) return { ok: false, error: 'socket not bound' };
  const v = a.getTos(fd, family);
  return v >= 0 ? { ok: true, value: v } : { ok: false, error: `Error getting tos: ${errnoName(-v)}` };
}

/**
 * Every IPv4/IPv6 address in getifaddrs(3) order with its interface flags, including interfaces without carrier
 * (which os.networkInterfaces() leaves out: libuv skips interfaces that are not IFF_RUNNING). Undefined when the
 * addon is not built.
 */
export function nativeInterfaces(): NativeIfAddr[] | undefined {
  const a = load();
  return a?.interfaces ? a.interfaces() : undefined;
}
