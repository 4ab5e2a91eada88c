// Figure 2 of uftpproxyd(1) in the lab, plain: server, two clients and a response proxy on one segment. The
// clients (real uftpd -R) send every response to the response proxy, which answers their KEY_REQ with a
// PROXY_KEY and aggregates REGISTER/FILEINFO_ACK/STATUS/COMPLETE for the server. Files checked by SHA-256.
// Needs root, the real suite and the compiled bins (`npx tsc -p .`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, treeHashes, type Proc } from '../../src/lab/lab.js';

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});

async function ours(lab: Lab, host: string, args: string[]): Promise<Proc> {
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '4', '-U', lab.uidOf(host), ...args], { timeoutMs: 120_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

test('fig2 plain: real uftp, OUR response proxy, 2 real uftpd -R', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig2', { prefix: `upr${randomBytes(3).toString('hex')}`, octet: 68 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(500_000));
  fs.writeFileSync(path.join(src, 'sub', 'b.txt'), 'response proxy\n');
  const want = treeHashes(src);
  const key = await lab.makeKey(path.join(lab.workDir, 'keys', 'rproxy.pem'), 'rsa:1024');
  const rp = await ours(lab, 'rproxy1', ['-r', '-e', 'prime256v1', '-k', key.file]);
  const rpAddr = lab.addrOf('rproxy1');
  // the clients pin the proxy's key fingerprint: they check our PROXY_KEY's key and signature
  const c1 = await lab.realUftpd('client1', { args: ['-R', `${rpAddr}/${key.fingerprint}`, '-x', '3'] });
  const c2 = await lab.realUftpd('client2', { args: ['-R', `${rpAddr}/${key.fingerprint}`, '-x', '3'] });
  // PROXY_KEY goes out at most once per 5 s (multicast): a client that asked too soon gets it on its retry
  await lab.waitFor(() => [c1, c2].every((c) => c.log().includes('Received PROXY_KEY')), 15_000, 'both clients to get a PROXY_KEY');
  const server = lab.realUftp('server', [src], { args: ['-R', '50000'], timeoutMs: 60_000 });
  const code = await server.wait();
  const slog = server.log();
  assert.equal(code, 0, slog.split('\n').slice(-15).join('\n'));
  assert.deepEqual(treeHashes(path.join(c1.dest, 'src')), want, 'client1 files');
  assert.deepEqual(treeHashes(path.join(c2.dest, 'src')), want, 'client2 files');
  assert.match(slog, new RegExp(`COMPLETE from proxy ${lab.uidOf('rproxy1')}`, 'i'), 'completions came through the response proxy');
  assert.match(rp.log(), /COMPLETE for file \d+ sent upstream for 2 client\(s\)/);
  for (const c of [c1, c2]) {
    assert.doesNotMatch(c.log(), /(fail|invalid|mismatch|doesn't match)/i);
  }
  await lab.down();
});
