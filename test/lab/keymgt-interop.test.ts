/**
 * uftp_keymgt interop: our uftp_keymgt (dist/src/cli/uftp_keymgt.js; build with `npx tsc -p .`) against the real
 * one (Debian uftp 4.10.2). No network: both only read and write key files in a temporary directory.
 *
 *  - every key type the real one can make (rsa:512..2048, every 5.3.12 curve its -g accepts): real makes -> ours
 *    prints the identical line; ours makes -> real prints the identical line;
 *  - -g refuses to overwrite in both, with the same text;
 *  - error cases and odd command lines give the same stderr, stdout and exit code.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { CURVES } from '../../src/wire/constants.js';
import { readKeyFile } from '../../src/crypto/keyfile.js';
import { ecdhPremaster, signData, verifySignature } from '../../src/crypto/sign.js';
import { hashSuiteByName } from '../../src/crypto/suites.js';
import { createHash, createPublicKey } from 'node:crypto';

const OURS = resolve('dist/src/cli/uftp_keymgt.js');
const REAL = 'uftp_keymgt';
const RSA_SIZES = [512, 768, 1024, 1536, 2048];
const REAL_CURVES = CURVES.map((c) => c.name).filter((n) => n !== 'secp224k1');

let dir = '';

interface Run {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number | null;
}

function run(which: 'real' | 'ours', args: readonly string[]): Run {
  const r =
    which === 'real'
      ? spawnSync(REAL, args, { cwd: dir, encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawnSync(process.execPath, [OURS, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

before(() => {
  assert.ok(existsSync(OURS), `${OURS} missing: run npx tsc -p . first`);
  dir = mkdtempSync(join(tmpdir(), 'uc-keymgt-'));
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const specs = [...RSA_SIZES.map((b) => `rsa:${b}`), ...REAL_CURVES.map((c) => `ec:${c}`)];

test('real uftp_keymgt makes a key -> ours prints the identical line', () => {
  for (const spec of specs) {
    const file = `real-${spec.replace(':', '-')}.pem`;
    const made = run('real', ['-g', spec, file]);
    assert.equal(made.status, 0, `${spec}: ${made.stderr}`);
    assert.match(made.stderr, /fingerprint: ([0-9A-F]{2}:){19}[0-9A-F]{2}\n$/);
    const ours = run('ours', [file]);
    assert.equal(ours.stderr, made.stderr, spec);
    assert.equal(ours.stdout, '');
    assert.equal(ours.status, 0);
    // and the real one listing its own file prints the line it printed when making it
    assert.equal(run('real', [file]).stderr, made.stderr, spec);
  }
});

test('ours makes a key -> the real uftp_keymgt prints the identical line', () => {
  for (const spec of specs) {
    const file = `ours-${spec.replace(':', '-')}.pem`;
    const made = run('ours', ['-g', spec, file]);
    assert.equal(made.status, 0, `${spec}: ${made.stderr}`);
    assert.equal(made.stdout, '');
    assert.match(made.stderr, /fingerprint: ([0-9A-F]{2}:){19}[0-9A-F]{2}\n$/);
    const real = run('real', [file]);
    assert.equal(real.stderr, made.stderr, spec);
    assert.equal(real.status, 0);
  }
});

test('several files at once, including keys made by openssl in other encodings, give identical output', () => {
  // PKCS#8, a compressed EC point, a curve outside 5.3.12, secp224k1 (the real -g refuses it but reads it)
  const extra: Record<string, string> = {
    'p8-rsa.pem': generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    'p8-ec.pem': generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    'brainpool.pem': generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string,
    'k224.pem': generateKeyPairSync('ec', { namedCurve: 'secp224k1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string,
    'pub.pem': generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string,
    'ed.pem': generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    'garbage.pem': 'garbage\n',
    'empty.pem': '',
  };
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  const comp = spawnSync('openssl', ['ec', '-in', 'real-ec-prime256v1.pem', '-conv_form', 'compressed', '-out', 'compressed.pem'], {
    cwd: dir,
    timeout: 10_000,
  });
  assert.equal(comp.status, 0);
  mkdirSync(join(dir, 'adir.pem'));
  const files = [...Object.keys(extra), 'compressed.pem', 'adir.pem', 'missing.pem', 'real-rsa-1024.pem', 'ours-ec-sect163k1.pem'];
  const real = run('real', files);
  const ours = run('ours', files);
  assert.equal(ours.stderr, real.stderr);
  assert.equal(ours.stdout, real.stdout);
  assert.equal(ours.status, real.status);
  assert.match(real.stderr, /brainpool\.pem: ECDSA, curve UNKNOWN, fingerprint/);
  assert.match(real.stderr, /missing\.pem: no such key/);
});

test('-g refuses to overwrite an existing file, in both', () => {
  for (const which of ['real', 'ours'] as const) {
    const file = `keep-${which}.pem`;
    writeFileSync(join(dir, file), 'precious');
    const r = run(which, ['-g', 'rsa:512', file]);
    assert.equal(r.stderr, "Private key file already exists, won't overwrite\nError generating/storing key\n", which);
    assert.equal(r.status, 0, which);
    assert.equal(readFileSync(join(dir, file), 'utf8'), 'precious', which);
  }
  // and a key file made by the other program is not overwritten either
  copyFileSync(join(dir, 'real-rsa-512.pem'), join(dir, 'copy.pem'));
  const before = readFileSync(join(dir, 'copy.pem'), 'utf8');
  const r = run('ours', ['-g', 'ec:prime256v1', 'copy.pem']);
  assert.match(r.stderr, /won't overwrite/);
  assert.equal(readFileSync(join(dir, 'copy.pem'), 'utf8'), before);
});

test('command-line errors: same text, same exit code', () => {
  const cases: string[][] = [
    [],
    ['-g'],
    ['-d'],
    ['-d', 'x.pem'],
    ['-dm'],
    ['-x', 'real-rsa-512.pem'],
    ['-g', 'rsa:511', 'e1.pem'],
    ['-g', 'rsa:2049', 'e1.pem'],
    ['-g', 'rsa:4096', 'e1.pem'],
    ['-g', 'rsa:abc', 'e1.pem'],
    ['-g', 'RSA:1024', 'e1.pem'],
    ['-g', 'dsa:1024', 'e1.pem'],
    ['-g', 'ec:nosuch', 'e1.pem'],
    ['-g', 'ec:secp224k1', 'e1.pem'],
    ['-g', 'ec:PRIME256V1', 'e1.pem'],
    ['-g', 'ec:prime256v1'],
    ['-g', 'rsa:512', '-d', 'e1.pem'],
    ['-g', 'rsa:512', 'no/such/dir.pem'],
    ['-g', 'rsa:100', '-g', 'rsa:512', 'e1.pem'],
    ['-m', 'real-rsa-512.pem', '--', '-m'],
    ['real-rsa-512.pem', '-m', 'real-ec-secp384r1.pem'],
  ];
  for (const args of cases) {
    const real = run('real', args);
    const ours = run('ours', args);
    assert.deepEqual(ours, real, JSON.stringify(args));
  }
  assert.ok(!existsSync(join(dir, 'e1.pem')));
});

test('-g with a spec given twice: rsa wins over ec, the key goes to the first file only', () => {
  for (const which of ['real', 'ours'] as const) {
    const r = run(which, ['-g', 'ec:prime256v1', '-g', 'rsa:512', `two-${which}.pem`, `three-${which}.pem`]);
    assert.match(r.stderr, new RegExp(`^two-${which}\\.pem: RSA, 512 bits, fingerprint: `), which);
    assert.ok(!existsSync(join(dir, `three-${which}.pem`)));
  }
});

function openssl(args: readonly string[]): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('openssl', args, { cwd: dir, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

test('keys made by the real uftp_keymgt: our signatures verify with openssl and theirs with ours; ECDH agrees with openssl', () => {
  const sha256 = hashSuiteByName('sha256');
  assert.ok(sha256.ok);
  const data = Buffer.from('bytes signed by uftp-ts with a key made by the real uftp_keymgt');
  writeFileSync(join(dir, 'data.bin'), data);
  let curvesChecked = 0;
  for (const spec of specs) {
    const file = `real-${spec.replace(':', '-')}.pem`;
    const k = readKeyFile(join(dir, file));
    assert.ok(k.ok, file);
    // ours signs (DER for openssl's sake), openssl verifies
    const sig = signData(k.value.privateKey, sha256.value, data, 'der');
    writeFileSync(join(dir, 'sig.bin'), sig);
    writeFileSync(join(dir, 'pub.pem'), k.value.publicKey.export({ type: 'spki', format: 'pem' }));
    const v = openssl(['dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'sig.bin', 'data.bin']);
    assert.equal(v.status, 0, `${file}: openssl does not verify our signature: ${v.stderr}`);
    // openssl signs with the real key file, ours verifies
    const s2 = openssl(['dgst', '-sha256', '-sign', file, '-out', 'sig2.bin', 'data.bin']);
    assert.equal(s2.status, 0, s2.stderr);
    assert.ok(verifySignature(k.value.publicKey, sha256.value, data, readFileSync(join(dir, 'sig2.bin')), 'der'), `${file}: openssl's signature`);
    // and UFTP's own wire encoding round-trips
    assert.ok(verifySignature(k.value.publicKey, sha256.value, data, signData(k.value.privateKey, sha256.value, data)), file);
    if (k.value.kind !== 'EC') continue;
    // ECDH between this real key and a second real key on the same curve: ours vs openssl pkeyutl -derive
    const peerFile = `ours-${spec.replace(':', '-')}.pem`;
    const peer = readKeyFile(join(dir, peerFile));
    assert.ok(peer.ok);
    writeFileSync(join(dir, 'peer.pem'), createPublicKey(peer.value.privateKey).export({ type: 'spki', format: 'pem' }));
    const d = openssl(['pkeyutl', '-derive', '-inkey', file, '-peerkey', 'peer.pem']);
    assert.equal(d.status, 0, `${file}: ${d.stderr}`);
    const premaster = ecdhPremaster(k.value.privateKey, peer.value.publicKey);
    assert.ok(premaster.ok);
    assert.deepEqual(premaster.value, createHash('sha1').update(d.stdout).digest(), `${spec}: ECDH premaster = SHA-1(shared secret)`);
    const back = ecdhPremaster(peer.value.privateKey, k.value.publicKey);
    assert.ok(back.ok);
    assert.deepEqual(back.value, premaster.value);
    curvesChecked++;
  }
  assert.equal(curvesChecked, REAL_CURVES.length);
});
