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

for (const encName of ['plain', 'RSA, aes128-cbc']) {
  test(`fig2 ${encName}: our uftp -> 2 real uftpd through our response proxy (clients -R), byte-identical`, { timeout: 150_000 }, async () => {
    const enc = ENC[encName];
    const lab = await Lab.up('fig2', { prefix: `utr${randomBytes(3).toString('hex')}`, octet: 98 });
    labs.push(lab);
    const src = path.join(lab.workDir, 'src');
    const want = makeTree(src, 500_000);
    const key = (who: string) => lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'rsa:1024');
    const rk = await key('rproxy1');
    await ourProxyUp(lab, 'rproxy1', ['-r', '-e', 'prime256v1', '-k', rk.file]);
    const ds = await Promise.all(['client1', 'client2'].map(async (c) =>
      lab.realUftpd(c, { args: ['-R', `${lab.addrOf('rproxy1')}/${rk.fingerprint}`, '-x', '3', '-k', (await key(c)).file] })));
    await lab.waitFor(() => ds.every((d) => d.log().includes('Received PROXY_KEY')), 20_000, 'every client to get a PROXY_KEY');
    const p = lab.ours('server', 'uftp', ['-U', lab.uidOf('server'), '-R', '50000', '-x', '3', ...(enc ? [...enc.args, '-k', (await key('server')).file] : []), 'src'], { cwd: lab.workDir, timeoutMs: 90_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-1500));
    for (const d of ds) assert.deepEqual(treeHashes(path.join(d.dest, 'src')), want, `${d.host}: files differ`);
    assert.match(p.log(), /Received REGISTER from proxy/i);
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
