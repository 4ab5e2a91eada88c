import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKey } from '../../crypto/keyfile.js';
import { primeKeyExchange, rehearseSession, SESSION_HASHES, warmDataPath } from './warmup.js';

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
