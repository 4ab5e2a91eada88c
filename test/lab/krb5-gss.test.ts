/**
 * Kerberos for KTFTP against a real MIT KDC (krb5kdc in a namespace of its own, realm made on the fly).
 * The client and server sides run src/ktftp/krb5 through its command-line driver (gss-tool) inside the
 * namespace, since only there is the KDC reachable.
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKdc, type ExecResult, type Kdc } from './helpers/kdc.js';

/** Compiled tool beside the compiled test (npm test), or the TypeScript source through tsx (development). */
function toolArgv(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return ['node', '--import', 'tsx', join(here, '../../../src/ktftp/krb5/gss-tool.ts')];
  const js = join(here, '../../../src/ktftp/krb5/gss-tool.js');
  assert.ok(existsSync(js), `${js} missing: run npx tsc -p . first`);
  return ['node', js];
}

interface Line {
  ok: boolean;
  kind?: string;
  error?: string;
  principal?: string;
  servicePrincipal?: string;
  step?: string;
  tokenBytes?: number;
  responseBytes?: number;
  ms?: number;
  initMs?: number;
  acceptMs?: number;
  finishMs?: number;
}

function lines(r: ExecResult): Line[] {
  const out = r.stdout.trim();
  assert.ok(out, `no output; stderr: ${r.stderr}`);
  return out.split('\n').map((l) => JSON.parse(l) as Line);
}

describe('Kerberos GSSAPI for KTFTP with a real MIT KDC', { timeout: 120_000 }, () => {
  let kdc: Kdc;
  let tool: string[];
  let rcache: string;
  const t0 = Date.now();

  const gss = (args: string[], env: Record<string, string> = {}): Promise<ExecResult> =>
    kdc.exec([...tool, ...args], { env, timeoutMs: 30_000 });

  before(async () => {
    tool = toolArgv();
    kdc = await startKdc({ prefix: 'ub-', timeoutSeconds: 300 });
    rcache = `file2:${join(kdc.dir, 'ktftpd.rcache2')}`;
    console.log(`# KDC ${kdc.realm} in ${kdc.nsName} ready in ${Date.now() - t0} ms`);
  });

  after(async () => {
    await kdc?.stop();
    if (kdc) {
      assert.equal(existsSync(kdc.dir), false, 'KDC directory removed');
      assert.equal(existsSync(`/etc/netns/${kdc.nsName}`), false, '/etc/netns entry removed');
    }
  });

  test('a user with a ticket is accepted and named; the server proves its key (mutual authentication)', async () => {
    const k = await kdc.kinit('alice');
    assert.equal(k.code, 0, k.stderr);
    const r = await gss(['roundtrip', kdc.gssService, '--keytab', kdc.keytabPath, '--ccache', k.ccache, '--rcache', rcache]);
    const [l] = lines(r);
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.equal(l.principal, `alice@${kdc.realm}`);
    assert.ok((l.responseBytes ?? 0) > 0, 'AP-REP returned for mutual authentication');
    console.log(`# roundtrip: token ${l.tokenBytes} B, AP-REP ${l.responseBytes} B, init ${l.initMs} ms, accept ${l.acceptMs} ms, finish ${l.finishMs} ms`);

    // Kerberos form of the service name, and a keytab that may hold other services: checked by service part.
    const b = await kdc.kinit('bob');
    assert.equal(b.code, 0, b.stderr);
    const r2 = await gss(['roundtrip', `ktftp/${kdc.serviceHost}@${kdc.realm}`, '--keytab', kdc.keytabPath, '--ccache', b.ccache, '--rcache', rcache, '--service-check']);
    const [l2] = lines(r2);
    assert.equal(l2.ok, true, JSON.stringify(l2));
    assert.equal(l2.principal, `bob@${kdc.realm}`);
    assert.equal(l2.servicePrincipal, kdc.servicePrincipal);

    // Separate processes, token through a file: what ktftp and ktftpd do over the wire.
    const tok = join(kdc.dir, 'alice.tok');
    const i = lines(await gss(['init', kdc.gssService, '--ccache', k.ccache, '--out', tok]))[0];
    assert.equal(i.ok, true, JSON.stringify(i));
    const a = lines(await gss(['accept', '--keytab', kdc.keytabPath, '--service', kdc.gssService, '--rcache', rcache, '--in', tok]))[0];
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.equal(a.principal, `alice@${kdc.realm}`);
  });

  test('a forged server answer fails mutual authentication', async () => {
    const k = await kdc.kinit('alice');
    assert.equal(k.code, 0, k.stderr);
    const r = await gss(['roundtrip', kdc.gssService, '--keytab', kdc.keytabPath, '--ccache', k.ccache, '--rcache', rcache, '--tamper-response']);
    const [l] = lines(r);
    assert.equal(l.ok, false);
    assert.equal(l.step, 'finish', JSON.stringify(l));
    assert.notEqual(r.code, 0);
  });

  test('a token for another service, or a keytab without the ticket key, is refused', async () => {
    const k = await kdc.kinit('alice');
    assert.equal(k.code, 0, k.stderr);
    const otherHost = `other.${kdc.realm.toLowerCase()}`;
    const otherKeytab = await kdc.addService(`ktftp/${otherHost}`);

    // Token for ktftp/<our host>, presented to a server holding only ktftp/other's key.
    const tok = join(kdc.dir, 'for-main.tok');
    assert.equal(lines(await gss(['init', kdc.gssService, '--ccache', k.ccache, '--out', tok]))[0].ok, true);
    for (const service of [[], ['--service', `ktftp@${otherHost}`]]) {
      const a = lines(await gss(['accept', '--keytab', otherKeytab, ...service, '--rcache', rcache, '--in', tok]))[0];
      assert.equal(a.ok, false, JSON.stringify(a));
      assert.equal(a.kind, 'wrong-key', a.error);
      assert.equal(a.principal, undefined);
    }

    // Token for ktftp/other, presented to our server restricted to its own name: refused too.
    const tok2 = join(kdc.dir, 'for-other.tok');
    assert.equal(lines(await gss(['init', `ktftp@${otherHost}`, '--ccache', k.ccache, '--out', tok2]))[0].ok, true);
    const a2 = lines(await gss(['accept', '--keytab', kdc.keytabPath, '--service', kdc.gssService, '--rcache', rcache, '--in', tok2]))[0];
    assert.equal(a2.ok, false, JSON.stringify(a2));
    assert.equal(a2.kind, 'wrong-key', a2.error);

    // A keytab shared with a non-KTFTP service: a ticket for host/<h> is not a KTFTP login.
    const hostKeytab = await kdc.addService(`host/${kdc.serviceHost}`);
    const tok3 = join(kdc.dir, 'for-host.tok');
    assert.equal(lines(await gss(['init', `host@${kdc.serviceHost}`, '--ccache', k.ccache, '--out', tok3]))[0].ok, true);
    const a3 = lines(await gss(['accept', '--keytab', hostKeytab, '--rcache', rcache, '--in', tok3]))[0];
    assert.equal(a3.ok, false, JSON.stringify(a3));
    assert.equal(a3.kind, 'wrong-service', a3.error);

    // The service key was changed on the KDC but the keytab not updated: new tickets are refused.
    const stale = join(kdc.dir, 'stale.keytab');
    copyFileSync(otherKeytab, stale);
    const cpw = await kdc.kadmin(`cpw -randkey ktftp/${otherHost}`);
    assert.equal(cpw.code, 0, cpw.stderr);
    const fresh = await kdc.kinit('alice', { ccache: join(kdc.dir, 'cc_alice_fresh') });
    assert.equal(fresh.code, 0, fresh.stderr);
    const tok4 = join(kdc.dir, 'new-kvno.tok');
    assert.equal(lines(await gss(['init', `ktftp@${otherHost}`, '--ccache', fresh.ccache, '--out', tok4]))[0].ok, true);
    const a4 = lines(await gss(['accept', '--keytab', stale, '--rcache', rcache, '--in', tok4]))[0];
    assert.equal(a4.ok, false, JSON.stringify(a4));
    assert.equal(a4.kind, 'wrong-key', a4.error);
    assert.match(a4.error ?? '', /kvno|out of date|keytab/i);

    // No such keytab file.
    const a5 = lines(await gss(['accept', '--keytab', join(kdc.dir, 'missing.keytab'), '--in', tok]))[0];
    assert.equal(a5.kind, 'no-keytab', a5.error);
  });

  test('a replayed token is refused, in the same process and in another one', async () => {
    const k = await kdc.kinit('alice');
    assert.equal(k.code, 0, k.stderr);
    const tok = join(kdc.dir, 'replay.tok');
    assert.equal(lines(await gss(['init', kdc.gssService, '--ccache', k.ccache, '--out', tok]))[0].ok, true);
    const r = await gss(['accept', '--keytab', kdc.keytabPath, '--service', kdc.gssService, '--rcache', rcache, '--in', tok, '--repeat', '2']);
    const [first, second] = lines(r);
    assert.equal(first.ok, true, JSON.stringify(first));
    assert.equal(first.principal, `alice@${kdc.realm}`);
    assert.equal(second.ok, false, JSON.stringify(second));
    assert.equal(second.kind, 'replay', second.error);
    const again = lines(await gss(['accept', '--keytab', kdc.keytabPath, '--rcache', rcache, '--in', tok]))[0];
    assert.equal(again.ok, false, JSON.stringify(again));
    assert.equal(again.kind, 'replay', again.error);
    assert.ok(existsSync(rcache.slice('file2:'.length)), 'replay cache file where we asked for it');
  });

  test('an unknown user or a wrong password gets no ticket; no ticket, no token', async () => {
    const m = await kdc.kinit('mallory', { password: 'guess' });
    assert.notEqual(m.code, 0);
    assert.match(m.stderr, /not found in Kerberos database/);
    assert.equal(existsSync(m.ccache), false);
    const w = await kdc.kinit('bob', { password: 'wrong', ccache: join(kdc.dir, 'cc_bob_wrong') });
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /incorrect|Preauthentication failed/i);

    const i = lines(await gss(['init', kdc.gssService, '--ccache', m.ccache]))[0];
    assert.equal(i.ok, false);
    assert.equal(i.kind, 'no-credentials', i.error);

    // A valid user asking for a service the KDC does not know.
    const k = await kdc.kinit('alice');
    assert.equal(k.code, 0, k.stderr);
    const u = lines(await gss(['init', `ktftp@nosuch.${kdc.realm.toLowerCase()}`, '--ccache', k.ccache]))[0];
    assert.equal(u.ok, false);
    assert.equal(u.kind, 'unknown-service', u.error);

    // A ticket-granting ticket but no KDC to ask for the service ticket.
    const nokdc = join(kdc.dir, 'krb5-nokdc.conf');
    writeFileSync(nokdc, readFileSync(kdc.krb5ConfPath, 'utf8').replace('kdc = 127.0.0.1:88', 'kdc = 127.0.0.1:89'));
    const fresh = await kdc.kinit('alice', { ccache: join(kdc.dir, 'cc_alice_nokdc') });
    assert.equal(fresh.code, 0, fresh.stderr);
    const n = lines(await gss(['init', kdc.gssService, '--ccache', fresh.ccache], { KRB5_CONFIG: nokdc }))[0];
    assert.equal(n.ok, false, JSON.stringify(n));
    assert.equal(n.kind, 'kdc-unreachable', n.error);
  });

  test('an expired ticket is refused by the server, and gives no new token', async () => {
    // The acceptor allows 1 s of clock skew here (MIT's default is 300 s), so expiry shows within seconds.
    const conf = join(kdc.dir, 'krb5-skew1.conf');
    writeFileSync(conf, readFileSync(kdc.krb5ConfPath, 'utf8').replace(/clockskew = \d+/, 'clockskew = 1'));
    const lifetimeMs = 4_000;
    const issued = Date.now();
    const k = await kdc.kinit('alice', { lifetime: `${lifetimeMs / 1000}s`, ccache: join(kdc.dir, 'cc_alice_short') });
    assert.equal(k.code, 0, k.stderr);
    const tok = join(kdc.dir, 'short.tok');
    const i = lines(await gss(['init', kdc.gssService, '--ccache', k.ccache, '--out', tok]))[0];
    assert.equal(i.ok, true, JSON.stringify(i));
    // Past the ticket's end plus the 1 s skew, with a margin (the ticket's start is at or after `issued`).
    await new Promise((r) => setTimeout(r, Math.max(0, issued + lifetimeMs + 1_000 + 1_500 - Date.now())));
    const a = lines(await gss(['accept', '--keytab', kdc.keytabPath, '--service', kdc.gssService, '--rcache', rcache, '--in', tok], { KRB5_CONFIG: conf }))[0];
    assert.equal(a.ok, false, JSON.stringify(a));
    assert.equal(a.kind, 'expired', a.error);
    const i2 = lines(await gss(['init', kdc.gssService, '--ccache', k.ccache]))[0];
    assert.equal(i2.ok, false, JSON.stringify(i2));
    assert.equal(i2.kind, 'expired', i2.error);
  });
});
