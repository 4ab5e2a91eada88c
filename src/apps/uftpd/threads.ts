/**
 * The receiving thread first: lowers the scheduling priority (raises the nice value) of the process's other threads
 * that exist now (V8's compiler and garbage-collector helpers, libuv's thread pool) below the calling thread's, which
 * must be the main thread, the one that empties the socket.
 *
 * Why: on Linux each thread is scheduled on its own. In a fresh uftpd, V8 compiles the receive path again during the
 * first transfer's first 100-150 ms (tens of jobs, one of 30 ms), on the same core as the main thread when CPUs are
 * few; the main thread then empties the socket too late, and at a fast sender's rate a 4 MiB buffer holds ~36 ms of
 * datagrams (docs/benchmarks.md, uftpd, "stalls"). Helpers at a lower priority still run whenever the main thread
 * sleeps, which it does most of the time; the main thread is not given anything it did not have (no privilege needed).
 *
 * Threads started later inherit the nice value of the thread that starts them. Linux only (/proc/self/task); elsewhere
 * nothing is changed. Errors are values.
 */
import fs from 'node:fs';
import os from 'node:os';

export interface HelperThreads {
  /** Threads other than the main thread whose priority was lowered. */
  readonly lowered: number;
  /** Their nice value now. */
  readonly nice: number;
  /** Threads that could not be changed (one line each: thread id and the error). */
  readonly errors: readonly string[];
}

/** Sets every other thread's nice value to the main thread's plus `step` (at most 19). */
export function lowerHelperThreads(step: number): HelperThreads {
  const nice = Math.min(19, os.getPriority() + step);
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return { lowered: 0, nice, errors: [] };
  }
  let lowered = 0;
  const errors: string[] = [];
  for (const t of tids) {
    const tid = Number(t);
    if (!Number.isInteger(tid) || tid === process.pid) continue;
    try {
      os.setPriority(tid, nice);
      lowered++;
    } catch (e) {
      // a thread may end between the listing and the call
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') errors.push(`${tid}: ${(e as Error).message}`);
    }
  }
  return { lowered, nice, errors };
}
