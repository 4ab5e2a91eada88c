/**
 * The native backend: EngineSocket over the uftp-udp addon (native/udp/udp.c; layout of the shared arrays there).
 *
 * Receive: the addon calls onBatch(n) after each recvmmsg; the ring and its meta array are shared ArrayBuffers,
 * read here through views made once. A sender's RemoteInfo is reused while address, port and size repeat (a run of
 * data blocks from one peer costs no object per datagram).
 * Send: datagrams are copied back to back into the staging buffer and flushed once per turn (a microtask) or when
 * the staging is full: the addon groups runs of equal-size datagrams to one destination into GSO sends and the rest
 * into sendmmsg. When the kernel is full the staging waits for writability; while it waits, new datagrams are
 * queued behind, and once it is full they are refused, each reported.
 * Stall guard (on unless `guard: false` or UFTP_UDP_GUARD=0): the addon's thread drains the socket into a bounded
 * store while this thread is late; stored datagrams come through onBatch like any others (docs/net-engine.md).
 */
import { objectArray } from '../core/arrays.js';
import type { ResolvedInterface } from './interfaces.js';
import {
  errnoError, guardDefault, type EngineSocket, type EngineSocketOptions, type EngineStats, type NativeAddon,
  type NativeAddonSocket, type RecvBatch, type RemoteInfo, type SendCallback, type TurnHooks,
} from './engine.js';

// receive meta (int32 per datagram)
const RM_LEN = 0, RM_REALLEN = 1, RM_FLAGS = 2, RM_FAMILY = 3, RM_PORT = 4, RM_SRC = 5, RM_DST = 9, RM_IFINDEX = 13, RM_TOS = 14, RM_DSTFAM = 15, RM_OFF = 16;
const RM_SIZE = 20;
// send meta (int32 per staged datagram)
const SM_OFF = 0, SM_LEN = 1, SM_DEST = 2, SM_RESULT = 3, SM_SIZE = 4;
// stats (float64)
const ST_RXQ_OVFL = 0, ST_RECV = 1, ST_RECV_CALLS = 2, ST_SENT = 3, ST_SENDMMSG_CALLS = 4, ST_GSO_CALLS = 5,
  ST_GSO_FALLBACKS = 6, ST_SEND_ERRORS = 7, ST_BLOCKED = 8, ST_PENDING = 9, ST_TRUNCATED = 10, ST_GSO_ENABLED = 11, ST_GRO = 13,
  ST_SPIN_HITS = 14, ST_SPIN_MISSES = 15, ST_SPIN_NS = 16, ST_SPIN_YIELDS = 17, ST_ARM_FIRED = 18, ST_ARM_FAILED = 19,
  ST_GUARD_ON = 20, ST_GUARD_RESCUED = 21, ST_GUARD_DRAINS = 22, ST_GUARD_PEAK = 23, ST_GUARD_FULL = 24, ST_GUARD_CHECKS = 25, ST_GUARD_HELD = 26;
// the armed reply (udp.c arm_check)
const ARM_STATE = 0, ARM_DEST = 1, ARM_EXPECT_LEN = 2, ARM_REPLY_LEN = 3, ARM_EXPECT_AT = 32, ARM_EXPECT_MAX = 64, ARM_REPLY_AT = 96, ARM_REPLY_MAX = 65535;
const ARM_IDLE = 0, ARM_ARMED = 1, ARM_FIRED = 2;
// setOpt / getOpt
const OPT_RCVBUF = 1, OPT_SNDBUF = 2, OPT_MCAST_TTL = 3, OPT_MCAST_LOOP = 4, OPT_TOS = 5, OPT_GSO = 8, OPT_RECV_INFO = 9, OPT_GRO = 10, OPT_SPIN = 11, OPT_GUARD = 12, OPT_GUARD_BUSY = 13;

const MAX_DESTS = 4096;
export const DEFAULT_RING_SLOTS = 64;
export const DEFAULT_MAX_DATAGRAM = 65536;
export const DEFAULT_SEND_SLOTS = 1024;
export const DEFAULT_SEND_BYTES = 2 << 20;
/** The stall guard's default bound per socket (udp.c GUARD_DEFAULT_LIMIT), and its least. */
export const GUARD_DEFAULT_LIMIT = 64 << 20;
export const GUARD_MIN_LIMIT = 1 << 20;

/** UFTP_UDP_GUARD_MB: the guard's bound in MiB for every socket of the process (1-2047). */
function envGuardLimit(): number | undefined {
  const e = process.env.UFTP_UDP_GUARD_MB;
  if (e === undefined || e === '') return undefined;
  const n = Number(e);
  return Number.isInteger(n) && n >= 1 && n <= 2047 ? n << 20 : undefined;
}

/** RemoteInfo objects are always made here, with one shape (one hidden class for V8's inline caches). */
function remoteInfo(address: string, family: 'IPv4' | 'IPv6', port: number, size: number): RemoteInfo {
  return { address, family, port, size };
}
/** Sizes from the last sender whose RemoteInfo is kept. */
const BY_SIZE = 4;

class NativeBatch implements RecvBatch {
  count = 0;
  /** data(i)'s views, kept per meta entry and reused while its offset and length repeat (a run of equal-size
   *  datagrams then costs no Buffer per datagram: entry i of every batch is ring slot i). */
  private readonly views: (Buffer | undefined)[];
  private readonly viewAt: Int32Array;
  constructor(private readonly s: NativeSocket) {
    const entries = s.meta.length / RM_SIZE;
    this.views = new Array<Buffer | undefined>(entries).fill(undefined);
    this.viewAt = new Int32Array(entries * 2).fill(-1);
  }
  data(i: number): Buffer {
    const m = this.s.meta;
    const off = m[i * RM_SIZE + RM_OFF];
    const len = m[i * RM_SIZE + RM_LEN];
    const at = this.viewAt;
    const v = this.views[i];
    if (v !== undefined && at[i * 2] === off && at[i * 2 + 1] === len) return v;
    const nv = this.s.ring.subarray(off, off + len);
    this.views[i] = nv;
    at[i * 2] = off;
    at[i * 2 + 1] = len;
    return nv;
  }
  buffer(): Buffer {
    return this.s.ring;
  }
  offset(i: number): number {
    return this.s.meta[i * RM_SIZE + RM_OFF];
  }
  length(i: number): number {
    return this.s.meta[i * RM_SIZE + RM_LEN];
  }
  realLength(i: number): number {
    return this.s.meta[i * RM_SIZE + RM_REALLEN];
  }
  from(i: number): RemoteInfo {
    return this.s.remote(i);
  }
  to(i: number): string | undefined {
    return this.s.destination(i);
  }
  ifindex(i: number): number {
    return this.s.meta[i * RM_SIZE + RM_IFINDEX];
  }
  tos(i: number): number {
    return this.s.meta[i * RM_SIZE + RM_TOS];
  }
  truncated(i: number): boolean {
    return (this.s.meta[i * RM_SIZE + RM_FLAGS] & 1) !== 0;
  }
}

export class NativeSocket implements EngineSocket {
  readonly kind = 'native' as const;
  readonly family: 4 | 6;
  readonly sock: NativeAddonSocket;
  readonly slotSize: number;
  readonly ring: Buffer;
  readonly meta: Int32Array;
  private readonly sbuf: Buffer;
  private readonly smeta: Int32Array;
  private readonly st: Float64Array;
  private readonly armHead: Int32Array;
  private readonly armBytes: Buffer;
  private readonly sendSlots: number;
  private readonly batch: NativeBatch;
  private onBatchCb: (b: RecvBatch) => void = () => undefined;
  private onErrorCb: (e: Error) => void = () => undefined;
  private closed = false;
  // the last sender, reused while it repeats, with the RemoteInfo of a few sizes seen from it
  private lastRemote: RemoteInfo | undefined;
  private readonly bySize: RemoteInfo[] = objectArray<RemoteInfo>();
  private bySizeNext = 0;
  private lastF = 0;
  private lastP = -1;
  private lastA0 = 0;
  private lastA1 = 0;
  private lastA2 = 0;
  private lastA3 = 0;
  private readonly lastDst = new Int32Array(5);
  private lastDstText: string | undefined;
  // staging
  private count = 0;
  /** `count` at the last flush (the addon's view of the staging). */
  private flushedN = 0;
  private bytes = 0;
  private blocked = false;
  private flushQueued = false;
  private seenErrors = 0;
  private refused = 0;
  private cbs: { index: number; cb: SendCallback }[] = [];
  private writableCbs: (() => void)[] = [];
  private turnHooks: TurnHooks[] = [];
  /** Inside a receive callback: sends are flushed when it returns, not in a microtask. */
  private inTurn = false;
  // destinations: "addr|port" -> index into the addon's table
  private readonly dests = new Map<string, number>();
  private readonly destNames: string[] = objectArray<string>();
  private lastAddr = '';
  private lastPort = -1;
  private lastDest = -1;
  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  constructor(addon: NativeAddon, o: EngineSocketOptions) {
    this.family = o.family;
    this.slotSize = o.maxDatagram ?? DEFAULT_MAX_DATAGRAM;
    this.sendSlots = o.sendSlots ?? DEFAULT_SEND_SLOTS;
    this.sock = new addon.Socket(o.family, o.ringSlots ?? DEFAULT_RING_SLOTS, this.slotSize, this.sendSlots, o.sendBytes ?? DEFAULT_SEND_BYTES);
    this.ring = Buffer.from(this.sock.recvBuffer);
    this.meta = new Int32Array(this.sock.recvMeta);
    this.sbuf = Buffer.from(this.sock.sendBuffer);
    this.smeta = new Int32Array(this.sock.sendMeta);
    this.st = new Float64Array(this.sock.statsBuffer);
    this.armHead = new Int32Array(this.sock.armBuffer, 0, 8);
    this.armBytes = Buffer.from(this.sock.armBuffer);
    this.batch = new NativeBatch(this);
    if (o.gso === false) this.sock.setOpt(OPT_GSO, 0);
    if (o.recvInfo === false) this.sock.setOpt(OPT_RECV_INFO, 0);
    if (o.gro === false) this.sock.setOpt(OPT_GRO, 0);
    if (o.spinUs !== undefined && o.spinUs > 0) this.sock.setOpt(OPT_SPIN, Math.min(1000, Math.floor(o.spinUs)));
    const limit = (o.guard ?? guardDefault()) ? Math.max(GUARD_MIN_LIMIT, Math.min(0x7fffffff, Math.floor(o.guardLimit ?? envGuardLimit() ?? GUARD_DEFAULT_LIMIT))) : 0;
    if (this.sock.setOpt(OPT_GUARD, limit) !== 0) throw errnoError('stall guard', -22);
    if (o.guardBusyFill !== undefined && this.sock.setOpt(OPT_GUARD_BUSY, Math.round(o.guardBusyFill * 16)) !== 0) {
      throw errnoError('stall guard fill', -22);
    }
  }

  bind(address: string, port: number, reuseAddr: boolean, ipv6Only: boolean): Promise<Error | undefined> {
    const r = this.sock.bind(address, port, reuseAddr ? 1 : 0, ipv6Only ? 1 : 0);
    return Promise.resolve(r === 0 ? undefined : errnoError('bind', r));
  }

  start(onBatch: (b: RecvBatch) => void, onError: (e: Error) => void): void {
    this.onBatchCb = onBatch;
    this.onErrorCb = onError;
    const r = this.sock.start((n) => this.received(n), () => this.writable());
    if (r !== 0) throw errnoError('uv_poll_init', r);
  }

  private received(n: number): void {
    this.batch.count = n;
    const hooks = this.turnHooks;
    this.inTurn = true;
    try {
      for (let i = 0; i < hooks.length; i++) hooks[i].begin();
      this.onBatchCb(this.batch);
    } finally {
      for (let i = 0; i < hooks.length; i++) hooks[i].end();
      this.inTurn = false;
      // what the turn sent goes out now, before the addon reads (or spins for) the next datagram
      this.flush();
    }
  }

  arm(to: { address: string; port: number }, expect: Uint8Array, reply: Uint8Array): boolean {
    const h = this.armHead;
    h[ARM_STATE] = ARM_IDLE;
    if (this.closed || expect.length < 1 || expect.length > ARM_EXPECT_MAX || reply.length > ARM_REPLY_MAX) return false;
    const d = this.destIndex(to.address, to.port);
    if (d < 0) return false;
    this.armBytes.set(expect, ARM_EXPECT_AT);
    this.armBytes.set(reply, ARM_REPLY_AT);
    h[ARM_DEST] = d;
    h[ARM_EXPECT_LEN] = expect.length;
    h[ARM_REPLY_LEN] = reply.length;
    h[ARM_STATE] = ARM_ARMED;
    return true;
  }

  disarm(): void {
    this.armHead[ARM_STATE] = ARM_IDLE;
  }

  takeArmFired(): boolean {
    if (this.armHead[ARM_STATE] !== ARM_FIRED) return false;
    this.armHead[ARM_STATE] = ARM_IDLE;
    return true;
  }

  onReceiveTurn(h: TurnHooks): void {
    this.turnHooks = [...this.turnHooks, h];
  }

  /** The sender of datagram i; the same object as the previous datagram's when address, port and size repeat. */
  remote(i: number): RemoteInfo {
    const m = this.meta;
    const b = i * RM_SIZE;
    const f = m[b + RM_FAMILY];
    const p = m[b + RM_PORT];
    const size = m[b + RM_LEN];
    const last = this.lastRemote;
    if (
      last !== undefined && f === this.lastF && p === this.lastP && m[b + RM_SRC] === this.lastA0 &&
      m[b + RM_SRC + 1] === this.lastA1 && m[b + RM_SRC + 2] === this.lastA2 && m[b + RM_SRC + 3] === this.lastA3
    ) {
      if (last.size === size) return last;
      // the same sender with another size (a data block after a control message, a file's short last block):
      // one of the sizes seen from it lately
      const bySize = this.bySize;
      for (let k = 0; k < bySize.length; k++) {
        if (bySize[k].size === size) {
          this.lastRemote = bySize[k];
          return bySize[k];
        }
      }
      const r = remoteInfo(last.address, last.family, p, size);
      if (bySize.length < BY_SIZE) bySize.push(r);
      else bySize[this.bySizeNext++ % BY_SIZE] = r;
      this.lastRemote = r;
      return r;
    }
    const r = remoteInfo(this.sock.ntop(i, 0) ?? '', f === 4 ? 'IPv4' : 'IPv6', p, size);
    this.bySize.length = 0;
    this.bySize.push(r);
    this.lastRemote = r;
    this.lastF = f;
    this.lastP = p;
    this.lastA0 = m[b + RM_SRC];
    this.lastA1 = m[b + RM_SRC + 1];
    this.lastA2 = m[b + RM_SRC + 2];
    this.lastA3 = m[b + RM_SRC + 3];
    return r;
  }

  /** The destination address of datagram i (PKTINFO); the same string as the previous one's when it repeats. */
  destination(i: number): string | undefined {
    const m = this.meta;
    const b = i * RM_SIZE;
    const f = m[b + RM_DSTFAM];
    if (f === 0) return undefined;
    const d = this.lastDst;
    if (f === d[0] && m[b + RM_DST] === d[1] && m[b + RM_DST + 1] === d[2] && m[b + RM_DST + 2] === d[3] && m[b + RM_DST + 3] === d[4]) {
      return this.lastDstText;
    }
    d[0] = f;
    for (let k = 0; k < 4; k++) d[k + 1] = m[b + RM_DST + k];
    this.lastDstText = this.sock.ntop(i, 1);
    return this.lastDstText;
  }

  address(): { address: string; port: number } {
    const r = this.sock.local();
    if (typeof r === 'number') throw errnoError('getsockname', r);
    return { address: r[0], port: r[1] };
  }

  private opt(which: number, v: number, what: string): void {
    const r = this.sock.setOpt(which, v);
    if (r !== 0) throw errnoError(what, r);
  }
  private get(which: number, what: string): number {
    const r = this.sock.getOpt(which);
    if (r < 0) throw errnoError(what, r);
    return r;
  }

  setRecvBufferSize(n: number): void {
    this.opt(OPT_RCVBUF, n, 'setsockopt SO_RCVBUF');
  }
  setSendBufferSize(n: number): void {
    this.opt(OPT_SNDBUF, n, 'setsockopt SO_SNDBUF');
  }
  getRecvBufferSize(): number {
    return this.get(OPT_RCVBUF, 'getsockopt SO_RCVBUF');
  }
  getSendBufferSize(): number {
    return this.get(OPT_SNDBUF, 'getsockopt SO_SNDBUF');
  }
  setMulticastTTL(ttl: number): void {
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw errnoError('setMulticastTTL', -22);
    this.opt(OPT_MCAST_TTL, ttl, 'setMulticastTTL');
  }
  setMulticastLoopback(on: boolean): void {
    this.opt(OPT_MCAST_LOOP, on ? 1 : 0, 'setMulticastLoopback');
  }
  setMulticastInterface(i: ResolvedInterface): void {
    const r = this.sock.multicastIf(i.index, this.family === 4 ? i.address : '');
    if (r !== 0) throw errnoError('setMulticastInterface', r);
  }
  membership(join: boolean, group: string, i: ResolvedInterface, source?: string): void {
    const r = this.sock.membership(join ? 1 : 0, group, i.index, source ?? '');
    if (r !== 0) throw errnoError(join ? 'addMembership' : 'dropMembership', r);
  }
  setTos(tos: number): void {
    this.opt(OPT_TOS, tos & 0xff, 'setsockopt IP_TOS');
  }
  getTos(): number {
    return this.get(OPT_TOS, 'getsockopt IP_TOS');
  }

  private destIndex(addr: string, port: number): number {
    if (addr === this.lastAddr && port === this.lastPort) return this.lastDest;
    const key = `${addr}|${port}`;
    let d = this.dests.get(key);
    if (d === undefined) {
      if (this.dests.size >= MAX_DESTS) {
        // the table is full: start again once nothing staged refers to it
        if (this.count > 0) this.flush();
        if (this.count > 0) return -105; // ENOBUFS: staged datagrams still use the table
        this.disarm(); // (its destination index is about to mean another address)
        this.dests.clear();
        this.destNames.length = 0;
      }
      d = this.dests.size;
      const r = this.sock.setDest(d, addr, port);
      if (r !== 0) return r;
      this.dests.set(key, d);
      this.destNames[d] = addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
    }
    this.lastAddr = addr;
    this.lastPort = port;
    this.lastDest = d;
    return d;
  }

  private fail(cb: SendCallback | undefined, e: Error): false {
    if (cb) queueMicrotask(() => cb(e));
    else this.onErrorCb(e);
    return false;
  }

  send(buf: Uint8Array, offset: number, length: number, port: number, addr: string, cb?: SendCallback): boolean {
    if (this.closed) return this.fail(cb, errnoError(`send to ${addr}:${port}`, -9));
    if (length > 65535 || offset < 0 || offset + length > buf.length) return this.fail(cb, errnoError(`send to ${addr}:${port}`, -90));
    const d = this.destIndex(addr, port);
    if (d < 0) return this.fail(cb, errnoError(`send to ${addr}:${port}`, d));
    if (this.count === this.sendSlots || this.bytes + length > this.sbuf.length) {
      this.flush();
      if (this.count === this.sendSlots || this.bytes + length > this.sbuf.length) {
        this.refused++;
        return this.fail(cb, errnoError(`send to ${addr}:${port}: send queue full,`, -105));
      }
    }
    const at = this.bytes;
    if (length > 0) this.sbuf.set(offset === 0 && length === buf.length ? buf : buf.subarray(offset, offset + length), at);
    const m = this.count * SM_SIZE;
    this.smeta[m + SM_OFF] = at;
    this.smeta[m + SM_LEN] = length;
    this.smeta[m + SM_DEST] = d;
    if (cb) this.cbs.push({ index: this.count, cb });
    this.count++;
    this.bytes = at + length;
    if (!this.flushQueued && !this.inTurn) {
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
    return true;
  }

  flush(): void {
    if (this.closed || this.count === 0) return;
    this.flushedN = this.count;
    const left = this.sock.flush(this.count);
    if (left < 0) {
      this.onErrorCb(errnoError('flush', left));
      return;
    }
    if (left > 0) {
      this.blocked = true;
      return;
    }
    this.done();
  }

  /** Everything staged has gone (or failed for good): report and empty the staging. */
  private done(): void {
    const n = this.count;
    const errors = this.st[ST_SEND_ERRORS];
    let failed: Map<number, Error> | undefined;
    if (errors !== this.seenErrors) {
      this.seenErrors = errors;
      failed = new Map();
      for (let i = 0; i < n; i++) {
        const r = this.smeta[i * SM_SIZE + SM_RESULT];
        if (r < 0) failed.set(i, errnoError(`send to ${this.destNames[this.smeta[i * SM_SIZE + SM_DEST]]}`, r));
      }
    }
    const cbs = this.cbs;
    this.count = 0;
    this.flushedN = 0;
    this.bytes = 0;
    this.blocked = false;
    if (cbs.length > 0) this.cbs = [];
    if (failed) {
      for (const [i, e] of failed) if (!cbs.some((c) => c.index === i)) this.onErrorCb(e);
    }
    for (const c of cbs) c.cb(failed?.get(c.index) ?? null);
  }

  private writable(): void {
    if (this.closed) return;
    this.sock.resetStaging();
    this.done();
    const w = this.writableCbs;
    this.writableCbs = [];
    for (const cb of w) cb();
  }

  sendQueueCount(): number {
    // staged after the last flush, plus what the kernel refused of the flushed ones
    return this.blocked ? this.count - this.flushedN + this.st[ST_PENDING] : 0;
  }

  onWritable(cb: () => void): void {
    if (!this.blocked) queueMicrotask(cb);
    else this.writableCbs.push(cb);
  }

  drops(): number {
    return this.st[ST_RXQ_OVFL];
  }

  stats(): EngineStats {
    this.sock.guardSync();
    const s = this.st;
    return {
      received: s[ST_RECV], recvCalls: s[ST_RECV_CALLS], sent: s[ST_SENT], sendmmsgCalls: s[ST_SENDMMSG_CALLS],
      gsoCalls: s[ST_GSO_CALLS], gsoFallbacks: s[ST_GSO_FALLBACKS], sendErrors: s[ST_SEND_ERRORS], blocked: s[ST_BLOCKED],
      refused: this.refused, truncated: s[ST_TRUNCATED], gso: s[ST_GSO_ENABLED] === 1, groCoalesced: s[ST_GRO],
      spinHits: s[ST_SPIN_HITS], spinMisses: s[ST_SPIN_MISSES], spinYields: s[ST_SPIN_YIELDS], spinSeconds: s[ST_SPIN_NS] / 1e9,
      armFired: s[ST_ARM_FIRED], armFailed: s[ST_ARM_FAILED],
      guard: s[ST_GUARD_ON] === 1, guardRescued: s[ST_GUARD_RESCUED], guardDrains: s[ST_GUARD_DRAINS], guardPeakBytes: s[ST_GUARD_PEAK],
      guardHeldBytes: s[ST_GUARD_HELD], guardFull: s[ST_GUARD_FULL], guardChecks: s[ST_GUARD_CHECKS],
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // what is staged and not refused by the kernel goes out first; a blocked remainder goes with the socket
    if (!this.blocked) this.flush();
    const unsent = this.sendQueueCount();
    const firstUnsent = this.count - unsent;
    this.closed = true;
    this.disarm();
    this.sock.close();
    const cbs = this.cbs;
    this.cbs = [];
    this.count = 0;
    this.bytes = 0;
    if (unsent > 0) {
      const e = errnoError('send: socket closed with the datagram queued,', -9);
      let told = 0;
      for (const c of cbs) {
        if (c.index >= firstUnsent) told++;
        c.cb(c.index >= firstUnsent ? e : null);
      }
      if (unsent > told) this.onErrorCb(errnoError(`close: ${unsent - told} queued datagrams not sent,`, -9));
    }
    return Promise.resolve();
  }
}
