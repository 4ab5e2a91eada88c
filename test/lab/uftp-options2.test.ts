// Options of our uftp whose effect test/lab/uftp-options.test.ts does not show through the program, one check each,
// read from our log and the real uftpd's: -s and -r (how many ANNOUNCEs and how far apart, with nobody there), -T
// (timestamps on stderr), -y (accepted, no effect), -U (the server ID the real uftpd sees), -I (the ID comes from the
// named interface's address), -b (the block count the real uftpd computes for the file), -h (the hash type in the
// ANNOUNCE's EXT_ENC_INFO, read back from a capture with our uftp_inspect; the real uftpd completes with it), and
// -a, -N/-m, -W with 30% loss on one client's link: that client is aborted with the option's reason, the other
// client is not held back; -g/-n (the log file rolls at 1 MB, two archives kept); -B (the socket's buffers, read
// with ss); -R -1 (2 MB in well under the 16 s the default 1000 Kbps needs) with -S @LOG (status lines in the log).
// Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { HashType } from '../../src/wire/index.js';

let shared: Lab | undefined;
after(async () => {
  await shared?.down();
});
async function lab(): Promise<Lab> {
  shared ??= await Lab.up('fig2', { prefix: `uo2${randomBytes(3).toString('hex')}`, octet: 95 });
  return shared;
}

function srcDir(l: Lab, name: string, size: number): string {
  const dir = path.join(l.workDir, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'f'), Buffer.alloc(size, 0x5a));
  return dir;
}

const STAMP = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}\.\d{6}): /;

test('-s 10 -r 0.1 with nobody listening: exactly 10 ANNOUNCEs, 3 GRTT (0.3 s) apart, exit 7; -T stamps every line; -y accepted', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir(l, 'none', 100);
  const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-M', '230.4.4.99', '-s', '10', '-r', '0.1:0.01:1', '-x', '3', '-T', '-y', 'f'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(await p.wait(), 7, p.log().slice(-800));
  const lines = p.log().split('\n').filter((s) => /Sending ANNOUNCE \d+$/.test(s));
  assert.equal(lines.length, 10, lines.join('\n'));
  assert.match(lines[9], /Sending ANNOUNCE 10$/);
  const secs = lines.map((s) => {
    const m = STAMP.exec(s);
    assert.ok(m, `-T: timestamped: ${s}`);
    return Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]);
  });
  const gap = (secs[9] - secs[0]) / 9;
  // the default (-r 0.5, -s 20) would be 1.5 s apart and 20 of them
  assert.ok(gap > 0.25 && gap < 0.45, `mean gap ${gap.toFixed(3)} s`);
});

test('-U and -b: the real uftpd sees server ID 0x0A0B0C0D and 8 blocks of 700 bytes for a 5000-byte file', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir(l, 'ub', 5000);
  const d = await l.realUftpd('client1', { args: ['-x', '3'] });
  try {
    const p = l.ours('server', 'uftp', ['-U', '0x0A0B0C0D', '-b', '700', '-s', '10', '-r', '0.05', 'f'], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    assert.match(d.log(), /Received request from 0A0B0C0D at /);
    assert.match(d.log(), /Bytes: 5000, Blocks: 8, Sections: 1/, 'ceil(5000/700) = 8; the default 1300 would give 4');
    assert.deepEqual(fs.readFileSync(path.join(d.dest, 'f')), fs.readFileSync(path.join(dir, 'f')));
  } finally {
    await d.kill();
  }
});

test('-I eS without -U: the server ID is the named interface\'s address, the session runs from it', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir(l, 'iface', 3000);
  const d = await l.realUftpd('client1', { args: ['-x', '3'] });
  try {
    const info = l.host('server');
    const net = Object.keys(info.ifaces)[0];
    const p = l.ours('server', 'uftp', ['-I', info.ifaces[net], '-s', '10', '-r', '0.05', 'f'], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    const id = l.uidOf('server', net).slice(2);
    assert.match(d.log(), new RegExp(`Received request from ${id} at ${l.addrOf('server', net).replace(/\./g, '\\.')} `));
    assert.deepEqual(fs.readFileSync(path.join(d.dest, 'f')), fs.readFileSync(path.join(dir, 'f')));
  } finally {
    await d.kill();
  }
});

for (const h of ['sha256', 'sha512'] as const) {
  test(`-h ${h} (aes128-cbc, hmac): the ANNOUNCE carries hash type ${HashType[h.toUpperCase() as 'SHA256' | 'SHA512']}; the real uftpd receives the file`, { timeout: 60_000 }, async () => {
    const l = await lab();
    const dir = srcDir(l, `h-${h}`, 4000);
    const d = await l.realUftpd('client1', { args: ['-x', '3'] });
    const pcap = path.join(l.workDir, `h-${h}.pcap`);
    const cap = await l.capture('server', 'eS', pcap);
    try {
      const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-Y', 'aes128-cbc', '-h', h, '-s', '10', '-r', '0.05', 'f'], { cwd: dir, timeoutMs: 30_000 });
      assert.equal(await p.wait(), 0, p.log().slice(-800));
      assert.deepEqual(fs.readFileSync(path.join(d.dest, 'f')), fs.readFileSync(path.join(dir, 'f')));
    } finally {
      await cap.kill();
      await d.kill();
    }
    const out = spawnSync(process.execPath, [path.resolve('dist/src/cli/uftp_inspect.js'), pcap], { encoding: 'utf8' });
    const ann = out.stdout.split('\n').filter((s) => / ANNOUNCE seq=/.test(s));
    assert.ok(ann.length > 0, out.stdout.slice(0, 600) + out.stderr);
    const want = HashType[h.toUpperCase() as 'SHA256' | 'SHA512'];
    assert.ok(ann.every((s) => new RegExp(`ENC_INFO\\(.* hash=${want} `).test(s)), ann[0]);
  });
}

const DROPS: ReadonlyArray<{ name: string; args: string[]; reason: RegExp }> = [
  { name: '-a 1', args: ['-a', '1'], reason: /Maximum passes reached/ },
  { name: '-N 5 -m 1', args: ['-N', '5', '-m', '1'], reason: /Too many NAKs/ },
  { name: '-W 110', args: ['-W', '110'], reason: /Maximum transfer time exceeded/ },
];

for (const c of DROPS) {
  test(`${c.name}: with 30% loss on client1's link, client1 is aborted ("${c.reason.source}"), client2 gets the file, exit 0`, { timeout: 90_000 }, async () => {
    const l = await lab();
    const dir = path.join(l.workDir, `drop-${c.args.join('')}`);
    fs.mkdirSync(dir, { recursive: true });
    const data = randomBytes(300_000);
    fs.writeFileSync(path.join(dir, 'f'), data);
    const ds = await Promise.all(['client1', 'client2'].map((h) => l.realUftpd(h, { args: ['-x', '2'] })));
    await l.impairLink('client1', 'S', { lossPct: 30 });
    try {
      const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '8000', '-b', '512', '-s', '10', '-r', '0.05', '-x', '2', ...c.args, 'f'], { cwd: dir, timeoutMs: 60_000 });
      assert.equal(await p.wait(), 0, p.log().slice(-1500));
      assert.match(p.log(), new RegExp(`${c.reason.source}.*${l.uidOf('client1')}|${l.uidOf('client1')}.*${c.reason.source}`), p.log().slice(-1500));
      assert.doesNotMatch(p.log(), new RegExp(`${c.reason.source}.*${l.uidOf('client2')}|${l.uidOf('client2')}.*${c.reason.source}`));
      // (the ABORT itself crosses the 30% lossy link once, so client1's log is not checked)
      assert.ok(fs.readFileSync(path.join(ds[1].dest, 'f')).equals(data), 'client2: file differs');
    } finally {
      await l.impairLink('client1', 'S', {});
      await Promise.all(ds.map((d) => d.kill()));
    }
  });
}

test('-L with -g 1 -n 2: a log file at the 1 MB limit rolls to .1, the old .1 becomes .2, the old .2 is gone', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir(l, 'roll', 100);
  const log = path.join(l.workDir, 'roll', 'uftp.log');
  const filler = 'x'.repeat(99) + '\n';
  fs.writeFileSync(log, filler.repeat(10_480)); // 1,048,000 bytes: the session's first lines take it past 1 MiB
  fs.writeFileSync(`${log}.1`, 'old one\n');
  fs.writeFileSync(`${log}.2`, 'old two\n');
  const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-M', '230.4.4.99', '-s', '10', '-r', '0.01', '-x', '3', '-L', log, '-g', '1', '-n', '2', 'f'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(await p.wait(), 7, p.log().slice(-800));
  assert.deepEqual(fs.readdirSync(path.dirname(log)).filter((f) => f.startsWith('uftp.log')).sort(), ['uftp.log', 'uftp.log.1', 'uftp.log.2']);
  assert.equal(fs.readFileSync(`${log}.2`, 'utf8'), 'old one\n', 'the old .1 moved up; the old .2 (beyond -n 2) was deleted');
  const one = fs.readFileSync(`${log}.1`, 'utf8');
  assert.ok(one.startsWith(filler) && one.length <= 1024 * 1024, `.1 holds the full log (${one.length} bytes)`);
  assert.match(fs.readFileSync(log, 'utf8'), /Sending ANNOUNCE 10$/m, 'the session went on in a fresh file');
});

test('-B 3000000: the server socket\'s send and receive buffers are that size (ss shows the kernel\'s doubled 6000000)', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir(l, 'buf', 100);
  const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-M', '230.4.4.99', '-s', '10', '-r', '0.1', '-B', '3000000', 'f'], { cwd: dir, timeoutMs: 30_000 });
  try {
    let out = '';
    await l.waitFor(async () => {
      out = (await l.exec('server', ['ss', '-uampn'])).stdout;
      return /skmem:/.test(out) || p.exitCode !== null;
    }, 10_000, 'the server socket in ss');
    assert.match(out, /rb6000000,.*tb6000000,/, out);
  } finally {
    assert.equal(await p.wait(), 7, p.log().slice(-800));
  }
});

test('-R -1 with -S @LOG: 2 MB to the real uftpd far faster than the default 1000 Kbps allows; the status lines go to the log', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = path.join(l.workDir, 'fast');
  fs.mkdirSync(dir, { recursive: true });
  const data = randomBytes(2_000_000);
  fs.writeFileSync(path.join(dir, 'f'), data);
  const d = await l.realUftpd('client1', { args: ['-x', '2'] });
  try {
    const t0 = Date.now();
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '-1', '-S', '@LOG', '-s', '10', '-r', '0.05', 'f'], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    const secs = (Date.now() - t0) / 1000;
    // at the default -R 1000 (1000 * 1024 bit/s) the data alone would take over 15 s
    assert.ok(secs < 8, `${secs.toFixed(1)} s`);
    assert.ok(fs.readFileSync(path.join(d.dest, 'f')).equals(data), 'file differs');
    assert.match(p.log(), new RegExp(`CONNECT;success;${l.uidOf('client1')}`));
    assert.match(p.log(), new RegExp(`RESULT;${l.uidOf('client1')};f;\\d+KB;copy;`));
  } finally {
    await d.kill();
  }
});

test('@FREESPACE: the client\'s free space is printed as by the real uftp ("  Free space on host: N bytes"), same figure', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = srcDir(l, 'free', 1);
  const d = await l.realUftpd('client1', { args: ['-x', '2'] });
  try {
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-s', '10', '-r', '0.05', '@FREESPACE'], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    const r = l.realUftp('server', ['@FREESPACE'], { cwd: dir, args: ['-s', '10', '-r', '0.05'], timeoutMs: 30_000 });
    assert.equal(await r.wait(), 0, r.log().slice(-800));
    const ours = /^ {2}Free space on host: (\d+) bytes$/m.exec(p.log());
    const theirs = /^ {2}Free space on host: (\d+) bytes$/m.exec(r.log());
    assert.ok(ours && theirs, `${p.log().slice(-600)}\n--- real\n${r.log().slice(-600)}`);
    // the same disk a moment apart: equal within 1 MiB
    assert.ok(Math.abs(Number(ours[1]) - Number(theirs[1])) < 1024 * 1024, `${ours[1]} vs ${theirs[1]}`);
  } finally {
    await d.kill();
  }
});
