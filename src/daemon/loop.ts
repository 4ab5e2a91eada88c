/**
 * THE event loop: drives any Machine (src/core/machine.ts) over real sockets and timers. Every program's driver
 * (uftp, uftpd, uftpproxyd, ktftpd, ktftp) owns its sockets and effects and hands the rest to one `EventLoop`:
 *
 *   socket callback ──► loop.datagram(from, bytes, arrival)  ─┐
 *   timer            ──► machine.handleTimeout(now)            ├─► drain(): effects ► onEffect, datagrams ► sockets
 *   effect result    ──► loop.effectResult(r)                 ─┘            then one timer at machine.pollTimeout()
 *
 * - Datagrams are handled as they come; the draining after them is coalesced: a socket that reports its receive
 *   turns (src/net's UdpEndpoint: a batch of the native engine, or what node:dgram delivers in one poll phase) gets
 *   one drain at the end of each turn, synchronously, so the answers are staged before the engine flushes and
 *   before it spins for the next request; anything else (an effect result, a kick) drains in one microtask.
 * - One timer, re-armed only when the machine's deadline moves earlier than the armed one (a later deadline keeps
 *   the armed timer, which wakes, finds nothing due and re-arms: cheaper than clearTimeout/setTimeout per datagram).
 * - Sending is bounded: at most `sendBudget` datagrams per turn, then the loop yields (setImmediate) so that
 *   receive callbacks and timers run while a full-speed sender has more to send. A socket that reports a send queue
 *   above `maxSendQueue` makes the loop hold the refused datagram and retry on the next turn: no unbounded queue.
 * - Armed reply (docs/net-engine.md): after each drain the loop asks the machine for an answer it already knows
 *   (pollArm) and arms the socket with it; the native engine sends it the moment its request arrives, before JS
 *   runs. The loop then hands the request to the machine as always and drops, once, the transmit equal to what the
 *   engine sent (same socket, destination and bytes).
 * - Effects go to the driver's `onEffect`. If it returns a value or a promise, that is the effect's result and is
 *   given back with handleEffectResult(); a rejected promise is a bug in the driver and stops the loop with it.
 */
import { drain, sameEndpoint, type Arrival, type Endpoint, type Machine, type Transmit } from '../core/machine.js';
import { isIP } from 'node:net';

/** What the loop needs of a socket. src/net's UdpEndpoint has this shape. */
export interface LoopSocket {
  readonly family: 4 | 6;
  send(buf: Buffer, offset: number, length: number, port: number, address: string): void;
  /** Datagrams handed to send() that the kernel has not taken yet, when the socket can tell. */
  sendQueueCount?(): number;
  /** Calls `cb` once when the socket can take datagrams again (else the loop retries on the next turn). */
  onWritable?(cb: () => void): void;
  /** Calls `h.begin()` before and `h.end()` after each receive turn (datagrams handed to loop.datagram in between
   *  are drained once, at the end). */
  onReceiveTurn?(h: { begin(): void; end(): void }): void;
  /** Armed reply (src/net's UdpEndpoint.arm): false when the socket cannot (nothing armed then). */
  arm?(to: Endpoint, expect: Uint8Array, reply: Uint8Array): boolean;
  disarm?(): void;
  /** The armed reply went out on the latest receive (true once). */
  takeArmFired?(): boolean;
}

/** What the loop armed a socket with, and (once it went out) the transmit to drop. */
interface Armed {
  readonly sock: LoopSocket;
  readonly to: Endpoint;
  readonly reply: Uint8Array;
}

export interface EventLoopOptions<E, R> {
  readonly machine: Machine<E, R>;
  /** The sockets; a Transmit picks one with `socket` (an index), else the first of the destination's family. */
  readonly sockets: readonly LoopSocket[];
  /** Carries out an effect. A returned value (or the value of a returned promise) goes back to the machine. */
  readonly onEffect: (e: E) => R | Promise<R> | void;
  /** A transmit with no socket of its family (logged by the driver). */
  readonly onUnroutable?: (t: Transmit) => void;
  /** A bug: an exception out of the machine or the driver's effect handler. The loop stops before calling this. */
  readonly onError?: (e: unknown) => void;
  /** Monotonic milliseconds; default performance.now. */
  readonly clock?: () => number;
  /** Datagrams sent per turn before yielding to I/O. Default 256. */
  readonly sendBudget?: number;
  /** Socket send queue length above which the loop waits a turn. Default 64. */
  readonly maxSendQueue?: number;
}

/**
 * The default clock: one function for every loop (a closure made per loop would be another call target for each,
 * and code V8 optimized on one loop, a start-up warm-up's, would be thrown away on the next: "wrong call target").
 */
const monotonicNow = (): number => performance.now();

export class EventLoop<E, R = never> {
  private readonly m: Machine<E, R>;
  private readonly clock: () => number;
  private readonly budget: number;
  private readonly maxQueue: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private immediate: NodeJS.Immediate | undefined;
  private drainQueued = false;
  private draining = false;
  /** Receive turns open now (see LoopSocket.onReceiveTurn), and a drain owed to the end of the last one. */
  private turns = 0;
  private drainOwed = false;
  private readonly turnHooks = {
    begin: (): void => {
      this.turns++;
    },
    end: (): void => {
      if (this.turns > 0) this.turns--; // (a loop made inside a turn saw no begin)
      if (this.turns > 0 || !this.drainOwed) return;
      this.drainOwed = false;
      this.drive();
    },
  };
  private readonly driveTask = (): void => {
    this.drainQueued = false;
    this.drive();
  };
  private stopped = false;
  private readonly held: { tx?: Transmit } = {};
  private lastAddr = '';
  private lastSock: LoopSocket | undefined;
  /** Datagrams sent, and turns on which a socket refused more (back-pressure), for the driver's statistics. */
  sent = 0;
  blockedTurns = 0;
  /** Armed replies the engine sent for the machine (each dropped from its transmits), and ones the machine then
   *  did not transmit itself (a machine bug: its arm did not match its answer). */
  armedSent = 0;
  armUnclaimed = 0;
  private armed: Armed | undefined;
  private fired: Armed | undefined;

  constructor(private readonly o: EventLoopOptions<E, R>) {
    this.m = o.machine;
    this.clock = o.clock ?? monotonicNow;
    this.budget = o.sendBudget ?? 256;
    this.maxQueue = o.maxSendQueue ?? 64;
    for (const s of o.sockets) s.onReceiveTurn?.(this.turnHooks);
  }

  get now(): number {
    return this.clock();
  }

  /** Runs the first drain (a machine may have datagrams or effects before anything arrives). */
  start(): void {
    this.drive();
  }

  /** A datagram arrived. The drain that follows is coalesced with the other datagrams of this turn. */
  datagram(from: Endpoint, bytes: Uint8Array, arrival?: Arrival): void {
    if (this.stopped) return;
    try {
      this.m.handle(this.clock(), from, bytes, arrival);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.queueDrive();
  }

  /** The result of an effect whose handler answered later (or that the driver completes by itself). */
  effectResult(r: R): void {
    if (this.stopped) return;
    try {
      this.m.handleEffectResult?.(r, this.clock());
    } catch (e) {
      this.fail(e);
      return;
    }
    this.queueDrive();
  }

  /** Drain now (after something outside the loop changed the machine: a signal, a reload). */
  kick(): void {
    this.queueDrive();
  }

  /** Stops timers; later datagrams and results are ignored. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.armed?.sock.disarm?.();
    this.armed = undefined;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private queueDrive(): void {
    if (this.turns > 0) {
      this.drainOwed = true;
      return;
    }
    if (this.drainQueued) return;
    this.drainQueued = true;
    queueMicrotask(this.driveTask);
  }

  private drive(): void {
    if (this.stopped || this.draining) return;
    this.draining = true;
    let state: 'idle' | 'blocked' | 'budget' = 'idle';
    const armed = this.armed;
    if (armed !== undefined && armed.sock.takeArmFired?.() === true) this.fired = armed;
    try {
      let now = this.clock();
      const due = this.m.pollTimeout();
      if (due !== undefined && due <= now) this.m.handleTimeout(now);
      state = drain(this.m, now, this, this.budget, this.held);
      // a machine whose deadline is already due again (a pacer releasing its next burst) is served in this turn
      // as long as the budget lasts
      for (let rounds = 0; state === 'idle' && rounds < 8; rounds++) {
        const next = this.m.pollTimeout();
        now = this.clock();
        if (next === undefined || next > now) break;
        this.m.handleTimeout(now);
        state = drain(this.m, now, this, this.budget, this.held);
      }
      if (this.fired !== undefined) {
        this.fired = undefined;
        this.armUnclaimed++;
      }
      if (this.armed !== undefined || this.m.pollArm !== undefined) this.rearm(state === 'idle' ? this.m.pollArm?.(now) : undefined);
    } catch (e) {
      this.draining = false;
      this.fail(e);
      return;
    }
    this.draining = false;
    if (this.stopped) return;
    if (state !== 'idle') {
      if (state === 'blocked') {
        this.blockedTurns++;
        const s = this.held.tx && this.route(this.held.tx);
        if (s?.onWritable) {
          s.onWritable(() => this.queueDrive());
          return;
        }
      }
      if (!this.immediate) {
        this.immediate = setImmediate(() => {
          this.immediate = undefined;
          this.drive();
        });
      }
      return;
    }
    this.arm();
  }

  private arm(): void {
    const at = this.m.pollTimeout();
    if (at === undefined) return;
    if (at >= this.timerAt && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.drive();
    }, Math.max(0, at - this.clock()));
  }

  /** Arms the socket with the machine's known answer, or disarms (a = undefined). */
  private rearm(a: ReturnType<NonNullable<Machine<E, R>['pollArm']>>): void {
    const prev = this.armed;
    this.armed = undefined;
    if (a !== undefined) {
      const s = a.socket !== undefined ? this.o.sockets[a.socket] : this.route({ to: a.from, data: a.reply });
      if (s !== prev?.sock) prev?.sock.disarm?.();
      if (s?.arm?.(a.from, a.expect, a.reply) === true) this.armed = { sock: s, to: a.from, reply: a.reply };
      return;
    }
    prev?.sock.disarm?.();
  }

  /**
   * drain()'s sink is the loop itself (effect, transmit), not an object of closures made per loop: V8 then sees one
   * call target for every loop, and the code it compiles for the start-up warm-up's loop (uftpproxyd) is the
   * daemon's too, where a per-loop closure is another target ("wrong call target": the code thrown away).
   */
  effect(e: E): void {
    const r = this.o.onEffect(e);
    if (r === undefined) return;
    if (r instanceof Promise) {
      r.then(
        (v) => this.effectResult(v),
        (err: unknown) => this.fail(err),
      );
    } else {
      this.m.handleEffectResult?.(r, this.clock());
    }
  }

  /** drain()'s sink (see effect). */
  transmit(t: Transmit): boolean {
    const s = this.route(t);
    if (s === undefined) {
      this.o.onUnroutable?.(t);
      return true;
    }
    const f = this.fired;
    if (f !== undefined && f.sock === s && sameEndpoint(f.to, t.to) && bytesEqual(f.reply, t.data)) {
      // the engine sent exactly this when the request came in (the armed reply): once is enough
      this.fired = undefined;
      this.armedSent++;
      return true;
    }
    if (s.sendQueueCount !== undefined && s.sendQueueCount() > this.maxQueue) return false;
    const d = t.data;
    const b = Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    s.send(b, 0, b.length, t.to.port, t.to.address);
    this.sent++;
    return true;
  }

  private route(t: Transmit): LoopSocket | undefined {
    if (t.socket !== undefined) return this.o.sockets[t.socket];
    if (t.to.address === this.lastAddr) return this.lastSock;
    const fam = isIP(t.to.address) === 6 ? 6 : 4;
    const s = this.o.sockets.find((x) => x.family === fam);
    this.lastAddr = t.to.address;
    this.lastSock = s;
    return s;
  }

  private fail(e: unknown): void {
    this.stop();
    if (this.o.onError) this.o.onError(e);
    else throw e;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
