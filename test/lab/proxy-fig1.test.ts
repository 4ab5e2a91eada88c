// Figure 1 of uftpproxyd(1) in the lab: the real uftp server sends a directory through a server proxy on
// network A and a client proxy on network B to two real uftpd clients (and one client on A directly).
// Our proxies, the real ones, and mixed chains. Files are compared by SHA-256. Needs root, the real suite
// and the compiled bins (`npx tsc -p .`).
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

/** A source tree: one 600 KB random file, a small one in a subdirectory, an empty file. */
export function makeTree(dir: string, big = 600_000): Map<string, string> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'big.bin'), randomBytes(big));
  fs.writeFileSync(path.join(dir, 'sub', 'small.txt'), 'hello through the tunnel\n');
  fs.writeFileSync(path.join(dir, 'empty'), '');
  return treeHashes(dir);
}

type Kind = 'ours' | 'real';

async function startProxy(lab: Lab, kind: Kind, host: string, args: string[]): Promise<Proc> {
  const uid = lab.uidOf(host);
  if (kind === 'real') return lab.realProxy(host, ['-x', '4', ...args]);
  const p = lab.ours(host, 'uftpproxyd', ['-d', '-x', '4', '-U', uid, ...args], { timeoutMs: 120_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `our uftpproxyd on ${host}`);
  assert.equal(p.exitCode, null, `our uftpproxyd on ${host} exited: ${p.log()}`);
  return p;
}

interface Enc {
  /** uftp options, e.g. ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa']. */
  readonly server: string[];
  /** Key spec for the server, the client proxy and the clients. */
  readonly key: string;
  readonly label: string;
}

async function fig1Transfer(sp: Kind, cp: Kind, enc?: Enc): Promise<void> {
  const lab = await Lab.up('fig1', { prefix: `upf${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src);
  const clients = ['clientA', 'clientB1', 'clientB2'];
  const keyArgs = async (who: string): Promise<string[]> => (enc ? ['-k', (await lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), enc.key)).file] : []);
  const uftpds = await Promise.all(clients.map(async (c) => lab.realUftpd(c, { args: ['-x', '2', ...(await keyArgs(c))] })));
  const cproxy = await startProxy(lab, cp, 'cproxyB', ['-c', ...(await keyArgs('cproxyB'))]);
  const sproxy = await startProxy(lab, sp, 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  const t0 = Date.now();
  const server = lab.realUftp('server', [src], { args: ['-R', '50000', '-x', '2', ...(enc ? [...enc.server, ...(await keyArgs('server'))] : [])], timeoutMs: 60_000 });
  const code = await server.wait();
  const ms = Date.now() - t0;
  const slog = server.log();
  assert.equal(code, 0, `uftp exited ${code}: ${slog.split('\n').slice(-15).join('\n')}`);
  for (const [i, c] of clients.entries()) {
    const got = treeHashes(path.join(uftpds[i].dest, 'src'));
    assert.deepEqual(got, want, `${c}: files differ (sp=${sp}, cp=${cp})`);
  }
  // the two clients behind the proxy were reported through it
  assert.match(slog, new RegExp(`Got COMPLETE from proxy ${lab.uidOf('cproxyB')}`, 'i'));
  if (sp === 'ours') assert.match(sproxy.log(), /Received request from/);
  if (cp === 'ours') assert.match(cproxy.log(), /COMPLETE for file \d+ sent upstream for 2 client\(s\)/);
  if (cp === 'ours' && enc?.server.includes('-Y')) {
    // both clients proved they hold the group key (KEYINFO_ACK verify_data checked by our proxy)
    assert.equal((cproxy.log().match(/has the group key/g) ?? []).length >= 2, true, cproxy.log());
  }
  process.stdout.write(`fig1 ${enc?.label ?? 'plain'} sp=${sp} cp=${cp}: ${[...want.keys()].length} files, ${ms} ms, SHA-256 match for ${clients.join(', ')}\n`);
  await lab.down();
}

test('fig1 plain: real uftp -> OUR server proxy -> OUR client proxy -> 2 real uftpd (+1 direct)', { timeout: 120_000 }, async () => {
  await fig1Transfer('ours', 'ours');
});

test('fig1 plain with TFMCC congestion control (CONG_CTRL down, CC_ACK up at once, STATUS with TFMCC info) through our proxies', { timeout: 120_000 }, async () => {
  await fig1Transfer('ours', 'ours', { label: 'plain TFMCC', server: ['-C', 'tfmcc'], key: 'rsa:512' });
});

test('fig1 plain mixed: OUR server proxy -> REAL client proxy', { timeout: 120_000 }, async () => {
  await fig1Transfer('ours', 'real');
});

test('fig1 plain mixed: REAL server proxy -> OUR client proxy', { timeout: 120_000 }, async () => {
  await fig1Transfer('real', 'ours');
});

// Encrypted sessions. Our client proxy does the proxy key exchange of protocol.txt 5.1.1.2 (RSA and ECDH);
// a server proxy forwards encrypted sessions unchanged (it never needs the keys).
const RSA_CBC: Enc = { label: 'RSA + AES-128-CBC + HMAC/SHA-1', server: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa'], key: 'rsa:1024' };
const CASES: [Enc, Kind, Kind][] = [
  [RSA_CBC, 'ours', 'ours'],
  [RSA_CBC, 'ours', 'real'],
  [RSA_CBC, 'real', 'ours'],
  [{ label: 'RSA + AES-256-GCM/SHA-256', server: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa'], key: 'rsa:2048' }, 'ours', 'ours'],
  [{ label: 'RSA + AES-128-CCM/SHA-384', server: ['-Y', 'aes128-ccm', '-h', 'sha384', '-e', 'rsa'], key: 'rsa:1024' }, 'ours', 'ours'],
  [{ label: 'RSA + 3DES + HMAC/SHA-1', server: ['-Y', '3des', '-h', 'sha1', '-e', 'rsa'], key: 'rsa:1024' }, 'ours', 'ours'],
  [{ label: 'ECDH_RSA + AES-256-GCM/SHA-256', server: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'ecdh_rsa'], key: 'rsa:1024' }, 'ours', 'ours'],
  [{ label: 'ECDH_ECDSA + AES-128-CCM/SHA-384 -w keyex', server: ['-Y', 'aes128-ccm', '-h', 'sha384', '-e', 'ecdh_ecdsa', '-w', 'keyex'], key: 'ec:prime256v1' }, 'ours', 'ours'],
  // with CBC, -w keyex really signs every ENCRYPTED with the sender's key: our client proxy re-signs
  [{ label: 'RSA + AES-128-CBC/SHA-1 -w keyex', server: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-w', 'keyex'], key: 'rsa:1024' }, 'ours', 'ours'],
  [{ label: 'ECDH_ECDSA + AES-256-CBC/SHA-256 -w keyex', server: ['-Y', 'aes256-cbc', '-h', 'sha256', '-e', 'ecdh_ecdsa', '-w', 'keyex'], key: 'ec:prime256v1' }, 'ours', 'ours'],
  [{ label: 'RSA + AES-128-CBC/SHA-1, client authentication (uftp -c)', server: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-c'], key: 'rsa:1024' }, 'ours', 'ours'],
  [{ label: 'ECDH_ECDSA + AES-256-GCM/SHA-256', server: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'ecdh_ecdsa'], key: 'ec:secp384r1' }, 'ours', 'real'],
];
for (const [enc, sp, cp] of CASES) {
  test(`fig1 encrypted (${enc.label}): ${sp.toUpperCase()} server proxy -> ${cp.toUpperCase()} client proxy`, { timeout: 120_000 }, async () => {
    await fig1Transfer(sp, cp, enc);
  });
}

test('fig1 client authentication with a -C client list: a client whose key does not match its fingerprint is refused', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `upf${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src, 200_000);
  const key = (who: string) => lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'rsa:1024');
  const [kb1, kb2, other, kcp, ksrv] = await Promise.all([key('clientB1'), key('clientB2'), key('other'), key('cproxyB'), key('server')]);
  const list = path.join(lab.workDir, 'clients.txt');
  // clientB1 with its own fingerprint, clientB2 with someone else's
  fs.writeFileSync(list, `# allowed clients\n${lab.uidOf('clientB1')}|${kb1.fingerprint}\n${lab.uidOf('clientB2')}|${other.fingerprint}\n`);
  const b1 = await lab.realUftpd('clientB1', { args: ['-k', kb1.file] });
  const b2 = await lab.realUftpd('clientB2', { args: ['-k', kb2.file] });
  const cproxy = await startProxy(lab, 'ours', 'cproxyB', ['-c', '-k', kcp.file, '-C', list]);
  await startProxy(lab, 'ours', 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  const server = lab.realUftp('server', [src], { args: ['-R', '50000', '-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-c', '-k', ksrv.file], timeoutMs: 90_000 });
  const code = await server.wait();
  assert.equal(code, 0, server.log().split('\n').slice(-15).join('\n'));
  assert.deepEqual(treeHashes(path.join(b1.dest, 'src')), want, 'clientB1 (listed with its fingerprint) got the files');
  assert.equal(treeHashes(path.join(b2.dest, 'src')).size, 0, 'clientB2 (wrong fingerprint) got nothing');
  assert.match(cproxy.log(), new RegExp(`CLIENT_KEY from ${lab.uidOf('clientB2').slice(2)}: key fingerprint ${kb2.fingerprint} is not the one in the client list`, 'i'));
  await lab.down();
});

test('fig1 side by side: one encrypted session reaches network B through OUR proxies and network C through the REAL ones', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `upf${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  const src = path.join(lab.workDir, 'src');
  const want = makeTree(src, 400_000);
  const key = async (who: string): Promise<string> => (await lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'rsa:1024')).file;
  const clients = ['clientA', 'clientB1', 'clientB2', 'clientC1', 'clientC2'];
  const uftpds = await Promise.all(clients.map(async (c) => lab.realUftpd(c, { args: ['-k', await key(c)] })));
  const cpB = await startProxy(lab, 'ours', 'cproxyB', ['-c', '-k', await key('cproxyB')]);
  await startProxy(lab, 'real', 'cproxyC', ['-c', '-k', await key('cproxyC')]);
  // each server proxy listens on network A; the real one is told its interface as the lead's notes advise
  await startProxy(lab, 'ours', 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  await startProxy(lab, 'real', 'sproxyC', ['-s', lab.tunnelDest('cproxyC'), '-I', 'eA']);
  const server = lab.realUftp('server', [src], { args: ['-R', '50000', '-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa', '-k', await key('server')], timeoutMs: 90_000 });
  const code = await server.wait();
  const slog = server.log();
  assert.equal(code, 0, slog.split('\n').slice(-15).join('\n'));
  for (const [i, c] of clients.entries()) assert.deepEqual(treeHashes(path.join(uftpds[i].dest, 'src')), want, `${c} files`);
  assert.match(slog, new RegExp(`COMPLETE from proxy ${lab.uidOf('cproxyB')}`, 'i'));
  assert.match(slog, new RegExp(`COMPLETE from proxy ${lab.uidOf('cproxyC')}`, 'i'));
  assert.equal((cpB.log().match(/has the group key/g) ?? []).length >= 2, true);
  await lab.down();
});

test('fig1 two concurrent sessions (different group IDs, one plain, one encrypted) through our proxies are kept apart', { timeout: 120_000 }, async () => {
  const lab = await Lab.up('fig1', { prefix: `upf${randomBytes(3).toString('hex')}`, octet: 67 });
  labs.push(lab);
  const srcA = path.join(lab.workDir, 'srcA');
  const srcB = path.join(lab.workDir, 'srcB');
  const wantA = makeTree(srcA, 700_000);
  const wantB = makeTree(srcB, 500_000);
  const key = async (who: string): Promise<string> => (await lab.makeKey(path.join(lab.workDir, 'keys', `${who}.pem`), 'rsa:1024')).file;
  const clients = ['clientB1', 'clientB2'];
  const uftpds = await Promise.all(clients.map(async (c) => lab.realUftpd(c, { args: ['-k', await key(c)] })));
  const cp = await startProxy(lab, 'ours', 'cproxyB', ['-c', '-k', await key('cproxyB')]);
  const sp = await startProxy(lab, 'ours', 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  const s1 = lab.realUftp('server', [srcA], { args: ['-R', '30000', '-P', '230.5.5.61'], timeoutMs: 90_000, logFile: path.join(lab.workDir, 'logs', 'uftp-A.log') });
  const s2 = lab.realUftp('server', [srcB], { args: ['-R', '30000', '-P', '230.5.5.62', '-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa', '-k', await key('server')], timeoutMs: 90_000, logFile: path.join(lab.workDir, 'logs', 'uftp-B.log') });
  const [c1, c2] = await Promise.all([s1.wait(), s2.wait()]);
  assert.equal(c1, 0, s1.log().split('\n').slice(-10).join('\n'));
  assert.equal(c2, 0, s2.log().split('\n').slice(-10).join('\n'));
  for (const [i, c] of clients.entries()) {
    assert.deepEqual(treeHashes(path.join(uftpds[i].dest, 'srcA')), wantA, `${c} plain session`);
    assert.deepEqual(treeHashes(path.join(uftpds[i].dest, 'srcB')), wantB, `${c} encrypted session`);
  }
  const groups = new Set([...sp.log().matchAll(/\[([0-9A-F]{8})\/00\]: Received request/g)].map((m) => m[1]));
  assert.equal(groups.size, 2, 'two sessions in the server proxy');
  assert.equal(new Set([...cp.log().matchAll(/\[([0-9A-F]{8})\/00\]: Received request/g)].map((m) => m[1])).size, 2, 'two sessions in the client proxy');
  await lab.down();
});
