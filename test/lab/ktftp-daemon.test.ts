/**
 * ktftpd as a daemon (UFTP conventions: start-up errors reported before detaching with the man page's exit
 * values, pidfile, log file, SIGTERM), and the seed's put semantics (modes and existence do not matter).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, chmodSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { KTFTP_JS, KTFTPD_JS, KtftpLab } from '../../src/ktftp/testlab.js';

let lab: KtftpLab;

before(async () => {
  lab = await KtftpLab.create({ prefix: 'uk-', users: ['alice'] });
  mkdirSync(lab.path('srv'));
  writeFileSync(lab.path('tags'), `log|${lab.path('srv')}/app.log|alice\n`);
  writeFileSync(lab.path('idents'), `alice|${lab.ids.alice.fingerprint}\n`);
});

after(async () => {
  await lab?.destroy();
});

const daemon = (args: string[]) => lab.run(['node', KTFTPD_JS, '-a', '127.0.0.1', ...args], { timeoutSec: 30 });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ktftpd daemon behaviour', { timeout: 120_000 }, () => {
  test('start-up errors are printed and give the UFTP exit values before detaching', async () => {
    writeFileSync(lab.path('bad-tags'), `ok|/tmp/x|alice\nnot a tag line\n`);
    const bad = await daemon(['-p', '7101', '-T', lab.path('bad-tags'), '-A', lab.path('idents'), '-k', lab.serverKey.keyPath, '-L', lab.path('d.log')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad-tags:2: expected tag\|\/absolute\/path\|acl/);
    const noKey = await daemon(['-p', '7102', '-T', lab.path('tags'), '-A', lab.path('idents'), '-k', lab.path('nokey.pem'), '-L', lab.path('d.log')]);
    assert.equal(noKey.code, 3);
    assert.match(noKey.stderr, /nokey\.pem/);
    const usage = await daemon(['-p', '7103', '-A', lab.path('idents')]);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /-T tagfile is required/);
    const badOpt = await daemon(['-x', '9', '-T', lab.path('tags'), '-A', lab.path('idents')]);
    assert.equal(badOpt.code, 1);
    assert.match(badOpt.stderr, /-x: log level 9 out of range 0-5/);
  });

  test('detaches with exit 0, writes the pidfile and log (with the key fingerprint), serves, stops on SIGTERM', async () => {
    const pidfile = lab.path('ktftpd.pid');
    const logfile = lab.path('ktftpd.log');
    const r = await daemon(['-p', '7104', '-T', lab.path('tags'), '-A', lab.path('idents'), '-k', lab.serverKey.keyPath, '-L', logfile, '-P', pidfile, '-x', '3']);
    assert.equal(r.code, 0, r.stderr);
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    assert.ok(pid > 0 && alive(pid));
    try {
      writeFileSync(`${lab.path('srv')}/app.log`, 'served by the daemon');
      const g = await lab.ktftp(7104, ['-k', lab.ids.alice.keyPath, 'get', '127.0.0.1:log', '-']);
      assert.equal(g.code, 0, g.stderr);
      assert.equal(g.stdout.toString(), 'served by the daemon');
      const log = readFileSync(logfile, 'utf8');
      assert.ok(log.includes(`fingerprint: ${lab.serverKey.fingerprint}`), log);
      assert.match(log, /RRQ log by alice \(key\)/);
    } finally {
      process.kill(pid, 'SIGTERM');
    }
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((res) => setTimeout(res, 100));
    assert.equal(alive(pid), false);
    assert.equal(existsSync(pidfile), false, 'pidfile removed on exit');
  });

  test('-K with -k makes the key and writes it; the logged fingerprint is the real uftp_keymgt\'s', async () => {
    const keyfile = lab.path('made.pem');
    const logfile = lab.path('k.log');
    const r = await daemon(['-p', '7106', '-T', lab.path('tags'), '-A', lab.path('idents'), '-K', 'ec:secp384r1', '-k', keyfile, '-L', logfile, '-P', lab.path('k.pid')]);
    assert.equal(r.code, 0, r.stderr);
    const pid = Number(readFileSync(lab.path('k.pid'), 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    const real = await lab.run(['/usr/bin/uftp_keymgt', keyfile]);
    const m = /fingerprint: ([0-9A-F:]+)/.exec(real.stderr + real.stdout.toString());
    assert.ok(m, real.stderr);
    assert.ok(readFileSync(logfile, 'utf8').includes(`fingerprint: ${m[1]}`));
    // never overwrites an existing key file
    const again = await daemon(['-p', '7107', '-T', lab.path('tags'), '-A', lab.path('idents'), '-K', 'ec:prime256v1', '-k', keyfile, '-L', logfile]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /won't overwrite/);
  });

  test("put: the target's existence and mode do not matter; the old mode is kept", async () => {
    const port = 7105;
    const argv = ['-p', String(port), '-T', lab.path('tags'), '-A', lab.path('idents'), '-k', lab.serverKey.keyPath, '-L', lab.path('p.log'), '-P', lab.path('p.pid')];
    assert.equal((await daemon(argv)).code, 0);
    const pid = Number(readFileSync(lab.path('p.pid'), 'utf8').trim());
    try {
      const target = `${lab.path('srv')}/app.log`;
      rmSync(target, { force: true });
      const p1 = await lab.ktftp(port, ['-k', lab.ids.alice.keyPath, 'put', '-', '127.0.0.1:log'], { input: 'created by put\n' });
      assert.equal(p1.code, 0, p1.stderr);
      assert.equal(readFileSync(target, 'utf8'), 'created by put\n');
      chmodSync(target, 0o400);
      const p2 = await lab.ktftp(port, ['-k', lab.ids.alice.keyPath, 'put', '-', '127.0.0.1:log'], { input: 'replaced\n' });
      assert.equal(p2.code, 0, p2.stderr);
      assert.equal(readFileSync(target, 'utf8'), 'replaced\n');
      assert.equal(statSync(target).mode & 0o777, 0o400);
      chmodSync(target, 0o000);
      const g = await lab.ktftp(port, ['-k', lab.ids.alice.keyPath, 'get', '127.0.0.1:log', '-']);
      assert.equal(g.code, 0);
      assert.equal(g.stdout.toString(), 'replaced\n');
    } finally {
      process.kill(pid, 'SIGTERM');
    }
  });

  test('SIGTERM during a put: ktftpd removes the temporary file before it exits, the old file stays', async () => {
    const port = 7106;
    const argv = ['-p', String(port), '-T', lab.path('tags'), '-A', lab.path('idents'), '-k', lab.serverKey.keyPath, '-L', lab.path('t.log'), '-P', lab.path('t.pid')];
    const target = `${lab.path('srv')}/app.log`;
    writeFileSync(target, 'the old log');
    assert.equal((await daemon(argv)).code, 0);
    const pid = Number(readFileSync(lab.path('t.pid'), 'utf8').trim());
    // a put from a pipe that delivers 300 kB and then stalls
    const cargv = lab.nsArgv(['sh', '-c', `(head -c 300000 /dev/zero; sleep 20) | node ${JSON.stringify(KTFTP_JS)} -p ${port} -F ${lab.serverKey.fingerprint} -k ${lab.ids.alice.keyPath} put - 127.0.0.1:log`], 30);
    const client = spawn(cargv[0], cargv.slice(1), { stdio: 'ignore', detached: true });
    try {
      const temps = (): string[] => readdirSync(lab.path('srv')).filter((f) => f.includes('.ktftp-'));
      for (let i = 0; i < 250 && temps().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(temps().length, 1, 'the put is writing its temporary file');
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 250 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(alive(pid), false, 'ktftpd exited');
      assert.deepEqual(temps(), [], 'no temporary file left');
      assert.equal(readFileSync(target, 'utf8'), 'the old log');
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      process.kill(-client.pid!, 'SIGKILL');
    }
  });
});
