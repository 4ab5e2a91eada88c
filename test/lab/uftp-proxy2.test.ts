// Our uftp through the REAL proxies in the two layouts test/lab/uftp-proxy.test.ts leaves to ours: Figure 4 of
// uftpproxyd(1) (two real response proxies, clients behind each with -R proxy/fingerprint) and the NAT figure (the
// real server proxy knows only the real client proxy's key fingerprint, -s fp=, and learns its NATed address from
// signed heartbeats). Plain sessions; files compared by SHA-256. Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Lab, treeHashes, type Proc } from '../../src/lab/lab.js';
import { makeTree } from './helpers/uftpd.js';

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});

test('fig4 plain: our uftp -> real uftpd through the REAL response proxies rproxyB and rproxyC (clients -R), byte-identical', { timeout: 150_000 }, async () => {
  const lab = await Lab.up('fig4', { prefix: `uq4${randomBytes(3).toString('hex')}`, octet: 93 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src, 500_000);
  const key = (who: string) => lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'rsa:1024');
  const proxies: Record<string, string[]> = { rproxyB: ['clientB1', 'clientB2'], rproxyC: ['clientC1', 'clientC2'] };
  const ds: (Proc & { dest: string })[] = [];
  for (const [rp, cls] of Object.entries(proxies)) {
    const rk = await key(rp);
    await lab.realProxy(rp, ['-r', '-x', '3', '-k', rk.file]);
    for (const cl of cls) ds.push(await lab.realUftpd(cl, { args: ['-R', `${lab.addrOf(rp)}/${rk.fingerprint}`, '-x', '3'] }));
  }
  await lab.waitFor(() => ds.every((d) => d.log().includes('Received PROXY_KEY')), 20_000, 'every client to get a PROXY_KEY');
  const p = lab.ours('server', 'uftp', ['-U', lab.uidOf('server'), '-R', '50000', '-x', '3', 'src'], { cwd: lab.workDir, timeoutMs: 90_000 });
  assert.equal(await p.wait(), 0, p.log().slice(-1500));
  for (const d of ds) assert.deepEqual(treeHashes(path.join(d.dest, 'src')), want, `${d.host}: files differ`);
  for (const rp of Object.keys(proxies)) assert.match(p.log(), new RegExp(`Received REGISTER from proxy ${lab.uidOf(rp)}`, 'i'));
  await lab.down();
});

test('nat plain: our uftp -> REAL server proxy (-s fp=, learns the NATed client proxy from heartbeats) -> REAL client proxy -> 2 real uftpd', { timeout: 150_000 }, async () => {
  const lab = await Lab.up('nat', { prefix: `uqn${randomBytes(3).toString('hex')}`, octet: 93 });
  labs.push(lab);
  const key = await lab.makeKey(path.join(lab.workDir, 'keys', 'cproxy.pem'), 'rsa:1024');
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src, 500_000);
  const ds = await Promise.all(['clientB1', 'clientB2'].map((c) => lab.realUftpd(c, { args: ['-x', '3'] })));
  const sp = await lab.realProxy('sproxyB', ['-s', `fp=${key.fingerprint}`, '-x', '4']);
  await lab.realProxy('cproxyB', ['-c', '-x', '3', '-k', key.file, '-H', lab.addrOf('sproxyB'), '-h', '1']);
  // the real server proxy adopts the client proxy's address as the NAT gateway rewrote it
  const natAddr = lab.addrOf('natgw', 'W');
  await lab.waitFor(() => sp.log().includes(natAddr), 15_000, `the real server proxy to learn ${natAddr} from the heartbeats`);
  const p = lab.ours('server', 'uftp', ['-U', lab.uidOf('server'), '-R', '50000', '-x', '3', 'src'], { cwd: lab.workDir, timeoutMs: 90_000 });
  assert.equal(await p.wait(), 0, `${p.log().slice(-1500)}\n--- server proxy\n${sp.log().slice(-1500)}`);
  for (const d of ds) assert.deepEqual(treeHashes(path.join(d.dest, 'src')), want, `${d.host}: files differ`);
  assert.match(p.log(), new RegExp(`Received REGISTER from proxy ${lab.uidOf('cproxyB')}`, 'i'));
  await lab.down();
});
