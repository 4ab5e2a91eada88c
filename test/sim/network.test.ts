// The simulated network itself: what every simulation relies on. Toy machines, exact assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint, Machine, Transmit } from '../../src/core/machine.js';
import { SimNetwork } from './network.js';

/** Sends `count` numbered datagrams to `to`, one every `gapMs` of virtual time. */
class Source implements Machine<never, never> {
  private i = 0;
  private next = 0;
  constructor(private readonly to: Endpoint, private readonly count: number, private readonly gapMs: number, private readonly size = 100) {}
  handle(): void {}
  handleTimeout(): void {}
  pollTransmit(now: number): Transmit | undefined {
    if (this.i >= this.count || now < this.next) return undefined;
    this.next = now + this.gapMs;
    const b = Buffer.alloc(this.size);
    b.writeUInt32BE(this.i++, 0);
    return { to: this.to, data: b };
  }
  pollEffect(): undefined { return undefined; }
  pollTimeout(): number | undefined { return this.i < this.count ? this.next : undefined; }
}

/** Records what it gets: sequence numbers and virtual arrival times. */
class Sink implements Machine<never, never> {
  readonly seqs: number[] = [];
  readonly times: number[] = [];
  handle(now: number, _from: Endpoint, bytes: Uint8Array): void {
    this.seqs.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(0));
    this.times.push(now);
  }
  handleTimeout(): void {}
  pollTransmit(): undefined { return undefined; }
  pollEffect(): undefined { return undefined; }
  pollTimeout(): undefined { return undefined; }
}

function session(seed: number, down: Parameters<SimNetwork['host']>[2], count = 10_000, gap = 1, size = 100) {
  const net = new SimNetwork({ seed });
  const a = net.host('a', ['10.0.0.1']);
  const b = net.host('b', ['10.0.0.2'], down);
  const c = net.host('c', ['10.0.0.3']);
  const sinkB = new Sink();
  const sinkC = new Sink();
  const other = new Sink();
  b.attach(sinkB, 1044).join('239.1.1.1');
  c.attach(sinkC, 1044).join('239.1.1.1');
  c.attach(other, 2000).join('239.1.1.1'); // same group, other port: must get nothing
  a.attach(new Source({ address: '239.1.1.1', port: 1044 }, count, gap, size), 1044);
  net.run();
  return { net, sinkB, sinkC, other };
}

test('sim: multicast reaches every member on the port, once each, in order, on a clean link', () => {
  const { sinkB, sinkC, other } = session(1, {}, 1000);
  assert.equal(sinkB.seqs.length, 1000);
  assert.deepEqual(sinkC.seqs, sinkB.seqs);
  assert.ok(sinkB.seqs.every((s, i) => s === i));
  assert.equal(other.seqs.length, 0);
});

test('sim: seeded loss per receiver link is near its rate, independent of other receivers, and reproducible', () => {
  const r1 = session(7, { down: { loss: 0.05 } });
  const lost = 10_000 - r1.sinkB.seqs.length;
  assert.ok(lost > 400 && lost < 600, `lost ${lost} of 10000 at 5%`);
  assert.equal(r1.sinkC.seqs.length, 10_000);
  const r2 = session(7, { down: { loss: 0.05 } });
  assert.deepEqual(r2.sinkB.seqs, r1.sinkB.seqs);
  const r3 = session(8, { down: { loss: 0.05 } });
  assert.notDeepEqual(r3.sinkB.seqs, r1.sinkB.seqs);
});

test('sim: duplication and jitter duplicate and reorder', () => {
  const { sinkB } = session(3, { down: { dup: 0.1, jitterMs: 5 } }, 2000);
  const dups = sinkB.seqs.length - new Set(sinkB.seqs).size;
  assert.ok(dups > 120 && dups < 280, `dups ${dups}`);
  let inversions = 0;
  for (let i = 1; i < sinkB.seqs.length; i++) if (sinkB.seqs[i] < sinkB.seqs[i - 1]) inversions++;
  assert.ok(inversions > 100, `inversions ${inversions}`);
  assert.equal(new Set(sinkB.seqs).size, 2000);
});

test('sim: a rate-limited link serialises datagrams and tail-drops past its queue', () => {
  // 1000 datagrams of 972 bytes (+28 header = 8000 bits) sent at once into 8 Mbit/s: 1 ms each
  const { sinkB, net } = session(1, { down: { rateBps: 8_000_000, queueMs: 100, delayMs: 0 } }, 1000, 0.0001, 972);
  // the queue holds about 100 ms of them
  assert.ok(sinkB.seqs.length >= 100 && sinkB.seqs.length <= 102, `delivered ${sinkB.seqs.length}`);
  assert.ok(net.stats.queueDrops >= 898);
  const gaps = sinkB.times.slice(1).map((t, i) => t - sinkB.times[i]);
  assert.ok(gaps.every((g) => Math.abs(g - 1) < 1e-6), 'one datagram per ms');
});

test('sim: unicast to nobody is counted; hooks can drop and rewrite in flight', () => {
  const net = new SimNetwork({ seed: 1 });
  const a = net.host('a', ['10.0.0.1']);
  const b = net.host('b', ['10.0.0.2']);
  const sink = new Sink();
  b.attach(sink, 1044);
  a.attach(new Source({ address: '10.0.0.9', port: 1044 }, 3, 1), 1044);
  a.attach(new Source({ address: '10.0.0.2', port: 1044 }, 10, 1), 1045);
  net.onSend = (f) => {
    if (f.to.address !== '10.0.0.2') return true;
    const seq = Buffer.from(f.data).readUInt32BE(0);
    if (seq === 3) return false;
    if (seq === 4) { const c = Buffer.from(f.data); c.writeUInt32BE(99, 0); return c; }
    return true;
  };
  net.run();
  assert.equal(net.stats.unroutable, 3);
  assert.deepEqual(sink.seqs, [0, 1, 2, 99, 5, 6, 7, 8, 9]);
});
