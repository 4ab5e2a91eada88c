// NAT traversal with heartbeats (lab figure "nat"): the client proxy on network B sits behind a masquerading
// NAT that drops unsolicited inbound traffic; the server proxy knows only its key fingerprint (-s fp=) and
// learns its address from signed heartbeats. A second host sends heartbeats signed with the wrong key and must
// get HB_AUTH_FAILED without changing anything. Then the two-server-proxy chain of the manual.
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

function makeTree(dir: string): Map<string, string> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'd'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.bin'), randomBytes(400_000));
  fs.writeFileSync(path.join(dir, 'd', 'b.txt'), 'behind the NAT\n');
  return treeHashes(dir);
}

async function ours(lab: Lab, host: string, args: string[]): Promise<Proc> {
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '4', '-U', lab.uidOf(host), ...args], { timeoutMs: 120_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

test('nat: server proxy -s fp= learns the NATed client proxy from signed heartbeats; a forged heartbeat gets HB_AUTH_FAILED; the transfer completes', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('nat', { prefix: `upn${randomBytes(3).toString('hex')}`, octet: 68 });
  labs.push(lab);
  const key = await lab.makeKey(path.join(lab.workDir, 'keys', 'cproxy.pem'), 'rsa:1024');
  const forged = await lab.makeKey(path.join(lab.workDir, 'keys', 'forged.pem'), 'ec:prime256v1');
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src);
  const b1 = await lab.realUftpd('clientB1');
  const b2 = await lab.realUftpd('clientB2');
  const spAddr = lab.addrOf('sproxyB');
  const sp = await ours(lab, 'sproxyB', ['-s', `fp=${key.fingerprint}`]);
  const cp = await ours(lab, 'cproxyB', ['-c', '-k', key.file, '-H', spAddr, '-h', '1']);
  // the forger on network A: the real client proxy with another key, heartbeating to our server proxy
  const forger = await lab.realProxy('clientA', ['-c', '-x', '3', '-k', forged.file, '-H', spAddr, '-h', '1']);
  const natAddr = lab.addrOf('natgw', 'W');
  const clientA = lab.addrOf('clientA');
  await lab.waitFor(() => sp.log().includes(`Using ${natAddr}:`) , 10_000, 'the server proxy to adopt the NAT address');
  await lab.waitFor(() => new RegExp(`Heartbeat authentication from ${clientA.replace(/\./g, '\\.')}:\\d+ failed`).test(sp.log()), 10_000, 'the forged heartbeat to fail');
  await lab.waitFor(() => /Heartbeat authentication failed/i.test(forger.log()), 10_000, 'the forger to be told HB_AUTH_FAILED');
  const server = lab.realUftp('server', [src], { args: ['-R', '50000'], timeoutMs: 60_000 });
  const code = await server.wait();
  assert.equal(code, 0, server.log().split('\n').slice(-15).join('\n'));
  assert.deepEqual(treeHashes(path.join(b1.dest, 'src')), want, 'clientB1 files');
  assert.deepEqual(treeHashes(path.join(b2.dest, 'src')), want, 'clientB2 files');
  // the destination was never the forger's
  assert.ok(!sp.log().includes(`Using ${clientA}:`), 'forger never adopted');
  assert.match(cp.log(), /Heartbeat authentication with .* successful/);
  await lab.down();
});

test('nat: two server proxies: ours on A forwards to a second (public) server proxy that learns the NATed client proxy from heartbeats', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('nat', { prefix: `upm${randomBytes(3).toString('hex')}`, octet: 68 });
  labs.push(lab);
  const key = await lab.makeKey(path.join(lab.workDir, 'keys', 'cproxy.pem'), 'ec:prime256v1');
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src);
  const b1 = await lab.realUftpd('clientB1');
  const b2 = await lab.realUftpd('clientB2');
  // the public server proxy runs on "clientA" (A.20); it listens to no public address itself
  const pubAddr = lab.addrOf('clientA');
  const sp2 = await ours(lab, 'clientA', ['-s', `fp=${key.fingerprint}`, '-M', '230.99.99.99']);
  const sp1 = await ours(lab, 'sproxyB', ['-s', pubAddr]);
  await ours(lab, 'cproxyB', ['-c', '-k', key.file, '-H', pubAddr, '-h', '1']);
  await lab.waitFor(() => sp2.log().includes('as downstream address:port'), 10_000, 'the second server proxy to learn the client proxy');
  const server = lab.realUftp('server', [src], { args: ['-R', '50000'], timeoutMs: 60_000 });
  const code = await server.wait();
  assert.equal(code, 0, server.log().split('\n').slice(-15).join('\n'));
  assert.deepEqual(treeHashes(path.join(b1.dest, 'src')), want, 'clientB1 files');
  assert.deepEqual(treeHashes(path.join(b2.dest, 'src')), want, 'clientB2 files');
  assert.match(sp1.log(), /Received request from/);
  assert.match(sp2.log(), /Received request from/);
  await lab.down();
});
