// IPv6 through our proxies (Figure 1 of the lab with IPv6 addresses added): the real uftp server announces on
// ff15::1 with the private address ff15::2, our server proxy (-M ff15::1) forwards to our client proxy's IPv6
// address, which re-multicasts to two real uftpd. Files checked by SHA-256. Needs root, the real suite and the
// compiled bins (`npx tsc -p .`). (The real uftpd needs -I with its IPv6 address, not the interface name, to join.)
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
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '4', ...args], { timeoutMs: 120_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

for (const enc of [false, true]) test(`fig1 over IPv6${enc ? ', encrypted (RSA, AES-256-GCM/SHA-256; verify_data over the 16-byte private address)' : ''}: real uftp (ff15::1) -> OUR server proxy -> OUR client proxy -> 2 real uftpd`, { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `up6${randomBytes(3).toString('hex')}`, octet: 67, ipv6: true });
  labs.push(lab);
  const v6 = (host: string): string => lab.addrOf(host, undefined, 'ipv6');
  const src = path.join(lab.workDir, 'src');
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(400_000));
  fs.writeFileSync(path.join(src, 'd', 'b.txt'), 'over IPv6\n');
  const want = treeHashes(src);
  const key = async (who: string): Promise<string[]> => (enc ? ['-k', (await lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'rsa:1024')).file] : []);
  const b1 = await lab.realUftpd('clientB1', { args: ['-M', 'ff15::1', '-I', v6('clientB1'), ...(await key('clientB1'))] });
  const b2 = await lab.realUftpd('clientB2', { args: ['-M', 'ff15::1', '-I', v6('clientB2'), ...(await key('clientB2'))] });
  const cp = await ours(lab, 'cproxyB', ['-c', '-U', lab.uidOf('cproxyB'), ...(await key('cproxyB'))]);
  const sp = await ours(lab, 'sproxyB', ['-s', v6('cproxyB'), '-M', 'ff15::1', '-U', lab.uidOf('sproxyB')]);
  const server = lab.realUftp('server', [src], { args: ['-R', '30000', '-M', 'ff15::1', '-P', 'ff15::2', '-I', v6('server'), ...(enc ? ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa', ...(await key('server'))] : [])], timeoutMs: 60_000 });
  const code = await server.wait();
  assert.equal(code, 0, server.log().split('\n').slice(-15).join('\n'));
  assert.deepEqual(treeHashes(path.join(b1.dest, 'src')), want, 'clientB1 files');
  assert.deepEqual(treeHashes(path.join(b2.dest, 'src')), want, 'clientB2 files');
  assert.match(sp.log(), new RegExp(`Received request from .* at \\[${v6('server')}\\]:\\d+`));
  assert.match(sp.log(), /private multicast address ff15::2/);
  assert.match(cp.log(), new RegExp(`via \\[${v6('sproxyB')}\\]:1044`));
  if (enc) assert.equal((cp.log().match(/has the group key/g) ?? []).length >= 2, true, cp.log());
  await lab.down();
});
