// The server proxy's receive coalescing (src/apps/uftpproxyd/coalesce.ts, run.ts): a stream that arrives in small
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
import { UdpEndpoint, type RecvBatch } from '../../src/net/udp.js';
import { decodePacket, encodePacket, type Message, type Packet } from '../../src/wire/packet.js';
import { UFTP_VER_NUM } from '../../src/wire/constants.js';
import { quantizeGrtt } from '../../src/wire/quantize.js';

const SERVER_ID = 0x0a4c0101;
const GROUP = 0x4c4c0001;
const PUBLIC = '230.4.4.1';
const PRIVATE = '230.76.5.9';
const BLOCK = 1300;
const GROUP_OF = 4;
const N = 8000;

function pkt(message: Message): Uint8Array {
  const p: Packet = {
    header: { version: UFTP_VER_NUM, func: 0, seq: 0, srcId: SERVER_ID, groupId: GROUP, groupInst: 0, grtt: quantizeGrtt(0.5), gsize: 0, reserved: 0 },
    message,
  };
  return encodePacket(p);
}

function payload(i: number): Uint8Array {
  const d = new Uint8Array(BLOCK);
  for (let k = 0; k < BLOCK; k++) d[k] = (i * 11 + k * 17 + (i >> 8)) & 0xff;
  d[0] = i & 0xff;
  d[1] = (i >> 8) & 0xff;
  return d;
}

async function sender(): Promise<void> {
  // GSO off: the real uftp server sends one datagram per sendto, and so no GRO batches at the proxy
  const r = await UdpEndpoint.open({ family: 4, port: 0, bufferSize: 4 << 20, gso: false, onMessage: () => undefined });
  if (!r.ok) throw new Error(r.error);
  const ep = r.value;
  const announce = pkt({ type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: BLOCK, timestamp: { sec: 1000, usec: 0 }, publicMcast: PUBLIC, privateMcast: PRIVATE, extensions: [], clientIds: [] });
  ep.send(announce, 0, announce.length, 1044, PUBLIC);
  ep.flush();
  await new Promise((res) => setTimeout(res, 500));
  for (let i = 0; i < N; i += GROUP_OF) {
    for (let k = i; k < i + GROUP_OF; k++) {
      const d = pkt({ type: 'FILESEG', fileId: 1, section: 0, secBlock: k, extensions: [], data: payload(k) } as Message);
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

async function receiver(out: string): Promise<void> {
  const got: number[] = [];
  const bad: string[] = [];
  const onBatch = (b: RecvBatch): void => {
    for (let i = 0; i < b.count; i++) {
      const p = decodePacket(b.data(i));
      if (!p.ok) continue;
      const m = p.value.message;
      if (m.type !== 'FILESEG') continue;
      if (!Buffer.from(m.data).equals(Buffer.from(payload(m.secBlock)))) bad.push(`block ${m.secBlock}: bytes differ`);
      got.push(m.secBlock);
    }
  };
  const r = await UdpEndpoint.open({ family: 4, port: 1044, bufferSize: 16 << 20, onBatch });
  if (!r.ok) throw new Error(r.error);
  const ep = r.value;
  process.stdout.write('ready\n');
  while (!fs.existsSync(out + '.stop')) await new Promise((res) => setTimeout(res, 50));
  fs.writeFileSync(out, JSON.stringify({ got, bad: bad.slice(0, 20), badCount: bad.length, drops: ep.drops() }));
  await ep.close();
}

const role = process.argv.indexOf('--role');
if (role >= 0) {
  const what = process.argv[role + 1];
  (what === 'send' ? sender() : receiver(process.argv[role + 2])).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    },
  );
} else {
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
        const r = JSON.parse(fs.readFileSync(out, 'utf8')) as { got: number[]; bad: string[]; badCount: number; drops: number };
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
