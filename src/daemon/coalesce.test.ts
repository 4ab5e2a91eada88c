import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_COALESCE, ReceiveCoalescer, coalesceFromEnv, coalesceSummary, coalesceTurns, type TurnCallbacks } from './coalesce.js';

test('receive coalescing: a lone datagram after a pause never sleeps (control rounds keep their latency)', () => {
  const c = new ReceiveCoalescer();
  assert.equal(c.afterTurn(1000, 1), 0, 'the first turn ever');
  assert.equal(c.afterTurn(1030, 1), 0, 'an ANNOUNCE 30 ms after the previous one');
  assert.equal(c.afterTurn(1031.5, 2), 0, 'two REGISTERs 1.5 ms later');
  assert.equal(c.sleeps, 0);
});

test('receive coalescing: small turns of a stream sleep until about `target` datagrams are due, at most maxUs', () => {
  const c = new ReceiveCoalescer({ maxUs: 300, target: 32, idleMs: 1 });
  c.afterTurn(0, 4);
  // 4 datagrams in 40 µs: 0.1 per µs, so 28 more take 280 µs
  const us = c.afterTurn(0.04, 4);
  assert.ok(Math.abs(us - 280) < 1e-6, `slept ${us} µs`);
  // woken, the turn reads what came meanwhile, counted over the sleep too: a full turn never sleeps
  assert.equal(c.afterTurn(0.4, 36), 0);
  // 24 in the 380 µs since, sleep included: 8 more in ~127 µs
  const us2 = c.afterTurn(0.78, 24);
  assert.ok(Math.abs(us2 - (8 * 380) / 24) < 1e-6, `slept ${us2} µs`);
  // a slow stream (1 datagram in 0.9 ms) sleeps the bound, not 31 x 0.9 ms
  assert.equal(c.afterTurn(1.68, 1), 300);
  assert.equal(c.sleeps, 3);
  assert.ok(Math.abs(c.sleptUs - (580 + us2)) < 1e-6);
});

test('receive coalescing: a turn that filled the target, or an almost full one, does not sleep', () => {
  const c = new ReceiveCoalescer({ maxUs: 300, target: 32, idleMs: 1 });
  c.afterTurn(0, 64);
  assert.equal(c.afterTurn(0.1, 64), 0);
  assert.equal(c.afterTurn(0.2, 32), 0);
  // 31 in 100 µs: 1 more in ~3 µs, not worth a sleep
  assert.equal(c.afterTurn(0.3, 31), 0);
  assert.equal(c.afterTurn(0.4, 0), 0, 'an empty turn');
});

test('receive coalescing: off with UFTPPROXYD_COALESCE_US=0 (or garbage); on by default; bounded', () => {
  assert.deepEqual(coalesceFromEnv({}), DEFAULT_COALESCE);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_US: '0' }).maxUs, 0);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_US: 'x' }).maxUs, 0);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_US: '150' }).maxUs, 150);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_US: '999999' }).maxUs, 5000);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_TARGET: '64' }).target, 64);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_TARGET: '64' }).maxUs, DEFAULT_COALESCE.maxUs);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_TARGET: '0' }).target, DEFAULT_COALESCE.target);
  assert.equal(coalesceFromEnv({ UFTPPROXYD_COALESCE_TARGET: '2000' }).target, DEFAULT_COALESCE.target);
  const off = new ReceiveCoalescer(coalesceFromEnv({ UFTPPROXYD_COALESCE_US: '0' }));
  off.afterTurn(0, 4);
  assert.equal(off.afterTurn(0.04, 4), 0);
});

test('receive coalescing: each program reads its own variables (UFTPD_ for uftpd, UFTPPROXYD_ by default)', () => {
  const env = { UFTPD_COALESCE_US: '0', UFTPPROXYD_COALESCE_US: '200', UFTPD_COALESCE_TARGET: '16' };
  assert.equal(coalesceFromEnv(env, 'UFTPD').maxUs, 0);
  assert.equal(coalesceFromEnv(env, 'UFTPD').target, 16);
  assert.equal(coalesceFromEnv(env).maxUs, 200);
  assert.equal(coalesceFromEnv(env).target, DEFAULT_COALESCE.target);
  assert.deepEqual(coalesceFromEnv({ UFTPPROXYD_COALESCE_US: '0' }, 'UFTPD'), DEFAULT_COALESCE);
});

test('coalesceTurns: a small turn of a stream flushes every socket, then sleeps off the event loop; a full or lone turn does neither', () => {
  const events: string[] = [];
  const hooks: TurnCallbacks[] = [];
  const sock = (name: string): { onReceiveTurn(h: TurnCallbacks): void; flush(): void } => ({
    onReceiveTurn: (h) => {
      hooks.push(h);
    },
    flush: () => {
      events.push(`flush ${name}`);
    },
  });
  const c = new ReceiveCoalescer({ maxUs: 2000, target: 32, idleMs: 50 });
  const turn = { turnCount: 99 };
  coalesceTurns([sock('v4'), sock('v6')], c, turn);
  assert.equal(hooks.length, 2, 'hooks on every socket');
  const run = (n: number): number => {
    hooks[0].begin();
    assert.equal(turn.turnCount, 0, 'the turn count starts at 0');
    turn.turnCount += n;
    const t0 = performance.now();
    hooks[0].end();
    return performance.now() - t0;
  };
  run(4); // the first turn: no stream yet
  assert.deepEqual(events, []);
  const slept = run(1); // 1 datagram a moment later: part of a stream, far below the target
  assert.deepEqual(events, ['flush v4', 'flush v6'], 'the turn\'s sends go out before the sleep');
  assert.equal(c.sleeps, 1);
  assert.ok(slept >= 0.9 * (c.sleptUs / 1000), `the thread slept (${slept.toFixed(3)} ms for ${c.sleptUs.toFixed(0)} µs)`);
  events.length = 0;
  run(40); // a full turn
  assert.deepEqual(events, []);
  assert.equal(c.sleeps, 1);
  assert.match(coalesceSummary(c), /^Receive coalescing: 1 sleeps, \d+\.\d ms in all$/);
});
