// Encrypted sessions from the real uftp to OUR uftpd: one test per key exchange, cipher mode and signature type
// the real server offers, client authentication, -k with several keys, -E refusing a plain session, -S with a
// server list and fingerprints. Files checked by SHA-256. Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { ourUftpd, treeHashes } from './helpers/uftpd.js';

const OCTET = 82;
let lab: Lab | undefined;
after(async () => {
  await lab?.down();
});

/** One lab for the whole file (sessions run one after another); a fresh source and destination per case. */
async function theLab(): Promise<Lab> {
  if (!lab) lab = await Lab.up('fig2', { prefix: `ufc${randomBytes(3).toString('hex')}`, octet: OCTET });
  return lab;
}

function source(l: Lab, name: string): { dir: string; want: Map<string, string> } {
  const dir = path.join(l.workDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.bin'), randomBytes(400_000));
  fs.writeFileSync(path.join(dir, 'sub', 'b.txt'), `encrypted ${name}\n`);
  return { dir, want: treeHashes(dir) };
}

interface Case {
  readonly label: string;
  readonly server: readonly string[];
  /** Key spec of the server's key and of our client's. */
  readonly key: string;
}

const CASES: Case[] = [
  { label: 'RSA, AES-128-CBC, HMAC/SHA-1', server: ['-e', 'rsa', '-Y', 'aes128-cbc', '-h', 'sha1', '-w', 'hmac'], key: 'rsa:1024' },
  { label: 'RSA, AES-256-CBC, HMAC/SHA-256', server: ['-e', 'rsa', '-Y', 'aes256-cbc', '-h', 'sha256', '-w', 'hmac'], key: 'rsa:1024' },
  { label: 'RSA, 3DES, HMAC/SHA-1', server: ['-e', 'rsa', '-Y', '3des', '-h', 'sha1'], key: 'rsa:1024' },
  { label: 'RSA, AES-128-GCM (authenc), SHA-256', server: ['-e', 'rsa', '-Y', 'aes128-gcm', '-h', 'sha256'], key: 'rsa:2048' },
  { label: 'RSA, AES-256-GCM (authenc), SHA-512', server: ['-e', 'rsa', '-Y', 'aes256-gcm', '-h', 'sha512'], key: 'rsa:1024' },
  { label: 'RSA, AES-128-CCM (authenc), SHA-384', server: ['-e', 'rsa', '-Y', 'aes128-ccm', '-h', 'sha384'], key: 'rsa:1024' },
  { label: 'RSA, AES-256-CCM (authenc), SHA-256', server: ['-e', 'rsa', '-Y', 'aes256-ccm', '-h', 'sha256'], key: 'rsa:1024' },
  { label: 'RSA, AES-128-CBC, keyex signatures (RSA) SHA-256', server: ['-e', 'rsa', '-Y', 'aes128-cbc', '-h', 'sha256', '-w', 'keyex'], key: 'rsa:1024' },
  { label: 'ECDH_RSA, AES-256-GCM, SHA-256', server: ['-e', 'ecdh_rsa', '-Y', 'aes256-gcm', '-h', 'sha256'], key: 'rsa:1024' },
  { label: 'ECDH_RSA, AES-128-CBC, HMAC/SHA-1', server: ['-e', 'ecdh_rsa', '-Y', 'aes128-cbc', '-h', 'sha1', '-w', 'hmac'], key: 'rsa:1024' },
  { label: 'ECDH_ECDSA (P-256), AES-128-GCM, SHA-256', server: ['-e', 'ecdh_ecdsa', '-Y', 'aes128-gcm', '-h', 'sha256'], key: 'ec:prime256v1' },
  { label: 'ECDH_ECDSA (P-384), AES-256-CBC, keyex signatures (ECDSA) SHA-384', server: ['-e', 'ecdh_ecdsa', '-Y', 'aes256-cbc', '-h', 'sha384', '-w', 'keyex'], key: 'ec:secp384r1' },
  { label: 'RSA, AES-256-CBC, HMAC/SHA-256, client authentication (uftp -c)', server: ['-e', 'rsa', '-Y', 'aes256-cbc', '-h', 'sha256', '-c'], key: 'rsa:1024' },
];

for (const [i, c] of CASES.entries()) {
  test(`encrypted: ${c.label}: real uftp -> our uftpd, byte-identical`, { timeout: 60_000 }, async () => {
    const l = await theLab();
    const { dir, want } = source(l, `src${i}`);
    const skey = await l.makeKey(path.join(l.workDir, 'keys', `server-${c.key.replace(':', '-')}.pem`), c.key);
    const ckey = await l.makeKey(path.join(l.workDir, 'keys', `client-${c.key.replace(':', '-')}.pem`), c.key);
    // an unrelated key first: ours must pick the one that fits the server's key (-k with several keys)
    const other = await l.makeKey(path.join(l.workDir, 'keys', c.key.startsWith('rsa') ? 'other-ec.pem' : 'other-rsa.pem'), c.key.startsWith('rsa') ? 'ec:prime256v1' : 'rsa:1024');
    const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, `dest${i}`), args: ['-x', '3', '-k', `${other.file},${ckey.file}`] });
    const server = l.realUftp('server', [dir], { args: ['-R', '100000', '-x', '2', '-k', skey.file, ...c.server], timeoutMs: 45_000 });
    const code = await server.wait();
    await ours.kill();
    assert.equal(code, 0, `uftp exited ${code}: ${server.log().split('\n').slice(-8).join('\n')}\n--- ours:\n${ours.log().split('\n').slice(-15).join('\n')}`);
    assert.deepEqual(treeHashes(path.join(ours.dest, path.basename(dir))), want, `${c.label}: files byte-identical`);
    assert.doesNotMatch(ours.log(), /Rejecting message/, 'every server message opened and verified');
  });
}

test('encrypted with the default keys on both sides (512-bit RSA: PKCS#1 v1.5 premaster, too small for OAEP)', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir, want } = source(l, 'srcdefault');
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'destdefault'), args: ['-x', '3'] });
  const server = l.realUftp('server', [dir], { args: ['-R', '100000', '-x', '2', '-e', 'rsa', '-Y', 'aes128-cbc', '-h', 'sha1'], timeoutMs: 45_000 });
  const code = await server.wait();
  await ours.kill();
  assert.equal(code, 0, server.log().split('\n').slice(-8).join('\n'));
  assert.deepEqual(treeHashes(path.join(ours.dest, path.basename(dir))), want);
});

test('-E: our uftpd refuses a plain session with an ABORT the server logs', { timeout: 60_000 }, async () => {
  const l = await theLab();
  const { dir } = source(l, 'srcE');
  const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, 'destE'), args: ['-x', '3', '-E'] });
  const server = l.realUftp('server', [dir], { args: ['-R', '100000', '-x', '2', '-s', '10'], timeoutMs: 45_000 });
  const code = await server.wait();
  await ours.kill();
  assert.notEqual(code, 0, 'no client took the files');
  assert.match(server.log(), /No unencrypted transfers allowed/);
  assert.equal(treeHashes(ours.dest).size, 0, 'nothing written');
});

test('-S: a listed server (ID, address, fingerprint) is served; a wrong fingerprint and an unlisted server are refused', { timeout: 120_000 }, async () => {
  const l = await theLab();
  const skey = await l.makeKey(path.join(l.workDir, 'keys', 'server-rsa-1024.pem'), 'rsa:1024');
  const ckey = await l.makeKey(path.join(l.workDir, 'keys', 'client-rsa-1024.pem'), 'rsa:1024');
  const other = await l.makeKey(path.join(l.workDir, 'keys', 'wrong-rsa-1024.pem'), 'rsa:1024');
  const sid = l.uidOf('server');
  const run = async (listLine: string, tag: string): Promise<{ got: number; log: string; slog: string }> => {
    const list = path.join(l.workDir, `servers-${tag}.txt`);
    fs.writeFileSync(list, `# servers\n${listLine}\n`);
    const { dir } = source(l, `srcS${tag}`);
    const ours = await ourUftpd(l, 'client1', { dest: path.join(l.workDir, `destS${tag}`), args: ['-x', '3', '-k', ckey.file, '-S', list, '-M', '232.4.4.1'] });
    const server = l.realUftp('server', [dir], {
      args: ['-R', '100000', '-x', '2', '-s', '10', '-k', skey.file, '-e', 'rsa', '-Y', 'aes128-cbc', '-h', 'sha1', '-M', '232.4.4.1', '-P', '232.5.5.9'],
      timeoutMs: 45_000,
    });
    await server.wait();
    await ours.kill();
    return { got: treeHashes(ours.dest).size, log: ours.log(), slog: server.log() };
  };
  const good = await run(`${sid}|${l.addrOf('server')}|${skey.fingerprint}`, 'good');
  assert.equal(good.got, 2, `listed server with its fingerprint: files received\n${good.slog.split('\n').slice(-10).join('\n')}\n${good.log.split('\n').slice(-10).join('\n')}`);
  const wrongFp = await run(`${sid}|${l.addrOf('server')}|${other.fingerprint}`, 'fp');
  const unlisted = await run(`0x01020304|${l.addrOf('server')}`, 'id');
  assert.equal(wrongFp.got, 0, 'wrong fingerprint: nothing received');
  assert.match(wrongFp.log, /does not match the server list/);
  assert.equal(unlisted.got, 0, 'unlisted server: nothing received');
  assert.match(unlisted.log, /not in server list/);
});
