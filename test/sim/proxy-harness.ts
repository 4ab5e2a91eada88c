/**
 * The proxy machines driven one call at a time, for the step-by-step simulations: every handle() and
 * handleTimeout() is followed by a drain (src/core/machine.ts) into a Recorder that keeps what the machine sent,
 * joined, left and logged. The multi-host simulations use test/sim/network.ts instead.
 */
import { drain, type Endpoint, type Machine, type Random } from '../../src/core/machine.js';
import { isMulticast } from '../../src/core/address.js';
import type { ProxyEffect } from '../../src/session/proxy/common.js';

export interface Sent {
  at: number;
  to: Endpoint;
  data: Uint8Array;
  multicast: boolean;
}

/** Everything one machine did (its "network"). */
export class Recorder {
  now = 0;
  sent: Sent[] = [];
  joins: string[] = [];
  leaves: string[] = [];
  logs: string[] = [];

  send(to: Endpoint, data: Uint8Array): void {
    this.sent.push({ at: this.now, to, data: Uint8Array.from(data), multicast: isMulticast(to.address) });
  }

  effect(e: ProxyEffect): void {
    if (e.kind === 'log') this.logs.push(`${e.level} ${e.message}`);
    else (e.kind === 'join' ? this.joins : this.leaves).push(e.source ? `${e.source}>${e.group}` : e.group);
  }

  take(): Sent[] {
    const s = this.sent;
    this.sent = [];
    return s;
  }
}

interface Observable extends Machine<ProxyEffect> {
  readonly sessionCount: number;
  readonly stats: { readonly dropped: number };
}

/** A proxy machine with its output drained into `io` after every call. */
export class Driven<M extends Observable> {
  constructor(
    readonly m: M,
    readonly io: Recorder,
  ) {
    this.flush(0);
  }

  handle(now: number, from: Endpoint, data: Uint8Array): void {
    this.io.now = now;
    this.m.handle(now, from, data);
    this.flush(now);
  }

  handleTimeout(now: number): void {
    this.io.now = now;
    this.m.handleTimeout(now);
    this.flush(now);
  }

  /** The machine's next deadline (pollTimeout). */
  nextDeadline(): number | undefined {
    return this.m.pollTimeout();
  }

  get sessionCount(): number {
    return this.m.sessionCount;
  }

  get stats(): M['stats'] {
    return this.m.stats;
  }

  /** A server proxy's downstream address. */
  get dest(): Endpoint | undefined {
    return (this.m as { dest?: Endpoint }).dest;
  }

  private flush(now: number): void {
    drain(this.m, now, {
      effect: (e) => this.io.effect(e),
      transmit: (t) => {
        this.io.send(t.to, t.data);
        return true;
      },
    });
  }
}

/** A Random whose u32() is `next()` (a test's nonce sequence) and whose bytes are a simple counter. */
export function testRandom(next: () => number = () => 0x5eed): Random {
  let c = 0;
  return {
    u32: () => next() >>> 0,
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (c++ * 131 + 7) & 0xff;
      return b;
    },
  };
}
