// The native engine's receive spin (docs/net-engine.md "Receive spin"), over loopback with a peer in another
// process (so that it can run on another CPU while we wait): it serves request/response traffic without going back
// to libuv, each wait stays within its bound, a slow peer makes it back off, traffic that is not request/response
// never spins, and timers and other sockets of the process are still served while it runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { loadNativeAddon } from './engine.js';
import { UdpEndpoint, type EngineStats } from './udp.js';

const skip = loadNativeAddon() ? false : 'addon not built';

/** A peer process (node:dgram): 'pingpong' sends `count` requests one at a time (waiting `gapMs` between an
 * answer and the next request) and checks each answer; 'flood' sends `count` datagrams at once. Prints a JSON
 * line: {answers, wrong}. */
const PEER = `
const dgram = require('node:dgram');
const [port, count, gapMs, mode] = process.argv.slice(1).map((x, i) => (i < 3 ? Number(x) : x));
const s = dgram.createSocket('udp4');
let i = 0, answers = 0, wrong = 0;
const done = () => { clearTimeout(guard); console.log(JSON.stringify({ answers, wrong })); s.close(); };
const guard = setTimeout(() => { console.log(JSON.stringify({ answers, wrong, timeout: true })); process.exit(1); }, 20000);
s.bind(0, '127.0.0.1', () => {
  if (mode === 'flood') {
    for (let k = 0; k < count; k++) s.send('f' + k, port, '127.0.0.1');
    setTimeout(done, 200);
    return;
  }
  const next = () => (i < count ? s.send('q' + i, port, '127.0.0.1') : done());
  s.on('message', (m) => {
    answers++;
    if (m.toString() !== 'Q' + i) wrong++;
    i++;
    if (gapMs > 0) setTimeout(next, gapMs);
    else next();
  });
  next();
});
`;

function peer(port: number, count: number, gapMs: number, mode: 'pingpong' | 'flood'): Promise<{ answers: number; wrong: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', PEER, String(port), String(count), String(gapMs), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as { answers: number; wrong: number });
      } catch (e) {
        reject(new Error(`peer: ${out}: ${(e as Error).message}`));
      }
    });
  });
}

/** An endpoint answering each datagram "qN" with "QN" to its sender (or to `elsewhere`). */
async function server(spinUs: number, elsewhere?: { port: number }): Promise<UdpEndpoint> {
  const ref: { ep?: UdpEndpoint } = {};
  const r = await UdpEndpoint.open({
    family: 4, port: 0, address: '127.0.0.1', backend: 'native', spinUs, recvInfo: false,
    onMessage: (m, ri) => {
      const a = Buffer.from(m.toString().toUpperCase());
      ref.ep?.send(a, 0, a.length, elsewhere ? elsewhere.port : ri.port, '127.0.0.1');
    },
  });
  assert.ok(r.ok, r.ok ? '' : r.error);
  ref.ep = r.value;
  return r.value;
}

/** Every wait is bounded: the time spent spinning is at most the bound (plus the cost of one last look) per wait. */
function assertBounded(st: EngineStats, boundUs: number): void {
  const waits = st.spinHits + st.spinMisses + st.spinYields;
  assert.ok(st.spinSeconds <= waits * (boundUs + 100) * 1e-6, `spun ${st.spinSeconds} s in ${waits} waits of at most ${boundUs} µs`);
}

test('receive spin: a lock-step peer is served by spinning, each wait within its bound, every answer right', { skip }, async () => {
  // the largest bound, so that a loaded machine's peer still answers within it now and then
  const ep = await server(1000);
  try {
    const r = await peer(ep.address().port, 3000, 0, 'pingpong');
    assert.deepEqual(r, { answers: 3000, wrong: 0 });
    const st = ep.stats();
    // on one CPU the peer cannot run while we wait: the waits miss and back off; with two it answers meanwhile
    if (availableParallelism() >= 2) assert.ok(st.spinHits > 0, `no spin hit: ${JSON.stringify(st)}`);
    assert.ok(st.spinHits + st.spinMisses + st.spinYields <= 3000);
    assertBounded(st, 1000);
  } finally {
    await ep.close();
  }
});

test('receive spin: a peer slower than the bound makes it back off (a few misses, not one per request)', { skip }, async () => {
  const ep = await server(100);
  try {
    // 150 requests, each 3 ms after the previous answer: every wait of 100 µs misses
    const r = await peer(ep.address().port, 150, 3, 'pingpong');
    assert.deepEqual(r, { answers: 150, wrong: 0 });
    const st = ep.stats();
    assert.ok(st.spinMisses >= 1, JSON.stringify(st));
    // back-off: after k misses in a row the next 2^(k-1) (at most 64) chances are skipped
    assert.ok(st.spinMisses <= 12, `${st.spinMisses} misses for 150 slow requests`);
    assertBounded(st, 100);
  } finally {
    await ep.close();
  }
});

test('receive spin: a receiver that does not answer, or answers someone else, never spins', { skip }, async () => {
  const sink = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', backend: 'native', onMessage: () => undefined });
  assert.ok(sink.ok);
  const quiet = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', backend: 'native', spinUs: 200, onMessage: () => undefined });
  assert.ok(quiet.ok);
  const forwarder = await server(200, sink.value.address());
  try {
    await peer(quiet.value.address().port, 500, 0, 'flood');
    await peer(forwarder.address().port, 300, 0, 'flood');
    const q = quiet.value.stats();
    const f = forwarder.stats();
    assert.ok(q.received > 0 && f.received > 0 && f.sent === f.received);
    for (const st of [q, f]) assert.deepEqual([st.spinHits, st.spinMisses, st.spinYields, st.spinSeconds], [0, 0, 0, 0]);
  } finally {
    await quiet.value.close();
    await forwarder.close();
    await sink.value.close();
  }
});

test('receive spin: timers and other sockets of the process run while a lock-step exchange keeps it spinning', { skip }, async () => {
  const ep = await server(200);
  const late: number[] = [];
  const other = await UdpEndpoint.open({
    family: 4, port: 0, address: '127.0.0.1', backend: 'native',
    onMessage: (m) => late.push(performance.now() - Number(m.toString())),
  });
  assert.ok(other.ok);
  const ticks: number[] = [];
  const timer = setInterval(() => {
    ticks.push(performance.now());
    // a datagram to the other socket, stamped: how long it waits to be read tells whether we starve the loop
    const b = Buffer.from(String(performance.now()));
    other.value.send(b, 0, b.length, other.value.address().port, '127.0.0.1');
  }, 2);
  try {
    const t0 = performance.now();
    const r = await peer(ep.address().port, 8000, 0, 'pingpong');
    const span = performance.now() - t0;
    assert.deepEqual(r, { answers: 8000, wrong: 0 });
    const gaps = ticks.slice(1).map((t, i) => t - ticks[i]);
    // one libuv callback spins for at most 1 ms (or 64 turns): the 2 ms timer is never held up for long
    assert.ok(ticks.length >= span / 50, `${ticks.length} ticks in ${span.toFixed(0)} ms`);
    assert.ok(Math.max(...gaps) < 250, `a timer waited ${Math.max(...gaps).toFixed(1)} ms`);
    assert.ok(late.length > 0 && Math.max(...late) < 250, `the other socket waited up to ${Math.max(...late).toFixed(1)} ms`);
    assertBounded(ep.stats(), 200);
  } finally {
    clearInterval(timer);
    await ep.close();
    await other.value.close();
  }
});
