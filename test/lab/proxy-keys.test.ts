// Key choice in encrypted sessions (Figure 1 in the lab): the client proxy holds several keys of different types and
// sizes (-k a,b,c) and uses the one matching the server's key; with no matching key it logs what the real proxy
// logs ("No proxy key compatible with server key") and the session does not reach the clients.
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
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '3', '-U', lab.uidOf(host), ...args], { timeoutMs: 120_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

test('the client proxy picks, among RSA-512, EC P-256 and RSA-1024 keys, the one matching a 1024-bit RSA server; with only RSA-512 it refuses', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `upk${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(200_000));
  const want = treeHashes(src);
  const mk = (w: string, spec: string) => lab.makeKey(path.join(lab.workDir, 'keys', `${w}.pem`), spec);
  const [r512, ec, r1024, srv, kb1] = await Promise.all([mk('r512', 'rsa:512'), mk('ec', 'ec:prime256v1'), mk('r1024', 'rsa:1024'), mk('server', 'rsa:1024'), mk('clientB1', 'rsa:1024')]);
  const b1 = await lab.realUftpd('clientB1', { args: ['-k', kb1.file] });
  let cp = await ours(lab, 'cproxyB', ['-c', '-k', `${r512.file},${ec.file},${r1024.file}`]);
  const sp = await ours(lab, 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  const args = ['-R', '30000', '-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-k', srv.file];
  const s1 = lab.realUftp('server', [src], { args, timeoutMs: 60_000 });
  assert.equal(await s1.wait(), 0, s1.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(b1.dest, 'src')), want);
  assert.match(cp.log(), /Loaded 512 bit RSA key/);
  assert.match(cp.log(), /Loaded ECDSA prime256v1 key/);
  assert.match(cp.log(), /Loaded 1024 bit RSA key/);
  await cp.kill();
  // only the 512-bit key: refused, as the real proxy does
  fs.rmSync(path.join(b1.dest, 'src'), { recursive: true, force: true });
  cp = await ours(lab, 'cproxyB', ['-c', '-k', r512.file]);
  const s2 = lab.realUftp('server', [src], { args, timeoutMs: 60_000 });
  await lab.waitFor(() => /No proxy key compatible with server key/.test(cp.log()), 15_000, 'the refusal');
  await s2.kill();
  assert.equal(treeHashes(path.join(b1.dest, 'src')).size, 0);
  assert.match(sp.log(), /Received request/);
  await lab.down();
});
