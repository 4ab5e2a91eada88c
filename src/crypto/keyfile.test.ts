import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeKey, generateKey, parseKeySpec, parsePrivateKeyPem, readKeyFile, writeKeyFile } from './keyfile.js';

// A key made by the real uftp_keymgt 4.10.2 (`uftp_keymgt -g rsa:1024 k.pem`) and the line it printed.
const REAL_RSA = `-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQCn+CucYehCkpra8RAYCY4wueC7JGGVVmsf4Cpp+EB84S+4ERZO
G7WvkC8kMKS89N/phXWCXQ8Sw1C44ooKklOxpl0Bd25WnNVnqsm91uzbZlxFQUBp
JF4J4UhBVtbSJ+TbZEIerwjAEJwIxrbHyM1FQj6wgREGCXJsAhwqOy+dlwIDAQAB
AoGAICEgdnFj9BgG9wpVgcOSJ0/m5OU4pVA6fYZrlomeDEUm05axJY+3WTXDTrDf
UiWlDw4wRBd44qXpsvPiY9NJnso8hnf5xyUC4znq+kk02b8E2BCVgXXTOHOKWUzn
fW0Sl2F4/3Dd7ydeqkLY7thY8wgK3sB5Im/fzb/MbuvuJ8ECQQDaOy14BAPZJByx
9r8sY7gC0lgDbtNjUl0f6isL6xfsDGvVFpoq+NvVgUNliWBW96AMA7iAECd0ddiw
7Gfysm27AkEAxQogCTZjx5JpQrQyCscoiaH189ynANPWcJsWoniBH+iuiXG/dETS
pFvsETl1d+In4x49h/LscqIeBqU/arFj1QJBALwVEqwEMdjcccrDkaJNU1NDPE3B
H3jTjKUr6eu8s4JidjFR6I8uqjDJ1m9VRe3OP2b7cfEVexu5UYeySCh4tW8CQQDE
03pw+W3u2+heA5bBgXSTF8CS22XPw8zAK4wOvAVwlIRVM9UmFeG84T4NbrJTEQz7
KSgZ96YOVLdduBCDSbQJAkAtEbIbVOrIvLnI54vKJnqZN8cmRNo40Hx5b3e4durC
JHDjXdmQOGSMv14NgQy7k+Nr451zyk7qfWIkDHtqV2Lr
-----END RSA PRIVATE KEY-----
`;
const REAL_RSA_LINE = 'k.pem: RSA, 1024 bits, fingerprint: 72:BE:08:11:DA:1C:77:10:38:87:7B:AB:D2:02:C7:2F:78:41:20:A7';

// `uftp_keymgt -g ec:prime256v1 e.pem`
const REAL_EC = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIENW1/PPq0KKo/aDbYU1pUl/oIlLIaJAIU8EO1iwTM91oAoGCCqGSM49
AwEHoUQDQgAEzcI+au29V3usslPmUm7bD6sWL8aYoB0n29qwnsC5Dk3iptb572a5
QFH0SFZZbuYJBnr2P+gMjGU5uPIfw2Qh/g==
-----END EC PRIVATE KEY-----
`;
const REAL_EC_LINE = 'e.pem: ECDSA, curve prime256v1, fingerprint: 2B:F4:8D:C6:AE:88:18:83:0A:7F:7D:1B:13:C8:81:84:F9:0A:EA:2C';

test('keys written by the real uftp_keymgt print the same line', () => {
  const r = parsePrivateKeyPem(REAL_RSA);
  assert.ok(r.ok);
  assert.equal(describeKey('k.pem', r.value), REAL_RSA_LINE);
  const e = parsePrivateKeyPem(REAL_EC);
  assert.ok(e.ok);
  assert.equal(describeKey('e.pem', e.value), REAL_EC_LINE);
});

test('keys are written in the same PEM form the real one writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uc-kf-'));
  try {
    for (const [pem, name] of [
      [REAL_RSA, 'r.pem'],
      [REAL_EC, 'e.pem'],
    ] as const) {
      const k = parsePrivateKeyPem(pem);
      assert.ok(k.ok);
      const w = writeKeyFile(join(dir, name), k.value);
      assert.ok(w.ok);
      assert.equal(readFileSync(join(dir, name), 'utf8'), pem);
      assert.equal(statSync(join(dir, name)).mode & 0o777, 0o600);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeKeyFile refuses to overwrite, reports missing directories', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uc-kf-'));
  try {
    const k = generateKey('ec:prime256v1');
    assert.ok(k.ok);
    const p = join(dir, 'x.pem');
    writeFileSync(p, 'keep me');
    assert.deepEqual(writeKeyFile(p, k.value), { ok: false, error: "Private key file already exists, won't overwrite" });
    assert.equal(readFileSync(p, 'utf8'), 'keep me');
    mkdirSync(join(dir, 'd.pem'));
    assert.deepEqual(writeKeyFile(join(dir, 'd.pem'), k.value), { ok: false, error: "Private key file already exists, won't overwrite" });
    assert.deepEqual(writeKeyFile(join(dir, 'no', 'x.pem'), k.value), {
      ok: false,
      error: 'failed to open key file: No such file or directory',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readKeyFile errors are the real one\'s texts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uc-kf-'));
  try {
    assert.deepEqual(readKeyFile(join(dir, 'none.pem')), { ok: false, error: 'failed to open key file: No such file or directory' });
    writeFileSync(join(dir, 'empty.pem'), '');
    assert.deepEqual(readKeyFile(join(dir, 'empty.pem')), { ok: false, error: 'Failed to read key' });
    writeFileSync(join(dir, 'garbage.pem'), 'garbage');
    assert.deepEqual(readKeyFile(join(dir, 'garbage.pem')), { ok: false, error: 'Failed to read key' });
    assert.deepEqual(readKeyFile(dir), { ok: false, error: 'Failed to read key' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('key specs follow the real one\'s rules', () => {
  assert.deepEqual(parseKeySpec('rsa:512'), { ok: true, value: { kind: 'RSA', bits: 512 } });
  assert.deepEqual(parseKeySpec('rsa:2048'), { ok: true, value: { kind: 'RSA', bits: 2048 } });
  assert.deepEqual(parseKeySpec('rsa:1024x'), { ok: true, value: { kind: 'RSA', bits: 1024 } });
  for (const s of ['rsa:511', 'rsa:2049', 'rsa:4096', 'rsa:', 'rsa:-5', 'rsa:abc']) {
    assert.deepEqual(parseKeySpec(s), { ok: false, error: 'Invalid key size' }, s);
  }
  for (const s of ['RSA:1024', 'EC:prime256v1', 'foo', 'dsa:1024']) {
    assert.deepEqual(parseKeySpec(s), { ok: false, error: 'Invalid key specification' }, s);
  }
  for (const s of ['ec:', 'ec:PRIME256V1', 'ec:P-256', 'ec:secp224k1', 'ec:brainpoolP256r1']) {
    assert.deepEqual(parseKeySpec(s), { ok: false, error: 'Invalid curve' }, s);
  }
  assert.deepEqual(parseKeySpec('ec:secp256r1'), { ok: true, value: { kind: 'EC', curve: 'prime256v1' } });
  assert.deepEqual(parseKeySpec('ec:secp192r1'), { ok: true, value: { kind: 'EC', curve: 'prime192v1' } });
});

test('generated keys describe themselves like the real one', () => {
  const r = generateKey('rsa:513');
  assert.ok(r.ok);
  assert.equal(r.value.kind, 'RSA');
  // a 513-bit modulus takes 65 bytes; uftp_keymgt prints bytes * 8
  assert.match(describeKey('x', r.value), /^x: RSA, 520 bits, fingerprint: ([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
  const e = generateKey('ec:secp384r1');
  assert.ok(e.ok);
  assert.match(describeKey('y', e.value), /^y: ECDSA, curve secp384r1, fingerprint: ([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
});
