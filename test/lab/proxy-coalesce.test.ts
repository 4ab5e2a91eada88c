// The server proxy's receive coalescing (src/daemon/coalesce.ts; src/apps/uftpproxyd/run.ts): a stream that arrives in small
// groups (as from an encrypting uftp server at full speed: a few datagrams per receive turn) makes our server proxy
// sleep briefly after a small turn, so that it reads and forwards larger batches. Here a sender on the server host
// sends an ANNOUNCE to the public address and then FILESEGs to the private group in groups of 4, ~40 µs apart;
// our server proxy on sproxyB forwards them to a receiver on cproxyB, which checks every FILESEG byte for byte, in
// order, none missing (a sleep must lose nothing). The proxy's closing lines must show sleeps taken and fewer
// receive calls than groups sent; with UFTPPROXYD_COALESCE_US=0, no sleep.
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

const SERVER_ID = 0x0a4c0101;
const GROUP = 0x4c4c0001;
const PUBLIC = '230.4.4.1';
const PRIVATE = '230.76.5.9';
const GROUP_OF = 4;
const N = 8000;

async function sender(): Promise<void> {
  // GSO off: the real uftp server sends one datagram per sendto, and so no GRO batches at the proxy
  const r = await UdpEndpoint.open({ family: 4, port: 0, bufferSize: 4 << 20, gso: false, onMessage: () => undefined });
  if (!r.ok) throw new Error(r.error);
  const ep = r.value;
  const announce = streamPacket(SERVER_ID, GROUP, { type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: BLOCK, timestamp: { sec: 1000, usec: 0 }, publicMcast: PUBLIC, privateMcast: PRIVATE, extensions: [], clientIds: [] });
  ep.send(announce, 0, announce.length, 1044, PUBLIC);
  ep.flush();
  await new Promise((res) => setTimeout(res, 500));
  for (let i = 0; i < N; i += GROUP_OF) {
    for (let k = i; k < i + GROUP_OF; k++) {
      const d = blockFileseg(SERVER_ID, GROUP, k);
      ep.send(d, 0, d.length, 1044, PRIVATE);
    }
    ep.flush();
    const until = performance.now() + 0.04;
    while (performance.now() < until) {
      // paced: ~100,000 datagrams/s in groups of 4
    }
  }
  await new Promise((res) => setTimeout(res, 200));
  process.stdout.write(`sent ${N}\n`);
  await ep.close();
}

if (!runRole({ send: () => sender(), recv: (out) => receiveFilesegs(String(out)) })) {
  const labs: Lab[] = [];
  after(async () => {
    for (const l of labs) await l.down();
  });

  test('server proxy receive coalescing: a stream in small groups is forwarded complete and in order, in fewer and larger turns; UFTPPROXYD_COALESCE_US=0 turns it off', { timeout: 90_000 }, async () => {
    const lab = await Lab.up('fig1', { prefix: `upz${randomBytes(3).toString('hex')}`, octet: 76 });
    labs.push(lab);
    const self = fileURLToPath(import.meta.url);
    const once = async (env: NodeJS.ProcessEnv | undefined, tag: string): Promise<{ sleeps: number; received: number; calls: number }> => {
      const out = path.join(lab.workDir, `recv-${tag}.json`);
      const procs: Proc[] = [];
      try {
        const recv = lab.spawn('cproxyB', [process.execPath, self, '--role', 'recv', out], { timeoutMs: 60_000 });
        procs.push(recv);
        await lab.waitFor(() => recv.exitCode !== null || recv.log().includes('ready'), 10_000, 'receiver');
        const sp = lab.spawn('sproxyB', [process.execPath, path.join(path.dirname(self), '..', '..', 'src', 'cli', 'uftpproxyd.js'),
          '-d', '-x', '2', '-U', lab.uidOf('sproxyB'), '-B', String(8 << 20), '-s', lab.tunnelDest('cproxyB')], { timeoutMs: 60_000, env: env ? { ...process.env, ...env } : undefined });
        procs.push(sp);
        await lab.waitFor(() => sp.exitCode !== null || sp.log().includes('Listening on port'), 15_000, 'server proxy');
        assert.match(sp.log(), /UDP engine: native/, 'the server proxy runs the native engine');
        const send = lab.spawn('server', [process.execPath, self, '--role', 'send'], { timeoutMs: 60_000 });
        procs.push(send);
        assert.equal(await send.wait(), 0, send.log());
        fs.writeFileSync(out + '.stop', '');
        assert.equal(await recv.wait(), 0, recv.log());
        await sp.kill();
        const r = readReceived(out);
        assert.equal(r.badCount, 0, `corrupted datagrams: ${r.bad.join('; ')}`);
        assert.equal(r.got.length, N, `${N - r.got.length} of ${N} FILESEGs not forwarded (receiver drops: ${r.drops})`);
        for (let i = 0; i < N; i++) if (r.got[i] !== i) assert.fail(`FILESEG ${r.got[i]} arrived at position ${i}`);
        const c = /Receive coalescing: (\d+) sleeps/.exec(sp.log());
        const s = /IPv4 socket: received (\d+) in (\d+) receive calls/.exec(sp.log());
        assert.ok(c && s, `the server proxy's closing lines: ${sp.log().slice(-600)}`);
        process.stdout.write(`# ${tag}: ${s[1]} datagrams in ${s[2]} receive calls, ${c[1]} sleeps\n`);
        return { sleeps: Number(c[1]), received: Number(s[1]), calls: Number(s[2]) };
      } finally {
        for (const p of procs) if (p.exitCode === null) await p.kill();
      }
    };
    const on = await once(undefined, 'on');
    assert.ok(on.sleeps > 0, 'the server proxy slept after small turns of the stream');
    assert.ok(on.calls < N / GROUP_OF / 2, `${on.calls} receive calls for ${N / GROUP_OF} groups: the turns were not larger`);
    const off = await once({ UFTPPROXYD_COALESCE_US: '0' }, 'off');
    assert.equal(off.sleeps, 0, 'UFTPPROXYD_COALESCE_US=0: no sleep');
  });
}
