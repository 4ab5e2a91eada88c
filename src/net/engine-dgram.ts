/**
 * The node:dgram backend: EngineSocket over one dgram socket, for where the uftp-udp addon cannot load. Each
 * datagram is a batch of one; no destination address or interface (dgram has no PKTINFO) and no TOS on receive.
 * TOS is set through the uftp-dscp addon on the socket's fd; the drop counter comes from /proc/net/udp.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { literalLookup } from '../core/address.js';
import { socketFd, setTosByte, getTos } from './dscp.js';
import type { ResolvedInterface } from './interfaces.js';
import type { EngineSocket, EngineSocketOptions, EngineStats, RecvBatch, RemoteInfo, SendCallback, TurnHooks } from './engine.js';
import { DEFAULT_MAX_DATAGRAM } from './engine-native.js';

class DgramBatch implements RecvBatch {
  count = 1;
  msg: Buffer = Buffer.alloc(0);
  rinfo: RemoteInfo = { address: '', family: 'IPv4', port: 0, size: 0 };
  isTruncated = false;
  data(): Buffer {
    return this.msg;
  }
  buffer(): Buffer {
    return this.msg;
  }
  offset(): number {
    return 0;
  }
  length(): number {
    return this.msg.length;
  }
  realLength(): number {
    return this.rinfo.size;
  }
  from(): RemoteInfo {
    return this.rinfo;
  }
  to(): string | undefined {
    return undefined;
  }
  ifindex(): number {
    return 0;
  }
  tos(): number {
    return -1;
  }
  truncated(): boolean {
    return this.isTruncated;
  }
}

function fail(e: Error | string): never {
  throw typeof e === 'string' ? new Error(e) : e;
}

export class DgramSocket implements EngineSocket {
  readonly kind = 'dgram' as const;
  readonly family: 4 | 6;
  readonly socket: dgram.Socket;
  private readonly maxDatagram: number;
  private readonly batch = new DgramBatch();
  private closed = false;
  private sent = 0;
  private received = 0;
  private truncatedCount = 0;
  private sendErrors = 0;
  private onErrorCb: (e: Error) => void = () => undefined;
  private turnHooks: TurnHooks[] = [];
  /** A receive turn is open (its end is a setImmediate: after every datagram of this poll phase). */
  private turnOpen = false;
  private readonly endTurn = (): void => {
    this.turnOpen = false;
    const hooks = this.turnHooks;
    for (let i = 0; i < hooks.length; i++) hooks[i].end();
  };

  constructor(o: EngineSocketOptions, reuseAddr: boolean, ipv6Only: boolean) {
    this.family = o.family;
    this.maxDatagram = o.maxDatagram ?? DEFAULT_MAX_DATAGRAM;
    this.socket = dgram.createSocket({ type: o.family === 4 ? 'udp4' : 'udp6', reuseAddr, ipv6Only, lookup: literalLookup });
  }

  bind(address: string, port: number): Promise<Error | undefined> {
    const sock = this.socket;
    return new Promise<Error | undefined>((resolve) => {
      const onErr = (e: Error): void => resolve(e);
      sock.once('error', onErr);
      sock.bind({ port, address, exclusive: true }, () => {
        sock.removeListener('error', onErr);
        resolve(undefined);
      });
    });
  }

  start(onBatch: (b: RecvBatch) => void, onError: (e: Error) => void): void {
    const b = this.batch;
    const max = this.maxDatagram;
    this.onErrorCb = onError;
    this.socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      this.received++;
      if (msg.length > max) {
        b.isTruncated = true;
        this.truncatedCount++;
        b.msg = msg.subarray(0, max);
      } else {
        b.isTruncated = false;
        b.msg = msg;
      }
      b.rinfo = rinfo as RemoteInfo;
      if (!this.turnOpen && this.turnHooks.length > 0) {
        this.turnOpen = true;
        const hooks = this.turnHooks;
        for (let i = 0; i < hooks.length; i++) hooks[i].begin();
        setImmediate(this.endTurn);
      }
      onBatch(b);
    });
    this.socket.on('error', onError);
  }

  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }
  setRecvBufferSize(n: number): void {
    this.socket.setRecvBufferSize(n);
  }
  setSendBufferSize(n: number): void {
    this.socket.setSendBufferSize(n);
  }
  getRecvBufferSize(): number {
    return this.socket.getRecvBufferSize();
  }
  getSendBufferSize(): number {
    return this.socket.getSendBufferSize();
  }
  setMulticastTTL(ttl: number): void {
    this.socket.setMulticastTTL(ttl);
  }
  setMulticastLoopback(on: boolean): void {
    this.socket.setMulticastLoopback(on);
  }
  setMulticastInterface(i: ResolvedInterface): void {
    this.socket.setMulticastInterface(i.multicastInterface);
  }
  membership(join: boolean, group: string, i: ResolvedInterface, source?: string): void {
    if (source === undefined) {
      if (join) this.socket.addMembership(group, i.multicastInterface);
      else this.socket.dropMembership(group, i.multicastInterface);
    } else if (join) this.socket.addSourceSpecificMembership(source, group, i.multicastInterface);
    else this.socket.dropSourceSpecificMembership(source, group, i.multicastInterface);
  }
  setTos(tos: number): void {
    const r = setTosByte(this.socket, this.family, tos);
    if (!r.ok) fail(r.error);
  }
  getTos(): number {
    const r = getTos(this.socket, this.family);
    return r.ok ? r.value : fail(r.error);
  }

  send(buf: Uint8Array, offset: number, length: number, port: number, addr: string, cb?: SendCallback): boolean {
    if (this.closed) {
      const e = Object.assign(new Error(`send to ${addr}:${port} EBADF`), { code: 'EBADF' });
      if (cb) queueMicrotask(() => cb(e));
      else this.onErrorCb(e);
      return false;
    }
    if (this.family === 6 && addr.indexOf(':') < 0) addr = this.mapped(addr);
    this.sent++;
    // Without `cb`, no completion callback: node:dgram then tries a synchronous send (uv_udp_try_send) and makes
    // no nextTick, closure or completion per datagram (the cost the pre-engine drivers did not pay). node:dgram
    // reports a send's error only to a callback, so such errors are not seen (nor counted); with `cb` they are.
    if (!cb) {
      if (offset === 0 && length === buf.length) this.socket.send(buf, port, addr);
      else this.socket.send(buf, offset, length, port, addr);
      return true;
    }
    const done = (err: Error | null): void => {
      if (err) this.sendErrors++;
      cb(err);
    };
    // the whole buffer: dgram's (buf, port, addr) form sends it as it is, where the offset form first makes a
    // new Buffer view of it (sliceBuffer) for every datagram
    if (offset === 0 && length === buf.length) this.socket.send(buf, port, addr, done);
    else this.socket.send(buf, offset, length, port, addr, done);
    return true;
  }

  private lastV4 = '';
  private lastMapped = '';
  /** An IPv4 destination on a udp6 socket goes as ::ffff:a.b.c.d (as the native backend does). */
  private mapped(addr: string): string {
    if (addr !== this.lastV4) {
      this.lastV4 = addr;
      this.lastMapped = `::ffff:${addr}`;
    }
    return this.lastMapped;
  }

  flush(): void {
    // dgram sends at once
  }

  sendQueueCount(): number {
    return this.closed ? 0 : this.socket.getSendQueueCount();
  }

  onReceiveTurn(h: TurnHooks): void {
    this.turnHooks = [...this.turnHooks, h];
  }

  onWritable(cb: () => void): void {
    const poll = (): void => {
      if (this.closed || this.socket.getSendQueueCount() === 0) cb();
      else setImmediate(poll);
    };
    poll();
  }

  drops(): number {
    return procUdpDrops(this.socket, this.family);
  }

  stats(): EngineStats {
    return {
      received: this.received, recvCalls: this.received, sent: this.sent - this.sendErrors, sendmmsgCalls: 0, gsoCalls: 0,
      gsoFallbacks: 0, sendErrors: this.sendErrors, blocked: 0, refused: 0, truncated: this.truncatedCount, gso: false, groCoalesced: 0, spinHits: 0, spinMisses: 0, spinYields: 0, spinSeconds: 0, armFired: 0, armFailed: 0,
      guard: false, guardRescued: 0, guardDrains: 0, guardPeakBytes: 0, guardHeldBytes: 0, guardFull: 0, guardChecks: 0,
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((r) => this.socket.close(() => r()));
  }
}

/** The kernel's drop counter of a socket: the `drops` column of its line in /proc/net/udp{,6} (by inode). */
export function procUdpDrops(sock: dgram.Socket, family: 4 | 6): number {
  const fd = socketFd(sock);
  if (fd === undefined) return 0;
  try {
    const link = fs.readlinkSync(`/proc/self/fd/${fd}`);
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode === undefined) return 0;
    const text = fs.readFileSync(family === 6 ? '/proc/self/net/udp6' : '/proc/self/net/udp', 'latin1');
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[9] === inode) return Number(f[12]) || 0;
    }
  } catch {
    // not Linux, or /proc not mounted: no counter
  }
  return 0;
}
