// The engine's backend choice and both backends over loopback (no root, no namespaces: these run with the unit
// tests). The full socket suite is test/lab/net-engine.test.ts and net-udp.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { udpBackend, resetBackendChoice, errnoError, loadNativeAddon, addonLoadError } from './engine.js';
import { UdpEndpoint, type RecvBatch, type RemoteInfo } from './udp.js';
import * as dgram from 'node:dgram';

function withEnv(v: string | undefined, fn: () => void): void {
  const old = process.env.UFTP_UDP_BACKEND;
  if (v === undefined) delete process.env.UFTP_UDP_BACKEND;
  else process.env.UFTP_UDP_BACKEND = v;
  resetBackendChoice();
  try {
    fn();
  } finally {
    if (old === undefined) delete process.env.UFTP_UDP_BACKEND;
    else process.env.UFTP_UDP_BACKEND = old;
    resetBackendChoice();
  }
}

test('UFTP_UDP_BACKEND forces a backend; the default is native where the addon loads; one line says which', () => {
  withEnv('dgram', () => assert.deepEqual(udpBackend(), { kind: 'dgram', line: 'UDP engine: node:dgram (UFTP_UDP_BACKEND=dgram)' }));
  const native = loadNativeAddon() !== undefined;
  withEnv(undefined, () => {
    const c = udpBackend();
    assert.equal(c.kind, native ? 'native' : 'dgram');
    assert.match(c.line, native ? /^UDP engine: native \(recvmmsg \+ UDP GRO, sendmmsg \+ UDP GSO\); stall guard (on|off \(UFTP_UDP_GUARD=0\))$/ : /^UDP engine: node:dgram \(native addon unavailable: /);
    // chosen once: a later change of the variable does not switch it
    process.env.UFTP_UDP_BACKEND = 'dgram';
    assert.equal(udpBackend(), c);
  });
  withEnv('native', () => {
    const c = udpBackend();
    assert.equal(c.kind, 'native');
    if (native) assert.equal(c.error, undefined);
    else assert.equal(c.error, `UFTP_UDP_BACKEND=native but the uftp-udp addon did not load: ${addonLoadError()}`);
  });
  withEnv('bogus', () => assert.match(udpBackend().line, /; UFTP_UDP_BACKEND=bogus ignored \(native or dgram\)$/));
});

test('errnoError names the errno as node:dgram does', () => {
  const e = errnoError('send to 10.0.0.1:9', -101) as Error & { code: string };
  assert.equal(e.code, 'ENETUNREACH');
  assert.equal(e.message, 'send to 10.0.0.1:9 ENETUNREACH');
});

for (const backend of ['native', 'dgram'] as const) {
  test(`[${backend}] loopback round trip: one batch API, one per-datagram API, same bytes and sender`, { skip: backend === 'native' && !loadNativeAddon() ? 'addon not built' : false }, async () => {
    const got: string[] = [];
    const a = await UdpEndpoint.open({
      family: 4, port: 0, address: '127.0.0.1', backend,
      onBatch: (b: RecvBatch) => {
        for (let i = 0; i < b.count; i++) got.push(`${b.from(i).address} ${b.data(i).toString()}`);
      },
    });
    assert.ok(a.ok);
    const msgs: string[] = [];
    const b = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', backend, onMessage: (m, r) => msgs.push(`${r.port} ${m.toString()}`) });
    assert.ok(b.ok);
    try {
      assert.equal(a.value.backend, backend);
      for (let i = 0; i < 100; i++) a.value.send(Buffer.from(`m${i}`), 0, `m${i}`.length, b.value.address().port, '127.0.0.1');
      b.value.send(Buffer.from('back'), 0, 4, a.value.address().port, '127.0.0.1');
      const end = Date.now() + 5000;
      while ((msgs.length < 100 || got.length < 1) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(msgs, Array.from({ length: 100 }, (_, i) => `${a.value.address().port} m${i}`));
      assert.deepEqual(got, ['127.0.0.1 back']);
      // a bad destination is an error value, not an exception
      const err = await new Promise<Error | null>((r) => a.value.send(Buffer.from('x'), 0, 1, 9, 'not-an-address', r));
      assert.ok(err instanceof Error);
    } finally {
      await a.value.close();
      await b.value.close();
    }
  });
}

test('where the addon does not load: node:dgram runs and says why; UFTP_UDP_BACKEND=native is a set-up error', async () => {
  // a child process whose require('uftp-udp') fails, as on a machine where the addon could not be built
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { execFileSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-noaddon-'));
  try {
    const preload = path.join(dir, 'no-addon.cjs');
    fs.writeFileSync(preload, `const M = require('node:module'); const load = M._load;
M._load = function (r, ...a) { if (r === 'uftp-udp') throw new Error('simulated: cannot build'); return load.call(this, r, ...a); };\n`);
    const udp = path.join(path.dirname(fileURLToPath(import.meta.url)), 'udp.js');
    const script = `import(${JSON.stringify(udp)}).then(async (m) => {
      const r = await m.UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', onMessage: () => {} });
      const out = { choice: m.udpBackend(), ok: r.ok, error: r.ok ? undefined : r.error, backend: r.ok ? r.value.backend : undefined, warnings: r.ok ? r.value.warnings : [] };
      if (r.ok) await r.value.close();
      console.log(JSON.stringify(out));
    })`;
    const run = (backend: string | undefined): { choice: { kind: string; line: string }; ok: boolean; error?: string; backend?: string; warnings: string[] } => {
      const env = { ...process.env };
      delete env.UFTP_UDP_BACKEND;
      if (backend !== undefined) env.UFTP_UDP_BACKEND = backend;
      return JSON.parse(execFileSync(process.execPath, ['-r', preload, '-e', script], { env, encoding: 'utf8', timeout: 20000 }));
    };
    const dflt = run(undefined);
    assert.equal(dflt.choice.kind, 'dgram');
    assert.equal(dflt.ok, true);
    assert.equal(dflt.backend, 'dgram');
    // the first warning of the first endpoint (a buffer clamp may follow it where rmem_max is small)
    assert.equal(dflt.warnings[0], 'UDP engine: node:dgram (native addon unavailable: simulated: cannot build; run npm ci)');
    const forced = run('native');
    assert.equal(forced.ok, false);
    assert.equal(forced.error, 'UFTP_UDP_BACKEND=native but the uftp-udp addon did not load: simulated: cannot build');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const backend of ['native', 'dgram'] as const) {
  test(`[${backend}] the per-datagram path: buffer(i)/offset(i) locate data(i); a sender's RemoteInfo and (native) data(i)'s views are reused, never wrong`, { skip: backend === 'native' && !loadNativeAddon() ? 'addon not built' : false }, async () => {
    interface Seen { bytes: string; located: string; from: RemoteInfo; view: Buffer; port: number; size: number }
    const seen: Seen[][] = [];
    const a = await UdpEndpoint.open({
      family: 4, port: 0, address: '127.0.0.1', backend,
      onBatch: (b: RecvBatch) => {
        const batch: Seen[] = [];
        for (let i = 0; i < b.count; i++) {
          const f = b.from(i);
          batch.push({ bytes: b.data(i).toString('latin1'), located: b.buffer(i).toString('latin1', b.offset(i), b.offset(i) + b.length(i)), from: f, view: b.data(i), port: f.port, size: f.size });
        }
        seen.push(batch);
      },
    });
    assert.ok(a.ok);
    const s1 = dgram.createSocket('udp4');
    const s2 = dgram.createSocket('udp4');
    await new Promise<void>((r) => s1.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => s2.bind(0, '127.0.0.1', () => r()));
    const port = a.value.address().port;
    // rounds of: 6 datagrams alternating 40 and 300 bytes from s1, then one from s2; each round waited for
    const sent: { text: string; port: number }[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        for (let k = 0; k < 7; k++) {
          const from = k === 6 ? s2 : s1;
          const text = `${round}.${k}:`.padEnd(k % 2 === 0 ? 40 : 300, String.fromCharCode(97 + k));
          sent.push({ text, port: from.address().port });
          await new Promise<void>((r) => from.send(text, port, '127.0.0.1', () => r()));
        }
        const end = Date.now() + 3000;
        while (seen.flat().length < sent.length && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      }
      const all = seen.flat();
      assert.equal(all.length, sent.length);
      for (let i = 0; i < all.length; i++) {
        // every value is right, whatever object carries it (read at delivery: objects may be shared, never changed)
        assert.equal(all[i].bytes, sent[i].text);
        assert.equal(all[i].located, sent[i].text);
        assert.equal(all[i].port, sent[i].port);
        assert.equal(all[i].size, sent[i].text.length);
        assert.equal(all[i].from.port, sent[i].port, 'a RemoteInfo handed out is never changed later');
        assert.equal(all[i].from.size, sent[i].text.length);
        assert.equal(all[i].from.address, '127.0.0.1');
      }
      if (backend === 'native') {
        // one RemoteInfo per (sender, size) while the sender alternates sizes: s1's two sizes reuse their objects
        const s1Infos = new Set(all.filter((x) => x.port === s1.address().port).map((x) => x.from));
        assert.ok(s1Infos.size <= 4 * 2, `${s1Infos.size} RemoteInfo objects for s1's 24 datagrams of 2 sizes`);
        assert.ok(s1Infos.size >= 2);
        // data(i) views: the same object again for the same entry, offset and length in a later batch
        const firsts = seen.filter((b) => b.length > 0 && b[0].size === 40).map((b) => b[0].view);
        if (firsts.length >= 2) assert.equal(firsts[0], firsts[1], 'entry 0 of two batches, both 40 bytes at the same offset: one view');
      }
    } finally {
      s1.close();
      s2.close();
      await a.value.close();
    }
  });
}
