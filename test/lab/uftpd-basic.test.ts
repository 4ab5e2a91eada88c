// The real uftp sending to OUR uftpd (fig1: server and clientA on one segment): plain sessions, files checked by
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

async function up(lossPct?: number): Promise<Lab> {
  const lab = await Lab.up('fig1', { prefix: `ufd${randomBytes(3).toString('hex')}`, octet: OCTET, ...(lossPct ? { lossPct } : {}) });
  labs.push(lab);
  return lab;
}

test('plain: real uftp -> our uftpd, a tree (3 MB file, directories, empty file, symlink) byte-identical', { timeout: 90_000 }, async () => {
  const lab = await up();
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src);
  const ours = await ourUftpd(lab, 'clientA', { args: ['-x', '3'] });
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
