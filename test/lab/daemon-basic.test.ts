// Daemonizing, pidfile, signals, start-up errors and log rolling of src/daemon, exercised through the
// compiled test program dist/src/daemon/daemon-testprog.js (run `npx tsc -p .` first).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidAlive as alive } from '../../src/lab/lab.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const prog = path.join(root, 'dist/src/daemon/daemon-testprog.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'un-daemon-'));
const started: number[] = [];


async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

function run(args: string[]): { status: number | null; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [prog, ...args], { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stderr: r.stderr, ms: Date.now() - t0 };
}

after(() => {
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('detaches: the parent exits 0, the daemon runs in its own session with its pid in the pidfile', { timeout: 30000 }, async () => {
  const pidfile = path.join(dir, 'a.pid');
  const logfile = path.join(dir, 'a.log');
  const r = run(['-P', pidfile, '-L', logfile]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
  started.push(pid);
  assert.ok(pid > 0 && alive(pid), 'daemon alive after the parent exited');
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  assert.equal(Number(fields[3]), pid, 'session leader (setsid)');
  assert.notEqual(Number(fields[1]), process.pid, 'not our child');
  assert.match(fs.readFileSync(logfile, 'utf8'), /: daemon-testprog starting, pid \d+\n/);

  // SIGHUP: reload hooks run, the daemon keeps running
  process.kill(pid, 'SIGHUP');
  assert.ok(await waitFor(() => /: reloaded\n/.test(fs.readFileSync(logfile, 'utf8')), 5000), 'reload hook ran');
  assert.ok(alive(pid));

  // SIGTERM: shutdown hooks, pidfile removed, log flushed
  process.kill(pid, 'SIGTERM');
  assert.ok(await waitFor(() => !alive(pid), 10000), 'daemon exits on SIGTERM');
  assert.equal(fs.existsSync(pidfile), false, 'pidfile removed');
  assert.match(fs.readFileSync(logfile, 'utf8'), /: Exiting on signal 15\n$/);
});

test('foreground (-d): SIGTERM and SIGINT exit 6 and remove the pidfile; -L is ignored', { timeout: 30000 }, async () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    const pidfile = path.join(dir, `fg-${sig}.pid`);
    const logfile = path.join(dir, `fg-${sig}.log`);
    const child = spawn(process.execPath, [prog, '-d', '-x', '5', '-P', pidfile, '-L', logfile], { stdio: ['ignore', 'ignore', 'pipe'] });
    started.push(child.pid ?? 0);
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    assert.ok(await waitFor(() => fs.existsSync(pidfile), 10000), 'pidfile written');
    assert.equal(Number(fs.readFileSync(pidfile, 'utf8')), child.pid);
    child.kill(sig);
    assert.equal(await exited, 6, `${sig} -> exit 6`);
    assert.equal(fs.existsSync(pidfile), false);
    assert.equal(fs.existsSync(logfile), false, '-L ignored with -d');
    assert.match(stderr, /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}\.\d{6}: daemon-testprog starting/);
    assert.match(stderr, new RegExp(`Exiting on signal ${os.constants.signals[sig]}\\n$`));
  }
});

test('start-up errors reach the parent before it detaches: message on stderr, exit code 1-4', { timeout: 60000 }, async () => {
  const busy = dgram.createSocket('udp4');
  await new Promise<void>((r) => busy.bind(0, '127.0.0.1', () => r()));
  const port = busy.address().port;
  try {
    const cases: [string[], number, RegExp][] = [
      [['-x', '9'], 1, /^daemon-testprog: -x: log level 9 out of range 0-5\nusage: /],
      [['-z'], 1, /^daemon-testprog: invalid option -- 'z'\n/],
      [['-L', path.join(dir, 'f2.log'), '-p', String(port)], 2, /^Error binding socket for listener: .*EADDRINUSE.*\n$/],
      [['-L', path.join(dir, 'f3.log'), '-F', '3'], 3, /^Simulated start-up failure 3\n$/],
      [['-L', path.join(dir, 'no/such/dir/x.log')], 4, /^Error opening log file .*no\/such\/dir\/x\.log: ENOENT/],
      [['-L', path.join(dir, 'f5.log'), '-P', path.join(dir, 'no/such/x.pid')], 1, /^Error writing pidfile .*x\.pid: ENOENT/],
    ];
    for (const [args, code, msg] of cases) {
      const r = run(args);
      assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
    }
    // the same errors in the foreground
    const fg = run(['-d', '-p', String(port)]);
    assert.equal(fg.status, 2);
    assert.match(fg.stderr, /Error binding socket for listener: .*EADDRINUSE/);
  } finally {
    busy.close();
  }
  // nothing was left running: no daemon-testprog with our test paths
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout;
  const ours = ps.split('\n').filter((l) => l.includes(dir) && l.includes('daemon-testprog') && !started.includes(Number(l.trim().split(' ')[0])));
  assert.deepEqual(ours, []);
});

test('-N sets the nice value of the daemon', { timeout: 30000 }, async () => {
  const pidfile = path.join(dir, 'n.pid');
  const r = run(['-N', '7', '-P', pidfile, '-L', path.join(dir, 'n.log')]);
  assert.equal(r.status, 0, r.stderr);
  const pid = Number(fs.readFileSync(pidfile, 'utf8'));
  started.push(pid);
  assert.equal(os.getPriority(pid), 7);
  process.kill(pid, 'SIGTERM');
  assert.ok(await waitFor(() => !alive(pid), 10000));
});

test('log rolling with -g 1 -n 2: logfile -> .1 -> .2, nothing beyond, no file over 1 MB', { timeout: 60000 }, async () => {
  const pidfile = path.join(dir, 'g.pid');
  const logfile = path.join(dir, 'g.log');
  fs.writeFileSync(logfile + '.3', 'stale archive beyond -n\n');
  // 12000 lines of 100 bytes = 1.2 MB per second
  const r = run(['-g', '1', '-n', '2', '-w', '12000', '-P', pidfile, '-L', logfile]);
  assert.equal(r.status, 0, r.stderr);
  const pid = Number(fs.readFileSync(pidfile, 'utf8'));
  started.push(pid);
  assert.ok(await waitFor(() => fs.existsSync(logfile + '.2') && !fs.existsSync(logfile + '.3'), 20000), 'rolled twice');
  process.kill(pid, 'SIGTERM');
  assert.ok(await waitFor(() => !alive(pid), 10000));
  const names = fs.readdirSync(dir).filter((n) => n.startsWith('g.log')).sort();
  assert.deepEqual(names, ['g.log', 'g.log.1', 'g.log.2']);
  for (const n of names) assert.ok(fs.statSync(path.join(dir, n)).size <= 1024 * 1024, `${n} <= 1 MB`);
  // continuity: the newest archive ends right before the live file starts
  const lastOf1 = fs.readFileSync(logfile + '.1', 'utf8').trimEnd().split('\n').pop() ?? '';
  const firstOfLive = fs.readFileSync(logfile, 'utf8').split('\n')[0];
  const seq = (l: string): number => Number(/: (\d{10}): /.exec(l)?.[1]);
  assert.equal(seq(firstOfLive), seq(lastOf1) + 1);
  assert.equal(fs.statSync(logfile + '.1').size > 1024 * 1024 - 100, true, 'archive filled to the limit');
});

test('a log roll failure ends the daemon with exit 4: at start-up reported by the parent, later with the pidfile removed', { timeout: 60000 }, async () => {
  // logfile.1 is a non-empty directory: the roll (logfile -> logfile.1 after deleting logfile.1) fails
  const logfile = path.join(dir, 'rf.log');
  fs.mkdirSync(logfile + '.1');
  fs.writeFileSync(path.join(logfile + '.1', 'keep'), 'x');
  // 12000 lines of 100 bytes at start-up: the roll is needed before "ready"
  const r = run(['-g', '1', '-n', '1', '-w', '12000', '-L', logfile, '-P', path.join(dir, 'rf1.pid')]);
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /^Error rolling log file .*rf\.log: /);
  assert.equal(fs.existsSync(path.join(dir, 'rf1.pid')), false);
  // 6000 lines a second: start-up fits, the roll fails about a second after "ready"
  fs.rmSync(logfile, { force: true });
  const pidfile = path.join(dir, 'rf2.pid');
  const r2 = run(['-g', '1', '-n', '1', '-w', '6000', '-L', logfile, '-P', pidfile]);
  assert.equal(r2.status, 0, r2.stderr);
  const pid = Number(fs.readFileSync(pidfile, 'utf8'));
  started.push(pid);
  assert.ok(await waitFor(() => !alive(pid), 15000), 'daemon exits after the failed roll');
  assert.equal(fs.existsSync(pidfile), false, 'pidfile removed');
  assert.ok(fs.existsSync(path.join(logfile + '.1', 'keep')), 'the archive in the way is untouched');
});
