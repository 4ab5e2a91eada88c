// Our uftp through proxies (Figure 1 of uftpproxyd(1)): server on network A, a server proxy on A tunnelling to a
// client proxy on B behind a router, two real uftpd on B and one real uftpd on A directly. The real proxies and
// ours, plain and encrypted (the key exchange for the clients behind the client proxy is with the proxy: KEYINFO
// names the proxy, REG_CONF then confirms its clients); files compared by SHA-256. Needs root, the real suite and the compiled bins.
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

type Kind = 'ours' | 'real';

async function proxy(lab: Lab, kind: Kind, host: string, args: string[]): Promise<Proc> {
  return kind === 'real' ? lab.realProxy(host, ['-x', '3', ...args]) : lab.ourProxy(host, ['-x', '3', ...args]);
}

const ENC: Record<string, { args: string[]; key: string } | undefined> = {
  plain: undefined,
  'RSA, aes128-cbc': { args: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa'], key: 'rsa:1024' },
  'ECDH_ECDSA, aes256-gcm, client auth': { args: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'ecdh_ecdsa', '-c'], key: 'ec:prime256v1' },
};

const CASES: [Kind, Kind, string][] = [
  ['real', 'real', 'plain'], ['ours', 'ours', 'plain'], ['real', 'real', 'RSA, aes128-cbc'], ['ours', 'ours', 'RSA, aes128-cbc'],
  ['real', 'real', 'ECDH_ECDSA, aes256-gcm, client auth'],
];

for (const [sp, cp, encName] of CASES) {
  const enc = ENC[encName];
  test(`fig1 ${encName}: our uftp -> ${sp} server proxy -> ${cp} client proxy -> 2 real uftpd (+1 direct), byte-identical`, { timeout: 150_000 }, async () => {
    const lab = await Lab.up('fig1', { prefix: `utp${randomBytes(3).toString('hex')}`, octet: 97 });
    labs.push(lab);
    const src = path.join(lab.workDir, 'src');
    const want = makeTree(src, 1_000_000);
    const clients = ['clientA', 'clientB1', 'clientB2'];
    const key = async (who: string): Promise<string[]> => (enc ? ['-k', (await lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), enc.key)).file] : []);
    const ds = await Promise.all(clients.map(async (c) => lab.realUftpd(c, { args: ['-x', '2', ...(await key(c))] })));
    await proxy(lab, cp, 'cproxyB', ['-c', ...(await key('cproxyB'))]);
    await proxy(lab, sp, 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
    const p = lab.ours('server', 'uftp', ['-U', lab.uidOf('server'), '-R', '50000', '-x', '3', ...(enc ? [...enc.args, ...(await key('server'))] : []), 'src'], { cwd: lab.workDir, timeoutMs: 90_000 });
    const code = await p.wait();
    assert.equal(code, 0, p.log().slice(-1500));
    for (const [i, c] of clients.entries()) assert.deepEqual(treeHashes(path.join(ds[i].dest, 'src')), want, `${c}: files differ`);
    assert.match(p.log(), new RegExp(`Received REGISTER from proxy ${lab.uidOf('cproxyB').replace(/^0x/i, '0x').toUpperCase().replace('0X', '0x')}`, 'i'));
    await lab.down();
  });
}

async function ourProxyUp(lab: Lab, host: string, args: string[]): Promise<Proc> {
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '4', '-U', lab.uidOf(host), ...args], { timeoutMs: 120_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

const RESPONSE: ReadonlyArray<{ figure: 'fig2' | 'fig3' | 'fig4'; proxies: Record<string, string[]>; encName: string; real?: boolean }> = [
  { figure: 'fig2', proxies: { rproxy1: ['client1', 'client2'] }, encName: 'plain', real: true },
  { figure: 'fig2', proxies: { rproxy1: ['client1', 'client2'] }, encName: 'plain' },
  { figure: 'fig2', proxies: { rproxy1: ['client1', 'client2'] }, encName: 'RSA, aes128-cbc' },
  { figure: 'fig3', proxies: { rproxyB: ['clientB1', 'clientB2'], rproxyC: ['clientC1', 'clientC2'] }, encName: 'plain' },
  { figure: 'fig4', proxies: { rproxyB: ['clientB1', 'clientB2'], rproxyC: ['clientC1', 'clientC2'] }, encName: 'RSA, aes128-cbc' },
  { figure: 'fig3', proxies: { rproxyB: ['clientB1', 'clientB2'], rproxyC: ['clientC1', 'clientC2'] }, encName: 'RSA, aes128-cbc', real: true },
];

for (const c of RESPONSE) {
  test(`${c.figure} ${c.encName}: our uftp -> real uftpd through ${c.real ? 'the REAL' : 'our'} response prox${Object.keys(c.proxies).length > 1 ? 'ies' : 'y'} (clients -R), byte-identical`, { timeout: 150_000 }, async () => {
    const enc = ENC[c.encName];
    const lab = await Lab.up(c.figure, { prefix: `utr${randomBytes(3).toString('hex')}`, octet: 98 });
    labs.push(lab);
    const src = path.join(lab.workDir, 'src');
    const want = makeTree(src, 500_000);
    const key = (who: string) => lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'rsa:1024');
    const ds: (Proc & { dest: string })[] = [];
    for (const [rp, cls] of Object.entries(c.proxies)) {
      const rk = await key(rp);
      if (c.real) await lab.realProxy(rp, ['-r', '-x', '3', '-k', rk.file]);
      else await ourProxyUp(lab, rp, ['-r', '-e', 'prime256v1', '-k', rk.file]);
      for (const cl of cls) ds.push(await lab.realUftpd(cl, { args: ['-R', `${lab.addrOf(rp)}/${rk.fingerprint}`, '-x', '3', '-k', (await key(cl)).file] }));
    }
    await lab.waitFor(() => ds.every((d) => d.log().includes('Received PROXY_KEY')), 20_000, 'every client to get a PROXY_KEY');
    const p = lab.ours('server', 'uftp', ['-U', lab.uidOf('server'), '-R', '50000', '-x', '3', ...(enc ? [...enc.args, '-k', (await key('server')).file] : []), 'src'], { cwd: lab.workDir, timeoutMs: 90_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-1500));
    for (const d of ds) assert.deepEqual(treeHashes(path.join(d.dest, 'src')), want, `${d.host}: files differ`);
    for (const rp of Object.keys(c.proxies)) assert.match(p.log(), new RegExp(`Received REGISTER from proxy ${lab.uidOf(rp)}`, 'i'));
    await lab.down();
  });
}

test('nat: our uftp -> our server proxy (-s fp=, learns the NATed client proxy from heartbeats) -> our client proxy -> 2 real uftpd', { timeout: 150_000 }, async () => {
  const lab = await Lab.up('nat', { prefix: `utn${randomBytes(3).toString('hex')}`, octet: 99 });
  labs.push(lab);
  const key = await lab.makeKey(path.join(lab.workDir, 'keys', 'cproxy.pem'), 'rsa:1024');
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src, 500_000);
  const ds = await Promise.all(['clientB1', 'clientB2'].map((c) => lab.realUftpd(c)));
  const spAddr = lab.addrOf('sproxyB');
  const sp = await ourProxyUp(lab, 'sproxyB', ['-s', `fp=${key.fingerprint}`]);
  await ourProxyUp(lab, 'cproxyB', ['-c', '-k', key.file, '-H', spAddr, '-h', '1']);
  await lab.waitFor(() => sp.log().includes(`Using ${lab.addrOf('natgw', 'W')}:`), 10_000, 'the server proxy to adopt the NAT address');
  const p = lab.ours('server', 'uftp', ['-U', lab.uidOf('server'), '-R', '50000', '-x', '3', 'src'], { cwd: lab.workDir, timeoutMs: 90_000 });
  assert.equal(await p.wait(), 0, p.log().slice(-1500));
  for (const d of ds) assert.deepEqual(treeHashes(path.join(d.dest, 'src')), want, `${d.host}: files differ`);
  await lab.down();
});
