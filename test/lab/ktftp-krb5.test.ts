/**
 * KTFTP with Kerberos identities: a real MIT KDC (krb5kdc, realm made on the fly) in a namespace of our own,
 * ktftpd --krb5-keytab and ktftp --krb5 in the same namespace. ACLs name principals.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKdc, type Kdc } from './helpers/kdc.js';
import { KtftpLab, type ServerHandle } from '../../src/ktftp/testlab.js';

let kdc: Kdc;
let lab: KtftpLab;
let srv: ServerHandle;
let ccAlice: string;
let ccBob: string;

before(async () => {
  kdc = await startKdc({ prefix: 'uk-', timeoutSeconds: 300 });
  lab = await KtftpLab.create({ netns: kdc.nsName, users: ['alice'] });
  const d = lab.path('srv');
  mkdirSync(d);
  writeFileSync(
    lab.path('tags'),
    `krb|${d}/krb.log|alice@${kdc.realm}\n` + `keyonly|${d}/keyonly.log|alice\n` + `anyone|${d}/any.log|*\n`,
  );
  writeFileSync(lab.path('idents'), `alice|${lab.ids.alice.fingerprint}\n`);
  srv = await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '4', '--krb5-keytab', kdc.keytabPath], {
    env: { ...kdc.env, KRB5RCACHENAME: `file2:${join(kdc.dir, 'ktftpd.rcache2')}` },
  });
  const a = await kdc.kinit('alice');
  assert.equal(a.code, 0, a.stderr);
  ccAlice = a.ccache;
  const b = await kdc.kinit('bob');
  assert.equal(b.code, 0, b.stderr);
  ccBob = b.ccache;
});

after(async () => {
  await lab?.destroy();
  await kdc?.stop();
});

function krb(cc: string, args: string[]) {
  return lab.ktftp(srv.port, ['--krb5', ...args], { env: { ...kdc.env, KRB5CCNAME: cc } });
}

describe('ktftp --krb5 against ktftpd --krb5-keytab', { timeout: 180_000 }, () => {
  test('the recipe as alice@REALM on a tag whose ACL names her principal', async () => {
    const d = lab.path('srv');
    writeFileSync(`${d}/krb.log`, 'kerberized log\n');
    const host = kdc.serviceHost;
    const push = await krb(ccAlice, ['push', `${host}:krb`]);
    assert.equal(push.code, 0, push.stderr + srv.stderr());
    const get = await krb(ccAlice, ['get', `${host}:krb~`, '-']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.toString(), 'kerberized log\n');
    const del = await krb(ccAlice, ['delete', `${host}:krb~`]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(existsSync(`${d}/krb.log~`), false);
    const put = await krb(ccAlice, ['put', '-', `${host}:krb`]);
    assert.equal(put.code, 0);
    assert.match(srv.stderr(), new RegExp(`by alice@${kdc.realm.replace(/\./g, '\\.')} \\(krb5\\)`));
  });

  test('refusals: bob@REALM is not on the ACL (3); a principal is not the key identity "alice" (3); "*" admits any principal', async () => {
    const d = lab.path('srv');
    writeFileSync(`${d}/krb.log`, 'x');
    writeFileSync(`${d}/keyonly.log`, 'y');
    writeFileSync(`${d}/any.log`, 'z');
    const host = kdc.serviceHost;
    const bob = await krb(ccBob, ['get', `${host}:krb`, '-']);
    assert.equal(bob.code, 3, bob.stderr);
    const aliceKrbOnKeyTag = await krb(ccAlice, ['get', `${host}:keyonly`, '-']);
    assert.equal(aliceKrbOnKeyTag.code, 3);
    const aliceKey = await lab.ktftp(srv.port, ['-k', lab.ids.alice.keyPath, 'get', `${host}:keyonly`, '-']);
    assert.equal(aliceKey.code, 0, aliceKey.stderr);
    assert.equal(aliceKey.stdout.toString(), 'y');
    const bobAny = await krb(ccBob, ['get', `${host}:anyone`, '-']);
    assert.equal(bobAny.code, 0, bobAny.stderr);
    assert.equal(bobAny.stdout.toString(), 'z');
    assert.equal(readFileSync(`${d}/krb.log`, 'utf8'), 'x');
  });

  test('no ticket is a local error (255) naming kinit', async () => {
    const r = await krb(join(lab.dir, 'no-such-ccache'), ['get', `${kdc.serviceHost}:krb`, '-']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /kinit/);
  });
});
