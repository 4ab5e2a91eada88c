// Our uftp to the real uftpd 4.10.2 with encryption: one case per key exchange (RSA, ECDH_RSA, ECDH_ECDSA), cipher
// mode (CBC, GCM, CCM, 3DES) and signature type (HMAC, KEYEX, AUTHENC), with and without client authentication (-c),
// and a closed group whose host list carries the client's key fingerprint. Files compared by SHA-256.
// Needs root, the real suite and the compiled bins.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab } from '../../src/lab/lab.js';

let shared: Lab | undefined;
after(async () => {
  await shared?.down();
});
async function lab(): Promise<Lab> {
  shared ??= await Lab.up('fig2', { prefix: `utc${randomBytes(3).toString('hex')}`, octet: 92 });
  return shared;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const CASES: ReadonlyArray<{ name: string; args: string[]; key: string; hostList?: boolean }> = [
  { name: 'RSA, aes128-cbc, sha1, HMAC, client auth', args: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-c'], key: 'rsa:1024' },
  { name: 'RSA, aes256-gcm, sha256 (AUTHENC)', args: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa'], key: 'rsa:1024' },
  { name: 'RSA, aes128-ccm, sha512 (AUTHENC), client auth', args: ['-Y', 'aes128-ccm', '-h', 'sha512', '-e', 'rsa', '-c'], key: 'rsa:1024' },
  { name: 'RSA, 3des, sha256, KEYEX signatures', args: ['-Y', '3des', '-h', 'sha256', '-w', 'keyex', '-e', 'rsa'], key: 'rsa:1024' },
  { name: 'ECDH_ECDSA prime256v1, aes256-cbc, sha256, KEYEX (ECDSA) signatures, client auth', args: ['-Y', 'aes256-cbc', '-h', 'sha256', '-w', 'keyex', '-e', 'ecdh_ecdsa', '-c'], key: 'ec:prime256v1' },
  { name: 'ECDH_RSA secp384r1, aes128-gcm, sha384, client auth', args: ['-Y', 'aes128-gcm', '-h', 'sha384', '-e', 'ecdh_rsa:secp384r1', '-c'], key: 'rsa:1024' },
  { name: 'closed group with fingerprints (-H @file), RSA, aes256-gcm, client auth', args: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa', '-c'], key: 'rsa:1024', hostList: true },
];

for (const c of CASES) {
  test(`our uftp -> real uftpd, ${c.name}: SHA-256 equal`, { timeout: 90_000 }, async () => {
    const l = await lab();
    const dir = path.join(l.workDir, randomBytes(3).toString('hex'));
    fs.mkdirSync(dir, { recursive: true });
    const data = randomBytes(700_000);
    fs.writeFileSync(path.join(dir, 'secret.bin'), data);
    const skey = await l.makeKey(path.join(dir, 'server.pem'), c.key);
    const ckey = await l.makeKey(path.join(dir, 'client.pem'), c.key);
    const d = await l.realUftpd('client1', { args: ['-x', '2', '-k', ckey.file] });
    const extra: string[] = [];
    if (c.hostList) {
      fs.writeFileSync(path.join(dir, 'hosts'), `${l.uidOf('client1')}|${ckey.fingerprint}\n`);
      extra.push('-H', `@${path.join(dir, 'hosts')}`);
    }
    try {
      const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-R', '100000', '-x', '2', '-s', '10', '-r', '0.1', ...c.args, ...extra, '-k', skey.file, 'secret.bin'], { cwd: dir, timeoutMs: 60_000 });
      const code = await p.wait();
      assert.equal(code, 0, `uftp exited ${code}: ${p.log().slice(-1200)}\nuftpd: ${d.log().slice(-800)}`);
      assert.match(p.log(), /Received KEYINFO_ACK from client/, 'the client proved it holds the group key (verify_data checked)');
      assert.equal(sha(fs.readFileSync(path.join(d.dest, 'secret.bin'))), sha(data));
    } finally {
      await d.kill();
    }
  });
}

test('no -k: a generated 512-bit RSA key as the real uftp (PKCS#1 v1.5 premaster), aes256-gcm: SHA-256 equal', { timeout: 90_000 }, async () => {
  const l = await lab();
  const dir = path.join(l.workDir, 'nokey');
  fs.mkdirSync(dir, { recursive: true });
  const data = randomBytes(300_000);
  fs.writeFileSync(path.join(dir, 'f.bin'), data);
  const d = await l.realUftpd('client1', { args: ['-x', '2'] });
  try {
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-x', '2', '-s', '10', '-r', '0.1', '-R', '50000', '-Y', 'aes256-gcm', 'f.bin'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-1000));
    assert.equal(sha(fs.readFileSync(path.join(d.dest, 'f.bin'))), sha(data));
  } finally {
    await d.kill();
  }
});

test('closed group with a wrong fingerprint: the client is refused, exit 7', { timeout: 90_000 }, async () => {
  const l = await lab();
  const dir = path.join(l.workDir, 'badfp');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const skey = await l.makeKey(path.join(dir, 'server.pem'), 'rsa:1024');
  const ckey = await l.makeKey(path.join(dir, 'client.pem'), 'rsa:1024');
  const other = await l.makeKey(path.join(dir, 'other.pem'), 'rsa:1024');
  assert.notEqual(other.fingerprint, ckey.fingerprint);
  fs.writeFileSync(path.join(dir, 'hosts'), `${l.uidOf('client1')}|${other.fingerprint}\n`);
  const d = await l.realUftpd('client1', { args: ['-x', '2', '-k', ckey.file] });
  try {
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-s', '10', '-r', '0.05', '-Y', 'aes128-cbc', '-c', '-k', skey.file, '-H', `@${path.join(dir, 'hosts')}`, 'f'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 7, p.log().slice(-800));
    assert.match(p.log(), /fingerprint does not match/);
    assert.ok(!fs.existsSync(path.join(d.dest, 'f')));
  } finally {
    await d.kill();
  }
});

test('-k with -K writes a new key file (RSA 1024 bits) and uses it; -K with an existing -k file is exit 3', { timeout: 60_000 }, async () => {
  const l = await lab();
  const dir = path.join(l.workDir, 'genkey');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'f'), 'k');
  const file = path.join(dir, 'new.pem');
  // the real uftpd needs a key of the server key's type and size ("No client key compatible with server key")
  const ck = await l.makeKey(path.join(dir, 'client.pem'), 'rsa:1024');
  const d = await l.realUftpd('client1', { args: ['-x', '2', '-k', ck.file] });
  try {
    const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-s', '10', '-r', '0.05', '-Y', 'aes128-cbc', '-k', file, '-K', '1024', 'f'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(await p.wait(), 0, p.log().slice(-600) + '\nuftpd: ' + d.log().slice(-800));
    assert.match(fs.readFileSync(file, 'utf8'), /BEGIN (RSA )?PRIVATE KEY/);
    const shown = await l.exec('server', ['uftp_keymgt', file]);
    assert.match(shown.stdout + shown.stderr, /RSA, 1024 bits/, 'the real uftp_keymgt reads the key we wrote');
    const fp = /fingerprint:?\s*([0-9A-F:]+)/i.exec(shown.stdout + shown.stderr)?.[1];
    assert.ok(fp && p.log().includes(fp), 'the session used that key');
    const again = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-s', '10', '-r', '0.05', '-Y', 'aes128-cbc', '-k', file, '-K', '1024', 'f'], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(await again.wait(), 3, again.log());
    assert.match(again.log(), /already exists/);
  } finally {
    await d.kill();
  }
});

test('exit 3: an unreadable key file', { timeout: 30_000 }, async () => {
  const l = await lab();
  const p = l.ours('server', 'uftp', ['-U', l.uidOf('server'), '-Y', 'aes128-cbc', '-k', '/nonexistent.pem', '/etc/hostname'], { timeoutMs: 20_000 });
  assert.equal(await p.wait(), 3, p.log());
});
