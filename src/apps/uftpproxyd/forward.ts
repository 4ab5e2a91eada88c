/**
 * The forwarding fast path's receive callback (uftpproxyd's driver, run.ts): every datagram of a received batch
 * goes to the machine as a view of the engine's ring (no copy); the machine queues FILESEGs and ENCRYPTEDs as they
 * are, the loop's drain at the end of the receive turn hands them to the engine, which stages them and sends them
 * when the turn ends (UDP GSO for runs of equal-size datagrams to one group, sendmmsg otherwise). The ring is reused
 * only after the batch callback's microtasks (docs/net-engine.md); the drain may leave datagrams queued (send budget
 * spent, socket full), so a microtask queued behind the drain copies what is left out of the ring: usually nothing.
 * The sender's rinfo ({address, family, port, size}, reused while it repeats) is the Endpoint as it is.
 *
 * One function makes the daemon's callback and the start-up warm-up's (warmup.ts, warmDataPath), so that both are
 * closures of the same site: V8's feedback and optimized code from the warm-up are the daemon's.
 */
import type { EventLoop } from '../../daemon/loop.js';
import type { RecvBatch } from '../../net/udp.js';
import type { ProxyBase, ProxyEffect, ProxySession } from '../../session/proxy/common.js';

export interface ForwardState {
  /** Set once the loop and machine exist; datagrams before that are dropped. */
  loop?: EventLoop<ProxyEffect>;
  machine?: ProxyBase<ProxySession>;
  /** The socket hands over views of a reused ring (the native engine), not Buffers of their own (node:dgram). */
  ring: boolean;
  /** Datagrams copied out of the ring after a held turn. */
  detached: number;
  /** Datagrams of the receive turn in progress (for the coalescer). */
  turnCount: number;
}

export function newForwardState(): ForwardState {
  return { ring: false, detached: 0, turnCount: 0 };
}

const RESOLVED = Promise.resolve();

export function batchForwarder(st: ForwardState): (b: RecvBatch) => void {
  let pendingRing: ArrayBufferLike | undefined;
  const detachRing = (): void => {
    const ring = pendingRing;
    pendingRing = undefined;
    if (ring !== undefined && st.machine) st.detached += st.machine.detach(ring);
  };
  return (b: RecvBatch): void => {
    const loop = st.loop;
    if (!loop) return;
    const n = b.count;
    st.turnCount += n;
    for (let i = 0; i < n; i++) {
      if (b.truncated(i)) continue;
      const d = b.data(i);
      loop.datagram(b.from(i), d);
      // queued after the loop's drain (which the first datagram queued): microtasks run in order
      if (pendingRing === undefined && st.ring) {
        pendingRing = d.buffer;
        // a microtask without Node's queueMicrotask wrapper (an async resource per call, and JS of Node's that V8
        // compiled again in every first transfer: its warm-up code held the warm-up's objects, which died)
        void RESOLVED.then(detachRing);
      }
    }
  };
}
