/**
 * The uftp-lab command (compiled bin): help, clear usage errors, a plain refusal without root, and a
 * lab's whole life through the CLI: up, run, status (namespaces and processes), idempotent up and down.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { downPrefix, listNamespaces, ourBin } from '../../src/lab/index.js';

const prefix = `ulabtc${process.pid % 100000}`;
const bin = ourBin('uftp-lab');
after(async () => { await downPrefix(prefix); });

function lab(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('help and usage errors', { timeout: 30_000 }, () => {
  assert.ok(fs.existsSync(bin), `${bin} exists (run npx tsc -p . first)`);
  const h = lab('--help');
  assert.equal(h.code, 0);
  assert.match(h.out, /usage: uftp-lab/);
  assert.match(h.out, /fig1\|fig2\|fig3\|fig4\|nat/);
  const bad = lab('frobnicate');
  assert.equal(bad.code, 2);
  assert.equal(bad.err.trim(), 'uftp-lab: unknown command "frobnicate" (see uftp-lab --help)');
  const fig = lab('up', 'fig9');
  assert.equal(fig.code, 2);
  assert.match(fig.err, /^uftp-lab: up: expected a figure: fig1, fig2, fig3, fig4, nat \(got "fig9"\)\n$/);
  const opt = lab('up', 'fig1', '--loss', 'lots');
  assert.equal(opt.code, 2);
  assert.match(opt.err, /--loss: expected a non-negative number/);
});

test('hosts --ipv6 lists each host\'s IPv6 address beside its IPv4 one; a bad octet is one line', { timeout: 30_000 }, () => {
  const h = lab('hosts', 'fig1', '--ipv6', '--octet', '71');
  assert.equal(h.code, 0, h.err);
  assert.match(h.out, /clientB1 +client +eB 10\.71\.2\.21 fd71:2::21 /);
  assert.match(h.out, /router +router +eA 10\.71\.1\.1 fd71:1::1, eB 10\.71\.2\.1 fd71:2::1, eC 10\.71\.3\.1 fd71:3::1 /);
  assert.doesNotMatch(lab('hosts', 'fig1', '--octet', '71').out, /fd71/, 'IPv4 only without --ipv6');
  const bad = lab('hosts', 'fig1', '--ipv6', '--octet', '150');
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^uftp-lab: IPv6 lab addresses need an octet 0\.\.99 .*got 150\n$/);
});

/**
 * The built program tree copied where any user can read it: the checkout may be in a folder only root can enter
 * (`d=$(mktemp -d); git clone ... $d/p`), and the unprivileged user must still be able to load the program.
 */
function readableCopy(): { bin: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uftp-lab-nobody-'));
  const built = path.resolve(path.dirname(bin), '..');
  fs.cpSync(built, path.join(dir, 'src'), { recursive: true, filter: (f) => !f.endsWith('.map') && !f.endsWith('.test.js') });
  fs.copyFileSync(path.resolve(built, '..', '..', 'package.json'), path.join(dir, 'package.json'));
  const open = (p: string): void => {
    fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o755 : 0o644);
    if (fs.statSync(p).isDirectory()) for (const n of fs.readdirSync(p)) open(path.join(p, n));
  };
  open(dir);
  return { bin: path.join(dir, 'src', path.relative(built, bin)), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('without root it says so plainly and exits non-zero', { timeout: 30_000 }, (t) => {
  const copy = readableCopy();
  t.after(copy.remove);
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, copy.bin, 'up', 'fig1'],
    { encoding: 'utf8', timeout: 30_000, cwd: os.tmpdir() });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), 'uftp-lab: needs root to create network namespaces (run it as root, e.g. with sudo)');
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
});

test('up, run, status, down through the CLI; up and down idempotent', { timeout: 90_000 }, async () => {
  const up = lab('--prefix', prefix, 'up', 'fig2', '--loss', '1');
  assert.equal(up.code, 0, up.err);
  assert.match(up.out, /client1 +client +eS 10\.70\.1\.21/);
  assert.match(up.out, /loss 1%/);
  const again = lab('--prefix', prefix, 'up', 'fig2');
  assert.equal(again.code, 0, again.err);
  assert.equal((await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`)).length, 6, '5 hosts + 1 switch, once');

  const resolv = lab('--prefix', prefix, 'run', 'client1', 'cat', '/etc/resolv.conf');
  assert.equal(resolv.out, 'nameserver 127.0.0.1\n');
  const addr = lab('--prefix', prefix, 'run', 'client1', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eS');
  assert.match(addr.out, /inet 10\.70\.1\.21\/24/);
  assert.equal(lab('--prefix', prefix, 'run', 'client1', 'sh', '-c', 'exit 3').code, 3, 'run passes the exit code on');
  assert.equal(lab('--prefix', prefix, 'run', 'nosuchhost', 'true').code, 1);

  // A long-running program inside the lab shows in status and is stopped by down.
  const sleeper = spawn(process.execPath, [bin, '--prefix', prefix, 'run', '--timeout', '60', 'server', 'sleep', '45'], { stdio: 'ignore' });
  const exited = new Promise<number>((r) => sleeper.on('exit', (c, s) => r(c ?? (s ? 128 : 1))));
  let st = '';
  for (let i = 0; i < 50 && !/sleep 45/.test(st); i++) {
    await new Promise((r) => setTimeout(r, 100));
    st = lab('--prefix', prefix, 'status').out;
  }
  assert.match(st, new RegExp(`lab ${prefix}: fig2`));
  assert.match(st, new RegExp(`${prefix}-server\\n +\\d+ .*sleep 45`));

  const down = lab('--prefix', prefix, 'down');
  assert.equal(down.code, 0);
  assert.match(down.out, /removed 6 namespaces/);
  assert.notEqual(await exited, 0, 'the program in the lab was stopped');
  const down2 = lab('--prefix', prefix, 'down');
  assert.equal(down2.code, 0);
  assert.match(down2.out, /nothing to do/);
  assert.match(lab('--prefix', prefix, 'status').out, /no lab with prefix/);
  assert.equal((await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`)).length, 0);
  assert.deepEqual(fs.readdirSync('/etc/netns').filter((n) => n.startsWith(`${prefix}-`)), []);
});
