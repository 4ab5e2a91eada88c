/**
 * Network interfaces as the daemons see them: os.networkInterfaces() plus the kernel's interface flags
 * (/sys/class/net/IF/flags: IFF_UP, IFF_LOOPBACK, IFF_MULTICAST) and operstate, so "active non-loopback
 * multicast-capable interfaces" (the default for -I) and the default UID (-U) follow the man pages.
 * Resolution of -I / -O specs: by interface name, by IP, or by hostname.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { lookup } from 'node:dns/promises';
import type { Result } from '../wire/result.js';
import { ipFamily, stripZone, uidFromAddress } from './address.js';
import { nativeInterfaces } from './dscp.js';

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFF_RUNNING = 0x40;
const IFF_MULTICAST = 0x1000;

export interface IfAddress {
  readonly address: string;
  readonly family: 4 | 6;
  readonly netmask: string;
  /** IPv6 scope id (interface index for link-local). */
  readonly scopeid?: number;
}

export interface NetInterface {
  readonly name: string;
  /** Addresses in the order the system lists them. */
  readonly addresses: readonly IfAddress[];
  /**
   * IFF_UP (administratively up). The carrier is not required: the real uftpd takes an IFF_UP interface
   * without carrier (operstate "down") as its default-UID interface (observed 2026-11-22).
   */
  readonly up: boolean;
  /** /sys/class/net/IF/operstate ("up", "down", "unknown"...), for information. */
  readonly operstate: string;
  /** IFF_RUNNING (carrier). */
  readonly running: boolean;
  readonly loopback: boolean;
  /** IFF_MULTICAST. */
  readonly multicast: boolean;
  /** Kernel interface index (from /sys/class/net/IF/ifindex), 0 if unknown. */
  readonly index: number;
}

function readSys(name: string, file: string): string | undefined {
  try {
    return fs.readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * All interfaces with addresses, in the system's (getifaddrs) order, grouped by name in order of first
 * appearance. Uses the native addon's getifaddrs so interfaces without carrier are listed too (the real uftpd
 * sees them); falls back to os.networkInterfaces() (which omits them) when the addon is not built.
 */
export function listInterfaces(): NetInterface[] {
  const native = nativeInterfaces();
  const groups = new Map<string, { addrs: IfAddress[]; flags: number | undefined; internal: boolean }>();
  if (native) {
    for (const a of native) {
      let g = groups.get(a.name);
      if (!g) groups.set(a.name, (g = { addrs: [], flags: a.flags, internal: false }));
      g.addrs.push({ address: a.address, family: a.family, netmask: a.netmask, scopeid: a.family === 6 ? a.scopeid : undefined });
    }
  } else {
    for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
      if (!addrs) continue;
      groups.set(name, {
        addrs: addrs.map((a) => ({ address: a.address, family: a.family === 'IPv4' ? 4 : 6, netmask: a.netmask, scopeid: a.family === 'IPv6' ? a.scopeid : undefined })),
        flags: undefined,
        internal: addrs.some((a) => a.internal),
      });
    }
  }
  const out: NetInterface[] = [];
  for (const [name, g] of groups) {
    let flags = g.flags;
    if (flags === undefined) {
      const t = readSys(name, 'flags');
      flags = t !== undefined ? parseInt(t, 16) : IFF_UP | IFF_RUNNING | (g.internal ? IFF_LOOPBACK : 0);
    }
    out.push({
      name,
      addresses: g.addrs,
      up: (flags & IFF_UP) !== 0,
      operstate: readSys(name, 'operstate') ?? 'unknown',
      running: (flags & IFF_RUNNING) !== 0,
      loopback: (flags & IFF_LOOPBACK) !== 0,
      multicast: (flags & IFF_MULTICAST) !== 0,
      index: Number(readSys(name, 'ifindex') ?? 0),
    });
  }
  return out;
}

/** The default set for -I: active, non-loopback, multicast-capable interfaces. */
export function multicastInterfaces(all: readonly NetInterface[] = listInterfaces()): NetInterface[] {
  return all.filter((i) => i.up && !i.loopback && i.multicast);
}

/**
 * The default unique ID (-U): the man page says "the IP address of the first listed multicast capable
 * interface"; IPv4 -> the address, IPv6 -> its last 4 bytes. What the real uftpd 4.10.2 does (black-box,
 * 2026-11-22, REGISTER source IDs): the first IPv4 address of a non-loopback IFF_UP interface, even one with
 * IFF_MULTICAST cleared or without carrier, and even when an IPv6-only interface has a lower ifindex.
 * "First listed" follows getifaddrs(3), which lists every interface's IPv4 addresses before any IPv6 address.
 * Undefined when there is no address at all.
 */
export function defaultUid(all: readonly NetInterface[] = listInterfaces()): { uid: number; address: string; name: string } | undefined {
  const mc = all.filter((i) => i.up && !i.loopback);
  for (const family of [4, 6] as const) {
    for (const i of mc) {
      const a = i.addresses.find((x) => x.family === family);
      if (a) return { uid: uidFromAddress(a.address) as number, address: a.address, name: i.name };
    }
  }
  return undefined;
}

/** An interface chosen by -I/-O, with the address to use for the requested family. */
export interface ResolvedInterface {
  readonly name: string;
  readonly index: number;
  /** An address of the interface in the family asked for (IPv4 for joins on udp4; any IPv6 for udp6). */
  readonly address: string;
  readonly family: 4 | 6;
  /** What libuv takes as the interface of a multicast join/send: the IPv4 address, or "::%name" for IPv6. */
  readonly multicastInterface: string;
}

function toResolved(i: NetInterface, family: 4 | 6, address?: string): ResolvedInterface | undefined {
  const a = address ?? i.addresses.find((x) => x.family === family)?.address;
  if (a === undefined) {
    // IPv6 joins need no address on the interface, only its index
    if (family === 6) return { name: i.name, index: i.index, address: '::', family, multicastInterface: `::%${i.name}` };
    return undefined;
  }
  return { name: i.name, index: i.index, address: a, family, multicastInterface: family === 4 ? a : `::%${i.name}` };
}

/**
 * Resolves one -I/-O item (interface name, IP literal or hostname) to an interface for `family`.
 * Errors are one line naming the item.
 */
export async function resolveInterface(spec: string, family: 4 | 6, all: readonly NetInterface[] = listInterfaces()): Promise<Result<ResolvedInterface, string>> {
  const byName = all.find((i) => i.name === spec);
  if (byName) {
    const r = toResolved(byName, family);
    return r ? { ok: true, value: r } : { ok: false, error: `interface ${spec} has no IPv${family} address` };
  }
  let ip = ipFamily(spec) !== 0 ? stripZone(spec) : undefined;
  if (ip === undefined) {
    try {
      ip = (await lookup(spec, { family })).address;
    } catch (e) {
      return { ok: false, error: `Invalid name/address ${spec}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
  }
  const want = ip.toLowerCase();
  for (const i of all) {
    const a = i.addresses.find((x) => x.address.toLowerCase() === want);
    if (a) {
      if (a.family !== family) return { ok: false, error: `interface address ${spec} is not IPv${family}` };
      const r = toResolved(i, family, a.address);
      if (r) return { ok: true, value: r };
    }
  }
  return { ok: false, error: `no interface with address ${spec}${spec !== ip ? ` (${ip})` : ''}` };
}

/** Resolves a -I list; with no list, every active non-loopback multicast interface that can serve `family`. */
export async function resolveInterfaces(specs: readonly string[] | undefined, family: 4 | 6, all: readonly NetInterface[] = listInterfaces()): Promise<Result<ResolvedInterface[], string>> {
  if (specs === undefined || specs.length === 0) {
    const out: ResolvedInterface[] = [];
    for (const i of multicastInterfaces(all)) {
      const r = toResolved(i, family);
      if (r) out.push(r);
    }
    return { ok: true, value: out };
  }
  const out: ResolvedInterface[] = [];
  for (const s of specs) {
    const r = await resolveInterface(s, family, all);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return { ok: true, value: out };
}
