/**
 * uftpd's receive path from the socket to the client machine, one object per process shared by the daemon's sockets
 * and the start-up warm-up (warmup.ts). Every function the event loop and the engine call (the socket's onBatch,
 * the loop's clock, the machine adaptor, the effect handler) is the same function object for the warm-up's loops
 * and for the daemon's: V8's type feedback and the optimized code the warm-up leaves behind are exactly those of the
 * path the first session takes, with no call site that meets a new target when the daemon starts ("wrong call
 * target" deoptimizations and recompilation during the first transfer, docs/benchmarks.md). What changes between
 * the warm-up and the daemon (the machine, the loop, the effect handler) are fields read behind those functions.
 */
import type { Machine } from '../../core/machine.js';
import type { EventLoop } from '../../daemon/loop.js';
import type { RecvBatch } from '../../net/engine.js';
import type { ClientMachine } from '../../session/client/machine.js';
import type { ClientEffect, ClientEffectResult } from '../../session/client/effects.js';

export type ClientLoop = EventLoop<ClientEffect, ClientEffectResult | undefined>;
export type EffectHandler = (e: ClientEffect) => ClientEffectResult | Promise<ClientEffectResult> | undefined;

const noEffect: EffectHandler = () => undefined;

export class ReceivePath {
  /** The loop datagrams go to (set once made; undefined between the warm-up and the daemon). */
  loop: ClientLoop | undefined = undefined;
  /** The machine behind `machine` (the adaptor). */
  client: ClientMachine | undefined = undefined;
  /** Where `onEffect` sends the machine's effects. */
  effect: EffectHandler = noEffect;
  /** Inside a receive batch: the batch's time; else -1. */
  private batchNow = -1;
  /** Datagrams of the receive turn in progress (for the receive coalescer, run.ts). */
  turnCount = 0;

  /**
   * A socket's onBatch: the whole batch as views of the engine's ring (no copy per datagram; the machine copies what
   * it keeps, blocks into its write cache, before handle() returns, as the machine contract asks), one clock reading
   * per batch (one recvmmsg: its datagrams arrived together).
   */
  readonly onBatch = (b: RecvBatch): void => {
    const loop = this.loop;
    if (loop === undefined) return;
    const n = b.count;
    this.turnCount += n;
    this.batchNow = performance.now();
    try {
      for (let i = 0; i < n; i++) {
        if (b.truncated(i)) continue;
        // the TOS byte matters to the machine only when ECN marked it (no object per datagram otherwise)
        const tos = b.tos(i);
        loop.datagram(b.from(i), b.data(i), tos > 0 && (tos & 3) !== 0 ? { tos } : undefined);
      }
    } finally {
      this.batchNow = -1;
    }
  };

  /** The loop's clock: inside a receive batch the batch's time, else performance.now(). */
  readonly clock = (): number => (this.batchNow >= 0 ? this.batchNow : performance.now());

  /** The loop's effect handler. */
  readonly onEffect = (e: ClientEffect): ClientEffectResult | Promise<ClientEffectResult> | undefined => this.effect(e);

  /** The client machine as the event loop drives it (an effect without a result, `undefined`, is not passed on). */
  readonly machine: Machine<ClientEffect, ClientEffectResult | undefined> = {
    handle: (now, from, bytes, arrival) => this.client?.handle(now, from, bytes, arrival),
    handleTimeout: (now) => this.client?.handleTimeout(now),
    pollTransmit: (now) => this.client?.pollTransmit(now),
    pollEffect: () => this.client?.pollEffect(),
    pollTimeout: () => this.client?.pollTimeout(),
    handleEffectResult: (r) => {
      if (r !== undefined) this.client?.handleEffectResult(r);
    },
  };
}
