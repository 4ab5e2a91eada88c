// -S server lists in the lab (Figure 1): our server proxy joins the public address source-specifically for the
// listed server and refuses an ANNOUNCE whose private address is not SSM; our client proxy refuses a server whose
// key does not have the listed fingerprint. Needs root, the real suite and the compiled bins (`npx tsc -p .`).
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

test('-S: SSM public address joined for the listed server, transfer completes; a non-SSM private address is refused', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `ups${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(300_000));
  const want = treeHashes(src);
  const list = path.join(lab.workDir, 'servers.txt');
  fs.writeFileSync(list, `${lab.uidOf('server')}|${lab.addrOf('server')}\n`);
  const b1 = await lab.realUftpd('clientB1', { args: ['-M', '232.4.4.1'] });
  const b2 = await lab.realUftpd('clientB2', { args: ['-M', '232.4.4.1'] });
  await ours(lab, 'cproxyB', ['-c', '-S', list]);
  const sp = await ours(lab, 'sproxyB', ['-s', lab.tunnelDest('cproxyB'), '-S', list, '-M', '232.4.4.1']);
  // the membership is source-specific: the kernel lists the server as the only source
  const igmp = await lab.exec('sproxyB', ['cat', '/proc/net/mcfilter']);
  const hex = (a: string): string => a.split('.').map((x) => Number(x).toString(16).padStart(2, '0')).join('').toUpperCase();
  const le = (a: string): string => hex(a.split('.').reverse().join('.'));
  assert.ok(new RegExp(`0x(${hex('232.4.4.1')}|${le('232.4.4.1')})\\s+0x(${hex(lab.addrOf('server'))}|${le(lab.addrOf('server'))})`, 'i').test(igmp.stdout), igmp.stdout);
  const ok = lab.realUftp('server', [src], { args: ['-R', '30000', '-M', '232.4.4.1', '-P', '232.5.5.9'], timeoutMs: 60_000 });
  assert.equal(await ok.wait(), 0, ok.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(b1.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(b2.dest, 'src')), want);
  // now a private address outside 232/8: refused by the server proxy. The capture is only read if the refusal is
  // not seen: it tells whether the second session's ANNOUNCEs reached the proxy's host at all.
  const pcap = path.join(lab.workDir, 'sproxyB-announce.pcap');
  const cap = await lab.capture('sproxyB', 'any', pcap, ['udp', 'and', 'dst', 'host', '232.4.4.1']);
  const bad = lab.realUftp('server', [src], { args: ['-R', '30000', '-M', '232.4.4.1', '-P', '230.5.5.9'], timeoutMs: 60_000 });
  try {
    await lab.waitFor(() => /230\.5\.5\.9 is not an SSM address, rejected/.test(sp.log()), 15_000, 'the server proxy to refuse the non-SSM session');
  } catch (e) {
    await cap.kill();
    const seen = await lab.exec('sproxyB', ['tcpdump', '-n', '-r', pcap]);
    const tail = (text: string, n: number): string => text.trim().split('\n').slice(-n).join('\n');
    throw new Error(`${(e as Error).message}\nto 232.4.4.1 on sproxyB since the second uftp started:\n${tail(seen.stdout + seen.stderr, 6)}` +
      `\nuftp (exit ${String(bad.exitCode)}):\n${tail(bad.log(), 12)}\nserver proxy (exit ${String(sp.exitCode)}):\n${tail(sp.log(), 20)}`);
  }
  await cap.kill();
  await bad.kill();
  await lab.down();
});

test('-S on the client proxy: a server whose key does not have the listed fingerprint is refused', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `ups${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(100_000));
  const key = (w: string) => lab.makeKey(path.join(lab.workDir, 'keys', `${w}.pem`), 'rsa:1024');
  const [srv, other, kcp, kb1] = await Promise.all([key('server'), key('other'), key('cproxyB'), key('clientB1')]);
  const list = path.join(lab.workDir, 'servers.txt');
  fs.writeFileSync(list, `${lab.uidOf('server')}|${lab.addrOf('server')}|${other.fingerprint}\n`);
  const b1 = await lab.realUftpd('clientB1', { args: ['-k', kb1.file] });
  const cp = await ours(lab, 'cproxyB', ['-c', '-S', list, '-k', kcp.file]);
  await ours(lab, 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  const s = lab.realUftp('server', [src], { args: ['-R', '30000', '-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-k', srv.file], timeoutMs: 60_000 });
  await lab.waitFor(() => /key fingerprint .* does not match the server list/.test(cp.log()), 15_000, 'the client proxy to refuse the server');
  await s.kill();
  assert.equal(treeHashes(path.join(b1.dest, 'src')).size, 0, 'nothing was received');
  await lab.down();
});
