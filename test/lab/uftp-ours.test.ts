// Our uftp to OUR uftpd (src/apps/uftpd), and our uftp to our uftpd and the real uftpd side by side in one session,
// plain and encrypted, clean and with 5% loss on our client's link. Files compared by SHA-256.
// Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, treeHashes } from '../../src/lab/lab.js';
import { makeTree, ourUftpd } from './helpers/uftpd.js';

let shared: Lab | undefined;
after(async () => {
  await shared?.down();
});
async function lab(): Promise<Lab> {
  shared ??= await Lab.up('fig2', { prefix: `uto${randomBytes(3).toString('hex')}`, octet: 94 });
  return shared;
}

test('our uftp -> our uftpd: a tree (3 MB, directories, empty file, symlink) byte-identical', { timeout: 90_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'src');
  const want = makeTree(src);
  const d = await ourUftpd(l, 'client1');
  try {
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '200000', '-s', '10', '-r', '0.1', 'src'], { cwd: l.workDir, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-1200) + '\nuftpd: ' + d.log().slice(-800));
    assert.deepEqual(treeHashes(path.join(d.dest, 'src')), want);
  } finally {
    await d.kill();
  }
});

for (const c of [
  { name: 'plain, clean', loss: 0, enc: [] as string[] },
  { name: 'plain, 5% loss on our uftpd\'s link', loss: 5, enc: [] as string[] },
  { name: 'plain, 20% loss on our uftpd\'s link', loss: 20, enc: [] as string[] },
  { name: 'aes256-gcm/sha256 RSA, 5% loss on our uftpd\'s link', loss: 5, enc: ['-Y', 'aes256-gcm', '-h', 'sha256'] },
]) {
  test(`side by side: our uftp -> our uftpd (client1) and the real uftpd (client2), ${c.name}`, { timeout: 150_000 }, async () => {
    const l = await lab();
    const src = path.join(l.workDir, 'src');
    const want = makeTree(src);
    const ours = await ourUftpd(l, 'client1');
    const real = await l.realUftpd('client2', { args: ['-x', '2'] });
    if (c.loss > 0) await l.impairLink('client1', 'S', { lossPct: c.loss });
    try {
      const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '100000', '-s', '10', '-r', '0.1', ...c.enc, 'src'], { cwd: l.workDir, timeoutMs: 120_000 });
      assert.equal(await p.wait(), 0, p.log().slice(-1200));
      assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want, 'our uftpd');
      assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want, 'the real uftpd');
      const connects = (p.log().match(/Received (REGISTER|KEYINFO_ACK) from client/g) ?? []).length;
      assert.ok(connects >= 2, 'both clients registered');
    } finally {
      if (c.loss > 0) await l.impairLink('client1', 'S', {});
      await ours.kill();
      await real.kill();
    }
  });
}

test('status file of a session to our uftpd and the real one: CONNECT for both, RESULT per file and client, STATS', { timeout: 90_000 }, async () => {
  const l = await lab();
  const src = path.join(l.workDir, 'src5');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'a'), randomBytes(50_000));
  const ours = await ourUftpd(l, 'client1');
  const real = await l.realUftpd('client2', { args: ['-x', '2'] });
  try {
    const st = path.join(l.workDir, 'st5');
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-s', '10', '-r', '0.1', '-S', st, 'a'], { cwd: src, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-800));
    const lines = fs.readFileSync(st, 'utf8').trim().split('\n');
    for (const h of ['client1', 'client2']) {
      const id = `0x${l.uidOf(h).replace(/^0x/i, '').toUpperCase().padStart(8, '0')}`;
      assert.ok(lines.includes(`CONNECT;success;${id}`), `${h}: ${lines.join(' | ')}`);
      assert.ok(lines.some((x) => x.startsWith(`RESULT;${id};a;48KB;copy;`)), `${h} RESULT`);
      assert.ok(lines.some((x) => x.startsWith(`STATS;${id};1;0;0;0MB;`)), `${h} STATS`);
    }
  } finally {
    await ours.kill();
    await real.kill();
  }
});
