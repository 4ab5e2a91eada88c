// Our uftp (dist/src/cli/uftp.js) sending to the real uftpd 4.10.2 in the lab (Figure 2's segment: server, client1,
// client2; the response proxies of the figure are not started). Files are compared by SHA-256. The status file is
// compared line by line (timings and speeds aside) with the real uftp's for the same file set and clients.
// Exit codes 1, 2, 4 and 7 are provoked through the program (the others are in src/session/server/machine.test.ts).
// Needs root, the real suite and the compiled bins (`npx tsc -p .`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, treeHashes } from '../../src/lab/lab.js';

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});

let shared: Lab | undefined;
async function lab(): Promise<Lab> {
  if (!shared) {
    shared = await Lab.up('fig2', { prefix: `uts${randomBytes(3).toString('hex')}`, octet: 91 });
    labs.push(shared);
  }
  return shared;
}

/** Several files, a directory with a subdirectory, an empty file, a symlink, a file of a few MB. */
function makeTree(dir: string, bigBytes: number): Map<string, string> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'd', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'big.bin'), randomBytes(bigBytes));
  fs.writeFileSync(path.join(dir, 'small.txt'), 'a small file\n');
  fs.writeFileSync(path.join(dir, 'd', 'empty'), '');
  fs.writeFileSync(path.join(dir, 'd', 'sub', 'a.txt'), randomBytes(7000));
  fs.symlinkSync('../small.txt', path.join(dir, 'd', 'lnk'));
  return treeHashes(dir);
}

/** Status lines with the timings replaced, sorted within each kind (client order follows registration order). */
function normalized(text: string): string[] {
  return text.trim().split('\n')
    .map((l) => l.replace(/;[\d.]+KB\/s$/, ';<speed>').replace(/^(STATS;[^;]+;\d+;\d+;\d+;\d+MB);[\d.]+;/, '$1;<time>;'))
    .sort();
}

test('our uftp -> 2 real uftpd: files, a directory tree, an empty file, a symlink, 3 MB; SHA-256 equal; status file as the real uftp writes it', { timeout: 120_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'src1');
  const want = makeTree(src, 3_000_000);
  const clients = ['client1', 'client2'];
  const ds = await Promise.all(clients.map((c) => l.realUftpd(c, { args: ['-x', '2'] })));
  const ours = path.join(l.workDir, 'ours.status');
  const t0 = Date.now();
  const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '200000', '-S', ours, 'big.bin', 'small.txt', 'd'], { cwd: src, timeoutMs: 60_000 });
  const code = await p.wait();
  const ms = Date.now() - t0;
  assert.equal(code, 0, p.log().slice(-1500));
  for (const [i, c] of clients.entries()) assert.deepEqual(treeHashes(ds[i].dest), want, `${c}: received tree differs`);
  // the real uftp, same files, same clients (fresh destinations: an existing symlink is 'rejected' by uftpd)
  await Promise.all(ds.map((d) => d.kill()));
  const ds2 = await Promise.all(clients.map((c) => l.realUftpd(c, { args: ['-x', '2'] })));
  const theirs = path.join(l.workDir, 'real.status');
  const r = l.realUftp('server', ['big.bin', 'small.txt', 'd'], { cwd: src, args: ['-R', '200000', '-S', theirs], timeoutMs: 60_000 });
  assert.equal(await r.wait(), 0, r.log().slice(-800));
  await Promise.all(ds2.map((d) => d.kill()));
  assert.deepEqual(normalized(fs.readFileSync(ours, 'utf8')), normalized(fs.readFileSync(theirs, 'utf8')), 'status file line by line, timings aside');
  process.stdout.write(`uftp -> 2 real uftpd: ${want.size} files in ${ms} ms, SHA-256 match, status file matches the real uftp's\n`);
});

test('closed group (-H with a host that never answers): status file equal to the real uftp\'s, CONNECT failed and RESULT mute', { timeout: 120_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'srcH');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'f'), randomBytes(5000));
  const hosts = `${l.uidOf('client1')},0x0A0B0C0D`;
  const run = async (ours: boolean): Promise<string[]> => {
    const d1 = await l.realUftpd('client1', { args: ['-x', '2'] });
    const d2 = await l.realUftpd('client2', { args: ['-x', '2'] });
    const st = path.join(l.workDir, ours ? 'h-ours.status' : 'h-real.status');
    const args = ['-H', hosts, '-s', '10', '-r', '0.05', '-S', st];
    const p = ours ? l.ours('server', 'uftp', ['-U', l.uidOf('server'), ...args, 'f'], { cwd: src, timeoutMs: 60_000 }) : l.realUftp('server', ['f'], { cwd: src, args, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    assert.ok(fs.existsSync(path.join(d1.dest, 'f')), 'the listed client got the file');
    assert.ok(!fs.existsSync(path.join(d2.dest, 'f')), 'the unlisted client did not');
    await d1.kill();
    await d2.kill();
    return normalized(fs.readFileSync(st, 'utf8'));
  };
  const ours = await run(true);
  assert.ok(ours.includes('RESULT;0x0A0B0C0D;f;4KB;mute;'), ours.join('\n'));
  assert.deepEqual(ours, await run(false));
});

test('sync mode (-z): a second run skips what the client has, overwrites what changed; exit code and status file as the real uftp', { timeout: 150_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'srcZ');
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'same'), randomBytes(10_000));
  fs.writeFileSync(path.join(src, 'newer'), randomBytes(10_000));
  const run = async (ours: boolean): Promise<[number, string[]]> => {
    const d = await l.realUftpd('client1', { args: ['-x', '2'] });
    // the client already has 'same' (same size and time) and an older 'newer'
    fs.copyFileSync(path.join(src, 'same'), path.join(d.dest, 'same'));
    const t = fs.statSync(path.join(src, 'same')).mtime;
    fs.utimesSync(path.join(d.dest, 'same'), t, t);
    fs.writeFileSync(path.join(d.dest, 'newer'), 'old');
    fs.utimesSync(path.join(d.dest, 'newer'), new Date(2000, 1, 1), new Date(2000, 1, 1));
    const st = path.join(l.workDir, ours ? 'z-ours.status' : 'z-real.status');
    const args = ['-z', '-s', '10', '-r', '0.05', '-S', st];
    const p = ours ? l.ours('server', 'uftp', ['-U', l.uidOf('server'), ...args, 'same', 'newer'], { cwd: src, timeoutMs: 60_000 }) : l.realUftp('server', ['same', 'newer'], { cwd: src, args, timeoutMs: 60_000 });
    const code = await p.wait();
    assert.ok(fs.readFileSync(path.join(d.dest, 'newer')).equals(fs.readFileSync(path.join(src, 'newer'))), 'the older copy was overwritten');
    await d.kill();
    return [code, normalized(fs.readFileSync(st, 'utf8'))];
  };
  const [oc, ol] = await run(true);
  const [rc, rl] = await run(false);
  assert.equal(oc, rc, 'exit code as the real uftp');
  assert.deepEqual(ol, rl, 'status file as the real uftp');
  assert.ok(ol.some((x) => /;same;9KB;skipped;/.test(x)) && ol.some((x) => /;newer;9KB;overwritten;/.test(x)), ol.join('\n'));
});

test('sync preview (-Z): nothing is transferred; the status file is the real uftp\'s, timings aside', { timeout: 120_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'srcP');
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'same'), randomBytes(10_000));
  fs.writeFileSync(path.join(src, 'newer'), randomBytes(20_000));
  fs.writeFileSync(path.join(src, 'fresh'), randomBytes(30_000));
  const out: [number, string[]][] = [];
  for (const ours of [true, false]) {
    const d = await l.realUftpd('client1', { args: ['-x', '2'] });
    fs.copyFileSync(path.join(src, 'same'), path.join(d.dest, 'same'));
    const t = fs.statSync(path.join(src, 'same')).mtime;
    fs.utimesSync(path.join(d.dest, 'same'), t, t);
    fs.writeFileSync(path.join(d.dest, 'newer'), 'old');
    fs.utimesSync(path.join(d.dest, 'newer'), new Date(2000, 1, 1), new Date(2000, 1, 1));
    const st = path.join(l.workDir, ours ? 'p-ours.status' : 'p-real.status');
    const args = ['-Z', '-R', '10000', '-s', '10', '-r', '0.05', '-S', st];
    const p = ours ? l.ours('server', 'uftp', ['-U', l.uidOf('server'), ...args, 'same', 'newer', 'fresh'], { cwd: src, timeoutMs: 60_000 }) : l.realUftp('server', ['same', 'newer', 'fresh'], { cwd: src, args, timeoutMs: 60_000 });
    const code = await p.wait();
    assert.ok(!fs.existsSync(path.join(d.dest, 'fresh')), 'preview: nothing was written');
    assert.equal(fs.readFileSync(path.join(d.dest, 'newer'), 'utf8'), 'old');
    await d.kill();
    out.push([code, normalized(fs.readFileSync(st, 'utf8'))]);
  }
  assert.deepEqual(out[0], out[1]);
});

test('exit 10 when the client rejects every file (-D outside its directories), 0 when it already has every file (-z); as the real uftp', { timeout: 90_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'src10');
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'have'), randomBytes(5000));
  const codes: number[] = [];
  for (const ours of [true, false]) {
    for (const mode of ['reject', 'skip']) {
      const d = await l.realUftpd('client1', { args: ['-x', '2'] });
      fs.copyFileSync(path.join(src, 'have'), path.join(d.dest, 'have'));
      const t = fs.statSync(path.join(src, 'have')).mtime;
      fs.utimesSync(path.join(d.dest, 'have'), t, t);
      const args = [...(mode === 'reject' ? ['-D', '/elsewhere/x'] : ['-z']), '-s', '10', '-r', '0.05'];
      const p = ours ? l.ours('server', 'uftp', ['-U', l.uidOf('server'), ...args, 'have'], { cwd: src, timeoutMs: 60_000 }) : l.realUftp('server', ['have'], { cwd: src, args, timeoutMs: 60_000 });
      codes.push(await p.wait());
      await d.kill();
    }
  }
  assert.deepEqual(codes, [10, 0, 10, 0], 'ours (rejected, skipped), then the real uftp');
});

test('-q with a closed group whose second host never answers: exit 7 and every CONNECT failed, as the real uftp; -S appends', { timeout: 90_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'srcQ');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'f'), 'q');
  const out: string[][] = [];
  for (const ours of [true, false]) {
    const d = await l.realUftpd('client1', { args: ['-x', '2'] });
    const st = path.join(l.workDir, ours ? 'q-ours.status' : 'q-real.status');
    fs.writeFileSync(st, 'EARLIER\n');
    const args = ['-q', '-H', `${l.uidOf('client1')},0x0A0B0C0D`, '-s', '10', '-r', '0.05', '-S', st];
    const p = ours ? l.ours('server', 'uftp', ['-U', l.uidOf('server'), ...args, 'f'], { cwd: src, timeoutMs: 60_000 }) : l.realUftp('server', ['f'], { cwd: src, args, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 7, p.log().slice(-500));
    assert.ok(!fs.existsSync(path.join(d.dest, 'f')));
    await d.kill();
    out.push(fs.readFileSync(st, 'utf8').trim().split('\n'));
  }
  assert.deepEqual(out[0], out[1]);
  assert.equal(out[0][0], 'EARLIER', 'the status file is appended to');
});

test('our uftp -> real uftpd with 20% loss on client1\'s link (512-byte blocks, several sections): byte-identical', { timeout: 180_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'src2');
  fs.mkdirSync(src, { recursive: true });
  const data = randomBytes(2_500_000);
  fs.writeFileSync(path.join(src, 'lossy.bin'), data);
  const ds = await Promise.all(['client1', 'client2'].map((c) => l.realUftpd(c, { args: ['-x', '2'] })));
  await l.impairLink('client1', 'S', { lossPct: 20 });
  try {
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '100000', '-b', '512', '-x', '3', 'lossy.bin'], { cwd: src, timeoutMs: 120_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-1500));
    const passes = (p.log().match(/Starting pass/g) ?? []).length;
    assert.ok(passes >= 2, `repair passes were needed (${passes})`);
    assert.ok(/Got \d+ NAKs for section/.test(p.log()), 'STATUS NAKs from the real uftpd were read');
    for (const d of ds) assert.ok(fs.readFileSync(path.join(d.dest, 'lossy.bin')).equals(data), `${d.host}: file differs`);
    process.stdout.write(`20% loss: ${passes} passes, byte-identical on both clients\n`);
  } finally {
    await l.impairLink('client1', 'S', {});
    await Promise.all(ds.map((d) => d.kill()));
  }
});

test('-D names the single file on the clients, -E keeps the path below a base dir, -X excludes, @DELETE removes', { timeout: 120_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'src3');
  fs.mkdirSync(path.join(src, 'tree', 'keep'), { recursive: true });
  fs.mkdirSync(path.join(src, 'tree', 'skip'), { recursive: true });
  fs.writeFileSync(path.join(src, 'tree', 'keep', 'k.txt'), 'keep\n');
  fs.writeFileSync(path.join(src, 'tree', 'skip', 's.txt'), 'skip\n');
  fs.writeFileSync(path.join(src, 'one.txt'), 'one\n');
  fs.writeFileSync(path.join(src, 'excl'), 'tree/skip\n');
  const d = await l.realUftpd('client1', { args: ['-x', '2'] });
  fs.writeFileSync(path.join(d.dest, 'old.txt'), 'to be deleted\n');
  const uid = l.uidOf('server');
  const run = async (args: string[]): Promise<void> => {
    const p = l.ours('server', 'uftp', ['-U', uid, '-R', '50000', '-s', '10', '-r', '0.05', ...args], { cwd: src, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
  };
  await run(['-D', 'renamed.txt', 'one.txt']);
  assert.equal(fs.readFileSync(path.join(d.dest, 'renamed.txt'), 'utf8'), 'one\n');
  await run(['-X', 'excl', 'tree']);
  assert.ok(fs.existsSync(path.join(d.dest, 'tree', 'keep', 'k.txt')));
  assert.ok(!fs.existsSync(path.join(d.dest, 'tree', 'skip')), '-X excluded tree/skip');
  await run(['-E', src, path.join(src, 'tree', 'keep', 'k.txt')]);
  assert.equal(fs.readFileSync(path.join(d.dest, 'tree', 'keep', 'k.txt'), 'utf8'), 'keep\n');
  await run(['@DELETE:old.txt']);
  assert.ok(!fs.existsSync(path.join(d.dest, 'old.txt')), '@DELETE: removed the file on the client');
  await d.kill();
});

test('restart: -f writes the restart file when a client fails mid-session; -F sends only the files it misses, to it only', { timeout: 150_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'srcR');
  fs.rmSync(src, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  const a = randomBytes(20_000);
  const b = randomBytes(3_000_000);
  const c = randomBytes(30_000);
  fs.writeFileSync(path.join(src, 'a'), a);
  fs.writeFileSync(path.join(src, 'b'), b);
  fs.writeFileSync(path.join(src, 'c'), c);
  const d1 = await l.realUftpd('client1', { args: ['-x', '2'] });
  const d2 = await l.realUftpd('client2', { args: ['-x', '2'] });
  const hosts = `${l.uidOf('client1')},${l.uidOf('client2')}`;
  try {
    // b takes ~3 s at 8000 Kbps: client2's uftpd is stopped while b is being sent
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '8000', '-s', '10', '-r', '0.05', '-f', '-H', hosts, 'a', 'b', 'c'], { cwd: src, timeoutMs: 90_000 });
    await l.waitFor(() => /----- b -----/.test(p.log()), 30_000, 'file b');
    await new Promise((r) => setTimeout(r, 800));
    await d2.kill();
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    const rf = fs.readdirSync(src).find((f) => /^_group_[0-9A-F]{8}_restart$/.test(f));
    assert.ok(rf, `a restart file in ${fs.readdirSync(src).join(' ')}`);
    assert.ok(fs.readFileSync(path.join(d1.dest, 'c')).equals(c), 'client1 got everything in the first run');
    assert.ok(fs.readFileSync(path.join(d2.dest, 'a')).equals(a), 'client2 got a before it stopped');
    assert.ok(!fs.existsSync(path.join(d2.dest, 'c')), 'client2 did not get c');
    // resume: client2 is back; only b and c are announced, only to client2
    const d2b = await l.realUftpd('client2', { args: ['-x', '2'], dest: d2.dest.replace(/dest$/, 'dest2') });
    fs.copyFileSync(path.join(d2.dest, 'a'), path.join(d2b.dest, 'a'));
    const st = path.join(l.workDir, 'restart.status');
    const r = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '100000', '-s', '10', '-r', '0.05', '-S', st, '-F', rf], { cwd: src, timeoutMs: 90_000 });
    assert.equal(await r.wait(), 0, r.log().slice(-800));
    assert.ok(!/----- a -----/.test(r.log()), 'a (which every failed client has) is not sent again');
    assert.ok(fs.readFileSync(path.join(d2b.dest, 'b')).equals(b) && fs.readFileSync(path.join(d2b.dest, 'c')).equals(c), 'client2 got b and c');
    const lines = fs.readFileSync(st, 'utf8');
    assert.ok(!lines.includes(`CONNECT;success;0x${l.uidOf('client1').replace(/^0x/i, '').toUpperCase()}`), 'client1 was not part of the restart');
    await d2b.kill();
  } finally {
    await d1.kill();
    await d2.kill();
  }
});

test('exit 6: SIGTERM during the session ABORTs the clients ("Server quit, aborting all") and exits 6', { timeout: 60_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'src6');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'slow.bin'), randomBytes(2_000_000));
  const d = await l.realUftpd('client1', { args: ['-x', '2'] });
  try {
    // 2 MB at 800 Kbps: about 20 s of data, interrupted after the transfer has started
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '800', '-s', '10', '-r', '0.05', 'slow.bin'], { cwd: src, timeoutMs: 60_000 });
    await l.waitFor(() => /Starting pass 1/.test(p.log()), 20_000, 'the data phase');
    await new Promise((r) => setTimeout(r, 500));
    const code = await p.kill(5000);
    assert.equal(code, 6, p.log().slice(-600));
    await l.waitFor(() => /Server quit, aborting all/i.test(d.log()), 5000, 'the ABORT at the client');
  } finally {
    await d.kill();
  }
});

test('exit codes through the program: 1 bad option, 2 unknown interface, 4 log file not writable, 7 nobody answers', { timeout: 60_000 }, async () => {
  const l = await lab();
  const uid = l.uidOf('server');
  const src = path.join(l.workDir, 'src4');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'f'), 'x');
  const code = async (args: string[]): Promise<[number, string]> => {
    const p = l.ours('server', 'uftp', ['-U', uid, ...args], { cwd: src, timeoutMs: 30_000 });
    return [await p.wait(), p.log()];
  };
  let [c, log] = await code(['-x', '9', 'f']);
  assert.equal(c, 1, log);
  assert.match(log, /-x: .*log level/);
  [c, log] = await code(['-b', '100000', 'f']);
  assert.equal(c, 1, log);
  [c, log] = await code(['-I', 'nosuchif0', 'f']);
  assert.equal(c, 2, log);
  [c, log] = await code(['-L', '/nonexistent/dir/uftp.log', 'f']);
  assert.equal(c, 4, log);
  const t0 = Date.now();
  [c, log] = await code(['-s', '10', '-r', '0.05:0.01:1', '-M', '230.4.4.99', 'f']);
  assert.equal(c, 7, log);
  assert.ok(Date.now() - t0 < 10_000, 'ten ANNOUNCEs 150 ms apart, then exit 7');
});

test('TFMCC (-C tfmcc): our uftp -> 2 real uftpd, rate from their CC_ACK feedback, byte-identical', { timeout: 120_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'srcT');
  fs.mkdirSync(src, { recursive: true });
  const data = randomBytes(8_000_000);
  fs.writeFileSync(path.join(src, 'cc.bin'), data);
  const ds = await Promise.all(['client1', 'client2'].map((c) => l.realUftpd(c, { args: ['-x', '2'] })));
  try {
    const st = path.join(l.workDir, 'tfmcc.status');
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-C', 'tfmcc', '-x', '2', '-s', '10', '-r', '0.05', '-S', st, 'cc.bin'], { cwd: src, timeoutMs: 90_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-1000));
    for (const d of ds) assert.ok(fs.readFileSync(path.join(d.dest, 'cc.bin')).equals(data), `${d.host}: file differs`);
    const secs = Math.max(...fs.readFileSync(st, 'utf8').split('\n').filter((x) => x.startsWith('STATS;')).map((x) => Number(x.split(';')[6])));
    process.stdout.write(`TFMCC to 2 real uftpd: ${(data.length / secs / 1e6).toFixed(1)} MB/s\n`);
    // from the 256 Kbps start the rate must have grown on the clients' feedback: 8 MB at 32 KB/s would take 250 s
    assert.ok(secs < 60, `${secs} s`);
  } finally {
    await Promise.all(ds.map((d) => d.kill()));
  }
});
