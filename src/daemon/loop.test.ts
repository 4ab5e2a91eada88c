import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { EventLoop, type LoopSocket } from './loop.js';
import { UdpEndpoint } from '../net/udp.js';
import type { ArmedReply, Endpoint, Machine, Transmit } from '../core/machine.js';

/** A paced sender: `count` datagrams, one every `gapMs`, then an effect 'done' whose result it records. */
class Pacer implements Machine<string, number> {
  next = 0;
  sent = 0;
  result: number | undefined;
  private effects: string[] = [];
  private doneAsked = false;
  constructor(private readonly count: number, private readonly gapMs: number, private readonly to: Endpoint, t0: number) {
    this.next = t0;
  }
  handle(): void {}
  handleTimeout(): void {}
  pollTransmit(now: number): Transmit | undefined {
    if (this.sent >= this.count || now < this.next) return undefined;
    this.next += this.gapMs;
    this.sent++;
    if (this.sent === this.count && !this.doneAsked) { this.doneAsked = true; this.effects.push('done'); }
    return { to: this.to, data: Buffer.from([this.sent & 0xff]) };
  }
  pollEffect(): string | undefined { return this.effects.shift(); }
  pollTimeout(): number | undefined { return this.sent < this.count ? this.next : undefined; }
  handleEffectResult(r: number): void { this.result = r; }
}

class FakeSocket implements LoopSocket {
  readonly family = 4 as const;
  readonly got: { at: number; byte: number }[] = [];
  queue = 0;
  send(buf: Buffer): void { this.got.push({ at: performance.now(), byte: buf[0] }); }
  sendQueueCount(): number { return this.queue; }
}

test('EventLoop: a paced machine is woken at its deadlines and its effect results come back', async () => {
  const sock = new FakeSocket();
  const t0 = performance.now();
  const m = new Pacer(20, 5, { address: '127.0.0.1', port: 9 }, t0);
  let resolveDone!: () => void;
  const finished = new Promise<void>((r) => { resolveDone = r; });
  const loop = new EventLoop<string, number>({
    machine: m,
    sockets: [sock],
    onEffect: (e) => { assert.equal(e, 'done'); setTimeout(resolveDone, 5); return Promise.resolve(42); },
  });
  loop.start();
  await finished;
  loop.stop();
  assert.equal(sock.got.length, 20);
  assert.deepEqual(sock.got.map((g) => g.byte), Array.from({ length: 20 }, (_, i) => i + 1));
  // paced: the 20th datagram cannot leave before 19 gaps of 5 ms
  assert.ok(sock.got[19].at - t0 >= 19 * 5 - 1, `too early: ${sock.got[19].at - t0} ms`);
  assert.equal(m.result, 42);
  assert.equal(loop.sent, 20);
});

test('EventLoop: a full socket queue holds the datagram and nothing is lost or reordered', async () => {
  const sock = new FakeSocket();
  const m = new Pacer(1000, 0, { address: '127.0.0.1', port: 9 }, performance.now());
  const loop = new EventLoop<string, number>({ machine: m, sockets: [sock], onEffect: () => undefined, sendBudget: 100 });
  sock.queue = 1000; // refuse everything
  loop.start();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sock.got.length, 0);
  assert.ok(loop.blockedTurns > 0);
  sock.queue = 0;
  await new Promise((r) => setTimeout(r, 50));
  loop.stop();
  assert.equal(sock.got.length, 1000);
  assert.ok(sock.got.every((g, i) => g.byte === ((i + 1) & 0xff)));
});

/** Echoes every datagram back to its sender, uppercased. */
class Echo implements Machine<never, never> {
  private out: Transmit[] = [];
  handle(_now: number, from: Endpoint, bytes: Uint8Array): void {
    this.out.push({ to: from, data: Buffer.from(Buffer.from(bytes).toString().toUpperCase()) });
  }
  handleTimeout(): void {}
  pollTransmit(): Transmit | undefined { return this.out.shift(); }
  pollEffect(): undefined { return undefined; }
  pollTimeout(): undefined { return undefined; }
}

test('EventLoop over a real UdpEndpoint on loopback: datagrams in, answers out', async () => {
  const m = new Echo();
  const ref: { loop?: EventLoop<never> } = {};
  const r = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', onMessage: (msg, rinfo) => ref.loop?.datagram(rinfo, msg) });
  assert.ok(r.ok);
  const ep = r.value;
  const loop = new EventLoop<never>({ machine: m, sockets: [ep], onEffect: () => undefined });
  ref.loop = loop;
  loop.start();
  const client = (await import('node:dgram')).createSocket('udp4');
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  const answers: string[] = [];
  client.on('message', (b) => answers.push(b.toString()));
  for (const w of ['one', 'two', 'three']) client.send(w, ep.address().port, '127.0.0.1');
  const deadline = Date.now() + 3000;
  while (answers.length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  client.close();
  loop.stop();
  await ep.close();
  assert.deepEqual(answers.sort(), ['ONE', 'THREE', 'TWO']);
});

/** Echo that counts its drains: each drain ends with one pollTransmit that finds nothing. */
class CountingEcho extends Echo {
  drains = 0;
  handled = 0;
  override handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    this.handled++;
    super.handle(now, from, bytes);
  }
  override pollTransmit(): Transmit | undefined {
    const t = super.pollTransmit();
    if (t === undefined) this.drains++;
    return t;
  }
}

for (const backend of ['native', 'dgram'] as const) {
  test(`[${backend}] EventLoop drains once per receive turn of its socket, not once per datagram`, { skip: (await import('../net/engine.js')).loadNativeAddon() ? false : 'addon not built' }, async () => {
    const m = new CountingEcho();
    const ref: { loop?: EventLoop<never> } = {};
    const r = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', backend, onMessage: (msg, rinfo) => ref.loop?.datagram(rinfo, msg) });
    assert.ok(r.ok);
    const ep = r.value;
    const loop = new EventLoop<never>({ machine: m, sockets: [ep], onEffect: () => undefined });
    ref.loop = loop;
    loop.start();
    const drainsBefore = m.drains;
    const answers: string[] = [];
    const s = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', backend: 'native', onMessage: (b) => answers.push(b.toString()) });
    assert.ok(s.ok);
    // 100 datagrams in the receiver's queue before it reads any (the native sender hands them to the kernel now)
    for (let i = 0; i < 100; i++) s.value.send(Buffer.from(`d${i}`), 0, `d${i}`.length, ep.address().port, '127.0.0.1');
    s.value.flush();
    const deadline = Date.now() + 3000;
    while (answers.length < 100 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    loop.stop();
    await ep.close();
    await s.value.close();
    assert.equal(m.handled, 100);
    assert.deepEqual(answers, Array.from({ length: 100 }, (_, i) => `D${i}`));
    // native: a batch of up to 64 per turn; dgram: what libuv reads in one poll phase (up to 32) per turn
    const drains = m.drains - drainsBefore;
    assert.ok(drains >= 1 && drains <= 10, `${drains} drains for 100 datagrams`);
  });
}

/**
 * A lock-step server in miniature: request "qN" is answered by "RN" (plus, when `extra`, a second datagram "xN");
 * it arms "qN -> RN" for the next N, or, for N in `lie`, an arm whose reply differs from its real answer.
 */
class Stepper implements Machine<never> {
  next = 0;
  handled = 0;
  private tx: Transmit[] = [];
  constructor(private readonly peer: Endpoint, private readonly extra: ReadonlySet<number>, private readonly lie: ReadonlySet<number>) {}
  handle(_now: number, from: Endpoint, bytes: Uint8Array): void {
    this.handled++;
    if (Buffer.from(bytes).toString() !== `q${this.next}`) return; // a duplicate: no answer
    const n = this.next++;
    this.tx.push({ to: from, data: Buffer.from(`R${n}`) });
    if (this.extra.has(n)) this.tx.push({ to: from, data: Buffer.from(`x${n}`) });
  }
  handleTimeout(): void {}
  pollTransmit(): Transmit | undefined { return this.tx.shift(); }
  pollEffect(): undefined { return undefined; }
  pollTimeout(): undefined { return undefined; }
  pollArm(): ArmedReply | undefined {
    const n = this.next;
    return { from: this.peer, expect: Buffer.from(`q${n}`), reply: Buffer.from(this.lie.has(n) ? `L${n}` : `R${n}`) };
  }
}

test('EventLoop + native engine: the armed reply goes out once and the machine\'s equal transmit is dropped; other transmits are sent', { skip: (await import('../net/engine.js')).loadNativeAddon() ? false : 'addon not built', timeout: 10000 }, async () => {
  const answers: string[] = [];
  const c = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', backend: 'native', spinUs: 0, onMessage: (b) => answers.push(b.toString()) });
  assert.ok(c.ok);
  const cli = c.value;
  const peer = { address: '127.0.0.1', port: cli.address().port };
  const m = new Stepper(peer, new Set([3]), new Set([5]));
  const ref: { loop?: EventLoop<never> } = {};
  const r = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', backend: 'native', spinUs: 0, onMessage: (msg, rinfo) => ref.loop?.datagram(rinfo, msg) });
  assert.ok(r.ok);
  const ep = r.value;
  const loop = new EventLoop<never>({ machine: m, sockets: [ep], onEffect: () => undefined });
  ref.loop = loop;
  loop.start();
  const ask = async (w: string, want: number): Promise<void> => {
    cli.send(Buffer.from(w), 0, w.length, ep.address().port, '127.0.0.1');
    cli.flush();
    const deadline = Date.now() + 3000;
    while ((answers.length < want || m.handled < answers.length) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2));
  };
  try {
    let want = 0;
    for (let i = 0; i < 8; i++) {
      want += i === 3 ? 2 : i === 5 ? 2 : 1;
      await ask(`q${i}`, want);
      if (i === 2) {
        await ask('q2', want); // a duplicate request: neither the engine nor the machine answers it
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    await new Promise((res) => setTimeout(res, 50));
  } finally {
    loop.stop();
    await ep.close();
    await cli.close();
  }
  // every answer once, in order; at 3 the machine's extra datagram; at 5 the engine sent the armed "L5" and the
  // machine's real answer "R5" (different) was sent too: the loop drops only an equal transmit
  assert.deepEqual(answers, ['R0', 'R1', 'R2', 'R3', 'x3', 'R4', 'L5', 'R5', 'R6', 'R7']);
  assert.equal(loop.armedSent, 7, 'the engine answered all but the lie');
  assert.equal(loop.armUnclaimed, 1, 'the lie is counted');
  assert.equal(loop.sent, 2, 'the machine\'s own sends: x3 and R5');
  assert.equal(ep.stats().armFired, 8);
});
