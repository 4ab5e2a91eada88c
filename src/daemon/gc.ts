/**
 * One full garbage collection, for a daemon at the end of its start-up. V8's first mark-compact otherwise comes when
 * the old generation outgrows its start-up limit, which in a fresh daemon can fall into its first transfer: a 17-51 ms
 * pause there (measured with --trace-gc at -R -1 in uftpproxyd and uftpd, docs/benchmarks.md) lets the server's
 * datagrams overflow the receive buffer, and every one lost costs a NAK pass. Node has no API for it: this is the
 * gc function of a context created while --expose-gc is set (the flag is cleared again at once).
 *
 * Returns the pause in milliseconds, or undefined when V8 offered no gc function.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

export function collectGarbage(): number | undefined {
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = vm.runInNewContext('gc');
  v8.setFlagsFromString('--no-expose-gc');
  if (typeof gc !== 'function') return undefined;
  const t = performance.now();
  gc();
  return performance.now() - t;
}
