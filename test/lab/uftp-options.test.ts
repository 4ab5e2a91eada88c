// Options of our uftp whose effect shows on the wire or on the clients, one check each, against the real uftpd:
// -p / -u (ports), -t / -Q (TTL and DSCP in the IP header, read back from a capture), -i list file and -i - (stdin),
// -l (follow symlinks), -o with -D (subdirectory), -L with -T (timestamped log file), -B (buffer size accepted and
// used), -b 8800 (jumbo blocks on a 9000-byte MTU), -P with x (randomised private address).
// Needs root, the real suite, tcpdump and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, type Proc } from '../../src/lab/lab.js';

let shared: Lab | undefined;
after(async () => {
  await shared?.down();
});
async function lab(): Promise<Lab> {
  shared ??= await Lab.up('fig2', { prefix: `utx${randomBytes(3).toString('hex')}`, octet: 90 });
  return shared;
}

async function session(args: string[], files: string[], o: { uftpd?: string[]; cwd: string; input?: string } ): Promise<{ p: Proc; dest: string }> {
  const l = await lab();
  const d = await l.realUftpd('client1', { args: ['-x', '2', ...(o.uftpd ?? [])], port: o.uftpd?.includes('-p') ? Number(o.uftpd[o.uftpd.indexOf('-p') + 1]) : undefined });
  try {
    const argv = ['-U', l.uidOf('server'), '-s', '10', '-r', '0.05', ...args, ...files];
    const p = o.input !== undefined
      ? l.spawn('server', ['sh', '-c', `printf '%s' "$UFTP_LIST" | ${process.execPath} ${path.resolve('dist/src/cli/uftp.js')} ${argv.map((a) => `'${a}'`).join(' ')}`], { cwd: o.cwd, timeoutMs: 60_000, env: { ...process.env, UFTP_LIST: o.input } })
      : l.ours('server', 'uftp', argv, { cwd: o.cwd, timeoutMs: 60_000 });
    const code = await p.wait();
    assert.equal(code, 0, p.log().slice(-800));
    return { p, dest: d.dest };
  } finally {
    await d.kill();
  }
}

function srcDir(name: string): string {
  const dir = path.join(shared?.workDir ?? '/tmp', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

test('-p and -u: the session runs to a client on port 1045 from source port 40123', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir('ports');
  fs.writeFileSync(path.join(dir, 'f'), 'ports\n');
  const cap = await l.capture('server', 'eS', path.join(l.workDir, 'ports.pcap'));
  const { dest } = await session(['-p', '1045', '-u', '40123'], ['f'], { uftpd: ['-p', '1045'], cwd: dir });
  await cap.kill();
  assert.equal(fs.readFileSync(path.join(dest, 'f'), 'utf8'), 'ports\n');
  const t = spawnSync('tcpdump', ['-n', '-r', path.join(l.workDir, 'ports.pcap'), 'udp'], { encoding: 'utf8' });
  assert.match(t.stdout, /\.40123 > 230\.4\.4\.1\.1045: UDP/, 'ANNOUNCE from port 40123 to port 1045');
});

test('-t and -Q: multicast TTL 7 and DSCP 10 (TOS 0x28) on every datagram of the server', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir('ttl');
  fs.writeFileSync(path.join(dir, 'f'), randomBytes(3000));
  const cap = await l.capture('server', 'eS', path.join(l.workDir, 'ttl.pcap'));
  await session(['-t', '7', '-Q', '10'], ['f'], { cwd: dir });
  await cap.kill();
  const t = spawnSync('tcpdump', ['-n', '-v', '-r', path.join(l.workDir, 'ttl.pcap'), 'udp and src host', l.addrOf('server')], { encoding: 'utf8' });
  const heads = t.stdout.split('\n').filter((x) => x.startsWith(' ') === false && /IP \(tos/.test(x));
  assert.ok(heads.length > 3, t.stdout.slice(0, 400));
  assert.ok(heads.every((x) => /tos 0x28/.test(x)), `DSCP 10: ${heads[0]}`);
  const mcastHeads = t.stdout.split('\n').map((x, i, a) => (/> 230\./.test(x) ? a[i - 1] : '')).filter((x) => x !== '');
  assert.ok(mcastHeads.length > 0 && mcastHeads.every((x) => /ttl 7,/.test(x)), `TTL 7 on multicast: ${mcastHeads[0]}`);
});

test('-i list file and -i - (stdin): exactly the listed files are sent', { timeout: 90_000 }, async () => {
  const dir = srcDir('list');
  await lab();
  for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(dir, n), n);
  fs.writeFileSync(path.join(dir, 'list'), 'a\n\nc\n');
  const r1 = await session(['-i', 'list'], ['b'], { cwd: dir });
  assert.deepEqual(fs.readdirSync(r1.dest).sort(), ['a', 'c'], '-i overrides the operands, empty lines ignored');
  const r2 = await session(['-i', '-'], [], { cwd: dir, input: 'b\n' });
  assert.deepEqual(fs.readdirSync(r2.dest).sort(), ['b']);
});

test('-l follows a symlink (a regular file arrives); without -l the link itself is sent', { timeout: 90_000 }, async () => {
  const dir = srcDir('links');
  await lab();
  fs.writeFileSync(path.join(dir, 'target'), 'target data\n');
  fs.symlinkSync('target', path.join(dir, 'lnk'));
  const r1 = await session(['-l'], ['lnk'], { cwd: dir });
  assert.ok(!fs.lstatSync(path.join(r1.dest, 'lnk')).isSymbolicLink());
  assert.equal(fs.readFileSync(path.join(r1.dest, 'lnk'), 'utf8'), 'target data\n');
  const r2 = await session([], ['lnk'], { cwd: dir });
  assert.equal(fs.readlinkSync(path.join(r2.dest, 'lnk')), 'target');
});

test('-o with -D puts even a single file into the -D subdirectory', { timeout: 60_000 }, async () => {
  const dir = srcDir('subdir');
  await lab();
  fs.writeFileSync(path.join(dir, 'one'), '1');
  const r = await session(['-o', '-D', 'sub'], ['one'], { cwd: dir });
  assert.equal(fs.readFileSync(path.join(r.dest, 'sub', 'one'), 'utf8'), '1');
});

test('-L with -T, -x 3 and -B: a timestamped log file with the per-round lines, nothing on stderr', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir('log');
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const log = path.join(l.workDir, 'uftp.log');
  const r = await session(['-L', log, '-T', '-x', '3', '-B', '1048576'], ['f'], { cwd: dir });
  const text = fs.readFileSync(log, 'utf8');
  assert.match(text, /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}\.\d{6}: .*Sending ANNOUNCE 1$/m);
  assert.match(text, /Got COMPLETE from client/);
  assert.doesNotMatch(r.p.log(), /Sending ANNOUNCE/, 'the log went to the file');
});

test('-P 230.77.x.x: the private address is randomised within the pattern', { timeout: 60_000 }, async () => {
  const dir = srcDir('priv');
  await lab();
  fs.writeFileSync(path.join(dir, 'f'), 'p');
  const r = await session(['-P', '230.77.x.x'], ['f'], { cwd: dir });
  assert.match(r.p.log(), /Using private multicast address 230\.77\.\d{1,3}\.\d{1,3} /);
  assert.equal(fs.readFileSync(path.join(r.dest, 'f'), 'utf8'), 'p');
});
