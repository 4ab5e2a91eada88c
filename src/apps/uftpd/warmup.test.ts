// The start-up warm-up (warmup.ts) drives a synthetic session through the real receive path on loopback, within its
// time budget, and sends nothing anywhere else: the daemon's response proxy and heartbeat servers (here a loopback
// socket standing for them) hear nothing from it, and no file is made in the destination directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { warmUp } from './warmup.js';
import { ReceivePath } from './receive.js';

test('warm-up: FILESEGs through the loopback receive path within the budget, nothing to the proxy or heartbeat servers, no file', { timeout: 20_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uftpd-warm-'));
  const watch = dgram.createSocket('udp4');
  let heard = 0;
  watch.on('message', () => heard++);
  await new Promise<void>((r) => watch.bind(0, '127.0.0.1', r));
  const other = { address: '127.0.0.1', port: watch.address().port };
  const logs: string[] = [];
  let between = 0;
  try {
    const t0 = performance.now();
    const r = await warmUp({
      config: {
        uid: 0x0a000001, destDirs: [dir], wallMicros: (n) => Math.floor(n * 1000), cacheSize: 1 << 20, logLevel: 2,
        responseProxy: other, heartbeat: { servers: [other], intervalMs: 1000 }, encryptedOnly: true,
        serverList: [{ id: 0x01020304, address: '10.1.2.3' }],
      },
      path: new ReceivePath(),
      bufferSize: 262144,
      budgetMs: 1000,
      log: (_l, t) => logs.push(t),
      betweenRounds: () => between++,
    });
    const took = performance.now() - t0;
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(r.stopped, undefined, `stopped early: ${r.stopped}`);
    assert.ok(r.datagrams >= 500, `only ${r.datagrams} datagrams`);
    assert.equal(r.dropped, 0, 'the throwaway machine took every datagram of the synthetic sessions');
    assert.ok(r.files >= 1, 'a synthetic file was received completely');
    assert.ok(took < 2500, `took ${took} ms for a 1000 ms budget`);
    assert.equal(heard, 0, 'the response proxy / heartbeat server heard from the warm-up');
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing written to the destination');
    assert.equal(between, 1, 'the hook between the two sessions (the daemon\'s start-up GC) ran once');
  } finally {
    watch.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
