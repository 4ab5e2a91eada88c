/**
 * The socket engine's one interface, and the choice of backend (docs/net-engine.md).
 *
 *  - `native`: the uftp-udp addon (native/udp): recvmmsg into a preallocated ring, one callback per batch,
 *    sendmmsg and UDP GSO, PKTINFO / TOS / drop counter per datagram, multicast by interface index.
 *  - `dgram`: node:dgram, one callback per datagram; the fallback where the addon cannot be built or loaded.
 *
 * The backend is chosen once per process: UFTP_UDP_BACKEND=native|dgram forces one (native that does not load is
 * then a set-up error), otherwise native when it loads, else dgram. `udpBackend()` says which and why, in one line.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import type { ResolvedInterface } from './interfaces.js';

export type BackendKind = 'native' | 'dgram';

/** The sender of a datagram, shaped as node:dgram's rinfo (callers treat it as an Endpoint). Do not mutate. */
export interface RemoteInfo {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6';
  readonly port: number;
  readonly size: number;
}

/**
 * The datagrams of one receive call. Valid only during the callback: the buffers are the engine's ring and are
 * overwritten by the next batch (copy what you keep).
 */
export interface RecvBatch {
  readonly count: number;
  /** Datagram i (a view; at most the ring slot's size when truncated). Native: the same view object as the last
   *  batch's entry i when offset and length repeat (it is valid during the callback only, like its bytes). */
  data(i: number): Buffer;
  /** Where datagram i lies, without a view per datagram: bytes [offset(i), offset(i) + length(i)) of buffer(i)
   *  (native: the whole receive ring, the same object for every datagram; dgram: the datagram itself, offset 0). */
  buffer(i: number): Buffer;
  offset(i: number): number;
  length(i: number): number;
  /** The datagram's length on the wire (above length(i) when truncated). */
  realLength(i: number): number;
  from(i: number): RemoteInfo;
  /** The destination address (a group for multicast) from IP_PKTINFO; undefined when the backend cannot tell. */
  to(i: number): string | undefined;
  /** Arrival interface index; 0 unknown. */
  ifindex(i: number): number;
  /** TOS / traffic-class byte (ECN in the two low bits); -1 unknown. */
  tos(i: number): number;
  /** Longer than the ring slot: data(i) holds its first bytes only. */
  truncated(i: number): boolean;
}

export interface EngineStats {
  readonly received: number;
  readonly recvCalls: number;
  readonly sent: number;
  readonly sendmmsgCalls: number;
  readonly gsoCalls: number;
  readonly gsoFallbacks: number;
  readonly sendErrors: number;
  /** Times the kernel refused more (EAGAIN / ENOBUFS) and the engine waited for writability. */
  readonly blocked: number;
  /** Datagrams refused because the bounded send queue was full while blocked (each reported, never silent). */
  readonly refused: number;
  readonly truncated: number;
  readonly gso: boolean;
  /** Datagrams that arrived coalesced by UDP GRO (split by the engine). */
  readonly groCoalesced: number;
  /** The receive spin (native; docs/net-engine.md): spins that found the next datagram, spins that ended without
   *  one, and the time spent spinning (CPU burnt waiting). 0 where it never ran. */
  readonly spinHits: number;
  readonly spinMisses: number;
  /** Spins given up because something else of the event loop was ready. */
  readonly spinYields: number;
  readonly spinSeconds: number;
  /** Armed replies (native; docs/net-engine.md "Armed reply") sent by the engine, and refused by the kernel
   *  (then left to JS). */
  readonly armFired: number;
  readonly armFailed: number;
  /** The stall guard (native; docs/net-engine.md "Stall guard"): on for this socket; datagrams it took from the
   *  socket while the JS thread was late (all delivered since, in order); times it drained; the most its store held
   *  (bytes of memory) and holds now; times its bound stopped it (the kernel then dropped as without it); its looks
   *  at this socket (1 ms apart while the socket is active, none while idle). All 0 / false on dgram. */
  readonly guard: boolean;
  readonly guardRescued: number;
  readonly guardDrains: number;
  readonly guardPeakBytes: number;
  readonly guardHeldBytes: number;
  readonly guardFull: number;
  readonly guardChecks: number;
}

export type SendCallback = (err: Error | null) => void;

/**
 * A receive turn: `begin` before a socket hands datagrams to its callback, `end` after the last one of the turn
 * (native: one batch; dgram: the datagrams libuv reads in one poll phase, ended by a setImmediate). The event loop
 * (src/daemon/loop.ts) drains once at `end` instead of in a microtask per turn; the native engine flushes its staged
 * sends right after `end`.
 */
export interface TurnHooks {
  begin(): void;
  end(): void;
}

export interface EngineSocketOptions {
  readonly family: 4 | 6;
  /** Receive ring: datagrams per batch (native) and the largest datagram taken whole (both backends). */
  readonly ringSlots?: number;
  readonly maxDatagram?: number;
  /** Bounded send queue: datagrams and bytes staged (native). */
  readonly sendSlots?: number;
  readonly sendBytes?: number;
  /** UDP GSO for runs of equal-size datagrams (native). Default true. */
  readonly gso?: boolean;
  /** Per-datagram destination, interface and TOS (native; control messages cost ~10% of a receive). Default true. */
  readonly recvInfo?: boolean;
  /** UDP GRO on receive (native, with 64 KiB slots): the kernel may hand over up to 64 datagrams of one flow as
   *  one, split again by the engine. Default true. */
  readonly gro?: boolean;
  /** Receive spin (native; docs/net-engine.md "Receive spin"): after a turn that answered the one datagram it got,
   *  wait up to this many microseconds (1-1000) for the next one without sleeping. 0 or absent = off. */
  readonly spinUs?: number;
  /** The stall guard (native; docs/net-engine.md "Stall guard"): a native thread drains the socket into a bounded
   *  store while the JS thread is late. Default on unless UFTP_UDP_GUARD=0. */
  readonly guard?: boolean;
  /** The guard's bound: bytes its store may hold for this socket (at least 1 MiB). Default GUARD_DEFAULT_LIMIT
   *  (64 MiB), or UFTP_UDP_GUARD_MB. */
  readonly guardLimit?: number;
  /** The fill of the socket's buffer (a fraction, 0.25-0.9375) at which the guard drains it although its JS thread
   *  still reads (slowly: preempted, or running cold code). Default 0.75; lower costs CPU in the guard's copies and
   *  saves drops in a receiver that must not lose a datagram (uftpd asks for 0.5). */
  readonly guardBusyFill?: number;
}

/**
 * One UDP socket. Option setters throw an Error with an errno `code` (as node:dgram does); the data path does not
 * throw: send failures go to the callback or to onError.
 */
export interface EngineSocket {
  readonly kind: BackendKind;
  readonly family: 4 | 6;
  bind(address: string, port: number, reuseAddr: boolean, ipv6Only: boolean): Promise<Error | undefined>;
  /** Starts receiving; onBatch gets every batch, onError asynchronous socket errors. */
  start(onBatch: (b: RecvBatch) => void, onError: (e: Error) => void): void;
  address(): { address: string; port: number };
  setRecvBufferSize(n: number): void;
  setSendBufferSize(n: number): void;
  /** As the kernel reports it (Linux: twice the request). */
  getRecvBufferSize(): number;
  getSendBufferSize(): number;
  setMulticastTTL(ttl: number): void;
  setMulticastLoopback(on: boolean): void;
  setMulticastInterface(i: ResolvedInterface): void;
  membership(join: boolean, group: string, i: ResolvedInterface, source?: string): void;
  /** The whole TOS / traffic-class byte: DSCP << 2 | ECN. */
  setTos(tos: number): void;
  getTos(): number;
  /**
   * Queues buf[offset, offset+length) for addr:port (an IP literal). The bytes are taken before send returns
   * (native: copied into the staging area; dgram: handed to libuv, do not reuse before cb). Returns false if the
   * datagram was refused (queue full while the kernel is full; cb or onError has been told).
   */
  send(buf: Uint8Array, offset: number, length: number, port: number, addr: string, cb?: SendCallback): boolean;
  /** Hands what is queued to the kernel now (otherwise done at the end of the current turn, in a microtask). */
  flush(): void;
  /** Datagrams queued that the kernel has refused for now (waiting for writability). */
  sendQueueCount(): number;
  /** Called once when a blocked queue has drained. */
  onWritable(cb: () => void): void;
  /**
   * The armed reply (native only; docs/net-engine.md "Armed reply"): if the very next receive brings exactly one
   * datagram, from `to`, equal to `expect` (1-64 bytes), the engine sends `reply` to `to` at once, before the batch
   * callback. Any receive disarms (it fires at most once). Returns false where it cannot (dgram; sizes out of
   * range; nothing is then armed).
   */
  arm?(to: { address: string; port: number }, expect: Uint8Array, reply: Uint8Array): boolean;
  disarm?(): void;
  /** Whether the armed reply went out on the latest receive; true once (the news is taken). */
  takeArmFired?(): boolean;
  /** Adds hooks called around every receive turn (see TurnHooks). */
  onReceiveTurn(h: TurnHooks): void;
  /** The kernel's receive-buffer drop counter of this socket (SO_RXQ_OVFL; dgram: /proc/net/udp). */
  drops(): number;
  stats(): EngineStats;
  close(): Promise<void>;
}

export interface BackendChoice {
  readonly kind: BackendKind;
  /** One line for the log: which backend runs and why. */
  readonly line: string;
  /** Set when UFTP_UDP_BACKEND=native was asked for and the addon did not load. */
  readonly error?: string;
}

/** What the addon exports (native/udp/udp.c). */
export interface NativeAddonSocket {
  readonly recvBuffer: ArrayBuffer;
  readonly recvMeta: ArrayBuffer;
  readonly sendBuffer: ArrayBuffer;
  readonly sendMeta: ArrayBuffer;
  readonly statsBuffer: ArrayBuffer;
  /** The armed reply: int32 header [state, dest, expect length, reply length], expect at 32, reply at 96. */
  readonly armBuffer: ArrayBuffer;
  bind(address: string, port: number, reuseAddr: number, ipv6Only: number): number;
  start(onBatch: (n: number) => void, onWritable: () => void): number;
  setDest(index: number, address: string, port: number): number;
  flush(n: number): number;
  resetStaging(): number;
  ntop(slot: number, which: number): string | undefined;
  local(): [string, number] | number;
  setOpt(which: number, value: number): number;
  getOpt(which: number): number;
  multicastIf(ifindex: number, address: string): number;
  membership(join: number, group: string, ifindex: number, source: string): number;
  close(): number;
  fd(): number;
  /** Copies the stall guard's counters into the stats array. */
  guardSync(): number;
}
export interface NativeAddon {
  Socket: new (family: number, slots: number, slotSize: number, sendSlots: number, sendBytes: number) => NativeAddonSocket;
  /** Process-wide: [guard thread wake-ups, bytes held in all guard stores, thread running (1/0), sockets guarded,
   *  thread at real-time priority SCHED_FIFO (1/0)]. */
  guardInfo(): [number, number, number, number, number];
}

/** Whether the stall guard is on for the process (UFTP_UDP_GUARD=0 turns it off; a socket's `guard` option wins). */
export function guardDefault(): boolean {
  return process.env.UFTP_UDP_GUARD !== '0';
}

let addon: NativeAddon | undefined;
let addonError: string | undefined;

/** The addon, loaded once; undefined (and addonLoadError() says why) where it cannot load. */
export function loadNativeAddon(): NativeAddon | undefined {
  if (addon || addonError) return addon;
  if (process.platform !== 'linux') {
    addonError = `not Linux (${process.platform})`;
    return undefined;
  }
  try {
    addon = createRequire(import.meta.url)('uftp-udp') as NativeAddon;
  } catch (e) {
    addonError = (e as Error).message.split('\n')[0];
  }
  return addon;
}

export function addonLoadError(): string | undefined {
  loadNativeAddon();
  return addonError;
}

let choice: BackendChoice | undefined;

/** The backend of this process (decided on the first call). */
export function udpBackend(): BackendChoice {
  if (choice) return choice;
  const forced = process.env.UFTP_UDP_BACKEND;
  if (forced === 'dgram') {
    choice = { kind: 'dgram', line: 'UDP engine: node:dgram (UFTP_UDP_BACKEND=dgram)' };
  } else if (loadNativeAddon()) {
    const guard = guardDefault() ? '; stall guard on' : '; stall guard off (UFTP_UDP_GUARD=0)';
    choice = { kind: 'native', line: `UDP engine: native (recvmmsg + UDP GRO, sendmmsg + UDP GSO)${forced === 'native' ? ' (UFTP_UDP_BACKEND=native)' : ''}${guard}` };
  } else if (forced === 'native') {
    const error = `UFTP_UDP_BACKEND=native but the uftp-udp addon did not load: ${addonError}`;
    choice = { kind: 'native', line: error, error };
  } else {
    choice = { kind: 'dgram', line: `UDP engine: node:dgram (native addon unavailable: ${addonError}; run npm ci)` };
  }
  if (forced !== undefined && forced !== '' && forced !== 'dgram' && forced !== 'native') {
    choice = { ...choice, line: `${choice.line}; UFTP_UDP_BACKEND=${forced} ignored (native or dgram)` };
  }
  return choice;
}

/** For tests: forget the choice so the next udpBackend() reads UFTP_UDP_BACKEND again. */
export function resetBackendChoice(): void {
  choice = undefined;
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** An Error as node:dgram makes them: `code` is the errno name. */
export function errnoError(what: string, negErrno: number): Error {
  const code = errnoName(-negErrno);
  const e = new Error(`${what} ${code}`) as Error & { code: string; errno: number };
  e.code = code;
  e.errno = negErrno;
  return e;
}
