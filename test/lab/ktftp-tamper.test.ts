/**
 * An active attacker on the path: a UDP relay inside the namespace between ktftp and ktftpd that flips bits in
 * sealed packets (instead of forwarding them) and replays earlier sealed packets, in both directions. The
 * transfers must still end with the exact bytes (TFTP retransmission recovers), and both ends must report the
 * packets they dropped as forged or replayed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { KtftpLab, type ServerHandle } from '../../src/ktftp/testlab.js';

let lab: KtftpLab;
let srv: ServerHandle;
let relay: ChildProcess;
let relayLog = '';
const RELAY_PORT = 5999;

const RELAY = (serverPort: number) => `
const dgram = require('node:dgram');
const front = dgram.createSocket('udp4'), back = dgram.createSocket('udp4');
let client = null, tid = null, n = { c2s: 0, s2c: 0 }, seen = { c2s: [], s2c: [] };
function mutate(dir, m, send) {
  if (m.length < 2 || m.readUInt16BE(0) !== 16) return send(m);
  const k = ++n[dir];
  seen[dir].push(Buffer.from(m));
  if (k % 7 === 3) { const t = Buffer.from(m); t[t.length - 20] ^= 0x40; console.log(dir + ' tampered #' + k); return send(t); }
  send(m);
  if (k % 7 === 6) { send(seen[dir][k - 4]); send(seen[dir][0]); console.log(dir + ' replayed #' + (k - 3) + ' and #1'); }
}
front.on('message', (m, ri) => {
  if (client === null || ri.port !== client.port) { client = ri; n.c2s = 0; n.s2c = 0; seen = { c2s: [], s2c: [] }; tid = null; }
  mutate('c2s', m, (b) => back.send(b, tid ?? ${serverPort}, '127.0.0.1'));
});
back.on('message', (m, ri) => { tid = ri.port; mutate('s2c', m, (b) => front.send(b, client.port, client.address)); });
back.bind(0, () => front.bind(${RELAY_PORT}, '127.0.0.1', () => console.log('relay up')));
`;

before(async () => {
  lab = await KtftpLab.create({ prefix: 'uk-', users: ['alice'] });
  mkdirSync(lab.path('srv'));
  writeFileSync(lab.path('tags'), `log|${lab.path('srv')}/app.log|alice\n`);
  writeFileSync(lab.path('idents'), `alice|${lab.ids.alice.fingerprint}\n`);
  srv = await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '4']);
  const argv = lab.nsArgv(['node', '-e', RELAY(srv.port)], 200);
  relay = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  relay.stdout!.on('data', (d: Buffer) => (relayLog += d.toString()));
  for (let i = 0; i < 50 && !relayLog.includes('relay up'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(relayLog, /relay up/);
});

after(async () => {
  relay?.kill('SIGTERM');
  await lab?.destroy();
});

const base = () => ['-k', lab.ids.alice.keyPath, '-r', '0.3', '-w', '4', '-b', '512'];

describe('tampered and replayed packets on the wire', { timeout: 120_000 }, () => {
  test('put: forged and replayed client packets are dropped by the server, the file lands exact', async () => {
    const content = randomBytes(60_000);
    const before = srv.stderr().length;
    const r = await lab.ktftp(RELAY_PORT, [...base(), 'put', '-', '127.0.0.1:log'], { input: content });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(`${lab.path('srv')}/app.log`).equals(content));
    const log = srv.stderr().slice(before);
    assert.match(relayLog, /c2s tampered/);
    assert.match(relayLog, /c2s replayed/);
    assert.match(log, /dropped sealed packet \(forged\)/);
    assert.match(log, /dropped sealed packet \(replayed\)/);
  });

  test('get: forged and replayed server packets are dropped by the client, the bytes arrive exact', async () => {
    const content = randomBytes(40_000);
    writeFileSync(`${lab.path('srv')}/app.log`, content);
    const out = lab.path('got.bin');
    // interactive mode with packet tracing, so the client says what it dropped
    const script = `connect 127.0.0.1 ${RELAY_PORT}\nrexmt 0.3\nblksize 512\nwindowsize 4\ntrace\nget log ${out}\nquit\n`;
    const r = await lab.ktftp(RELAY_PORT, ['-k', lab.ids.alice.keyPath], { input: script });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.ok(readFileSync(out).equals(content));
    assert.match(relayLog, /s2c tampered/);
    assert.match(r.stderr, /sealed packet dropped \(forged\)/);
    assert.match(r.stderr, /sealed packet dropped \(replayed\)/);
  });
});
