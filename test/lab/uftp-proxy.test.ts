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
