// OUR uftpd behind the real proxies and the real response proxy, over IPv6, and with TFMCC congestion control;
// files checked by SHA-256. Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, treeHashes } from '../../src/lab/lab.js';
import { ourUftpd } from './helpers/uftpd.js';
import { readUdpDatagrams } from '../../src/pcap/index.js';
import { decodePacket } from '../../src/wire/packet.js';

const OCTET = 84;
const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.down();
});
async function up(fig: 'fig1' | 'fig2' | 'fig3' | 'fig4' | 'nat', ipv6 = false): Promise<Lab> {
  const l = await Lab.up(fig, { prefix: `ufp${randomBytes(3).toString('hex')}`, octet: OCTET, ...(ipv6 ? { ipv6 } : {}) });
  labs.push(l);
  return l;
}

function source(l: Lab, size = 800_000): { dir: string; want: Map<string, string> } {
  const dir = path.join(l.workDir, 'src');
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.bin'), randomBytes(size));
  fs.writeFileSync(path.join(dir, 'sub', 'b.txt'), 'paths\n');
  return { dir, want: treeHashes(dir) };
}

test('TFMCC (uftp -C tfmcc): our uftpd beside the real uftpd, byte-identical', { timeout: 90_000 }, async () => {
  const l = await up('fig2');
  const { dir, want } = source(l, 2_000_000);
  const ours = await ourUftpd(l, 'client1', { args: ['-x', '3'] });
  const real = await l.realUftpd('client2');
  const s = l.realUftp('server', [dir], { args: ['-C', 'tfmcc', '-x', '2'], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, s.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  await l.down();
});

test('TFMCC with 5% loss on our link: our CC_ACKs and STATUS carry EXT_TFMCC_ACK_INFO with our ID; byte-identical', { timeout: 120_000 }, async () => {
  const l = await up('fig2');
  const { dir, want } = source(l, 2_000_000);
  const pcap = path.join(l.workDir, 'tfmcc.pcap');
  const cap = await l.capture('client1', 'eS', pcap, ['udp', 'and', 'src', 'host', l.addrOf('client1')]);
  const ours = await ourUftpd(l, 'client1', { args: ['-x', '3'] });
  const real = await l.realUftpd('client2');
  await l.impairLink('client1', 'S', { lossPct: 5 });
  const t0 = Date.now();
  const s = l.realUftp('server', [dir], { args: ['-C', 'tfmcc', '-x', '2'], timeoutMs: 100_000 });
  const code = await s.wait();
  await new Promise((r) => setTimeout(r, 300));
  await cap.kill();
  assert.equal(code, 0, s.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  let ccAcks = 0;
  let statusWithInfo = 0;
  const uid = parseInt(l.uidOf('client1'), 16);
  for await (const r of readUdpDatagrams(fs.createReadStream(pcap), { port: 1044 })) {
    if (!r.ok || r.value.kind !== 'datagram') continue;
    const p = decodePacket(r.value.datagram.payload);
    if (!p.ok) continue;
    const m = p.value.message;
    const info = (m.type === 'CC_ACK' || m.type === 'STATUS') ? m.extensions.find((x) => x.type === 'EXT_TFMCC_ACK_INFO') : undefined;
    if (info && info.type === 'EXT_TFMCC_ACK_INFO') {
      assert.equal(info.clientId, uid);
      if (m.type === 'CC_ACK') ccAcks++;
      else statusWithInfo++;
    }
  }
  assert.ok(ccAcks > 0, 'CC_ACKs sent');
  process.stdout.write(`TFMCC 5% loss: ${Date.now() - t0} ms, ${ccAcks} CC_ACK, ${statusWithInfo} STATUS with TFMCC info from ours\n`);
  await l.down();
});

test('-R: plain session through the real response proxy (fig2): our responses go to the proxy, which aggregates them', { timeout: 90_000 }, async () => {
  const l = await up('fig2');
  const { dir, want } = source(l);
  await l.realProxy('rproxy1', ['-r', '-x', '3']);
  const ours = await ourUftpd(l, 'client1', { args: ['-x', '3', '-R', l.addrOf('rproxy1')] });
  const real = await l.realUftpd('client2', { args: ['-R', l.addrOf('rproxy1')] });
  const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2'], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, s.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  assert.match(s.log(), new RegExp(`COMPLETE from proxy ${l.uidOf('rproxy1')}`, 'i'), 'completions came through the proxy');
  await l.down();
});

test('fig1: through the real server proxy and client proxy (tunnel) to our uftpd beside a real uftpd', { timeout: 90_000 }, async () => {
  const l = await up('fig1');
  const { dir, want } = source(l);
  const ours = await ourUftpd(l, 'clientB1', { args: ['-x', '3'] });
  const real = await l.realUftpd('clientB2');
  await l.realProxy('cproxyB', ['-c', '-x', '3']);
  await l.realProxy('sproxyB', ['-s', l.tunnelDest('cproxyB'), '-x', '3']);
  const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2'], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, s.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  assert.match(s.log(), new RegExp(`COMPLETE from proxy ${l.uidOf('cproxyB')}`, 'i'));
  await l.down();
});

test('IPv6: the real uftp on ff15::1 / ff15::2 to our uftpd (-M ff15::1 -I its IPv6 address) beside the real uftpd', { timeout: 90_000 }, async () => {
  const l = await up('fig2', true);
  const { dir, want } = source(l);
  const v6 = (h: string): string => l.addrOf(h, undefined, 'ipv6');
  const ours = await ourUftpd(l, 'client1', { args: ['-x', '3', '-M', 'ff15::1', '-I', v6('client1'), '-U', l.uidOf('client1')] });
  const real = await l.realUftpd('client2', { args: ['-M', 'ff15::1', '-I', v6('client2')] });
  const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2', '-M', 'ff15::1', '-P', 'ff15::2', '-I', v6('server')], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, `${s.log().split('\n').slice(-10).join('\n')}\n--- ours\n${ours.log()}`);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  assert.match(ours.log(), /Using private multicast address ff15::2/);
  await l.down();
});

test('-R proxy/fingerprint, encrypted (RSA, AES-128-CBC, HMAC/SHA-1): KEY_REQ/PROXY_KEY with the real response proxy, key exchange with it', { timeout: 90_000 }, async () => {
  const l = await up('fig2');
  const { dir, want } = source(l);
  const key = (who: string) => l.makeKey(path.join(l.workDir, 'keys', `${who}.pem`), 'rsa:1024');
  const kp = await key('rproxy1');
  await l.realProxy('rproxy1', ['-r', '-x', '3', '-k', kp.file]);
  const ours = await ourUftpd(l, 'client1', { args: ['-x', '3', '-R', `${l.addrOf('rproxy1')}/${kp.fingerprint}`, '-k', (await key('client1')).file] });
  const real = await l.realUftpd('client2', { args: ['-R', `${l.addrOf('rproxy1')}/${kp.fingerprint}`, '-k', (await key('client2')).file] });
  await l.waitFor(() => ours.log().includes('Received PROXY_KEY'), 20_000, 'our PROXY_KEY');
  await l.waitFor(() => real.log().includes('PROXY_KEY'), 20_000, 'the real uftpd\'s PROXY_KEY');
  const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2', '-e', 'rsa', '-Y', 'aes128-cbc', '-h', 'sha1', '-k', (await key('server')).file], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, `${s.log().split('\n').slice(-10).join('\n')}\n--- ours\n${ours.log().split('\n').slice(-15).join('\n')}`);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want, 'our uftpd got the files');
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  assert.match(ours.log(), new RegExp(`fingerprint ${kp.fingerprint}`));
  await l.down();
});

test('-R with a wrong fingerprint: the proxy\'s key is refused and no encrypted session is accepted', { timeout: 60_000 }, async () => {
  const l = await up('fig2');
  const kp = await l.makeKey(path.join(l.workDir, 'keys', 'rproxy1.pem'), 'rsa:1024');
  const other = await l.makeKey(path.join(l.workDir, 'keys', 'other.pem'), 'rsa:1024');
  await l.realProxy('rproxy1', ['-r', '-x', '3', '-k', kp.file]);
  const ours = await ourUftpd(l, 'client1', { args: ['-x', '3', '-R', `${l.addrOf('rproxy1')}/${other.fingerprint}`] });
  await l.waitFor(() => /is not the one given with -R/.test(ours.log()), 20_000, 'the refusal');
  assert.doesNotMatch(ours.log(), /Received PROXY_KEY/);
  await l.down();
});

test('-H/-h: heartbeats to the real server proxy (-s fp=our key): its challenge answered with our signature and accepted', { timeout: 60_000 }, async () => {
  const l = await up('fig2');
  const k = await l.makeKey(path.join(l.workDir, 'keys', 'client1.pem'), 'rsa:1024');
  await l.realProxy('rproxy2', ['-s', `fp=${k.fingerprint}`, '-x', '3']);
  const ours = await ourUftpd(l, 'client1', { args: ['-x', '4', '-k', k.file, '-H', l.addrOf('rproxy2'), '-h', '1'] });
  await l.waitFor(() => /Heartbeat authentication required .*signed HB_REQ sent/.test(ours.log()) && /Received HB_RESP/.test(ours.log()), 20_000, 'challenge and acceptance');
  assert.doesNotMatch(ours.log(), /Heartbeat authentication failed/);
  await ours.kill();
  await l.down();
});

test('fig1: through OUR server proxy and client proxy to our uftpd beside a real uftpd', { timeout: 90_000 }, async () => {
  const l = await up('fig1');
  const { dir, want } = source(l);
  const ours = await ourUftpd(l, 'clientB1', { args: ['-x', '3'] });
  const real = await l.realUftpd('clientB2');
  await l.ourProxy('cproxyB', ['-c', '-x', '3']);
  await l.ourProxy('sproxyB', ['-s', l.tunnelDest('cproxyB'), '-x', '3']);
  const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2'], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, s.log().split('\n').slice(-10).join('\n'));
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  assert.match(s.log(), new RegExp(`COMPLETE from proxy ${l.uidOf('cproxyB')}`, 'i'));
  await l.down();
});

test('fig1 encrypted (RSA, AES-256-GCM, SHA-256): through OUR server and client proxy (it re-keys the session) to our uftpd', { timeout: 90_000 }, async () => {
  const l = await up('fig1');
  const { dir, want } = source(l);
  const key = (who: string) => l.makeKey(path.join(l.workDir, 'keys', `${who}.pem`), 'rsa:1024');
  const ours = await ourUftpd(l, 'clientB1', { args: ['-x', '3', '-k', (await key('clientB1')).file] });
  const real = await l.realUftpd('clientB2', { args: ['-k', (await key('clientB2')).file] });
  await l.ourProxy('cproxyB', ['-c', '-x', '3', '-k', (await key('cproxyB')).file]);
  await l.ourProxy('sproxyB', ['-s', l.tunnelDest('cproxyB'), '-x', '3']);
  const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2', '-e', 'rsa', '-Y', 'aes256-gcm', '-h', 'sha256', '-k', (await key('server')).file], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, `${s.log().split('\n').slice(-10).join('\n')}\n--- ours\n${ours.log().split('\n').slice(-12).join('\n')}`);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  await l.down();
});

for (const fig of ['fig3', 'fig4'] as const) {
  test(`${fig}: our uftpd behind the real response proxy rproxyB (-R), beside a real uftpd`, { timeout: 90_000 }, async () => {
    const l = await up(fig);
    const { dir, want } = source(l);
    await l.realProxy('rproxyB', ['-r', '-x', '3']);
    const ours = await ourUftpd(l, 'clientB1', { args: ['-x', '3', '-R', l.addrOf('rproxyB')] });
    const real = await l.realUftpd('clientB2', { args: ['-R', l.addrOf('rproxyB')] });
    const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2'], timeoutMs: 60_000 });
    const code = await s.wait();
    assert.equal(code, 0, `${s.log().split('\n').slice(-10).join('\n')}\n--- ours\n${ours.log().split('\n').slice(-12).join('\n')}`);
    assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
    assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
    assert.match(s.log(), new RegExp(`COMPLETE from proxy ${l.uidOf('rproxyB')}`, 'i'));
    await l.down();
  });
}

test('nat: our uftpd behind a NATed real client proxy that the real server proxy learns from signed heartbeats', { timeout: 120_000 }, async () => {
  const l = await up('nat');
  const { dir, want } = source(l);
  const key = await l.makeKey(path.join(l.workDir, 'keys', 'cproxy.pem'), 'rsa:1024');
  const ours = await ourUftpd(l, 'clientB1', { args: ['-x', '3'] });
  const real = await l.realUftpd('clientB2');
  await l.realProxy('sproxyB', ['-s', `fp=${key.fingerprint}`, '-x', '3']);
  await l.realProxy('cproxyB', ['-c', '-x', '3', '-k', key.file, '-H', l.addrOf('sproxyB'), '-h', '1']);
  await new Promise((r) => setTimeout(r, 3000)); // a heartbeat or two: the server proxy learns where the client proxy is
  const s = l.realUftp('server', [dir], { args: ['-R', '50000', '-x', '2'], timeoutMs: 60_000 });
  const code = await s.wait();
  assert.equal(code, 0, `${s.log().split('\n').slice(-10).join('\n')}\n--- ours\n${ours.log().split('\n').slice(-12).join('\n')}`);
  assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
  assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
  await l.down();
});

for (const enc of [false, true]) {
  test(`fig2: behind OUR response proxy (-R${enc ? ' with its fingerprint, encrypted: ECDH_ECDSA, AES-128-GCM' : ', plain'}), beside a real uftpd`, { timeout: 90_000 }, async () => {
    const l = await up('fig2');
    const { dir, want } = source(l);
    const key = (who: string) => l.makeKey(path.join(l.workDir, 'keys', `${who}.pem`), 'ec:prime256v1');
    const kp = await key('rproxy1');
    await l.ourProxy('rproxy1', ['-r', '-x', '3', '-e', 'prime256v1', '-k', kp.file]);
    const r = enc ? `${l.addrOf('rproxy1')}/${kp.fingerprint}` : l.addrOf('rproxy1');
    const ours = await ourUftpd(l, 'client1', { args: ['-x', '3', '-R', r, '-k', (await key('client1')).file] });
    const real = await l.realUftpd('client2', { args: ['-R', r, '-k', (await key('client2')).file] });
    if (enc) {
      await l.waitFor(() => ours.log().includes('Received PROXY_KEY'), 20_000, 'our PROXY_KEY');
      await l.waitFor(() => real.log().includes('PROXY_KEY'), 20_000, 'the real uftpd\'s PROXY_KEY');
    }
    const s = l.realUftp('server', [dir], {
      args: ['-R', '50000', '-x', '2', ...(enc ? ['-e', 'ecdh_ecdsa', '-Y', 'aes128-gcm', '-h', 'sha256', '-k', (await key('server')).file] : [])],
      timeoutMs: 60_000,
    });
    const code = await s.wait();
    assert.equal(code, 0, `${s.log().split('\n').slice(-10).join('\n')}\n--- ours\n${ours.log().split('\n').slice(-12).join('\n')}`);
    assert.deepEqual(treeHashes(path.join(ours.dest, 'src')), want);
    assert.deepEqual(treeHashes(path.join(real.dest, 'src')), want);
    assert.match(s.log(), new RegExp(`COMPLETE from proxy ${l.uidOf('rproxy1')}`, 'i'));
    await l.down();
  });
}
