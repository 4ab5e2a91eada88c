/**
 * The UDP endpoint of the daemons: one socket per address family with the options of the man pages, over the
 * socket engine (src/net/engine.ts: the native batched engine, or node:dgram as the fallback; docs/net-engine.md).
 *
 *  - bind `port` (default 1044) on all addresses (or `address`);
 *  - multicast joins on chosen interfaces (-I; default all active non-loopback multicast interfaces),
 *    source-specific joins for SSM (232/8, FF3x::/96), leave;
 *  - multicast TTL (-t), outgoing multicast interface (-O), send/receive buffer sizes (-B; the kernel's
 *    clamp is reported), DSCP (-Q) and the whole TOS byte (ECN);
 *  - receive: `onBatch` gets each batch as the engine delivers it (views of its ring, valid during the call), with
 *    the destination address, interface and TOS of every datagram; or `onMessage(msg, rinfo)` per datagram, where
 *    `msg` is a copy unless `borrow` is set (then a view of the ring, valid during the call only);
 *  - send: send(buf, offset, len, port, addr) takes the bytes before it returns (native: copied into the staging
 *    area and sent at the end of the turn with sendmmsg / GSO; dgram: handed to libuv, keep `buf` until `cb`).
 *
 * Set-up failures are values: one line naming what failed (the daemon maps them to exit 2).
 */
import type { Result } from '../wire/result.js';
import { isSsmAddress, ipFamily, stripZone } from './address.js';
import type { ResolvedInterface } from './interfaces.js';
import { loadNativeAddon, udpBackend, type BackendKind, type EngineSocket, type EngineStats, type RecvBatch, type RemoteInfo, type TurnHooks } from './engine.js';
import { NativeSocket } from './engine-native.js';
import { DgramSocket } from './engine-dgram.js';

export { literalLookup } from '../core/address.js';
export type { RecvBatch, RemoteInfo, EngineStats, BackendKind, TurnHooks } from './engine.js';
export { udpBackend } from './engine.js';

export const DEFAULT_PORT = 1044;
export const DEFAULT_BUFFER_SIZE = 262144;
export const MIN_BUFFER_SIZE = 65536;
export const MAX_BUFFER_SIZE = 104857600;

export type MessageHandler = (msg: Buffer, rinfo: RemoteInfo) => void;

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
  /** Per datagram (a copy of it unless `borrow`). One of onMessage and onBatch is needed. */
  readonly onMessage?: MessageHandler;
  /** Per batch, views valid during the call: the engine's whole receive path without a copy. */
  readonly onBatch?: (b: RecvBatch) => void;
  /** onMessage gets views of the receive ring (valid during the call only) instead of copies. Default false. */
  readonly borrow?: boolean;
  /** Asynchronous socket errors after set-up (a failed send without callback, ICMP errors...). */
  readonly onError?: (e: Error) => void;
  /** Which backend; default the process's choice (udpBackend(): UFTP_UDP_BACKEND, else native when it loads). */
  readonly backend?: BackendKind;
  /** Datagrams per receive batch (native; default 64). */
  readonly ringSlots?: number;
  /** Largest datagram received whole (default 65536); longer ones are dropped and counted as truncated
   *  (onBatch sees them, flagged). */
  readonly maxDatagram?: number;
  /** UDP GSO (native): default on; UFTP_UDP_GSO=0 turns it off for the process (for measurements). */
  readonly gso?: boolean;
  /** Read each datagram's destination, interface and TOS (native). Default true; off saves two control
   *  messages per datagram where nobody looks (b.to / b.ifindex / b.tos then say unknown). */
  readonly recvInfo?: boolean;
  /** UDP GRO (native): default on; UFTP_UDP_GRO=0 turns it off for the process (for measurements). */
  readonly gro?: boolean;
  /** Receive spin bound in microseconds (native, request/response traffic such as lock-step TFTP; see
   *  docs/net-engine.md); 0 = off. Default UFTP_UDP_SPIN_US, else DEFAULT_SPIN_US. */
  readonly spinUs?: number;
  /** The armed reply (native; docs/net-engine.md "Armed reply"): default on; UFTP_UDP_ARM=0 turns it off for the
   *  process (for measurements). dgram: never (arm() says false). */
  readonly arm?: boolean;
  /** The stall guard's drain threshold for a socket whose JS thread still reads (native; EngineSocketOptions). */
  readonly guardBusyFill?: number;
}

/** The receive spin's default bound (µs). */
export const DEFAULT_SPIN_US = 50;

/** UFTP_UDP_SPIN_US: the receive spin's bound for every endpoint of the process (0 = off, at most 1000 µs). */
function envSpinUs(): number {
  const e = process.env.UFTP_UDP_SPIN_US;
  if (e === undefined || e === '') return DEFAULT_SPIN_US;
  const v = Number(e);
  return Number.isInteger(v) && v > 0 ? Math.min(v, 1000) : 0;
}

export interface BufferSizes {
  readonly requested: number;
  /** What the kernel reports (Linux doubles the request for bookkeeping; we report half of it). */
  readonly recv: number;
  readonly send: number;
  /** True when the kernel gave less than requested (net.core.rmem_max / wmem_max). */
  readonly clamped: boolean;
}

/** The backend line goes into the warnings of the first endpoint a process opens (the daemons log those). */
let backendAnnounced = false;

function bindError(o: UdpEndpointOptions, e: Error): string {
  return `Error binding socket for listener: ${e.message}` + (o.port === undefined ? ` (port ${DEFAULT_PORT})` : '');
}

export class UdpEndpoint {
  readonly family: 4 | 6;
  /** Warnings from set-up (e.g. buffer size clamped by the kernel) for the daemon to log. */
  readonly warnings: string[] = [];
  private closed = false;
  private readonly joined = new Set<string>();
  private readonly armOn: boolean;

  private constructor(
    /** The engine socket (native or dgram). */
    readonly engine: EngineSocket,
    family: 4 | 6,
    readonly buffers: BufferSizes,
    arm: boolean,
  ) {
    this.family = family;
    this.armOn = arm && engine.arm !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Which backend this endpoint runs on. */
  get backend(): BackendKind {
    return this.engine.kind;
  }

  /** Creates, binds and configures the socket. */
  static async open(o: UdpEndpointOptions): Promise<Result<UdpEndpoint, string>> {
    const bufferSize = o.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (bufferSize < MIN_BUFFER_SIZE || bufferSize > MAX_BUFFER_SIZE) {
      return { ok: false, error: `buffer size ${bufferSize} out of range ${MIN_BUFFER_SIZE}-${MAX_BUFFER_SIZE}` };
    }
    if (!o.onMessage && !o.onBatch) return { ok: false, error: 'UdpEndpoint: onMessage or onBatch is needed' };
    const choice = udpBackend();
    const kind = o.backend ?? choice.kind;
    let engine: EngineSocket;
    const eo = { family: o.family, ringSlots: o.ringSlots, maxDatagram: o.maxDatagram, gso: o.gso ?? process.env.UFTP_UDP_GSO !== '0', recvInfo: o.recvInfo, gro: o.gro ?? process.env.UFTP_UDP_GRO !== '0', spinUs: o.spinUs ?? envSpinUs(), guardBusyFill: o.guardBusyFill };
    if (kind === 'native') {
      const addon = loadNativeAddon();
      if (!addon) return { ok: false, error: choice.error ?? `UDP engine: the uftp-udp addon did not load` };
      try {
        engine = new NativeSocket(addon, eo);
      } catch (e) {
        return { ok: false, error: `Error creating socket: ${(e as Error).message}` };
      }
    } else {
      engine = new DgramSocket(eo, o.reuseAddr ?? false, o.ipv6Only ?? false);
    }
    const bound = await engine.bind(o.address ?? (o.family === 4 ? '0.0.0.0' : '::'), o.port ?? DEFAULT_PORT, o.reuseAddr ?? false, o.ipv6Only ?? false);
    if (bound) {
      await engine.close();
      return { ok: false, error: bindError(o, bound) };
    }
    const fail = async (msg: string): Promise<Result<UdpEndpoint, string>> => {
      await engine.close();
      return { ok: false, error: msg };
    };
    // buffers
    let buffers: BufferSizes;
    try {
      engine.setRecvBufferSize(bufferSize);
      engine.setSendBufferSize(bufferSize);
      const recv = Math.floor(engine.getRecvBufferSize() / 2);
      const send = Math.floor(engine.getSendBufferSize() / 2);
      buffers = { requested: bufferSize, recv, send, clamped: recv < bufferSize || send < bufferSize };
    } catch (e) {
      return fail(`Error setting UDP buffer size ${bufferSize}: ${(e as Error).message}`);
    }
    try {
      engine.setMulticastTTL(o.ttl ?? 1);
      if (o.multicastLoopback !== undefined) engine.setMulticastLoopback(o.multicastLoopback);
      if (o.multicastInterface) engine.setMulticastInterface(o.multicastInterface);
    } catch (e) {
      return fail(`Error setting multicast options: ${(e as Error).message}`);
    }
    if (o.dscp !== undefined && o.dscp !== 0) {
      if (!Number.isInteger(o.dscp) || o.dscp < 0 || o.dscp > 63) return fail(`dscp ${o.dscp} out of range 0-63`);
      try {
        engine.setTos(o.dscp << 2);
      } catch (e) {
        return fail((e as Error).message.startsWith('Error') ? (e as Error).message : `Error setting dscp: ${(e as Error).message}`);
      }
    }
    const ep = new UdpEndpoint(engine, o.family, buffers, o.arm ?? process.env.UFTP_UDP_ARM !== '0');
    if (!backendAnnounced) {
      backendAnnounced = true;
      ep.warnings.push(kind === choice.kind ? choice.line : `UDP engine: ${kind} (asked for by the program)`);
    }
    if (buffers.clamped) {
      ep.warnings.push(`UDP buffer size ${bufferSize} clamped by the kernel: receive ${buffers.recv}, send ${buffers.send}`);
    }
    try {
      engine.start(o.onBatch ?? perMessage(o.onMessage as MessageHandler, (o.borrow ?? false) || kind === 'dgram', ep), o.onError ?? (() => undefined));
    } catch (e) {
      return fail(`Error starting the socket: ${(e as Error).message}`);
    }
    return { ok: true, value: ep };
  }

  /** The bound port and address. */
  address(): { address: string; port: number } {
    return this.engine.address();
  }

  /** Joins `group` on each interface (any-source). Errors name the group and interface. */
  join(group: string, ifaces: readonly ResolvedInterface[]): Result<void, string> {
    for (const i of ifaces) {
      const key = `*|${group}|${i.name}`;
      if (this.joined.has(key)) continue;
      try {
        this.engine.membership(true, group, i);
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
        this.engine.membership(true, group, i, stripZone(source));
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
        this.engine.membership(false, group, i, source === undefined ? undefined : stripZone(source));
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
   * Native: the bytes are copied before send returns and go out at the end of the turn (or at flush()), batched;
   * dgram: do not reuse `buf` until `cb` runs. Returns false when the datagram was refused (send queue full while
   * the kernel is full); `cb` or onError has the reason. dgram without `cb`: no completion callback per datagram
   * (the cheap path) and so no report of the kernel's refusal (ENETUNREACH, ...): pass `cb` to see it.
   */
  send(buf: Uint8Array, offset: number, length: number, port: number, addr: string, cb?: (err: Error | null) => void): boolean {
    return this.engine.send(buf, offset, length, port, addr, cb);
  }

  /** Hands the queued datagrams to the kernel now (otherwise done in a microtask at the end of the turn). */
  flush(): void {
    this.engine.flush();
  }

  /** Datagrams the kernel has refused for now (the engine waits for writability); the loop holds back above a bound. */
  sendQueueCount(): number {
    return this.engine.sendQueueCount();
  }

  /** `cb` runs once the send queue has drained (at once if it is not blocked). */
  onWritable(cb: () => void): void {
    this.engine.onWritable(cb);
  }

  /**
   * Arms a reply (native; docs/net-engine.md "Armed reply"): if the next receive is exactly one datagram from `to`
   * equal to `expect`, the engine sends `reply` to `to` before the batch callback; takeArmFired() then says so once.
   * `to` is an IP literal, as for send(). False (nothing armed) on dgram, with UFTP_UDP_ARM=0, or when the sizes
   * are out of range.
   */
  arm(to: { address: string; port: number }, expect: Uint8Array, reply: Uint8Array): boolean {
    if (!this.armOn || this.closed) return false;
    return this.engine.arm!(to, expect, reply);
  }

  disarm(): void {
    if (this.armOn) this.engine.disarm!();
  }

  /** The armed reply went out on the latest receive (true once). */
  takeArmFired(): boolean {
    return this.armOn && this.engine.takeArmFired!();
  }

  /** Hooks around every receive turn (the event loop drains once per turn at `end`; see TurnHooks). */
  onReceiveTurn(h: TurnHooks): void {
    this.engine.onReceiveTurn(h);
  }

  /** Datagrams the kernel dropped because the receive buffer was full (SO_RXQ_OVFL / /proc/net/udp). */
  drops(): number {
    return this.engine.drops();
  }

  stats(): EngineStats {
    return this.engine.stats();
  }

  setTtl(ttl: number): Result<void, string> {
    try {
      this.engine.setMulticastTTL(ttl);
      return { ok: true, value: undefined };
    } catch (e) {
      return { ok: false, error: `Error setting ttl ${ttl}: ${(e as Error).message}` };
    }
  }

  setDscp(dscp: number): Result<void, string> {
    if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63) return { ok: false, error: `dscp ${dscp} out of range 0-63` };
    return this.setTos(dscp << 2);
  }

  /** Sets the whole TOS byte / traffic class (DSCP << 2 | ECN). */
  setTos(tos: number): Result<void, string> {
    try {
      this.engine.setTos(tos);
      return { ok: true, value: undefined };
    } catch (e) {
      const m = (e as Error).message;
      return { ok: false, error: m.startsWith('Error') || m.startsWith('DSCP') ? m : `Error setting dscp: ${m}` };
    }
  }

  /** The TOS byte / traffic class now set (DSCP << 2 | ECN). */
  tos(): Result<number, string> {
    try {
      return { ok: true, value: this.engine.getTos() };
    } catch (e) {
      return { ok: false, error: `Error getting tos: ${(e as Error).message}` };
    }
  }

  setMulticastInterface(i: ResolvedInterface): Result<void, string> {
    try {
      this.engine.setMulticastInterface(i);
      return { ok: true, value: undefined };
    } catch (e) {
      return { ok: false, error: `Error setting multicast interface ${i.name}: ${(e as Error).message}` };
    }
  }

  /** Closes the socket (memberships go with it). Resolves when closed; safe to call twice, and from a callback. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.joined.clear();
    return this.engine.close();
  }
}

/** Adapts a per-datagram handler to batches: copies (or borrows: dgram's buffers are the datagram's own) each
 * datagram; truncated ones are dropped (counted in stats().truncated). */
function perMessage(onMessage: MessageHandler, borrow: boolean, ep: UdpEndpoint): (b: RecvBatch) => void {
  return (b) => {
    const n = b.count;
    for (let i = 0; i < n; i++) {
      if (ep.isClosed) return; // closed by the handler: the rest of the batch is dropped with the socket
      if (b.truncated(i)) continue;
      const view = b.data(i);
      onMessage(borrow ? view : Buffer.from(view), b.from(i));
    }
  };
}

/** The family of an address to send to (an IPv4 address on a udp6 endpoint goes as ::ffff:a.b.c.d). */
export function sendAddress(ep: UdpEndpoint, addr: string): string {
  if (ep.family === 6 && ipFamily(addr) === 4) return `::ffff:${addr}`;
  return addr;
}
