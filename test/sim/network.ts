/**
 * THE simulated network every simulation uses: machines (src/core/machine.ts) on hosts joined by one switch, a
 * virtual clock, multicast groups, and seeded impairments per host link and direction: loss, duplication,
 * reordering (jitter), delay and a rate (a serialising queue with a bounded backlog). No sockets, no real time: a
 * 1,000-receiver session with loss runs in a second and the same seed gives the same run.
 *
 *   const net = new SimNetwork({ seed: 1 });
 *   const a = net.host('server', ['10.0.0.1']);
 *   const b = net.host('client1', ['10.0.0.2'], { down: { loss: 0.05 } });
 *   const s = a.attach(serverMachine, 1044, { onEffect: (e) => ... });
 *   const c = b.attach(clientMachine, 1044, { onEffect: (e) => { if (e.kind === 'join') c.join(e.group) } });
 *   net.run({ until: () => done, maxTime: 60_000 });
 *
 * Time is in milliseconds. A datagram a host sends crosses its `up` impairment, then the receiver's `down`
 * impairment; multicast is copied at the switch, one copy per member, each copy impaired on its own. Hooks let a
 * test watch, drop or rewrite any datagram in flight (an attacker on the wire).
 */
import { drain, type Endpoint, type Machine, type Random, type Transmit } from '../../src/core/machine.js';

/** What one direction of a host's link does to datagrams. Probabilities are 0..1. */
export interface Impairment {
  readonly loss?: number;
  readonly dup?: number;
  /** Fixed one-way delay in ms (default 0.05: a LAN). */
  readonly delayMs?: number;
  /** Extra uniformly random delay 0..jitterMs per datagram: datagrams overtake each other when it exceeds the gap. */
  readonly jitterMs?: number;
  /** Link rate in bits per second (serialisation); datagrams queue behind each other. Default unlimited. */
  readonly rateBps?: number;
  /** With a rate: the most queueing delay in ms before the link drops (tail drop). Default 200. */
  readonly queueMs?: number;
}

export interface LinkOptions {
  /** host → switch */
  readonly up?: Impairment;
  /** switch → host */
  readonly down?: Impairment;
}

export interface AttachOptions<E, R> {
  /** Carries out the machine's effects; a returned value is handed back with handleEffectResult at once. */
  readonly onEffect?: (e: E, node: SimNode<E, R>) => R | void;
}

/** A datagram in flight as hooks see it. */
export interface Flight {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly data: Uint8Array;
  readonly multicast: boolean;
}

export interface NetStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  queueDrops: number;
  /** Datagrams to an address or port with nobody there. */
  unroutable: number;
  bytesSent: number;
}

/** mulberry32: small, fast, seedable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A `Random` for machines under simulation, derived from a seed. */
export function simRandom(seed: number): Random {
  const r = seededRandom(seed);
  return {
    u32: () => Math.floor(r() * 4294967296) >>> 0,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
      return b;
    },
  };
}

function isMulticastAddr(a: string): boolean {
  if (a.includes(':')) return /^ff/i.test(a);
  const first = Number(a.slice(0, a.indexOf('.')));
  return first >= 224 && first <= 239;
}

interface Event {
  at: number;
  seq: number;
  kind: 0 | 1; // 0 delivery, 1 timer
  node: SimNode<unknown, unknown>;
  from?: Endpoint;
  to?: Endpoint;
  data?: Uint8Array;
  timerGen?: number;
}

/** Min-heap of events by (time, sequence): equal times keep their order. */
class EventQueue {
  private readonly h: Event[] = [];
  get length(): number {
    return this.h.length;
  }
  push(e: Event): void {
    const h = this.h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p], e)) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }
  peek(): Event | undefined {
    return this.h[0];
  }
  pop(): Event | undefined {
    const h = this.h;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && before(h[r], h[l]) ? r : l;
      if (before(last, h[c])) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One direction of a link: impairment plus the time the serialiser is free again. */
class LinkDir {
  freeAt = 0;
  constructor(public imp: Impairment) {}
}

export class SimHost {
  readonly nodes: SimNode<unknown, unknown>[] = [];
  readonly up: LinkDir;
  readonly down: LinkDir;
  constructor(
    readonly net: SimNetwork,
    readonly name: string,
    readonly addresses: readonly string[],
    link: LinkOptions,
  ) {
    this.up = new LinkDir(link.up ?? {});
    this.down = new LinkDir(link.down ?? {});
  }

  get address(): string {
    return this.addresses[0];
  }

  /** Change this host's impairments (a link going bad mid-session). */
  impair(link: LinkOptions): void {
    if (link.up) this.up.imp = link.up;
    if (link.down) this.down.imp = link.down;
  }

  /** Runs `machine` on this host, bound to `port` on all its addresses. */
  attach<E, R>(machine: Machine<E, R>, port: number, o: AttachOptions<E, R> = {}): SimNode<E, R> {
    const n = new SimNode<E, R>(this, machine, port, o);
    this.nodes.push(n as unknown as SimNode<unknown, unknown>);
    this.net.register(n as unknown as SimNode<unknown, unknown>);
    return n;
  }
}

export class SimNode<E, R> {
  readonly groups = new Set<string>();
  /** Datagrams this node received and sent. */
  received = 0;
  sent = 0;
  detached = false;
  timerAt: number | undefined;
  timerGen = 0;
  /** Effects the machine asked for, when no onEffect handler is given (tests may inspect them). */
  readonly effects: E[] = [];

  constructor(
    readonly host: SimHost,
    readonly machine: Machine<E, R>,
    readonly port: number,
    private readonly o: AttachOptions<E, R>,
  ) {}

  get endpoint(): Endpoint {
    return { address: this.host.address, port: this.port };
  }

  join(group: string): void {
    this.groups.add(group);
    this.host.net.membership(this as unknown as SimNode<unknown, unknown>, group, true);
  }

  leave(group: string): void {
    this.groups.delete(group);
    this.host.net.membership(this as unknown as SimNode<unknown, unknown>, group, false);
  }

  /** Stop delivering to this node (a receiver that crashed or quit). */
  detach(): void {
    this.detached = true;
    for (const g of [...this.groups]) this.leave(g);
  }

  /** @internal */
  effect(e: E): void {
    if (!this.o.onEffect) {
      this.effects.push(e);
      return;
    }
    const r = this.o.onEffect(e, this);
    if (r !== undefined) this.machine.handleEffectResult?.(r, this.host.net.now);
  }
}

export interface RunOptions {
  /** Stop when this returns true (checked after every event). */
  readonly until?: () => boolean;
  /** Stop at this virtual time (ms from now). Default 600,000. */
  readonly maxTime?: number;
  /** Stop after this many events (a runaway guard). Default 50,000,000. */
  readonly maxEvents?: number;
}

export class SimNetwork {
  now = 0;
  readonly rand: () => number;
  readonly stats: NetStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, queueDrops: 0, unroutable: 0, bytesSent: 0 };
  /** Called for every datagram before it leaves its sender: return false to drop it, or a replacement. */
  onSend: ((f: Flight) => boolean | Uint8Array) | undefined;
  /** Called for every datagram delivered (after impairments), e.g. to record a capture. */
  onDeliver: ((f: Flight, node: SimNode<unknown, unknown>) => void) | undefined;
  private readonly q = new EventQueue();
  private seq = 0;
  private readonly hosts = new Map<string, SimHost>();
  private readonly byAddr = new Map<string, SimHost>();
  /** group → nodes that joined it (any port; the port is matched at delivery). */
  private readonly members = new Map<string, Set<SimNode<unknown, unknown>>>();
  private readonly allNodes: SimNode<unknown, unknown>[] = [];
  private readonly dirty = new Set<SimNode<unknown, unknown>>();

  constructor(o: { seed?: number } = {}) {
    this.rand = seededRandom(o.seed ?? 1);
  }

  host(name: string, addresses: readonly string[], link: LinkOptions = {}): SimHost {
    if (this.hosts.has(name)) throw new Error(`sim: host ${name} exists`);
    const h = new SimHost(this, name, addresses, link);
    this.hosts.set(name, h);
    for (const a of addresses) this.byAddr.set(a, h);
    return h;
  }

  /** @internal */
  register(n: SimNode<unknown, unknown>): void {
    this.allNodes.push(n);
    this.dirty.add(n);
  }

  /** @internal */
  membership(n: SimNode<unknown, unknown>, group: string, on: boolean): void {
    let s = this.members.get(group);
    if (!s) this.members.set(group, (s = new Set()));
    if (on) s.add(n);
    else s.delete(n);
  }

  /** Hand a datagram to `node` now, as if it arrived from `from` (a test injecting traffic). */
  inject(node: SimNode<unknown, unknown>, from: Endpoint, data: Uint8Array): void {
    this.pushEvent({ at: this.now, seq: 0, kind: 0, node, from, to: node.endpoint, data });
  }

  /** Runs events in time order until `until()`, the time limit or no events are left. Returns the reason. */
  run(o: RunOptions = {}): 'until' | 'time' | 'idle' | 'events' {
    const end = this.now + (o.maxTime ?? 600_000);
    const maxEvents = o.maxEvents ?? 50_000_000;
    let events = 0;
    this.flushDirty();
    if (o.until?.()) return 'until';
    for (;;) {
      const e = this.q.peek();
      if (e === undefined) return 'idle';
      if (e.at > end) {
        this.now = end;
        return 'time';
      }
      this.q.pop();
      if (++events > maxEvents) return 'events';
      this.now = Math.max(this.now, e.at);
      const n = e.node;
      if (n.detached) continue;
      if (e.kind === 1) {
        if (e.timerGen !== n.timerGen) continue; // re-armed since
        n.timerAt = undefined;
        n.machine.handleTimeout(this.now);
      } else {
        n.received++;
        this.stats.delivered++;
        const from = e.from as Endpoint;
        const data = e.data as Uint8Array;
        this.onDeliver?.({ from, to: e.to as Endpoint, data, multicast: isMulticastAddr((e.to as Endpoint).address) }, n);
        n.machine.handle(this.now, from, data, { to: (e.to as Endpoint).address });
      }
      this.service(n);
      this.flushDirty();
      if (o.until?.()) return 'until';
    }
  }

  /** Nodes touched from outside run() (attached, injected) are drained before the next event. */
  private flushDirty(): void {
    if (this.dirty.size === 0) return;
    const ns = [...this.dirty];
    this.dirty.clear();
    for (const n of ns) this.service(n);
  }

  /** Mark a node to be drained before the next event (after a test changed its machine from outside). */
  touch(n: SimNode<unknown, unknown>): void {
    this.dirty.add(n);
  }

  private service(n: SimNode<unknown, unknown>): void {
    drain(n.machine, this.now, {
      effect: (e) => n.effect(e),
      transmit: (t) => {
        this.send(n, t);
        return true;
      },
    });
    const at = n.machine.pollTimeout();
    if (at === undefined) {
      n.timerAt = undefined;
      n.timerGen++;
      return;
    }
    if (n.timerAt === at) return;
    n.timerAt = at;
    n.timerGen++;
    this.pushEvent({ at: Math.max(at, this.now), seq: 0, kind: 1, node: n, timerGen: n.timerGen });
  }

  private send(n: SimNode<unknown, unknown>, t: Transmit): void {
    n.sent++;
    let data: Uint8Array = Buffer.from(t.data); // the machine may reuse its buffer
    const from = n.endpoint;
    const multicast = isMulticastAddr(t.to.address);
    if (this.onSend) {
      const r = this.onSend({ from, to: t.to, data, multicast });
      if (r === false) return;
      if (r !== true) data = r;
    }
    this.stats.sent++;
    this.stats.bytesSent += data.length;
    const host = n.host;
    const leaveAt = this.cross(host.up, data.length, this.now);
    if (leaveAt === undefined) return;
    for (const copyAt of this.copies(host.up, leaveAt)) {
      if (multicast) {
        const ms = this.members.get(t.to.address);
        if (!ms || ms.size === 0) continue;
        for (const m of ms) {
          if (m === n || m.port !== t.to.port || m.detached) continue;
          this.arrive(m, from, t.to, data, copyAt);
        }
      } else {
        const h = this.byAddr.get(t.to.address);
        const m = h?.nodes.find((x) => x.port === t.to.port && !x.detached);
        if (!m) {
          this.stats.unroutable++;
          continue;
        }
        this.arrive(m, from, t.to, data, copyAt);
      }
    }
  }

  private arrive(m: SimNode<unknown, unknown>, from: Endpoint, to: Endpoint, data: Uint8Array, at: number): void {
    const down = m.host.down;
    const t = this.cross(down, data.length, at);
    if (t === undefined) return;
    for (const when of this.copies(down, t)) this.pushEvent({ at: when, seq: 0, kind: 0, node: m, from, to, data });
  }

  /** Serialisation at the link's rate (undefined: dropped at a full queue), then the fixed delay. */
  private cross(dir: LinkDir, bytes: number, at: number): number | undefined {
    const imp = dir.imp;
    let t = at;
    if (imp.rateBps !== undefined && imp.rateBps > 0) {
      const start = Math.max(at, dir.freeAt);
      if (start - at > (imp.queueMs ?? 200)) {
        this.stats.queueDrops++;
        return undefined;
      }
      dir.freeAt = start + ((bytes + 28) * 8 * 1000) / imp.rateBps;
      t = dir.freeAt;
    }
    return t + (imp.delayMs ?? 0.05);
  }

  /** Loss, duplication and jitter: the arrival times of the copies that survive (0, 1 or 2). */
  private copies(dir: LinkDir, at: number): number[] {
    const imp = dir.imp;
    if (imp.loss && this.rand() < imp.loss) {
      this.stats.lost++;
      return [];
    }
    const j = (): number => (imp.jitterMs ? this.rand() * imp.jitterMs : 0);
    if (imp.dup && this.rand() < imp.dup) {
      this.stats.duplicated++;
      return [at + j(), at + j()];
    }
    return [at + j()];
  }

  private pushEvent(e: Event): void {
    e.seq = ++this.seq;
    this.q.push(e);
  }
}
