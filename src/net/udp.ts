/**
 * The UDP driver of the daemons: one node:dgram socket per address family with the options of the man pages.
 *
 *  - bind `port` (default 1044) on all addresses (or `address`);
 *  - multicast joins on chosen interfaces (-I; default all active non-loopback multicast interfaces),
 *    source-specific joins for SSM (232/8, FF3x::/96), leave;
 *  - multicast TTL (-t), outgoing multicast interface (-O), send/receive buffer sizes (-B; the kernel's
 *    clamp is reported), DSCP (-Q) through the native addon;
 *  - receive: dgram's (Buffer, rinfo) go straight to the handler, nothing allocated on our side;
 *  - send: send(buf, offset, len, port, addr) hands `buf` (or a view of it) to dgram, no copy; an IP-literal address is
 *    answered at once by the socket's lookup (no dns.lookup + process.nextTick per datagram, see literalLookup).
 *
 * Set-up failures are values: one line naming what failed (the daemon maps them to exit 2).
 */
import * as dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import type { Result } from '../wire/result.js';
import { isSsmAddress, ipFamily, stripZone } from './address.js';
import { setDscp, getTos } from './dscp.js';
import type { ResolvedInterface } from './interfaces.js';

export const DEFAULT_PORT = 1044;
export const DEFAULT_BUFFER_SIZE = 262144;
export const MIN_BUFFER_SIZE = 65536;
export const MAX_BUFFER_SIZE = 104857600;

export type MessageHandler = (msg: Buffer, rinfo: dgram.RemoteInfo) => void;

export interface UdpEndpointOptions {
  readonly family: 4 | 6;
  /** Default 1044; 0 = any free port. */
  readonly port?: number;
  /** Local address to bind; default all ('0.0.0.0' / '::'). */
  readonly address?: string;
  /** udp6 only: refuse IPv4-mapped traffic. Default false (dual stack). */
  readonly ipv6Only?: boolean;
  /** SO_REUSEADDR (several endpoints on one port). Default false, as the daemons. */
  readonly reuseAddr?: boolean;
  /** -B: send and receive buffer size in bytes. Default 262144. */
  readonly bufferSize?: number;
  /** -t: multicast TTL / hop limit. Default 1. */
  readonly ttl?: number;
  /** -Q: DSCP 0-63. Default 0 (left as the kernel has it). */
  readonly dscp?: number;
  /** -O: interface for outgoing multicast. */
  readonly multicastInterface?: ResolvedInterface;
  /** Loop our own multicast back to local listeners. Default true (the kernel's default). */
  readonly multicastLoopback?: boolean;
  readonly onMessage: MessageHandler;
  /** Asynchronous socket errors after set-up (a failed send without callback, ICMP errors...). */
  readonly onError?: (e: Error) => void;
}

export interface BufferSizes {
  readonly requested: number;
  /** What the kernel reports (Linux doubles the request for bookkeeping; we report half of it). */
  readonly recv: number;
  readonly send: number;
  /** True when the kernel gave less than requested (net.core.rmem_max / wmem_max). */
  readonly clamped: boolean;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/** The last address literalLookup saw and its family (a proxy sends most datagrams to one or two addresses). */
let lastLookupAddr = '';
let lastLookupFamily = 0;

/**
 * dgram resolves the address of every unconnected send through its `lookup`; the default (dns.lookup) answers an
 * IP literal only after a regex and a process.nextTick, so each datagram costs a tick and two closures. This one
 * answers a literal at once (the send goes out in the same turn) and remembers the last literal; anything else
 * still goes to dns.lookup, as before.
 */
export function literalLookup(address: string, family: unknown, cb: LookupCallback): void {
  if (address === lastLookupAddr) {
    cb(null, address, lastLookupFamily);
    return;
  }
  const f = isIP(address);
  if (f === 0) {
    dnsLookup(address, { family: family === 6 ? 6 : family === 4 ? 4 : 0 }, cb);
    return;
  }
  lastLookupAddr = address;
  lastLookupFamily = f;
  cb(null, address, f);
}

function bindError(o: UdpEndpointOptions, e: Error): string {
  return `Error binding socket for listener: ${e.message}` + (o.port === undefined ? ` (port ${DEFAULT_PORT})` : '');
}

export class UdpEndpoint {
  readonly family: 4 | 6;
  /** Warnings from set-up (e.g. buffer size clamped by the kernel) for the daemon to log. */
  readonly warnings: string[] = [];
  private closed = false;
  private readonly joined = new Set<string>();

  private constructor(
    readonly socket: dgram.Socket,
    family: 4 | 6,
    readonly buffers: BufferSizes,
  ) {
    this.family = family;
  }

  /** Creates, binds and configures the socket. */
  static async open(o: UdpEndpointOptions): Promise<Result<UdpEndpoint, string>> {
    const bufferSize = o.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (bufferSize < MIN_BUFFER_SIZE || bufferSize > MAX_BUFFER_SIZE) {
      return { ok: false, error: `buffer size ${bufferSize} out of range ${MIN_BUFFER_SIZE}-${MAX_BUFFER_SIZE}` };
    }
    const sock = dgram.createSocket({
      type: o.family === 4 ? 'udp4' : 'udp6',
      reuseAddr: o.reuseAddr ?? false,
      ipv6Only: o.ipv6Only ?? false,
      lookup: literalLookup,
    });
    const bound = await new Promise<Error | undefined>((resolve) => {
      const onErr = (e: Error): void => resolve(e);
      sock.once('error', onErr);
      sock.bind({ port: o.port ?? DEFAULT_PORT, address: o.address ?? (o.family === 4 ? '0.0.0.0' : '::'), exclusive: true }, () => {
        sock.removeListener('error', onErr);
        resolve(undefined);
      });
    });
    if (bound) {
      sock.close();
      return { ok: false, error: bindError(o, bound) };
    }
    const fail = (msg: string): Result<UdpEndpoint, string> => {
      sock.close();
      return { ok: false, error: msg };
    };
    // buffers
    let buffers: BufferSizes;
    try {
      sock.setRecvBufferSize(bufferSize);
      sock.setSendBufferSize(bufferSize);
      const recv = Math.floor(sock.getRecvBufferSize() / 2);
      const send = Math.floor(sock.getSendBufferSize() / 2);
      buffers = { requested: bufferSize, recv, send, clamped: recv < bufferSize || send < bufferSize };
    } catch (e) {
      return fail(`Error setting UDP buffer size ${bufferSize}: ${(e as Error).message}`);
    }
    try {
      sock.setMulticastTTL(o.ttl ?? 1);
      if (o.multicastLoopback !== undefined) sock.setMulticastLoopback(o.multicastLoopback);
      if (o.multicastInterface) sock.setMulticastInterface(o.multicastInterface.multicastInterface);
    } catch (e) {
      return fail(`Error setting multicast options: ${(e as Error).message}`);
    }
    if (o.dscp !== undefined && o.dscp !== 0) {
      const r = setDscp(sock, o.family, o.dscp);
      if (!r.ok) return fail(r.error);
    }
    const ep = new UdpEndpoint(sock, o.family, buffers);
    if (buffers.clamped) {
      ep.warnings.push(`UDP buffer size ${bufferSize} clamped by the kernel: receive ${buffers.recv}, send ${buffers.send}`);
    }
    sock.on('message', o.onMessage);
    sock.on('error', o.onError ?? (() => undefined));
    return { ok: true, value: ep };
  }

  /** The bound port and address. */
  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  /** Joins `group` on each interface (any-source). Errors name the group and interface. */
  join(group: string, ifaces: readonly ResolvedInterface[]): Result<void, string> {
    for (const i of ifaces) {
      const key = `*|${group}|${i.name}`;
      if (this.joined.has(key)) continue;
      try {
        this.socket.addMembership(group, i.multicastInterface);
        this.joined.add(key);
      } catch (e) {
        return { ok: false, error: `Error joining multicast group ${group} on ${i.name}: ${(e as Error).message}` };
      }
    }
    return { ok: true, value: undefined };
  }

  /** Source-specific join (SSM): only datagrams from `source` to `group` are received. */
  joinSource(source: string, group: string, ifaces: readonly ResolvedInterface[]): Result<void, string> {
    if (!isSsmAddress(group)) return { ok: false, error: `${group} is not a source-specific multicast address` };
    for (const i of ifaces) {
      const key = `${source}|${group}|${i.name}`;
      if (this.joined.has(key)) continue;
      try {
        this.socket.addSourceSpecificMembership(stripZone(source), group, i.multicastInterface);
        this.joined.add(key);
      } catch (e) {
        return { ok: false, error: `Error joining multicast group ${group} source ${source} on ${i.name}: ${(e as Error).message}` };
      }
    }
    return { ok: true, value: undefined };
  }

  /** Leaves what join/joinSource joined (source undefined = the any-source join). */
  leave(group: string, ifaces: readonly ResolvedInterface[], source?: string): Result<void, string> {
    for (const i of ifaces) {
      const key = `${source ?? '*'}|${group}|${i.name}`;
      if (!this.joined.has(key)) continue;
      this.joined.delete(key);
      try {
        if (source === undefined) this.socket.dropMembership(group, i.multicastInterface);
        else this.socket.dropSourceSpecificMembership(stripZone(source), group, i.multicastInterface);
      } catch (e) {
        return { ok: false, error: `Error leaving multicast group ${group} on ${i.name}: ${(e as Error).message}` };
      }
    }
    return { ok: true, value: undefined };
  }

  /** The groups currently joined, as "source|group|interface" ("*" for any-source). */
  memberships(): string[] {
    return [...this.joined];
  }

  /**
   * Sends buf[offset, offset+length) to addr:port. `addr` must be an IP literal (no DNS on the data path).
   * The buffer must not be reused until `cb` runs (dgram sends asynchronously).
   */
  send(buf: Buffer, offset: number, length: number, port: number, addr: string, cb?: (err: Error | null) => void): void {
    if (cb) this.socket.send(buf, offset, length, port, addr, cb);
    // the whole buffer: dgram's (buf, port, addr) form sends it as it is, where the offset form first makes a
    // new Buffer view of it (sliceBuffer) for every datagram
    else if (offset === 0 && length === buf.length) this.socket.send(buf, port, addr);
    else this.socket.send(buf, offset, length, port, addr);
  }

  setTtl(ttl: number): Result<void, string> {
    try {
      this.socket.setMulticastTTL(ttl);
      return { ok: true, value: undefined };
    } catch (e) {
      return { ok: false, error: `Error setting ttl ${ttl}: ${(e as Error).message}` };
    }
  }

  setDscp(dscp: number): Result<void, string> {
    return setDscp(this.socket, this.family, dscp);
  }

  /** The TOS byte / traffic class now set (DSCP << 2). */
  tos(): Result<number, string> {
    return getTos(this.socket, this.family);
  }

  setMulticastInterface(i: ResolvedInterface): Result<void, string> {
    try {
      this.socket.setMulticastInterface(i.multicastInterface);
      return { ok: true, value: undefined };
    } catch (e) {
      return { ok: false, error: `Error setting multicast interface ${i.name}: ${(e as Error).message}` };
    }
  }

  /** Closes the socket (memberships go with it). Resolves when closed; safe to call twice. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.joined.clear();
    return new Promise((r) => this.socket.close(() => r()));
  }
}

/** The family of an address to send to (an IPv4 address on a udp6 endpoint goes as ::ffff:a.b.c.d). */
export function sendAddress(ep: UdpEndpoint, addr: string): string {
  if (ep.family === 6 && ipFamily(addr) === 4) return `::ffff:${addr}`;
  return addr;
}
