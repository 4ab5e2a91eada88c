/**
 * The one contract every protocol role implements (after quinn-proto's `Connection`): the server `uftp`, the
 * client `uftpd`, the three proxy modes and both KTFTP ends. A machine does no I/O: it is given the time and the
 * datagrams, and is asked for what it wants sent, done and woken for. Clock and randomness are injected.
 *
 *   handle(now, from, bytes)     a datagram arrived (`to` says on which local address / group, when known)
 *   handleTimeout(now)           the deadline it asked for has come (it may be called early or late)
 *   pollTransmit(now)            next datagram to send, or undefined; a paced machine returns undefined until
 *                                its pacer allows the next one and says when in pollTimeout()
 *   pollEffect()                 next effect for the driver: join/leave a group, a file operation, a log line…
 *   pollTimeout()                the earliest deadline it wants, or undefined for none
 *   handleEffectResult(r, now)   the driver's answer to an effect that has one (a file write's outcome…), and when
 *   pollArm(now)                 optional: an answer known before its request comes (ArmedReply), or undefined
 *
 * The driver loop (src/daemon/loop.ts) is: on a datagram or a timer, call handle() or handleTimeout(), then drain
 * pollEffect() and pollTransmit(now) until both return undefined, then re-arm one timer at pollTimeout().
 * A machine treats `bytes` as read-only and must not hold on to them after handle() returns unless it copied
 * them: drivers reuse receive buffers, and the simulated network hands one datagram to many receivers.
 * `drain()` below is the one way both the daemon loop and the simulated network empty a machine's queues.
 */

/** A UDP endpoint; `address` is a textual IPv4/IPv6 address. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** A datagram a machine wants sent. `data` is not modified by the machine until the next poll call. */
export interface Transmit {
  readonly to: Endpoint;
  readonly data: Uint8Array;
  /** Which of the driver's sockets to use, for machines with more than one (a proxy's two sides). Default 0. */
  readonly socket?: number;
  /** Number of equal-size segments in `data` (for GSO-capable engines); default 1. */
  readonly segments?: number;
  readonly segmentSize?: number;
}

/** Where a datagram arrived, when the engine knows (IP_PKTINFO). */
export interface Arrival {
  /** The local or group address the datagram was sent to. */
  readonly to?: string;
  /** The TOS / traffic-class byte (ECN in its two low bits), when the engine reads it. */
  readonly tos?: number;
  /** Index of the driver socket it came in on. */
  readonly socket?: number;
}

/**
 * An armed reply (optional; docs/net-engine.md "Armed reply"): "if the very next datagram I am given comes from
 * `from` and is exactly `expect`, my whole answer to it is the one datagram `reply` to `from`". A driver whose
 * engine can (the native one) sends `reply` itself the moment that datagram arrives, then hands the datagram to
 * handle() as always and drops the one transmit equal to `reply` (same destination, same bytes) that follows:
 * the machine neither knows nor cares who sent it. The driver asks again after every drain (a machine's answer
 * changes with its state); it fires at most once. Only for answers that are pure functions of the state now:
 * a lock-step TFTP get's next DATA block, already read.
 */
export interface ArmedReply {
  readonly from: Endpoint;
  readonly expect: Uint8Array;
  readonly reply: Uint8Array;
  /** The driver socket, as Transmit.socket. Default 0. */
  readonly socket?: number;
}

export interface Machine<Effect = never, EffectResult = never> {
  handle(now: number, from: Endpoint, bytes: Uint8Array, arrival?: Arrival): void;
  handleTimeout(now: number): void;
  pollTransmit(now: number): Transmit | undefined;
  pollEffect(): Effect | undefined;
  pollTimeout(): number | undefined;
  handleEffectResult?(result: EffectResult, now: number): void;
  pollArm?(now: number): ArmedReply | undefined;
}

/** Injected randomness: machines never call Math.random or crypto.randomBytes themselves. */
export interface Random {
  /** A uniformly random 32-bit unsigned integer. */
  u32(): number;
  /** `n` random bytes (cryptographic quality in production drivers). */
  bytes(n: number): Uint8Array;
}

export function endpointText(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export function sameEndpoint(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  return a !== undefined && b !== undefined && a.port === b.port && a.address === b.address;
}

/** Where drain() puts what a machine hands out. `transmit` returns false when the socket cannot take more now. */
export interface DrainSink<Effect> {
  effect(e: Effect): void;
  transmit(t: Transmit): boolean;
}

/**
 * Empties a machine's queues at time `now`: every pending effect, then datagrams until the machine has none,
 * the sink refuses one (back-pressure: the refused datagram is kept and offered again first next time through
 * `held`), or `budget` datagrams went out. Effects are taken before each datagram, so a join asked for before a
 * send is done before it. Returns 'idle' (nothing left now), 'blocked' (the sink refused) or 'budget'.
 */
export function drain<E>(
  m: Machine<E, unknown>,
  now: number,
  sink: DrainSink<E>,
  budget = Infinity,
  held: { tx?: Transmit } = {},
): 'idle' | 'blocked' | 'budget' {
  let sent = 0;
  for (;;) {
    for (let e = m.pollEffect(); e !== undefined; e = m.pollEffect()) sink.effect(e);
    if (sent >= budget) return 'budget';
    const t = held.tx ?? m.pollTransmit(now);
    held.tx = undefined;
    if (t === undefined) {
      // a transmit may have queued effects (a log line about it): take them too
      for (let e = m.pollEffect(); e !== undefined; e = m.pollEffect()) sink.effect(e);
      return 'idle';
    }
    if (!sink.transmit(t)) {
      held.tx = t;
      return 'blocked';
    }
    sent++;
  }
}
