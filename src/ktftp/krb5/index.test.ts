/**
 * Kerberos module without a KDC: service-name parsing, error classification, per-call environment isolation
 * and refusal of malformed tokens. The real-KDC tests are in test/lab/krb5-gss.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptContext, initiateContext, krb5ErrorKind, parseServiceName } from './index.js';

test('service names: host-based and Kerberos forms', () => {
  const a = parseServiceName('ktftp@Files.Example.ORG');
  assert.ok(a.ok);
  assert.equal(a.value.hostBased, 'ktftp@files.example.org');
  const b = parseServiceName('ktftp/files.example.org@EXAMPLE.ORG');
  assert.ok(b.ok);
  assert.equal(b.value.hostBased, 'ktftp@files.example.org');
  assert.equal(b.value.realm, 'EXAMPLE.ORG');
  const c = parseServiceName('ktftp/files.example.org');
  assert.ok(c.ok);
  assert.equal(c.value.realm, undefined);
  for (const bad of ['ktftp', 'ktftp@', '@host', 'kt ftp@host', 'ktftp/host@RE ALM', 'ktftp@ho;st']) {
    const r = parseServiceName(bad);
    assert.equal(r.ok, false, bad);
    if (!r.ok) assert.equal(krb5ErrorKind(r.error), 'bad-argument');
  }
  assert.equal(krb5ErrorKind('something else'), 'other');
});

test('concurrent calls each see their own credentials cache, and the environment is restored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krb5-unit-'));
  try {
    const conf = join(dir, 'krb5.conf');
    writeFileSync(conf, '[libdefaults]\n default_realm = UNIT.TEST\n dns_lookup_kdc = false\n');
    const before = { cc: process.env.KRB5CCNAME, conf: process.env.KRB5_CONFIG };
    const names = ['a', 'b', 'c', 'd'].map((n) => join(dir, `cc_${n}`));
    const results = await Promise.all(names.map((cc) => initiateContext('ktftp@host.unit.test', { ccache: cc, krb5Config: conf })));
    results.forEach((r, i) => {
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(krb5ErrorKind(r.error), 'no-credentials', r.error);
      assert.ok(r.error.includes(`FILE:${names[i]}`), `call ${i} used its own cache: ${r.error}`);
    });
    assert.equal(process.env.KRB5CCNAME, before.cc);
    assert.equal(process.env.KRB5_CONFIG, before.conf);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the server refuses what is not a Kerberos token, and a missing keytab, as values', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krb5-unit-'));
  try {
    const keytab = join(dir, 'empty.keytab');
    writeFileSync(keytab, Buffer.from([5, 2])); // a keytab file with no entries
    const opts = { keytab, replayCache: 'none:' };
    // Not GSSAPI framing at all, and GSSAPI framing with an unknown mechanism OID.
    for (const t of [Buffer.from('garbage token'), Buffer.from('600706032a0304aabb', 'hex')]) {
      const garbage = await acceptContext(t, opts);
      assert.equal(garbage.ok, false);
      if (!garbage.ok) assert.equal(krb5ErrorKind(garbage.error), 'defective', garbage.error);
    }
    // A krb5-mechanism token against a keytab without keys: the keytab is the problem.
    const krbGarbage = await acceptContext(Buffer.from('600b06092a864886f712010202', 'hex'), opts);
    assert.equal(krbGarbage.ok, false);
    if (!krbGarbage.ok) assert.equal(krb5ErrorKind(krbGarbage.error), 'wrong-key', krbGarbage.error);
    const empty = await acceptContext(Buffer.alloc(0), opts);
    assert.equal(empty.ok, false);
    if (!empty.ok) assert.equal(krb5ErrorKind(empty.error), 'defective');
    const noKey = await acceptContext(Buffer.from('not a token'), { ...opts, servicePrincipal: 'ktftp/host.unit.test@UNIT.TEST' });
    assert.equal(noKey.ok, false);
    if (!noKey.ok) assert.equal(krb5ErrorKind(noKey.error), 'wrong-key', noKey.error);
    const missing = await acceptContext(Buffer.from('x'), { keytab: join(dir, 'nope.keytab') });
    assert.equal(missing.ok, false);
    if (!missing.ok) {
      assert.equal(krb5ErrorKind(missing.error), 'no-keytab');
      assert.ok(missing.error.includes('nope.keytab'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
