/**
 * `uftp-lab selftest`: the real UFTP suite through every figure (plain and encrypted), the NAT figure with
 * signed heartbeats, 5% loss and a 250 ms tunnel. Every case must pass; its lines go to the test log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureRealSuite, runSelftest, SELFTEST_CASES } from '../../src/lab/index.js';

test('selftest: every case passes with the real UFTP suite', { timeout: 600_000 }, async (t) => {
  await ensureRealSuite();
  const started = Date.now();
  const results = await runSelftest({ log: (line) => t.diagnostic(line) });
  const total = ((Date.now() - started) / 1000).toFixed(0);
  t.diagnostic(`selftest took ${total} s`);
  assert.equal(results.length, SELFTEST_CASES.length);
  const failed = results.filter((r) => !r.ok).map((r) => r.line);
  assert.deepEqual(failed, [], 'failed cases');
  for (const r of results) assert.ok(r.clients >= 2 && r.files === 3, r.line);
});
