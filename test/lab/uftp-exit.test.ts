// Exit codes 8 and 9 of OUR uftp (dist/src/cli/uftp.js) provoked as a user meets them, against the real uftpd
// 4.10.2 in the lab (Figure 2's segment: server, client1, client2), each beside the real uftp run the same way in the
// same lab: both must give the man page's code.
// - 8 (no client answered a FILEINFO): the client registers, then nftables in its namespace drops everything it
//   sends except REGISTER, so no FILEINFO_ACK reaches the server.
// - 9 (every client dropped out or aborted): both uftpd SIGKILLed (by pid) mid-file; and with -q, one client whose
//   one of two clients is SIGKILLed mid-file while the other is fine.
// - a client that aborts on the FILEINFO (its destination, a 1 MiB tmpfs in its own mount namespace, has no room):
//   with -q the real uftp exits 8, not 9 (nobody acknowledged a FILEINFO); ours does the same.
// - 5 (memory allocation error): a -i list file larger than the data size the process may use (`ulimit -d` for that
//   child only; a sparse file, no disk used): the buffer cannot be allocated, one line, exit 5. Not compared with the
//   real uftp, which reads the list line by line and has no such allocation.
// Needs root, nft, the real suite and the compiled bins (`npx tsc -p .`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type Proc } from '../../src/lab/lab.js';

const OCTET = 86;
const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});

let shared: Lab | undefined;
async function lab(): Promise<Lab> {
  if (!shared) {
    shared = await Lab.up('fig2', { prefix: `uxt${randomBytes(3).toString('hex')}`, octet: OCTET });
    labs.push(shared);
  }
  return shared;
}

/** Our uftp or the real one in the server host, same arguments, bounded. */
function server(l: Lab, ours: boolean, args: readonly string[], files: readonly string[], cwd: string): Proc {
  return ours
    ? l.ours('server', 'uftp', ['-U', l.uidOf('server'), ...args, ...files], { cwd, timeoutMs: 60_000 })
    : l.realUftp('server', files, { cwd, args, timeoutMs: 60_000 });
}

function srcDir(l: Lab, name: string, bytes: number): string {
  const dir = path.join(l.workDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'f.bin'), randomBytes(bytes));
  return dir;
}

/** Bytes written so far under a directory (regular files, recursively). */
function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

test('exit 8: the only client registers, then answers nothing (nftables passes its REGISTER only); ours and the real uftp', { timeout: 120_000 }, async () => {
  const l = await lab();
  const src = srcDir(l, 'src8', 20_000);
  const nft = async (script: string): Promise<void> => {
    const r = await l.exec('client1', ['nft', '-f', '-'], { input: script });
    assert.equal(r.code, 0, `nft: ${r.stderr}`);
  };
  // UDP payload byte 1 is the UFTP message type (REGISTER = 2): bit offset 64 (UDP header) + 8
  await nft('table inet uxt {\n  chain out {\n    type filter hook output priority 0;\n    udp sport 1044 @th,72,8 != 2 drop\n  }\n}\n');
  try {
    const codes: number[] = [];
    for (const ours of [true, false]) {
      const d = await l.realUftpd('client1', { args: ['-x', '2'] });
      const t0 = Date.now();
      const p = server(l, ours, ['-s', '10', '-r', '0.05', '-x', '2'], ['f.bin'], src);
      const code = await p.wait();
      const log = p.log();
      await d.kill();
      // it registered (it got the FILEINFO, which goes to registered clients only) and its answer was stopped
      assert.match(d.log(), /Error sending FILEINFO_ACK/, `${ours ? 'ours' : 'real'}: the client got a FILEINFO\n${d.log().slice(-600)}`);
      assert.ok(!fs.existsSync(path.join(d.dest, 'f.bin')) || fs.statSync(path.join(d.dest, 'f.bin')).size < 20_000, 'nothing complete arrived');
      process.stdout.write(`exit 8 (${ours ? 'ours' : 'real'}): code ${code} after ${Date.now() - t0} ms\n`);
      assert.equal(code, 8, `${ours ? 'ours' : 'real'}\n${log.slice(-1200)}`);
      codes.push(code);
    }
    assert.deepEqual(codes, [8, 8]);
  } finally {
    await l.exec('client1', ['nft', 'delete', 'table', 'inet', 'uxt']);
  }
});

test('exit 9: every client SIGKILLed mid-file; ours and the real uftp', { timeout: 150_000 }, async () => {
  const l = await lab();
  const size = 3_000_000;
  const src = srcDir(l, 'src9', size);
  for (const ours of [true, false]) {
    const ds = await Promise.all(['client1', 'client2'].map((c) => l.realUftpd(c, { args: ['-x', '2'] })));
    const t0 = Date.now();
    // 3 MB at 4 Mbit/s: about 6 s of data, time enough to kill both clients part-way
    const p = server(l, ours, ['-R', '4000', '-s', '10', '-r', '0.05', '-x', '2'], ['f.bin'], src);
    await l.waitFor(() => ds.every((d) => bytesUnder(d.dest) > 100_000) || p.exitCode !== null, 30_000, 'both clients part-way');
    assert.equal(p.exitCode, null, p.log().slice(-800));
    const got = ds.map((d) => bytesUnder(d.dest));
    // the whole process group of each uftpd (its `timeout` wrapper and uftpd), by pid
    for (const d of ds) process.kill(-d.pid, 'SIGKILL');
    await Promise.all(ds.map((d) => d.wait()));
    const code = await p.wait();
    process.stdout.write(`exit 9, all killed (${ours ? 'ours' : 'real'}): code ${code} after ${Date.now() - t0} ms (killed at ${got.join(', ')} bytes)\n`);
    assert.ok(got.every((g) => g < size), 'killed before the file was complete');
    assert.equal(code, 9, `${ours ? 'ours' : 'real'}\n${p.log().slice(-1200)}`);
  }
});

test('exit 9 with -q: one of two clients SIGKILLed mid-file, the other fine; ours and the real uftp', { timeout: 150_000 }, async () => {
  const l = await lab();
  const size = 3_000_000;
  const src = srcDir(l, 'src9q', size);
  for (const ours of [true, false]) {
    const [d1, d2] = await Promise.all(['client1', 'client2'].map((c) => l.realUftpd(c, { args: ['-x', '2'] })));
    const t0 = Date.now();
    const p = server(l, ours, ['-q', '-R', '4000', '-s', '10', '-r', '0.05', '-x', '2'], ['f.bin'], src);
    await l.waitFor(() => bytesUnder(d1.dest) > 100_000 || p.exitCode !== null, 30_000, 'client1 part-way');
    assert.equal(p.exitCode, null, p.log().slice(-800));
    process.kill(-d1.pid, 'SIGKILL');
    await d1.wait();
    const code = await p.wait();
    process.stdout.write(`exit 9 with -q, one killed (${ours ? 'ours' : 'real'}): code ${code} after ${Date.now() - t0} ms\n`);
    await d2.kill();
    assert.equal(code, 9, `${ours ? 'ours' : 'real'}\n${p.log().slice(-1200)}`);
  }
});

test('a client aborting on the FILEINFO (its destination, a 1 MiB tmpfs, has no room for the file) with -q: exit 8, not 9, as the real uftp', { timeout: 120_000 }, async () => {
  const l = await lab();
  const src = srcDir(l, 'srcFull', 3_000_000);
  for (const ours of [true, false]) {
    const full = path.join(l.workDir, 'client1', 'full');
    fs.rmSync(full, { recursive: true, force: true });
    fs.mkdirSync(full, { recursive: true });
    // a mount namespace of its own: the tmpfs is seen by this uftpd only and goes away with it
    const d1 = l.spawn('client1', ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
      `mount -t tmpfs -o size=1m uxtfull "${full}" && exec uftpd -d -q -x 2 -D "${full}" -U ${l.uidOf('client1')}`],
    { logFile: path.join(l.workDir, 'logs', `client1-uftpd-full-${ours ? 'o' : 'r'}.log`) });
    await l.waitUdp('client1');
    const t0 = Date.now();
    const p = server(l, ours, ['-q', '-R', '20000', '-s', '10', '-r', '0.05', '-x', '2'], ['f.bin'], src);
    const code = await p.wait();
    process.stdout.write(`-q, abort on FILEINFO (${ours ? 'ours' : 'real'}): code ${code} after ${Date.now() - t0} ms\n`);
    const l1 = d1.log();
    await d1.kill();
    assert.match(p.log(), /Not enough disk space/, `the client's ABORT reached the server\n${p.log().slice(-800)}`);
    assert.equal(code, 8, `${ours ? 'ours' : 'real'}\n${p.log().slice(-1200)}\n${l1.slice(-400)}`);
  }
});

test('exit 5: a -i list file larger than the memory the process may use (ulimit -d 400000 for it alone): one line, exit 5', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = path.join(l.workDir, 'src5');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const list = path.join(dir, 'huge.list');
  fs.writeFileSync(list, '');
  fs.truncateSync(list, 1024 * 1024 * 1024); // 1 GiB, sparse
  const bin = fileURLToPath(new URL('../../src/cli/uftp.js', import.meta.url));
  const p = l.spawn('server', ['sh', '-c', `ulimit -d 400000 && exec "${process.execPath}" "${bin}" -U ${l.uidOf('server')} -i "${list}" -s 10 -r 0.05`],
    { cwd: dir, timeoutMs: 30_000 });
  const code = await p.wait();
  const log = p.log().trim();
  fs.rmSync(list);
  process.stdout.write(`exit 5: ${log}\n`);
  assert.equal(code, 5, log);
  assert.match(log, /^uftp: memory allocation failed reading the list file: Array buffer allocation failed$/m);
  assert.ok(!/\n\s+at /.test(log), 'one line, no stack');
});
