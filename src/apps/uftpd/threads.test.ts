import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { test } from 'node:test';
import { lowerHelperThreads } from './threads.js';

/** The nice value of one thread of this process, from /proc (field 19 of stat). */
function niceOf(tid: number): number {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

test('lowerHelperThreads: every other thread below the main thread, the main thread unchanged', { skip: process.platform !== 'linux' }, async () => {
  await fs.promises.readFile('/proc/self/stat'); // libuv's pool is started (as the daemon's warm-up starts it)
  const base = os.getPriority();
  const others = fs.readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid);
  assert.ok(others.length >= 2, `threads besides the main one: ${others.length}`);
  const r = lowerHelperThreads(10);
  assert.deepEqual(r.errors, []);
  assert.equal(r.nice, Math.min(19, base + 10));
  assert.ok(r.lowered >= others.length - 1, `lowered ${r.lowered} of ${others.length}`);
  assert.equal(niceOf(process.pid), base);
  for (const t of fs.readdirSync('/proc/self/task').map(Number)) {
    if (t === process.pid) continue;
    assert.equal(niceOf(t), r.nice, `thread ${t}`);
  }
  // the main thread still runs at its own priority: work handed to the pool still completes
  assert.ok((await fs.promises.readFile('/proc/self/stat', 'utf8')).length > 0);
});
