/**
 * uftpd's receive path from the socket to the client machine, made by functions shared between the daemon's
 * sockets and the start-up warm-up (warmup.ts): closures made at one site share V8's type feedback and optimized
 * code, so the warm-up leaves behind code for exactly the path the first session takes (the engine's batch, the
 * event loop, the machine adaptor, the machine).
 */
import type { Machine } from '../../core/machine.js';
import type { EventLoop } from '../../daemon/loop.js';
import type { RecvBatch } from '../../net/engine.js';
import type { ClientMachine } from '../../session/client/machine.js';
import type { ClientEffect, ClientEffectResult } from '../../session/client/effects.js';

export type ClientLoop = EventLoop<ClientEffect, ClientEffectResult | undefined>;

/** What a receive handler and its loop's clock share: the loop (set once made) and the time of the batch in hand. */
export interface ReceiveContext {
  loop: ClientLoop | undefined;
  /** Inside a receive batch: the batch's time; else -1. */
  batchNow: number;
}

export function receiveContext(): ReceiveContext {
  return { loop: undefined, batchNow: -1 };
}

/**
 * A socket's onBatch: the whole batch as views of the engine's ring (no copy per datagram; the machine copies what it
 * keeps, blocks into its write cache, before handle() returns, as the machine contract asks), one clock reading per
 * batch (one recvmmsg: its datagrams arrived together).
 */
export function batchReceiver(ctx: ReceiveContext): (b: RecvBatch) => void {
  return (b) => {
    const loop = ctx.loop;
    if (loop === undefined) return;
    const n = b.count;
    ctx.batchNow = performance.now();
    try {
      for (let i = 0; i < n; i++) {
        if (b.truncated(i)) continue;
        // the TOS byte matters to the machine only when ECN marked it (no object per datagram otherwise)
        const tos = b.tos(i);
        loop.datagram(b.from(i), b.data(i), tos > 0 && (tos & 3) !== 0 ? { tos } : undefined);
      }
    } finally {
      ctx.batchNow = -1;
    }
  };
}

/** The loop's clock: inside a receive batch the batch's time, else performance.now(). */
export function batchClock(ctx: ReceiveContext): () => number {
  return () => (ctx.batchNow >= 0 ? ctx.batchNow : performance.now());
}

/** The client machine as the event loop drives it (an effect without a result, `undefined`, is not passed on). */
export function loopMachine(machine: ClientMachine): Machine<ClientEffect, ClientEffectResult | undefined> {
  return {
    handle: (now, from, bytes, arrival) => machine.handle(now, from, bytes, arrival),
    handleTimeout: (now) => machine.handleTimeout(now),
    pollTransmit: (now) => machine.pollTransmit(now),
    pollEffect: () => machine.pollEffect(),
    pollTimeout: () => machine.pollTimeout(),
    handleEffectResult: (r) => {
      if (r !== undefined) machine.handleEffectResult(r);
    },
  };
}
