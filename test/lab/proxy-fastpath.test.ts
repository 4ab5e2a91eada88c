// The client proxy's forwarding fast path (src/apps/uftpproxyd/run.ts): received batches go to the machine as
// views of the engine's receive ring, and what a blocked or budget-limited turn leaves queued is copied out before
// the ring is reused. Here a sender on sproxyB (standing in for a server proxy) sends an ANNOUNCE and then bursts
// of FILESEGs, each burst far larger than the ring (UDP GSO: 64 datagrams per call, GRO-coalesced on arrival, up
// to 64 x 64 datagrams per batch, more than the loop's send budget per turn), to our client proxy on cproxyB; a
// receiver on clientB1 joined to the private group checks every forwarded FILESEG byte for byte, in order, none
// missing. A fast path that forwarded a view after its ring slot was overwritten would deliver another
// FILESEG's bytes (or a duplicate) where one is expected; one that dropped held datagrams would leave gaps.
//
// This file is also its own helper: run with `--role send|recv` in a namespace it is the sender or the receiver.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type Proc } from '../../src/lab/lab.js';
import { UdpEndpoint } from '../../src/net/udp.js';
import { BLOCK, blockFileseg, readReceived, receiveFilesegs, runRole, streamPacket } from './fileseg-stream.js';

const SERVER_ID = 0x0a4b0101;
const GROUP = 0x4b4b0001;
const PRIVATE = '230.75.5.9';
const BURST = 2048;
const BURSTS = 8;
const N = BURST * BURSTS;

async function sender(to: string): Promise<void> {
  const r = await UdpEndpoint.open({ family: 4, port: 0, bufferSize: 4 << 20, onMessage: () => undefined });
  if (!r.ok) throw new Error(r.error);
  const ep = r.value;
  const announce = streamPacket(SERVER_ID, GROUP, { type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: BLOCK, timestamp: { sec: 1000, usec: 0 }, publicMcast: '230.75.4.1', privateMcast: PRIVATE, extensions: [], clientIds: [] });
  ep.send(announce, 0, announce.length, 1044, to);
  ep.flush();
  await new Promise((res) => setTimeout(res, 500));
  for (let b = 0; b < BURSTS; b++) {
    for (let k = 0; k < BURST; k++) {
      const d = blockFileseg(SERVER_ID, GROUP, b * BURST + k);
      ep.send(d, 0, d.length, 1044, to);
    }
    ep.flush();
    // the burst (2.7 MB) fits the proxy's 8 MB receive buffer; the pause lets it forward it before the next
    await new Promise((res) => setTimeout(res, 250));
  }
  process.stdout.write(`sent ${N} ${JSON.stringify(ep.stats())}\n`);
  await ep.close();
}

if (!runRole({ send: (to) => sender(String(to)), recv: (out) => receiveFilesegs(String(out), PRIVATE) })) {
  const labs: Lab[] = [];
  after(async () => {
    for (const l of labs) await l.down();
  });

  test('client proxy fast path: bursts larger than the ring forwarded byte for byte, in order, none missing', { timeout: 90_000 }, async () => {
    const lab = await Lab.up('fig1', { prefix: `upq${randomBytes(3).toString('hex')}`, octet: 75 });
    labs.push(lab);
    const self = fileURLToPath(import.meta.url);
    const out = path.join(lab.workDir, 'recv.json');
    const procs: Proc[] = [];
    try {
      const recv = lab.spawn('clientB1', [process.execPath, self, '--role', 'recv', out], { timeoutMs: 80_000 });
      procs.push(recv);
      await lab.waitFor(() => recv.exitCode !== null || recv.log().includes('ready'), 10_000, 'receiver');
      const cp = lab.ours('cproxyB', 'uftpproxyd', ['-d', '-x', '2', '-U', lab.uidOf('cproxyB'), '-B', String(8 << 20), '-c'], { timeoutMs: 80_000 });
      procs.push(cp);
      await lab.waitFor(() => cp.exitCode !== null || cp.log().includes('Listening on port'), 15_000, 'client proxy');
      assert.match(cp.log(), /UDP engine: native/, 'the client proxy runs the native engine');
      const send = lab.spawn('sproxyB', [process.execPath, self, '--role', 'send', lab.addrOf('cproxyB')], { timeoutMs: 60_000 });
      procs.push(send);
      assert.equal(await send.wait(), 0, send.log());
      await new Promise((res) => setTimeout(res, 1000));
      fs.writeFileSync(out + '.stop', '');
      assert.equal(await recv.wait(), 0, recv.log());
      await cp.kill();
      const r = readReceived(out);
      assert.equal(r.badCount, 0, `corrupted datagrams: ${r.bad.join('; ')}`);
      assert.equal(r.drops, 0, 'the receiver dropped nothing (else the count below proves nothing about the proxy)');
      const missing = N - new Set(r.got).size;
      assert.equal(missing, 0, `${missing} of ${N} FILESEGs not forwarded`);
      assert.equal(r.got.length, N, 'no duplicates');
      // one sender, one proxy, one veth path: nothing may reorder them
      for (let i = 0; i < N; i++) if (r.got[i] !== i) assert.fail(`FILESEG ${r.got[i]} arrived at position ${i}`);
      const m = /Forwarded (\d+) datagrams; (\d+) copied out of the receive ring/.exec(cp.log());
      assert.ok(m, `the client proxy's closing line: ${cp.log().slice(-500)}`);
      assert.ok(Number(m[1]) >= N, `forwarded ${m[1]}`);
      process.stdout.write(`# forwarded ${m[1]}, copied out of the ring after held turns: ${m[2]}\n`);
    } finally {
      for (const p of procs) if (p.exitCode === null) await p.kill();
    }
  });
}
