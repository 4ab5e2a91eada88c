// Every uftpd option with a visible effect, shown against the real uftp (and, where the manual defines an output,
// compared with the real uftpd's in the same session). fig2: server, client1 (ours), client2 (the real uftpd).
// Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, ourBin, pidAlive, treeHashes } from '../../src/lab/lab.js';
import { ourUftpd } from './helpers/uftpd.js';

const OCTET = 83;
let lab: Lab | undefined;
after(async () => {
  await lab?.down();
});
async function theLab(): Promise<Lab> {
  if (!lab) lab = await Lab.up('fig2', { prefix: `ufo${randomBytes(3).toString('hex')}`, octet: OCTET });
  return lab;
}

/** A small source tree under workDir/<name>/src. */
function source(l: Lab, name: string, big = 300_000): { dir: string; want: Map<string, string> } {
  const dir = path.join(l.workDir, name, 'src');
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'd', 'e'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'f1'), randomBytes(big));
  fs.writeFileSync(path.join(dir, 'd', 'e', 'f2'), 'two\n');
  fs.writeFileSync(path.join(dir, 'empty'), '');
  fs.symlinkSync('f1', path.join(dir, 'lnk'));
  return { dir, want: treeHashes(dir) };
}

async function send(l: Lab, dir: string, args: string[] = [], timeoutMs = 45_000): Promise<{ code: number; log: string }> {
  const s = l.realUftp('server', [dir], { args: ['-R', '100000', '-x', '2', ...args], timeoutMs });
  const code = await s.wait();
  return { code, log: s.log() };
}

const dropTime = (line: string): string => line.replace(/;\d{4}\/\d\d\/\d\d-\d\d:\d\d:\d\d;/, ';TIME;');

test('-F: the status file has the real uftpd\'s CONNECT and RESULT lines for the same session', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir } = source(l, 'F');
  const fOurs = path.join(l.workDir, 'F', 'ours.status');
  const fReal = path.join(l.workDir, 'F', 'real.status');
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'F', 'ours'), args: ['-F', fOurs] });
  const real = await l.realUftpd('client2', { dest: path.join(l.workDir, 'F', 'real'), args: ['-F', fReal] });
  const r = await send(l, dir);
  await ours.kill();
  await real.kill();
  assert.equal(r.code, 0, r.log);
  const mine = fs.readFileSync(fOurs, 'utf8').trim().split('\n').map(dropTime);
  const theirs = fs.readFileSync(fReal, 'utf8').trim().split('\n').map(dropTime);
  assert.ok(theirs.length >= 5, `the real uftpd wrote ${theirs.length} lines`);
  assert.deepEqual(mine, theirs, 'same lines apart from the time (both with -q: the server name is its address)');
  assert.match(fs.readFileSync(fOurs, 'utf8'), /^CONNECT;\d{4}\/\d\d\/\d\d-\d\d:\d\d:\d\d;/);
});

test('sync mode (uftp -z): skipped / overwritten / copied decided as the real uftpd decides, same status lines', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const dir = path.join(l.workDir, 'z', 'src');
  fs.mkdirSync(dir, { recursive: true });
  const t = 1_700_000_000;
  for (const f of ['old', 'new', 'same', 'samesize', 'fresh']) {
    fs.writeFileSync(path.join(dir, f), `content ${f}`);
    fs.utimesSync(path.join(dir, f), t, t);
  }
  const seed = (dest: string): void => {
    fs.mkdirSync(path.join(dest, 'src'), { recursive: true });
    const put = (f: string, text: string, m: number): void => {
      fs.writeFileSync(path.join(dest, 'src', f), text);
      fs.utimesSync(path.join(dest, 'src', f), m, m);
    };
    put('old', 'x', t - 100);
    put('new', 'x', t + 100);
    put('same', 'x', t);
    put('samesize', 'content samesize', t);
  };
  const fo = path.join(l.workDir, 'z', 'ours.status');
  const fr = path.join(l.workDir, 'z', 'real.status');
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'z', 'ours'), args: ['-F', fo] });
  const real = await l.realUftpd('client2', { dest: path.join(l.workDir, 'z', 'real'), args: ['-F', fr] });
  seed(ours.dest);
  seed(real.dest);
  const r = await send(l, dir, ['-z']);
  await ours.kill();
  await real.kill();
  assert.equal(r.code, 0, r.log);
  const lines = (f: string): string[] => fs.readFileSync(f, 'utf8').trim().split('\n').map(dropTime).filter((x) => x.startsWith('RESULT')).sort();
  assert.deepEqual(lines(fo), lines(fr));
  assert.ok(lines(fo).some((x) => x.endsWith('src/new;0KB;skipped')) && lines(fo).some((x) => x.endsWith('src/old;0KB;overwritten')));
  assert.equal(fs.readFileSync(path.join(ours.dest, 'src', 'new'), 'utf8'), 'x', 'a skipped file is left alone');
  assert.equal(fs.readFileSync(path.join(ours.dest, 'src', 'old'), 'utf8'), 'content old');
});

test('-t: each file goes to {name}.~uftp-{group}-{file} beside it, renamed when complete', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir, want } = source(l, 't', 1_500_000);
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 't', 'ours'), args: ['-t'] });
  const seen = new Set<string>();
  const watch = setInterval(() => {
    try {
      for (const f of fs.readdirSync(path.join(ours.dest, 'src'))) seen.add(f);
    } catch {
      // not there yet
    }
  }, 20);
  const r = await send(l, dir, ['-R', '3000']);
  clearInterval(watch);
  await ours.kill();
  assert.equal(r.code, 0, r.log);
  assert.ok([...seen].some((f) => /^f1\.~uftp-[0-9A-F]{8}-0001$/.test(f)), `a temp file was seen: ${[...seen].join(' ')}`);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.ok(!fs.readdirSync(path.join(ours.dest, 'src')).some((f) => f.includes('.~uftp-')), 'no temp file left');
});

test('-T with -s: files appear only when the session ends; the script is called once with the top-level entries, as the real uftpd', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir, want } = source(l, 'T');
  const script = path.join(l.workDir, 'T', 'post.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho "$@" >> "$0.$(hostname).out"\n`, { mode: 0o755 });
  const tmpOurs = path.join(l.workDir, 'T', 'tmp-ours');
  const tmpReal = path.join(l.workDir, 'T', 'tmp-real');
  fs.mkdirSync(tmpOurs);
  fs.mkdirSync(tmpReal);
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'T', 'ours'), args: ['-T', tmpOurs, '-s', script, '-x', '3'] });
  const real = await l.realUftpd('client2', { dest: path.join(l.workDir, 'T', 'real'), args: ['-T', tmpReal, '-s', script] });
  const r = await send(l, dir);
  await l.waitFor(() => fs.readdirSync(path.dirname(script)).filter((f) => f.endsWith('.out')).length >= 1, 5000, 'script output');
  await new Promise((res) => setTimeout(res, 500));
  await ours.kill();
  await real.kill();
  assert.equal(r.code, 0, r.log);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(fs.readdirSync(tmpOurs), [], 'temp dir emptied');
  const outs = fs.readdirSync(path.dirname(script)).filter((f) => f.endsWith('.out')).map((f) => fs.readFileSync(path.join(path.dirname(script), f), 'utf8').trim());
  const norm = (s: string): string => s.replace(/[0-9A-F]{8}/, 'GROUP').replace(/\/(ours|real)\//, '/X/');
  // both scripts ran in the same namespace family; hostnames may be equal: collect every line
  const lines = outs.flatMap((o) => o.split('\n')).map(norm);
  assert.ok(lines.length >= 2, `script lines: ${lines.join(' | ')}`);
  assert.equal(new Set(lines).size, 1, `ours and the real uftpd called the script with the same arguments: ${lines.join(' | ')}`);
  assert.match(lines[0], /^-I GROUP \S+\/T\/X\/src$/);
});

test('-s without -T: the script is called for each file with its full path, as the real uftpd', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir } = source(l, 's');
  const mk = (who: string): string => {
    const p = path.join(l.workDir, 's', `post-${who}.sh`);
    fs.writeFileSync(p, `#!/bin/sh\necho "$@" >> ${p}.out\n`, { mode: 0o755 });
    return p;
  };
  const so = mk('ours');
  const sr = mk('real');
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 's', 'ours'), args: ['-s', so] });
  const real = await l.realUftpd('client2', { dest: path.join(l.workDir, 's', 'real'), args: ['-s', sr] });
  const r = await send(l, dir);
  await new Promise((res) => setTimeout(res, 500));
  await ours.kill();
  await real.kill();
  assert.equal(r.code, 0, r.log);
  const norm = (p: string): string[] => fs.readFileSync(p + '.out', 'utf8').trim().split('\n').map((x) => x.replace(/[0-9A-F]{8}/, 'G').replace(/\/(ours|real)\//, '/X/')).sort();
  assert.deepEqual(norm(so), norm(sr), 'same calls');
  assert.ok(norm(so).some((x) => x.endsWith('/s/X/src/f1')));
});

test('-A: an existing file is moved to backup/YYYYMMDD/HHMMSS/full/path before the new one is written', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir, want } = source(l, 'A');
  const dest = path.join(l.workDir, 'A', 'ours');
  const backup = path.join(l.workDir, 'A', 'backup');
  fs.mkdirSync(backup, { recursive: true });
  const ours = await ourUftpd(l, 'client1', { dest, waitReady: false, args: ['-A', backup] });
  await l.waitFor(() => ours.log().includes('Listening on port'), 10_000, 'ours');
  fs.mkdirSync(path.join(dest, 'src'), { recursive: true });
  fs.writeFileSync(path.join(dest, 'src', 'f1'), 'the old f1\n');
  const r = await send(l, dir);
  await ours.kill();
  assert.equal(r.code, 0, r.log);
  assert.deepEqual(treeHashes(path.join(dest, 'src')), want);
  const found = execFileSync('find', [backup, '-type', 'f']).toString().trim().split('\n');
  assert.equal(found.length, 1, found.join('\n'));
  assert.match(found[0], new RegExp(`^${backup}/\\d{8}/\\d{6}${path.join(dest, 'src', 'f1')}$`));
  assert.equal(fs.readFileSync(found[0], 'utf8'), 'the old f1\n');
});

test('-x: log level 1 hides the per-session lines that level 2 shows; -c: a smaller cache means more writes', { timeout: 90_000 }, async () => {
  const l = await theLab();
  const { dir } = source(l, 'x', 2_000_000);
  const quiet = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'x', 'q'), args: ['-x', '1'] });
  await send(l, dir);
  await quiet.kill();
  assert.doesNotMatch(quiet.log(), /Received request from/);
  const small = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'x', 's'), args: ['-x', '4', '-c', '10240'] });
  await send(l, dir);
  await small.kill();
  assert.match(small.log(), /Received request from/);
  const big = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'x', 'b'), args: ['-x', '4', '-c', '4194304'] });
  await send(l, dir);
  await big.kill();
  const writes = (log: string): number => Number(/2000000 bytes written in (\d+) writes/.exec(log)?.[1] ?? NaN);
  assert.ok(writes(small.log()) >= 190, `-c 10240: ${writes(small.log())} writes of at most 10 KB`);
  // 1 write without loss; a retransmitted block (a drop on a busy machine) breaks a run and costs a few more
  assert.ok(writes(big.log()) * 10 < writes(small.log()), `-c 4194304: ${writes(big.log())} writes against ${writes(small.log())}`);
});

test('-U, -p, -M: our ID in REGISTER, another port and another public address', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir, want } = source(l, 'U');
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'U', 'ours'), args: ['-U', '0x12345678', '-p', '1055', '-M', '230.9.9.9'] });
  const r = await send(l, dir, ['-p', '1055', '-M', '230.9.9.9']);
  await ours.kill();
  assert.equal(r.code, 0, r.log);
  assert.match(r.log, /Received REGISTER from client 0x12345678/);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
});

test('-I: the ID comes from the -I interface and counts in a closed group; an unlisted client stays out; -Q: DSCP seen on the wire', { timeout: 90_000 }, async () => {
  const l = await theLab();
  const { dir, want } = source(l, 'I');
  const cap = await l.capture('client1', 'eS', path.join(l.workDir, 'I', 'c.pcap'), ['udp', 'and', 'src', 'host', l.addrOf('client1')]);
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'I', 'ours'), args: ['-I', 'eS', '-Q', '46', '-x', '3'] });
  const r = await send(l, dir, ['-H', l.uidOf('client1')]);
  await new Promise((res) => setTimeout(res, 300));
  await cap.kill();
  assert.equal(r.code, 0, r.log);
  assert.match(r.log, new RegExp(`Received REGISTER from client ${l.uidOf('client1')}`, 'i'), 'ID from the -I interface address');
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  const tos = execFileSync('tshark', ['-r', path.join(l.workDir, 'I', 'c.pcap'), '-T', 'fields', '-e', 'ip.dsfield']).toString().trim().split('\n');
  assert.ok(tos.length > 0 && tos.every((t) => Number(t) === 46 << 2), `TOS bytes: ${[...new Set(tos)].join(',')}`);
  // a closed group that lists someone else: ours does not register
  const r2 = await send(l, dir, ['-H', '0x01020304', '-s', '10']);
  await ours.kill();
  assert.notEqual(r2.code, 0);
  assert.match(ours.log(), /Name not in host list/);
});

test('daemon: without -d it detaches after start-up; -L log, -P pidfile, -N nice, -B buffer; SIGTERM exits', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const logf = path.join(l.workDir, 'D', 'uftpd.log');
  const pidf = path.join(l.workDir, 'D', 'uftpd.pid');
  const dest = path.join(l.workDir, 'D', 'dest');
  fs.mkdirSync(dest, { recursive: true });
  const launcher = l.ours('client1', 'uftpd', ['-D', dest, '-L', logf, '-P', pidf, '-N', '5', '-B', '524288', '-x', '2'], { timeoutMs: 20_000 });
  assert.equal(await launcher.wait(), 0, 'the launching process exits 0 once the daemon started');
  const pid = Number(fs.readFileSync(pidf, 'utf8').trim());
  assert.ok(pid > 0 && pidAlive(pid), 'the daemon runs with the pid in -P');
  const nice = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
  assert.equal(nice, 5, '-N 5');
  assert.match(fs.readFileSync(logf, 'utf8'), /Listening on port 1044/);
  const ss = (await l.exec('client1', ['ss', '-Hlunm', 'sport', '=', ':1044'])).stdout;
  const rb = Number(/rb(\d+)/.exec(ss)?.[1]);
  assert.ok(rb >= 524288, `receive buffer ${rb} (ss: ${ss.trim()})`);
  process.kill(pid, 'SIGTERM');
  await l.waitFor(() => !pidAlive(pid), 10_000, 'daemon exit');
  assert.match(fs.readFileSync(logf, 'utf8'), /Exiting on signal 15/);
});

test('exit codes: 1 for a bad option, 3 for an unreadable key, 4 for an unwritable log, 2 for a port in use', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const run = async (args: string[]): Promise<{ code: number; out: string }> => {
    const p = l.ours('client2', 'uftpd', args, { timeoutMs: 15_000 });
    return { code: await p.wait(), out: p.log() };
  };
  const bad = await run(['-x', '9']);
  assert.equal(bad.code, 1);
  assert.match(bad.out, /uftpd: -x: /);
  assert.equal((await run(['-d', '-c', '100'])).code, 1, '-c below 10240');
  assert.equal((await run(['-d', '-T', '/tmp', '-A', '/tmp'])).code, 1, '-T with -A');
  assert.equal((await run(['-d', '-k', '/nonexistent/key.pem'])).code, 3);
  assert.equal((await run(['-L', '/nonexistent/dir/uftpd.log'])).code, 4);
  const first = await ourUftpd(l, 'client2', { dest: path.join(l.workDir, 'E', 'd1'), args: ['-p', '1077'] });
  const second = await run(['-d', '-p', '1077', '-D', path.join(l.workDir, 'E', 'd1')]);
  await first.kill();
  assert.equal(second.code, 2, second.out);
});

test('@DELETE and @FREESPACE from the real uftp: the named file is deleted and the free space reported, as by the real uftpd', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir } = source(l, 'meta');
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'meta', 'ours') });
  const real = await l.realUftpd('client2', { dest: path.join(l.workDir, 'meta', 'real') });
  for (const d of [ours.dest, real.dest]) fs.writeFileSync(path.join(d, 'old.txt'), 'to be deleted\n');
  const s = l.realUftp('server', ['@DELETE:old.txt', '@FREESPACE', dir], { args: ['-R', '100000', '-x', '2'], timeoutMs: 45_000 });
  const code = await s.wait();
  await ours.kill();
  await real.kill();
  assert.equal(code, 0, s.log());
  assert.equal(fs.existsSync(path.join(ours.dest, 'old.txt')), false, 'ours deleted old.txt');
  assert.equal(fs.existsSync(path.join(real.dest, 'old.txt')), false, 'the real one too');
  // the server prints "Host: 0x... Status: ..." then "Free space on host: N bytes" for each client
  const free = new Map<string, number>();
  let host = '';
  for (const line of s.log().split('\n')) {
    const h = /Host: (0x[0-9A-F]{8})/i.exec(line);
    if (h) host = h[1].toUpperCase();
    const f = /Free space on host: (\d+) bytes/.exec(line);
    if (f && host) free.set(host, Number(f[1]));
  }
  const mine = free.get(l.uidOf('client1').toUpperCase());
  const theirs = free.get(l.uidOf('client2').toUpperCase());
  assert.ok(mine !== undefined && mine > 0, `our free space reported: ${[...free].join(' ')}`);
  assert.ok(theirs !== undefined && Math.abs(mine - theirs) / theirs < 0.05, `about what the real uftpd reports on the same disk (${mine} vs ${theirs})`);
});

test('-D with two directories: uftp -D /abs/name lands in the matching one; outside both it is rejected, as by the real uftpd', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const base = path.join(l.workDir, 'DD');
  const [d1, d2, r1, r2] = ['o1', 'o2', 'r1', 'r2'].map((x) => path.join(base, x));
  for (const d of [d1, d2, r1, r2]) fs.mkdirSync(d, { recursive: true });
  const file = path.join(base, 'payload.bin');
  fs.writeFileSync(file, randomBytes(50_000));
  const fo = path.join(base, 'ours.status');
  const fr = path.join(base, 'real.status');
  const ours = await ourUftpd(l, 'client1', { dest: d1, args: ['-D', `${d1},${d2}`, '-F', fo] });
  const real = await l.realUftpd('client2', { dest: r1, args: ['-D', `${r1},${r2}`, '-F', fr] });
  // the same absolute name for both would need the same directories: each daemon gets its second one
  const s1 = l.realUftp('server', [file], { args: ['-R', '100000', '-x', '2', '-D', path.join(d2, 'sub', 'p.bin')], timeoutMs: 45_000 });
  assert.equal(await s1.wait(), 0, s1.log());
  assert.equal(fs.readFileSync(path.join(d2, 'sub', 'p.bin')).equals(fs.readFileSync(file)), true, 'ours: in the second -D directory');
  const s2 = l.realUftp('server', [file], { args: ['-R', '100000', '-x', '2', '-D', path.join(base, 'elsewhere.bin')], timeoutMs: 45_000 });
  await s2.wait();
  await ours.kill();
  await real.kill();
  assert.equal(fs.existsSync(path.join(base, 'elsewhere.bin')), false, 'nothing written outside the -D directories');
  const last = (f: string): string => fs.readFileSync(f, 'utf8').trim().split('\n').pop() ?? '';
  assert.match(last(fo), /;elsewhere\.bin;48KB;rejected$|elsewhere\.bin;\d+KB;rejected$/);
  assert.equal(last(fo).split(';').slice(4).join(';'), last(fr).split(';').slice(4).join(';'), 'the same RESULT as the real uftpd');
});

test('-K with -k: a new key is generated, written and used (its fingerprint logged); an existing file is not overwritten (exit 3)', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const kf = path.join(l.workDir, 'K', 'new.pem');
  fs.mkdirSync(path.dirname(kf), { recursive: true });
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'K', 'd'), args: ['-K', 'ec:prime256v1', '-k', kf] });
  await ours.kill();
  assert.ok(fs.existsSync(kf), 'key file written');
  const fp = /Generated .*fingerprint: ([0-9A-F:]+)/.exec(ours.log())?.[1];
  const listed = await l.makeKey(kf);
  assert.equal(fp, listed.fingerprint, 'the logged fingerprint is the file\'s (uftp_keymgt reads it)');
  const again = l.ours('client1', 'uftpd', ['-d', '-K', 'rsa:512', '-k', kf, '-D', path.join(l.workDir, 'K', 'd')], { timeoutMs: 15_000 });
  assert.equal(await again.wait(), 3);
});

test('-T with -i: files moved one by one (what is already in the destination directory stays), the script called per file', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir, want } = source(l, 'i');
  const tmp = path.join(l.workDir, 'i', 'tmp');
  fs.mkdirSync(tmp);
  const script = path.join(l.workDir, 'i', 'post.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho "$@" >> ${script}.out\n`, { mode: 0o755 });
  const dest = path.join(l.workDir, 'i', 'ours');
  const ours = await ourUftpd(l, 'client1', { dest, waitReady: false, args: ['-T', tmp, '-i', '-s', script] });
  await l.waitFor(() => ours.log().includes('Listening on port'), 10_000, 'ours');
  fs.mkdirSync(path.join(dest, 'src'), { recursive: true });
  fs.writeFileSync(path.join(dest, 'src', 'keep.txt'), 'already here\n');
  const r = await send(l, dir);
  await new Promise((res) => setTimeout(res, 500));
  await ours.kill();
  assert.equal(r.code, 0, r.log);
  const got = treeHashes(path.join(dest, 'src'));
  assert.equal(fs.readFileSync(path.join(dest, 'src', 'keep.txt'), 'utf8'), 'already here\n', 'not removed (without -i the whole src directory would be replaced)');
  got.delete('keep.txt');
  assert.deepEqual(got, want);
  const calls = fs.readFileSync(`${script}.out`, 'utf8').trim().split('\n');
  assert.ok(calls.length >= 3 && calls.every((c) => /^-I [0-9A-F]{8} \S+$/.test(c)), calls.join(' | '));
  assert.ok(calls.some((c) => c.endsWith('/i/ours/src/d/e/f2')));
});

test('restart (-T): an interrupted session\'s state is kept, and the real uftp -F restart sends only what is missing', { timeout: 120_000 }, async () => {
  const l = await theLab();
  const base = path.join(l.workDir, 'R');
  const src = path.join(base, 'src');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'b'), randomBytes(2_000_000));
  fs.writeFileSync(path.join(src, 'c'), randomBytes(100_000));
  const want = treeHashes(src);
  const tmp = path.join(base, 'tmp');
  fs.mkdirSync(tmp);
  const dest = path.join(base, 'dest');
  let ours = await ourUftpd(l, 'client1', { dest, args: ['-T', tmp, '-x', '3'] });
  const first = l.realUftp('server', [src], { args: ['-R', '2000', '-x', '2', '-H', l.uidOf('client1'), '-s', '10', '-f'], timeoutMs: 90_000, cwd: base });
  await l.waitFor(() => /Name of file to receive: src\/b/.test(ours.log()), 30_000, 'file b started');
  await new Promise((r) => setTimeout(r, 2000));
  await ours.kill(); // SIGTERM: the session ends as failed, its state is saved
  assert.match(ours.log(), /Writing restart file/);
  await first.wait();
  const rf = fs.readdirSync(base).find((f) => /^_group_[0-9A-F]{8}_restart$/.test(f));
  assert.ok(rf, `the server wrote a restart file: ${fs.readdirSync(base).join(' ')}`);
  ours = await ourUftpd(l, 'client1', { dest, args: ['-T', tmp, '-x', '3'] });
  const second = l.realUftp('server', [], { args: ['-R', '20000', '-x', '2', '-s', '10', '-F', path.join(base, rf)], timeoutMs: 60_000, cwd: base });
  const code = await second.wait();
  await ours.kill();
  assert.equal(code, 0, second.log().split('\n').slice(-10).join('\n'));
  const m = /src\/b: (\d+) of (\d+) blocks from the failed session/.exec(ours.log());
  assert.ok(m && Number(m[1]) > 0 && Number(m[1]) < Number(m[2]), `the partial file was resumed (FILEINFO_ACK PARTIAL): ${ours.log().split('\n').filter((x) => /restart|failed session|Restart/.test(x)).join(' | ')}`);
  assert.deepEqual(treeHashes(path.join(dest, 'src')), want, 'byte-identical after the restart');
  assert.deepEqual(fs.readdirSync(tmp), [], 'temp dir and restart record cleaned up');
});

test('disk full (a 1 MiB tmpfs as -D, in a mount namespace of its own): the file is given up, the server gets an ABORT naming the error, no partial or temp file stays (-t)', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir } = source(l, 'full', 3_000_000);
  const dest = path.join(l.workDir, 'full', 'dest');
  fs.mkdirSync(dest, { recursive: true });
  // the tmpfs exists only in the daemon's own mount namespace (unshare -m: private propagation): nothing else sees it
  const cmd = `mount -t tmpfs -o size=1m uftpdfull ${dest} && exec ${process.execPath} ${ourBin('uftpd')} -d -q -t -x 3 -D ${dest} -U ${l.uidOf('client1')}`;
  const p = l.spawn('client1', ['unshare', '-m', '--propagation', 'private', 'sh', '-c', cmd], { timeoutMs: 50_000 });
  await l.waitFor(() => p.log().includes('Listening on port') || p.exitCode !== null, 15_000, 'our uftpd in its mount namespace');
  const pids = execFileSync('ip', ['netns', 'pids', l.nsOf('client1')], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  const pid = pids.find((x) => {
    try {
      return fs.readFileSync(`/proc/${x}/comm`, 'utf8').trim() === 'node' && fs.readFileSync(`/proc/${x}/cmdline`, 'utf8').includes('uftpd.js');
    } catch {
      return false;
    }
  });
  assert.ok(pid, 'the daemon process');
  const s = l.realUftp('server', [dir], { args: ['-R', '100000', '-x', '2', '-s', '10'], timeoutMs: 45_000 });
  await s.wait();
  // what the daemon sees of its destination, through its own root
  const seen = execFileSync('find', [`/proc/${pid}/root${dest}`, '-type', 'f'], { encoding: 'utf8' }).trim();
  const df = execFileSync('sh', ['-c', `grep uftpdfull /proc/${pid}/mounts || true`], { encoding: 'utf8' });
  await p.kill();
  assert.match(df, /tmpfs/, 'the daemon wrote on the small tmpfs');
  assert.match(p.log(), /ENOSPC/, 'the write error is logged');
  assert.match(s.log(), /ENOSPC|Error writing/i, `the server was told: ${s.log().split('\n').filter((x) => /abort/i.test(x)).join(' | ')}`);
  assert.doesNotMatch(seen, /big\.bin|f1|\.~uftp-/, `no partial or temp file of the failed file: ${seen}`);
});

test('-q: without it the CONNECT line names the server (looked up as the real uftpd does: /etc/hosts), with it the address', { timeout: 90_000 }, async () => {
  const l = await theLab();
  const { dir } = source(l, 'q');
  const hosts = path.join(l.workDir, 'q', 'hosts');
  fs.writeFileSync(hosts, `127.0.0.1 localhost\n${l.addrOf('server')} uftp-server.example\n`);
  // a hosts file of our own, bind-mounted in the daemons' own mount namespaces (nothing else sees it)
  const run = (host: string, argv: string): ReturnType<Lab['spawn']> =>
    l.spawn(host, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${hosts} /etc/hosts && exec ${argv}`], { timeoutMs: 60_000 });
  const lines: Record<string, string> = {};
  for (const q of [false, true]) {
    const fo = path.join(l.workDir, 'q', `ours-${q}.status`);
    const fr = path.join(l.workDir, 'q', `real-${q}.status`);
    const d1 = path.join(l.workDir, 'q', `o${q}`);
    const d2 = path.join(l.workDir, 'q', `r${q}`);
    fs.mkdirSync(d1);
    fs.mkdirSync(d2);
    const ours = run('client1', `${process.execPath} ${ourBin('uftpd')} -d ${q ? '-q' : ''} -D ${d1} -F ${fo} -U ${l.uidOf('client1')}`);
    const real = run('client2', `uftpd -d ${q ? '-q' : ''} -D ${d2} -F ${fr} -U ${l.uidOf('client2')}`);
    await l.waitFor(() => ours.log().includes('Listening on port'), 15_000, 'ours');
    await l.waitUdp('client2');
    const r = await send(l, dir);
    await new Promise((res) => setTimeout(res, 300));
    await ours.kill();
    await real.kill();
    assert.equal(r.code, 0, r.log);
    lines[`ours${q}`] = fs.readFileSync(fo, 'utf8').split('\n')[0];
    lines[`real${q}`] = fs.readFileSync(fr, 'utf8').split('\n')[0];
  }
  assert.match(lines.oursfalse, /;uftp-server\.example$/, lines.oursfalse);
  assert.match(lines.ourstrue, new RegExp(`;${l.addrOf('server').replace(/\./g, '\\.')}$`), lines.ourstrue);
  assert.equal(lines.oursfalse.split(';').pop(), lines.realfalse.split(';').pop(), `the real uftpd names it the same: ${lines.realfalse}`);
  assert.equal(lines.ourstrue.split(';').pop(), lines.realtrue.split(';').pop());
});

test('-g 1 -n 2: the log rolls at 1 MB and keeps two archives (a flood of bad datagrams, each logged at -x 5)', { timeout: 120_000 }, async () => {
  const l = await theLab();
  const dir = path.join(l.workDir, 'g');
  fs.mkdirSync(path.join(dir, 'd'), { recursive: true });
  const logfile = path.join(dir, 'roll.log');
  const pidfile = path.join(dir, 'roll.pid');
  const start = l.ours('client1', 'uftpd', ['-x', '5', '-L', logfile, '-g', '1', '-n', '2', '-P', pidfile, '-p', '2044', '-D', path.join(dir, 'd')], { timeoutMs: 20_000 });
  assert.equal(await start.wait(), 0, start.log());
  const pid = Number(fs.readFileSync(pidfile, 'utf8').trim());
  const flood = `const s=require('node:dgram').createSocket('udp4');let n=0;const b=Buffer.from([1]);
function go(){for(let i=0;i<500;i++)s.send(b,2044,'127.0.0.1');n+=500;if(n<20000)setTimeout(go,2);else setTimeout(()=>s.close(),200);}go();`;
  for (let round = 0; round < 12 && !fs.existsSync(`${logfile}.2`); round++) {
    const f = await l.exec('client1', [process.execPath, '-e', flood], { timeoutMs: 60_000 });
    assert.equal(f.code, 0, f.stderr);
    await new Promise((r) => setTimeout(r, 300));
  }
  const f = await l.exec('client1', [process.execPath, '-e', flood], { timeoutMs: 60_000 });
  assert.equal(f.code, 0, f.stderr);
  await new Promise((r) => setTimeout(r, 1000));
  process.kill(pid, 'SIGTERM');
  await l.waitFor(() => !pidAlive(pid), 10_000, 'daemon exit');
  const size = (p: string): number => (fs.existsSync(p) ? fs.statSync(p).size : -1);
  assert.ok(size(`${logfile}.1`) > 0, 'rolled once at least');
  assert.ok(size(`${logfile}.2`) > 0, 'second archive');
  assert.equal(size(`${logfile}.3`), -1, 'no third archive (-n 2)');
  for (const p of [logfile, `${logfile}.1`, `${logfile}.2`]) assert.ok(size(p) <= 1024 * 1024 + 64 * 1024, `${p}: ${size(p)} bytes`);
  assert.match(fs.readFileSync(`${logfile}.1`, 'utf8'), /Dropped datagram from 127\.0\.0\.1:\d+: malformed/);
});
