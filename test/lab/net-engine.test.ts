// The socket engine (src/net/engine*.ts, native/udp) on both backends, native and node:dgram: the same cases run
// against each (a loop over backends). Loopback cases run in this process; back-pressure and unreachable
// destinations run in two network namespaces of our own (10.74.1.0/24, fd74:1::/64 on a veth pair, a tbf qdisc on
// the sender's side) through dist/src/net/probe.js. Multicast (ASM, SSM, IPv4, IPv6, PKTINFO and TOS of group
// traffic) is in net-udp.test.ts, on both backends as well.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { UdpEndpoint, type UdpEndpointOptions, type RecvBatch, type RemoteInfo } from '../../src/net/udp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const probe = path.join(root, 'dist/src/net/probe.js');
const BACKENDS = ['native', 'dgram'] as const;
const suffix = randomBytes(3).toString('hex');
const A = `ne-a${suffix}`;
const B = `ne-b${suffix}`;
const procs: ChildProcess[] = [];
const open: UdpEndpoint[] = [];

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
}
function nsexec(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout: 20000 });
}

function cleanup(): void {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of [A, B]) {
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
        process.kill(Number(pid), 'SIGKILL');
      }
    } catch {
      // namespace not there
    }
    try {
      ip('netns', 'del', ns);
    } catch {
      // not there
    }
  }
}

before(async () => {
  cleanup();
  for (const ns of [A, B]) {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  ip('link', 'add', 'ea', 'netns', A, 'type', 'veth', 'peer', 'name', 'eb', 'netns', B);
  ip('-n', A, 'addr', 'add', '10.74.1.1/24', 'dev', 'ea');
  ip('-n', B, 'addr', 'add', '10.74.1.2/24', 'dev', 'eb');
  ip('-n', A, 'addr', 'add', 'fd74:1::1/64', 'dev', 'ea', 'nodad');
  ip('-n', B, 'addr', 'add', 'fd74:1::2/64', 'dev', 'eb', 'nodad');
  ip('-n', A, 'link', 'set', 'ea', 'up');
  ip('-n', B, 'link', 'set', 'eb', 'up');
  // a slow link on A's side: a sender fills its socket's send buffer and the kernel says EAGAIN / ENOBUFS
  ip('netns', 'exec', A, 'tc', 'qdisc', 'add', 'dev', 'ea', 'root', 'tbf', 'rate', '40mbit', 'burst', '32kb', 'limit', '20mb');
  for (let i = 0; i < 100; i++) {
    if (nsexec(A, 'cat', '/sys/class/net/ea/operstate').trim() === 'up') break;
    await sleep(50);
  }
});

after(async () => {
  for (const ep of open) await ep.close();
  cleanup();
});

/** Opens an endpoint on loopback (closed in after()). */
async function endpoint(o: Partial<UdpEndpointOptions> & { family: 4 | 6 }): Promise<UdpEndpoint> {
  const r = await UdpEndpoint.open({ port: 0, address: o.family === 4 ? '127.0.0.1' : '::', onMessage: () => undefined, ...o });
  assert.ok(r.ok, r.ok ? '' : r.error);
  open.push(r.value);
  return r.value;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(10);
  }
}

interface Got {
  data: Buffer;
  from: RemoteInfo;
  to: string | undefined;
  tos: number;
  ifindex: number;
  truncated: boolean;
  realLength: number;
}
/** A batch receiver that copies what it is given. */
function collector(): { got: Got[]; batches: number[]; onBatch: (b: RecvBatch) => void } {
  const got: Got[] = [];
  const batches: number[] = [];
  return {
    got,
    batches,
    onBatch: (b) => {
      batches.push(b.count);
      for (let i = 0; i < b.count; i++) {
        got.push({
          data: Buffer.from(b.data(i)), from: b.from(i), to: b.to(i), tos: b.tos(i), ifindex: b.ifindex(i),
          truncated: b.truncated(i), realLength: b.realLength(i),
        });
      }
    },
  };
}

function pattern(i: number, len: number): Buffer {
  const b = Buffer.alloc(len, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

for (const backend of BACKENDS) {
  test(`[${backend}] unicast IPv4: batches larger than the ring arrive whole and in order, from the sender's address`, { timeout: 30000 }, async () => {
    const c = collector();
    const rx = await endpoint({ family: 4, backend, ringSlots: 8, bufferSize: 4194304, onBatch: c.onBatch });
    const tx = await endpoint({ family: 4, backend });
    const port = rx.address().port;
    const n = 500;
    for (let i = 0; i < n; i++) tx.send(pattern(i, 4 + ((i * 37) % 1400)), 0, 4 + ((i * 37) % 1400), port, '127.0.0.1');
    await until(() => c.got.length >= n);
    for (let i = 0; i < n; i++) {
      assert.deepEqual(c.got[i].data, pattern(i, 4 + ((i * 37) % 1400)), `datagram ${i}`);
      assert.equal(c.got[i].from.address, '127.0.0.1');
      assert.equal(c.got[i].from.port, tx.address().port);
      assert.equal(c.got[i].from.family, 'IPv4');
      assert.equal(c.got[i].from.size, 4 + ((i * 37) % 1400));
    }
    if (backend === 'native') {
      // a ring of 8: more than one datagram per callback, never more than 8
      assert.ok(Math.max(...c.batches) > 1 && Math.max(...c.batches) <= 8, `batches ${c.batches.join(',')}`);
      assert.ok(c.batches.length < n, 'batched');
      // one flush: sendmmsg of up to 64 datagrams per call
      assert.ok(tx.stats().sendmmsgCalls + tx.stats().gsoCalls <= Math.ceil(n / 64) + 2, JSON.stringify(tx.stats()));
    }
    assert.equal(rx.stats().received, n);
  });

  test(`[${backend}] equal-size datagrams to one destination (GSO on native) arrive as separate datagrams`, { timeout: 30000 }, async () => {
    const c = collector();
    const rx = await endpoint({ family: 4, backend, bufferSize: 4194304, onBatch: c.onBatch });
    const tx = await endpoint({ family: 4, backend });
    const n = 300;
    const buf = Buffer.alloc(1200 * n);
    for (let i = 0; i < n; i++) pattern(i, 1200).copy(buf, i * 1200);
    for (let i = 0; i < n; i++) tx.send(buf, i * 1200, 1200, rx.address().port, '127.0.0.1');
    tx.send(pattern(n, 700), 0, 700, rx.address().port, '127.0.0.1'); // a shorter last one may end a GSO run
    await until(() => c.got.length >= n + 1);
    for (let i = 0; i <= n; i++) assert.deepEqual(c.got[i].data, pattern(i, i < n ? 1200 : 700), `datagram ${i}`);
    const s = tx.stats();
    if (backend === 'native') {
      assert.equal(s.gso, true);
      assert.ok(s.gsoCalls >= Math.ceil((n + 1) / 64) && s.gsoCalls <= Math.ceil((n + 1) / 54) + 1, JSON.stringify(s));
      assert.equal(s.gsoFallbacks, 0);
      // the receiver has UDP GRO on: the kernel hands over GSO packets whole, the engine splits them at the
      // segment size (the contents were checked datagram by datagram above)
      assert.ok(rx.stats().groCoalesced > 0, JSON.stringify(rx.stats()));
    }
    assert.equal(s.sent, n + 1);
  });

  test(`[${backend}] IPv6 and dual stack: from ::1 and from IPv4 (as ::ffff:127.0.0.1) on one udp6 socket`, { timeout: 30000 }, async () => {
    const c = collector();
    const rx = await endpoint({ family: 6, backend, ipv6Only: false, onBatch: c.onBatch });
    const tx6 = await endpoint({ family: 6, backend, address: '::1' });
    const tx4 = await endpoint({ family: 4, backend });
    tx6.send(Buffer.from('six'), 0, 3, rx.address().port, '::1');
    await until(() => c.got.length >= 1);
    tx4.send(Buffer.from('four'), 0, 4, rx.address().port, '127.0.0.1');
    await until(() => c.got.length >= 2);
    assert.deepEqual(c.got.map((g) => [g.data.toString(), g.from.address, g.from.family, g.from.port]), [
      ['six', '::1', 'IPv6', tx6.address().port],
      ['four', '::ffff:127.0.0.1', 'IPv6', tx4.address().port],
    ]);
    if (backend === 'native') assert.deepEqual(c.got.map((g) => g.to), ['::1', '::ffff:127.0.0.1']);
    // an ipv6Only socket refuses IPv4
    const c2 = collector();
    const only6 = await endpoint({ family: 6, backend, ipv6Only: true, onBatch: c2.onBatch });
    const errs: (Error | null)[] = [];
    tx4.send(Buffer.from('x'), 0, 1, only6.address().port, '127.0.0.1', (e) => errs.push(e));
    tx6.send(Buffer.from('y'), 0, 1, only6.address().port, '::1');
    await until(() => c2.got.length >= 1 && errs.length === 1);
    await sleep(100);
    assert.deepEqual(c2.got.map((g) => g.data.toString()), ['y']);
  });

  test(`[${backend}] TOS / ECN: set on the socket, read back per datagram (native), PKTINFO gives destination and interface`, { timeout: 30000 }, async () => {
    const c = collector();
    const rx = await endpoint({ family: 4, backend, onBatch: c.onBatch });
    const tx = await endpoint({ family: 4, backend });
    const lo = Number(fs.readFileSync('/sys/class/net/lo/ifindex', 'utf8').trim());
    for (const tos of [0xb8 | 1, 0x02, 0x03, 0x28]) {
      assert.ok(tx.setTos(tos).ok);
      assert.deepEqual(tx.tos(), { ok: true, value: tos });
      tx.send(Buffer.from([tos]), 0, 1, rx.address().port, '127.0.0.1');
      tx.flush();
      await until(() => c.got.length >= 1);
      const g = c.got.shift() as Got;
      assert.equal(g.data[0], tos);
      if (backend === 'native') {
        assert.equal(g.tos, tos, `tos 0x${tos.toString(16)} (ECN ${tos & 3}) read back`);
        assert.equal(g.to, '127.0.0.1');
        assert.equal(g.ifindex, lo);
      } else {
        assert.equal(g.tos, -1); // node:dgram cannot read it
        assert.equal(g.to, undefined);
      }
    }
    // IPv6 traffic class
    const c6 = collector();
    const rx6 = await endpoint({ family: 6, backend, onBatch: c6.onBatch });
    const tx6 = await endpoint({ family: 6, backend, address: '::1', dscp: 10 });
    assert.deepEqual(tx6.tos(), { ok: true, value: 0x28 });
    assert.ok(tx6.setTos(0x29).ok);
    tx6.send(Buffer.from('tc'), 0, 2, rx6.address().port, '::1');
    await until(() => c6.got.length >= 1);
    if (backend === 'native') {
      assert.equal(c6.got[0].tos, 0x29);
      assert.equal(c6.got[0].to, '::1');
    }
    assert.equal(tx6.setDscp(64).ok, false);
  });

  test(`[${backend}] truncated datagrams: flagged in a batch, dropped and counted for onMessage; the next ones intact`, { timeout: 30000 }, async () => {
    const c = collector();
    const rxb = await endpoint({ family: 4, backend, maxDatagram: 1024, onBatch: c.onBatch });
    const msgs: Buffer[] = [];
    const rxm = await endpoint({ family: 4, backend, maxDatagram: 1024, onMessage: (m) => msgs.push(Buffer.from(m)) });
    const tx = await endpoint({ family: 4, backend });
    for (const rx of [rxb, rxm]) {
      tx.send(pattern(1, 2000), 0, 2000, rx.address().port, '127.0.0.1');
      tx.send(pattern(2, 1024), 0, 1024, rx.address().port, '127.0.0.1');
      tx.send(pattern(3, 100), 0, 100, rx.address().port, '127.0.0.1');
    }
    await until(() => c.got.length >= 3 && msgs.length >= 2);
    await sleep(50);
    assert.equal(c.got[0].truncated, true);
    assert.equal(c.got[0].realLength, 2000);
    assert.equal(c.got[0].data.length, 1024);
    assert.deepEqual(c.got[0].data, pattern(1, 2000).subarray(0, 1024));
    assert.deepEqual(c.got.slice(1).map((g) => [g.truncated, g.data.equals(pattern(g.data.readUInt32BE(0), g.data.length))]), [[false, true], [false, true]]);
    assert.deepEqual(msgs, [pattern(2, 1024), pattern(3, 100)]);
    assert.equal(rxm.stats().truncated, 1);
    assert.equal(rxb.stats().truncated, 1);
  });

  test(`[${backend}] flooded receiver: the drop counter rises, received + dropped = sent, nothing crashes`, { timeout: 30000 }, async () => {
    let count = 0;
    const rx = await endpoint({ family: 4, backend, bufferSize: 65536, onMessage: () => count++ });
    // the native engine floods without yielding, so the receiver cannot read until it is done; one datagram per
    // packet (no GSO), so that the kernel's drop counter counts datagrams (with GSO and GRO it counts packets)
    const tx = await endpoint({ family: 4, backend: 'native', bufferSize: 4194304, gso: false });
    const n = 3000;
    const b = Buffer.alloc(1000, 7);
    for (let i = 0; i < n; i++) {
      tx.send(b, 0, b.length, rx.address().port, '127.0.0.1');
      if (i % 500 === 499) tx.flush();
    }
    tx.flush();
    await until(() => count > 0);
    let last = -1;
    while (last !== count) {
      last = count;
      await sleep(100);
    }
    // one more after the flood: SO_RXQ_OVFL comes with a datagram, so the count is current after this one
    tx.send(b, 0, b.length, rx.address().port, '127.0.0.1');
    await until(() => count === last + 1);
    const drops = rx.drops();
    assert.ok(drops > 0, `drops ${drops}, received ${count}`);
    assert.ok(count < n, `received ${count}`);
    assert.equal(count + drops, n + 1);
  });

  test(`[${backend}] close during I/O: from inside a batch, with datagrams queued; send after close fails with EBADF`, { timeout: 30000 }, async () => {
    let calls = 0;
    let afterClose = 0;
    let closed = false;
    let closing: Promise<void> | undefined;
    const rx = await endpoint({
      family: 4, backend, ringSlots: 4, bufferSize: 1048576,
      onMessage: () => {
        calls++;
        if (closed) afterClose++;
        if (calls === 2) {
          closed = true;
          closing = rx.close();
        }
      },
    });
    const tx = await endpoint({ family: 4, backend });
    const port = rx.address().port;
    for (let i = 0; i < 200; i++) tx.send(pattern(i, 500), 0, 500, port, '127.0.0.1');
    await until(() => closing !== undefined);
    await closing;
    await sleep(200);
    // the rest of a batch already read is dropped with the socket: no handler call after close
    assert.equal(afterClose, 0, `${afterClose} datagrams after close`);
    assert.equal(calls, 2);
    // the sender: queued datagrams go out at close; a send after close is refused with EBADF
    const c = collector();
    const rx2 = await endpoint({ family: 4, backend, bufferSize: 1048576, onBatch: c.onBatch });
    const tx2 = await endpoint({ family: 4, backend });
    const results: (Error | null)[] = [];
    for (let i = 0; i < 50; i++) tx2.send(pattern(i, 300), 0, 300, rx2.address().port, '127.0.0.1', (e) => results.push(e));
    const closed2 = tx2.close();
    await closed2;
    await until(() => c.got.length >= 50 && results.length === 50);
    assert.ok(results.every((e) => e === null));
    let err: Error | null = null;
    assert.equal(tx2.send(Buffer.from('late'), 0, 4, rx2.address().port, '127.0.0.1', (e) => (err = e)), false);
    await until(() => err !== null);
    assert.equal((err as unknown as NodeJS.ErrnoException).code, 'EBADF');
    await tx2.close(); // twice is fine
  });

  test(`[${backend}] a full kernel send buffer: the sender waits for writability, nothing lost or refused`, { timeout: 60000 }, async () => {
    // A -> B over a 40 Mbit/s tbf: 3000 x 1200 bytes take ~0.7 s on the wire; a 64 KiB send buffer fills at once
    const rxp = spawn('ip', ['netns', 'exec', B, 'timeout', '30', process.execPath, probe,
      JSON.stringify({ mode: 'recv', backend, family: 4, port: 5100, quiet: true, ms: 4000, bufferSize: 4194304 })], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(rxp);
    let out = '';
    rxp.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('"ready"'), 10000);
    const sent = JSON.parse(nsexec(A, 'timeout', '25', process.execPath, probe, JSON.stringify({
      mode: 'send', backend, family: 4, dst: '10.74.1.2', port: 5100, count: 3000, size: 1200, burst: true, bufferSize: 65536,
    })).trim().split('\n').pop() ?? '{}') as { sent: number; stats: { blocked: number; refused: number; sent: number } };
    await new Promise((r) => rxp.on('exit', r));
    const got = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { count: number; drops: number };
    assert.equal(sent.sent, 3000);
    assert.equal(sent.stats.refused, 0);
    if (backend === 'native') assert.ok(sent.stats.blocked > 0, `the kernel was full at least once: ${JSON.stringify(sent.stats)}`);
    assert.equal(got.count, 3000, JSON.stringify(got));
  });

  test(`[${backend}] datagrams above the path MTU: GSO refused (EINVAL), sent one by one (IP fragments), all arrive`, { timeout: 30000 }, async () => {
    const rxp = spawn('ip', ['netns', 'exec', B, 'timeout', '20', process.execPath, probe,
      JSON.stringify({ mode: 'recv', backend, family: 4, port: 5103, quiet: true, ms: 1500, bufferSize: 1048576 })], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(rxp);
    let out = '';
    rxp.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('"ready"'), 10000);
    const sent = JSON.parse(nsexec(A, 'timeout', '15', process.execPath, probe, JSON.stringify({
      mode: 'send', backend, family: 4, dst: '10.74.1.2', port: 5103, count: 40, size: 3000, burst: true,
    })).trim().split('\n').pop() ?? '{}') as { sent: number; stats: { gsoFallbacks: number; gso: boolean; sent: number } };
    await new Promise((r) => rxp.on('exit', r));
    const got = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { count: number; bytes: number };
    assert.equal(sent.sent, 40);
    if (backend === 'native') {
      assert.ok(sent.stats.gsoFallbacks >= 1, JSON.stringify(sent.stats));
      assert.equal(sent.stats.gso, true, 'EINVAL does not turn GSO off for the socket');
    }
    assert.deepEqual(got, { ...got, count: 40, bytes: 40 * 3000 });
  });

  test(`[${backend}] close while the kernel refuses more: every queued datagram's callback says sent or not, no crash`, { timeout: 30000 }, async () => {
    const r = JSON.parse(nsexec(A, 'timeout', '15', process.execPath, probe, JSON.stringify({
      mode: 'closeblocked', backend, family: 4, dst: '10.74.1.2', port: 5102, count: 1000, size: 1200,
    })).trim().split('\n').pop() ?? '{}') as { queued: number; ok: number; failed: number };
    assert.equal(r.ok + r.failed, 1000, JSON.stringify(r));
    if (backend === 'native') {
      // a 64 KiB send buffer takes ~100 of them at once: the rest were waiting for writability at close
      assert.ok(r.queued > 0 && r.failed === r.queued, JSON.stringify(r));
    }
  });

  test(`[${backend}] send to an unreachable address: the error names it, the socket goes on`, { timeout: 30000 }, async () => {
    const rxp = spawn('ip', ['netns', 'exec', B, 'timeout', '20', process.execPath, probe,
      JSON.stringify({ mode: 'recv', backend, family: 6, port: 5101, ms: 1500 })], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(rxp);
    let out = '';
    rxp.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('"ready"'), 10000);
    const r = JSON.parse(nsexec(A, 'timeout', '15', process.execPath, probe, JSON.stringify({
      mode: 'sendlist', backend, family: 6, payload: 'reach',
      targets: [
        { dst: '203.0.113.9', port: 9 }, { dst: '10.74.1.2', port: 5101 }, { dst: '2001:db8::9', port: 9 }, { dst: 'fd74:1::2', port: 5101 },
      ],
    })).trim()) as { results: (string | null)[]; backend: string };
    assert.equal(r.backend, backend);
    assert.deepEqual(r.results, ['ENETUNREACH', null, 'ENETUNREACH', null]);
    await new Promise((res) => rxp.on('exit', res));
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { from?: string; data?: string }).filter((l) => l.data);
    assert.deepEqual(lines.map((l) => `${l.from} ${l.data}`), ['::ffff:10.74.1.1 reach', 'fd74:1::1 reach']);
  });
}
