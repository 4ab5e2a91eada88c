/**
 * Receive coalescing for a forwarding proxy (the driver's, src/apps/uftpproxyd/run.ts): NIC interrupt moderation
 * done in user space. When a receive turn of a data stream brought only a few datagrams (the upstream sends more
 * slowly than we forward: an encrypting uftp server, ~100,000 datagrams/s, gave our server proxy 4 datagrams per
 * turn), the driver sends what the turn forwarded and then sleeps, off the CPU, until about `target` datagrams
 * should have arrived, at most `maxUs`. The next turn then reads them in one recvmmsg and forwards them in one
 * send, instead of one wake-up, one receive call, one JS callback and one sendmmsg per 4 datagrams: on the 2 cores
 * that the uftp server, both proxies and both uftpd share, those wake-ups are CPU the server's sending thread
 * and the decrypting clients wait for.
 *
 * Only inside a stream: a turn that came more than `idleMs` after the previous one (a lone ANNOUNCE, the first
 * REGISTER whose round trip the server times its GRTT on, a DONE after a pass) never sleeps, nor does a turn that
 * filled `target` or more, so the control rounds keep their latency. While asleep the kernel holds what arrives
 * (the proxies' receive buffers hold 30 ms and more of a full-speed stream; the sleep is 300 µs at most).
 *
 * Pure: time comes in, the sleep to take goes out.
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
 * UFTPPROXYD_COALESCE_US: the longest sleep (0 = off, at most 5000); UFTPPROXYD_COALESCE_TARGET: the datagrams per
 * turn it aims at (1-1024). Unset or invalid: the defaults.
 */
export function coalesceFromEnv(env: NodeJS.ProcessEnv = process.env): CoalesceOptions {
  const us = env.UFTPPROXYD_COALESCE_US;
  const t = Number(env.UFTPPROXYD_COALESCE_TARGET);
  const v = Number(us);
  return {
    ...DEFAULT_COALESCE,
    ...(us !== undefined && us !== '' ? { maxUs: Number.isInteger(v) && v > 0 ? Math.min(v, 5000) : 0 } : {}),
    ...(Number.isInteger(t) && t >= 1 && t <= 1024 ? { target: t } : {}),
  };
}
