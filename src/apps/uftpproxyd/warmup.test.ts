import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKey } from '../../crypto/keyfile.js';
import { primeKeyExchange, rehearseSession, rewarmAfterFirstConfirm, SESSION_HASHES, warmDataPath, type RewarmWatch } from './warmup.js';
import type { TurnHooks } from '../../net/udp.js';

test('primeKeyExchange: every derivation and every key round trip succeeds, RSA and ECDSA keys', () => {
  const rsa = generateKey({ kind: 'RSA', bits: 1024 });
  const ec = generateKey({ kind: 'EC', curve: 'prime256v1' });
  assert.ok(rsa.ok && ec.ok);
  assert.deepEqual(SESSION_HASHES.map((h) => h.name), ['sha1', 'sha256', 'sha384', 'sha512']);
  const suites = SESSION_HASHES.length;
  // no keys: one derivation per hash suite
  assert.equal(primeKeyExchange([]), suites);
  // RSA: + the premaster round trip + a signature checked per hash suite; ECDSA: + a signature per hash suite
  assert.equal(primeKeyExchange([rsa.value]), suites + 1 + suites);
  assert.equal(primeKeyExchange([rsa.value, ec.value]), suites + 1 + suites + suites);
});

test('rehearseSession: a throwaway server and client proxy each forward the ANNOUNCE and the REGISTER', () => {
  const random = { u32: (): number => 7, bytes: (n: number): Uint8Array => new Uint8Array(n) };
  assert.equal(rehearseSession('server', 0x0a020202, random, 1000), 2);
  assert.equal(rehearseSession('client', 0x0a020202, random, 1000), 2);
});

test('warmDataPath: a throwaway server and client proxy forward the whole synthetic stream on loopback, in time', { timeout: 20_000 }, async () => {
  const random = { u32: (): number => 7, bytes: (n: number): Uint8Array => new Uint8Array(n) };
  for (const mode of ['server', 'client'] as const) {
    const r = await warmDataPath({ mode, uid: 0x0a020202, random, bufferSize: 4 << 20, budgetMs: 2000, logLevel: 2 });
    process.stdout.write(`# ${mode}: ${JSON.stringify(r)}\n`);
    if (r.stopped === 'node:dgram backend') continue; // no native engine here: nothing to warm
    assert.equal(r.stopped, undefined, `${mode}: ended early: ${r.stopped}`);
    // the ANNOUNCE, 24 bursts of 512 and the small groups with their DONEs, all through the machine to the sink
    assert.ok(r.sent > 15_000, `${mode}: sent ${r.sent}`);
    assert.equal(r.forwarded, r.sent, `${mode}: forwarded ${r.forwarded} of ${r.sent}`);
    assert.ok(r.ms < 2000, `${mode}: ${r.ms} ms`);
  }
});

test('warmDataPath: abort ends it at once, before the rest of the stream', { timeout: 20_000 }, async () => {
  const random = { u32: (): number => 7, bytes: (n: number): Uint8Array => new Uint8Array(n) };
  let asked = 0;
  const r = await warmDataPath({ mode: 'client', uid: 0x0a020202, random, bufferSize: 4 << 20, budgetMs: 2000, logLevel: 2, abort: () => ++asked > 3 });
  if (r.stopped === 'node:dgram backend') return;
  assert.equal(r.stopped, "the daemon's data");
  // the ANNOUNCE and the first burst (512) went; three small groups at most; not the 24 bursts of the full run
  assert.ok(r.sent > 0 && r.sent < 2_000, `sent ${r.sent}`);
});

/** A daemon's loop and aggregating machine as rewarmAfterFirstConfirm sees them, and what it logged. */
function watch(): { w: RewarmWatch; state: { sent: number; confirmed: number }; lines: string[]; turn: () => void } {
  const state = { sent: 0, confirmed: 0 };
  const lines: string[] = [];
  const hooks: TurnHooks[] = [];
  const w: RewarmWatch = {
    loop: { get sent() { return state.sent; } },
    confirmed: () => state.confirmed,
    sockets: [{ onReceiveTurn: (h: TurnHooks) => void hooks.push(h) }],
    log: { log: (_level: number, message: string) => void lines.push(message) },
  };
  // a receive turn of the daemon's socket
  const turn = (): void => {
    for (const h of hooks) h.begin();
    for (const h of hooks) h.end();
  };
  return { w, state, lines, turn };
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
const rewarmOpts = { mode: 'client' as const, uid: 0x0a020202, random: { u32: (): number => 7, bytes: (n: number): Uint8Array => new Uint8Array(n) }, bufferSize: 4 << 20, budgetMs: 2000, logLevel: 2 };

test('rewarmAfterFirstConfirm: once, after the first confirmed registration, not before', { timeout: 20_000 }, async () => {
  const { w, state, lines, turn } = watch();
  rewarmAfterFirstConfirm(w, rewarmOpts);
  // a session announcing, nothing confirmed yet: no re-warm
  for (let i = 0; i < 4; i++) {
    state.sent += 3;
    turn();
    await sleep(100);
  }
  assert.equal(lines.length, 0, lines.join(' | '));
  state.confirmed = 1;
  turn();
  for (let i = 0; i < 60 && lines.length === 0; i++) await sleep(50);
  if (lines[0]?.includes('node:dgram backend')) return;
  assert.equal(lines.length, 1, 'one re-warm');
  const m = /data path warm-up again, (\d+) of (\d+) datagrams forwarded/.exec(lines[0]);
  assert.ok(m, lines[0]);
  assert.equal(m[1], m[2], lines[0]);
  assert.ok(Number(m[2]) > 5_000, lines[0]);
  // and never again
  state.confirmed = 2;
  turn();
  await sleep(400);
  assert.equal(lines.length, 1);
});

test('rewarmAfterFirstConfirm: not at all when the transfer started first', { timeout: 20_000 }, async () => {
  const { w, state, lines, turn } = watch();
  rewarmAfterFirstConfirm(w, rewarmOpts);
  // data flowing (hundreds of datagrams a turn) before any REG_CONF was seen
  for (let i = 0; i < 3; i++) {
    state.sent += 500;
    turn();
    await sleep(100);
  }
  state.confirmed = 1;
  turn();
  await sleep(600);
  assert.equal(lines.length, 0, lines.join(' | '));
});
