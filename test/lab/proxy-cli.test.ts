// uftpproxyd as a program, inside a lab namespace: detaching with a pidfile, start-up errors reported before
// detaching with the manual's exit values, SIGTERM -> clean exit, -Q really sets DSCP on outgoing packets,
// -K/-k write keys and refuse to overwrite. Needs root and the compiled bin (`npx tsc -p .`).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Lab, ourBin, pidAlive as alive } from '../../src/lab/lab.js';

let lab: Lab;
before(async () => {
  lab = await Lab.up('fig2', { prefix: `upc${randomBytes(3).toString('hex')}`, octet: 68 });
});
after(async () => {
  await lab?.down();
});

const H = 'rproxy1';
function run(args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return lab.exec(H, [process.execPath, ourBin('uftpproxyd'), ...args], { timeoutMs });
}


test('detaches: exit 0 once running, pidfile written; SIGTERM shuts it down and removes the pidfile', { timeout: 60_000 }, async () => {
  const dir = path.join(lab.workDir, 'd1');
  fs.mkdirSync(dir, { recursive: true });
  const pidfile = path.join(dir, 'p.pid');
  const logfile = path.join(dir, 'p.log');
  const r = await run(['-c', '-P', pidfile, '-L', logfile, '-x', '3', '-N', '7']);
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
  assert.ok(pid > 0 && alive(pid));
  const log = fs.readFileSync(logfile, 'utf8');
  assert.match(log, /Listening on port 1044/);
  // -U defaults to the IPv4 address of the first multicast-capable interface (the host's only one here)
  assert.match(log, new RegExp(`Using unique ID ${lab.uidOf(H)}`));
  // -N: the nice value
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  assert.equal(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]), 7, 'nice 7');
  // a second one cannot bind: exit 2, reported by the launching process
  const r2 = await run(['-c', '-L', path.join(dir, 'q.log')]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /EADDRINUSE/);
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  assert.ok(!alive(pid), 'stopped');
  assert.ok(!fs.existsSync(pidfile), 'pidfile removed');
  assert.match(fs.readFileSync(logfile, 'utf8'), /Exiting on signal 15/);
});

test('start-up errors: keys exit 3, log file exit 4, interface exit 2, bad option exit 1', { timeout: 60_000 }, async () => {
  const dir = path.join(lab.workDir, 'd2');
  fs.mkdirSync(dir, { recursive: true });
  const existing = path.join(dir, 'k.pem');
  fs.writeFileSync(existing, 'not a key');
  let r = await run(['-c', '-d', '-k', path.join(dir, 'missing.pem')]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /-k: .*missing\.pem/);
  r = await run(['-c', '-d', '-k', existing, '-K', 'rsa:512']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /already exists; not overwritten/);
  assert.equal(fs.readFileSync(existing, 'utf8'), 'not a key', 'not overwritten');
  r = await run(['-c', '-L', '/nonexistent-dir/x.log']);
  assert.equal(r.code, 4);
  r = await run(['-c', '-d', '-O', 'no-such-if0']);
  assert.equal(r.code, 2);
  r = await run(['-c', '-x', '9']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^uftpproxyd: -x: log level 9 out of range 0-5/);
});

test('-k with -K writes several keys of different types, then -k reads them back', { timeout: 60_000 }, async () => {
  const dir = path.join(lab.workDir, 'd3');
  fs.mkdirSync(dir, { recursive: true });
  const a = path.join(dir, 'a.pem');
  const b = path.join(dir, 'b.pem');
  const p = lab.ours(H, 'uftpproxyd', ['-c', '-d', '-x', '2', '-k', `${a},${b}`, '-K', 'rsa:1024,ec:secp384r1'], { timeoutMs: 20_000 });
  await lab.waitFor(() => p.log().includes('Listening on port') || p.exitCode !== null, 15_000, 'start');
  await p.kill();
  assert.match(fs.readFileSync(a, 'utf8'), /BEGIN RSA PRIVATE KEY/);
  assert.match(fs.readFileSync(b, 'utf8'), /BEGIN EC PRIVATE KEY/);
  // the real uftp_keymgt reads what we wrote
  const km = await lab.exec(H, ['uftp_keymgt', a, b]);
  assert.match(km.stdout + km.stderr, /RSA, 1024 bits/);
  assert.match(km.stdout + km.stderr, /ECDSA, curve secp384r1/);
  const p2 = lab.ours(H, 'uftpproxyd', ['-c', '-d', '-x', '2', '-k', `${a},${b}`], { timeoutMs: 20_000 });
  await lab.waitFor(() => p2.log().includes('Listening on port') || p2.exitCode !== null, 15_000, 'start');
  await p2.kill();
  assert.match(p2.log(), /Loaded 1024 bit RSA key/);
  assert.match(p2.log(), /Loaded ECDSA secp384r1 key/);
});

test('-Q 46 sets DSCP EF (TOS 0xb8) on outgoing packets', { timeout: 60_000 }, async () => {
  const file = path.join(lab.workDir, 'dscp.pcap');
  const cap = await lab.capture(H, 'eS', file, ['udp', 'port', '1044']);
  const p = lab.ours(H, 'uftpproxyd', ['-c', '-d', '-x', '1', '-Q', '46', '-H', lab.addrOf('server'), '-h', '1'], { timeoutMs: 20_000 });
  await sleep(2500);
  await p.kill();
  await cap.kill();
  const r = await lab.exec(H, ['tcpdump', '-n', '-v', '-r', file]);
  const tos = [...r.stdout.matchAll(/tos (0x[0-9a-f]+)/g)].map((m) => m[1]);
  assert.ok(tos.length >= 2, `heartbeats captured: ${r.stdout}`);
  assert.ok(tos.every((t) => t === '0xb8'), `TOS ${tos.join(',')}`);
});

test('-g 1 -n 2: the log rolls at 1 MB and keeps two archives (a flood of bad datagrams logged at -x 4)', { timeout: 90_000 }, async () => {
  const dir = path.join(lab.workDir, 'd5');
  fs.mkdirSync(dir, { recursive: true });
  const logfile = path.join(dir, 'roll.log');
  const pidfile = path.join(dir, 'roll.pid');
  const r = await run(['-c', '-x', '4', '-L', logfile, '-g', '1', '-n', '2', '-P', pidfile, '-p', '2044']);
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
  // Floods of 20,000 one-byte datagrams, each logged as dropped (about 90 bytes a line), until the log has rolled
  // twice: a busy machine drops some of them in the socket buffer, so the count of floods is not fixed.
  const flood = `const s=require('node:dgram').createSocket('udp4');let n=0;const b=Buffer.from([1]);
function go(){for(let i=0;i<500;i++)s.send(b,2044,'127.0.0.1');n+=500;if(n<20000)setTimeout(go,2);else setTimeout(()=>s.close(),200);}go();`;
  for (let round = 0; round < 12 && !fs.existsSync(`${logfile}.2`); round++) {
    const f = await lab.exec(H, [process.execPath, '-e', flood], { timeoutMs: 60_000 });
    assert.equal(f.code, 0, f.stderr);
    await sleep(300);
  }
  // One more flood after the second roll, so that a third archive would appear if -n 2 were not honoured.
  const f = await lab.exec(H, [process.execPath, '-e', flood], { timeoutMs: 60_000 });
  assert.equal(f.code, 0, f.stderr);
  await sleep(1000);
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  const size = (p: string): number => (fs.existsSync(p) ? fs.statSync(p).size : -1);
  assert.ok(size(`${logfile}.1`) > 0, 'rolled once at least');
  assert.ok(size(`${logfile}.2`) > 0, 'second archive');
  assert.equal(size(`${logfile}.3`), -1, 'no third archive (-n 2)');
  for (const p of [logfile, `${logfile}.1`, `${logfile}.2`]) assert.ok(size(p) <= 1024 * 1024 + 64 * 1024, `${p}: ${size(p)} bytes`);
  assert.match(fs.readFileSync(`${logfile}.1`, 'utf8'), /Dropped datagram from 127\.0\.0\.1:\d+: UFTP header: 1 bytes/);
});
