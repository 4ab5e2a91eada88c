/**
 * Receive coalescing for a daemon that takes a stream at full speed (the uftp server proxy, uftpd): NIC interrupt
 * moderation done in user space. When a receive turn of a data stream brought only a few datagrams (the sender is
 * slower than we read: an encrypting uftp server at ~100,000 datagrams/s gave our server proxy 4 datagrams per turn,
 * uftpd about as many), the driver sends what the turn produced and then sleeps, off the CPU, until about `target`
 * datagrams should have arrived, at most `maxUs`. The next turn then reads them in one recvmmsg, instead of one
 * wake-up (a context switch), one receive call and one JS callback per 4 datagrams: on a shared machine those
 * wake-ups are CPU the sender and the other receivers wait for.
 *
 * Only inside a stream: a turn that came more than `idleMs` after the previous one (a lone ANNOUNCE, the first
 * REGISTER whose round trip the server times its GRTT on, a DONE after a pass) never sleeps, nor does a turn that
 * filled `target` or more; and the answers a turn produced (a STATUS, a COMPLETE) are sent before the sleep, so the
 * control rounds keep their latency. While asleep the kernel holds what arrives (a receive buffer of the default
 * 256 KiB holds ~2 ms of a full-speed stream; the sleep is 300 µs at most).
 *
 * ReceiveCoalescer is pure (time comes in, the sleep to take goes out); coalesceTurns wires one to a daemon's
 * sockets.
 */
export interface CoalesceOptions {
  /** Longest sleep after a turn (µs); 0 = off. */
  readonly maxUs: number;
  /** Datagrams per turn the sleep aims at. */
  readonly target: number;
  /** A turn that ends more than this after the previous one is not part of a stream (ms). */
  readonly idleMs: number;
}

export const DEFAULT_COALESCE: CoalesceOptions = { maxUs: 300, target: 32, idleMs: 1 };

/** Below this many microseconds a sleep is not worth its futex calls. */
const MIN_SLEEP_US = 20;

export class ReceiveCoalescer {
  private lastEnd = -Infinity;
  /** Sleeps taken and their total (µs): for the closing log line. */
  sleeps = 0;
  sleptUs = 0;

  constructor(private readonly o: CoalesceOptions = DEFAULT_COALESCE) {}

  /**
   * A receive turn that brought `n` datagrams ended at `now` (ms, monotonic). Returns how long to sleep (µs; 0 =
   * not at all). The next turn's datagrams are those that arrived since `now`, the sleep included: the rate is
   * estimated over that whole time.
   */
  afterTurn(now: number, n: number): number {
    const since = now - this.lastEnd;
    this.lastEnd = now;
    if (this.o.maxUs <= 0 || n <= 0 || n >= this.o.target || !(since <= this.o.idleMs)) return 0;
    // the turn's datagrams arrived since the previous turn ended: at that rate, `target` take this much longer
    const ratePerUs = n / Math.max(since * 1000, 1);
    const us = Math.min(this.o.maxUs, (this.o.target - n) / ratePerUs);
    if (us < MIN_SLEEP_US) return 0;
    this.sleeps++;
    this.sleptUs += us;
    return us;
  }
}

/**
 * PREFIX_COALESCE_US: the longest sleep (0 = off, at most 5000); PREFIX_COALESCE_TARGET: the datagrams per turn it
 * aims at (1-1024). Unset or invalid: the defaults. PREFIX is the program's (UFTPPROXYD, UFTPD).
 */
export function coalesceFromEnv(env: NodeJS.ProcessEnv = process.env, prefix = 'UFTPPROXYD'): CoalesceOptions {
  const us = env[`${prefix}_COALESCE_US`];
  const t = Number(env[`${prefix}_COALESCE_TARGET`]);
  const v = Number(us);
  return {
    ...DEFAULT_COALESCE,
    ...(us !== undefined && us !== '' ? { maxUs: Number.isInteger(v) && v > 0 ? Math.min(v, 5000) : 0 } : {}),
    ...(Number.isInteger(t) && t >= 1 && t <= 1024 ? { target: t } : {}),
  };
}

/** Called around each receive turn (src/net's TurnHooks, which the loop uses too). */
export interface TurnCallbacks {
  begin(): void;
  end(): void;
}

/** What coalesceTurns needs of a socket (UdpEndpoint on the native engine). */
export interface CoalescedSocket {
  onReceiveTurn(h: TurnCallbacks): void;
  flush(): void;
}

/**
 * Sleeps after the small turns of a stream on these sockets. `turn.turnCount` is the datagrams of the turn in
 * progress: the driver's receive callback adds to it, the turn's start here resets it. Register after the event
 * loop (its own hooks, in its constructor, drain the turn's sends first); the turn's sends are flushed before the
 * sleep. Atomics.wait keeps the thread off the CPU without returning to the event loop.
 */
export function coalesceTurns(sockets: readonly CoalescedSocket[], coalescer: ReceiveCoalescer, turn: { turnCount: number }): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (const ep of sockets) {
    ep.onReceiveTurn({
      begin: () => {
        turn.turnCount = 0;
      },
      end: () => {
        const us = coalescer.afterTurn(performance.now(), turn.turnCount);
        if (us === 0) return;
        for (const e of sockets) e.flush();
        Atomics.wait(cell, 0, 0, us / 1000);
      },
    });
  }
}

/** The closing log line's words. */
export function coalesceSummary(c: ReceiveCoalescer): string {
  return `Receive coalescing: ${c.sleeps} sleeps, ${(c.sleptUs / 1000).toFixed(1)} ms in all`;
}
