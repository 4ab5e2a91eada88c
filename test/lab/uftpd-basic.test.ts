// The real uftp sending to OUR uftpd (fig2: server and two clients on one segment): plain sessions, files checked by
// SHA-256; our uftpd beside the real uftpd in one session; loss on the client's link. Needs root, the real suite
// and the compiled bins (`npx tsc -p .`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { makeTree, ourUftpd, treeHashes } from './helpers/uftpd.js';

const OCTET = 81;
const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});

async function up(): Promise<Lab> {
  const lab = await Lab.up('fig2', { prefix: `ufd${randomBytes(3).toString('hex')}`, octet: OCTET });
  labs.push(lab);
  return lab;
}

test('plain: real uftp -> our uftpd, a tree (3 MB file, directories, empty file, symlink) byte-identical', { timeout: 90_000 }, async () => {
  const lab = await up();
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src);
  const ours = await ourUftpd(lab, 'client1', { args: ['-x', '3'] });
  const t0 = Date.now();
  const server = lab.realUftp('server', [src], { args: ['-R', '100000', '-x', '2'], timeoutMs: 60_000 });
  const code = await server.wait();
  assert.equal(code, 0, `uftp exited ${code}: ${server.log().split('\n').slice(-10).join('\n')}\n--- ours:\n${ours.log().split('\n').slice(-20).join('\n')}`);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want, 'every regular file arrived byte-identical');
  const link = path.join(ours.dest, 'src', 'lnk');
  assert.equal(fs.lstatSync(link).isSymbolicLink(), true, 'the symlink arrived as a symlink');
  assert.equal(fs.readlinkSync(link), 'big.bin');
  assert.equal(fs.statSync(path.join(ours.dest, 'src', 'empty')).size, 0);
  assert.match(ours.log(), /Group file transfer confirmed/);
  process.stdout.write(`plain tree to our uftpd: ${want.size} files in ${Date.now() - t0} ms\n`);
  await ours.kill();
  await lab.down();
});

test('side by side: our uftpd and the real uftpd receive one session from the real uftp', { timeout: 90_000 }, async () => {
  const lab = await up();
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src, 2_000_000);
  const ours = await ourUftpd(lab, 'client1', { args: ['-x', '3'] });
  const real = await lab.realUftpd('client2', { args: ['-x', '2'] });
  const server = lab.realUftp('server', [src], { args: ['-R', '100000', '-x', '2'], timeoutMs: 60_000 });
  const code = await server.wait();
  assert.equal(code, 0, server.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want, 'the real uftpd got every file');
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want, 'our uftpd got every file');
  for (const c of ['client1', 'client2']) assert.match(server.log(), new RegExp(`Received REGISTER from client ${lab.uidOf(c)}`, 'i'));
  await lab.down();
});

for (const loss of [5, 20]) {
  test(`${loss}% loss on our uftpd's link (both directions): byte-identical, beside the real uftpd`, { timeout: 150_000 }, async () => {
    const lab = await up();
    const src = path.join(lab.workDir, 'src');
    const want = makeTree(src, 2_000_000);
    const ours = await ourUftpd(lab, 'client1', { args: ['-x', '3'] });
    const real = await lab.realUftpd('client2', { args: ['-x', '2'] });
    await lab.impairLink('client1', 'S', { lossPct: loss });
    const t0 = Date.now();
    const server = lab.realUftp('server', [src], { args: ['-R', '50000', '-x', '2'], timeoutMs: 120_000 });
    const code = await server.wait();
    assert.equal(code, 0, `${server.log().split('\n').slice(-10).join('\n')}\n--- ours:\n${ours.log().split('\n').slice(-15).join('\n')}`);
    assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want, `our uftpd at ${loss}% loss got every file byte-identical`);
    assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want, 'the real uftpd (no loss) too');
    const statuses = (ours.log().match(/Sent STATUS/g) ?? []).length;
    assert.ok(statuses > 0, 'our uftpd sent STATUS with NAKs');
    process.stdout.write(`${loss}% loss: ${Date.now() - t0} ms, ${statuses} STATUS sent by ours\n`);
    await lab.down();
  });
}

test('receive coalescing: from the real uftp at -R -1 our uftpd sleeps in the stream and gets the file byte-identical; UFTPD_COALESCE_US=0 turns it off', { timeout: 120_000 }, async () => {
  const lab = await up();
  const src = path.join(lab.workDir, 'src');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'f.bin'), randomBytes(16 << 20));
  const want = treeHashes(src);
  const once = async (env: NodeJS.ProcessEnv | undefined, tag: string): Promise<number> => {
    const ours = await ourUftpd(lab, 'client1', { args: ['-x', '2', '-B', String(4 << 20)], dest: path.join(lab.workDir, `dest-${tag}`), env: env ? { ...process.env, ...env } : undefined });
    const server = lab.realUftp('server', [src], { args: ['-R', '-1', '-B', String(4 << 20), '-x', '1'], timeoutMs: 60_000 });
    const code = await server.wait();
    assert.equal(code, 0, `uftp exited ${code}: ${server.log().split('\n').slice(-10).join('\n')}`);
    assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want, `${tag}: the file arrived byte-identical`);
    await ours.kill();
    const m = /Receive coalescing: (\d+) sleeps/.exec(ours.log());
    assert.ok(m, `${tag}: the closing line counts the sleeps`);
    return Number(m[1]);
  };
  // ~12,900 datagrams at full speed: most receive turns of the stream bring a few and sleep after
  const on = await once(undefined, 'on');
  assert.ok(on > 0, `slept ${on} times in the stream`);
  assert.equal(await once({ UFTPD_COALESCE_US: '0' }, 'off'), 0, 'UFTPD_COALESCE_US=0: no sleep');
  process.stdout.write(`uftpd receive coalescing: ${on} sleeps for a 16 MiB file at -R -1\n`);
  await lab.down();
});

test('two servers at once: two real uftp (different hosts, groups and private addresses) to our uftpd, both byte-identical', { timeout: 90_000 }, async () => {
  const lab = await up();
  const a = path.join(lab.workDir, 'srcA');
  const b = path.join(lab.workDir, 'srcB');
  const wantA = makeTree(a, 1_500_000);
  const wantB = makeTree(b, 1_000_000);
  const ours = await ourUftpd(lab, 'client1', { args: ['-x', '3'] });
  const s1 = lab.realUftp('server', [a], { args: ['-R', '20000', '-x', '2', '-P', '230.5.5.11'], timeoutMs: 60_000 });
  const s2 = lab.realUftp('rproxy1', [b], { args: ['-R', '20000', '-x', '2', '-P', '230.5.5.12'], timeoutMs: 60_000 });
  const [c1, c2] = await Promise.all([s1.wait(), s2.wait()]);
  assert.equal(c1, 0, s1.log().split('\n').slice(-8).join('\n'));
  assert.equal(c2, 0, s2.log().split('\n').slice(-8).join('\n'));
  assert.deepEqual(treeHashes(path.join(ours.dest, 'srcA')), wantA);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'srcB')), wantB);
  const overlap = (ours.log().match(/Received request from/g) ?? []).length;
  assert.equal(overlap, 2, 'two sessions');
  await lab.down();
});
