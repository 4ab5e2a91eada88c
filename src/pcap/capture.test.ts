import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { CaptureParser, parseCapture, readCaptureFrames, type CaptureFrame } from './capture.js';

/** Bytes from hex with any whitespace. */
function h(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

// One Ethernet frame: 01:00:5e:04:04:01 <- 02:00:00:00:00:01, IPv4 10.64.0.1 -> 230.4.4.1, UDP 53430 -> 1044,
// payload de ad be ef (46 bytes).
const FRAME = h(`
  01005e040401 020000000001 0800
  4500 0020 0000 0000 4011 0000 0a400001 e6040401
  d0b6 0414 000c 0000
  deadbeef`);

/** Byte-equality whatever the view class (Buffer or Uint8Array). */
function same(a: Uint8Array, b: Uint8Array): void {
  assert.deepEqual(Uint8Array.from(a), Uint8Array.from(b));
}

function frames(r: ReturnType<typeof parseCapture>): CaptureFrame[] {
  if (!r.ok) assert.fail(r.error);
  return r.value;
}

test('classic pcap, little-endian, microseconds', () => {
  const file = h(`
    d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000
    10111213 40e20100 2e000000 2e000000`); // 2022-... sec 0x13121110, usec 123456, 46 bytes
  const got = frames(parseCapture(Buffer.concat([file, FRAME])));
  assert.equal(got.length, 1);
  assert.equal(got[0].number, 1);
  assert.equal(got[0].linkType, 1);
  assert.equal(got[0].timeNs, 0x13121110n * 1_000_000_000n + 123_456_000n);
  same(got[0].data, FRAME);
  assert.equal(got[0].originalLength, 46);
});

test('classic pcap, big-endian, nanoseconds, two records', () => {
  const file = h(`
    a1b23c4d 0002 0004 00000000 00000000 0000ffff 00000065
    00000001 3b9ac9ff 00000004 00000004 45000000
    00000002 00000005 00000002 00000010 4500`); // record 2 captured 2 of 16 bytes
  const got = frames(parseCapture(file));
  assert.equal(got.length, 2);
  assert.equal(got[0].linkType, 101);
  assert.equal(got[0].timeNs, 1_999_999_999n);
  same(got[0].data, h('45000000'));
  assert.equal(got[1].number, 2);
  assert.equal(got[1].timeNs, 2_000_000_005n);
  assert.equal(got[1].originalLength, 16);
  assert.equal(got[1].data.length, 2);
});

test('modified (Kuznetzov) pcap has 24-byte record headers', () => {
  const file = h(`
    34cdb2a1 0200 0400 00000000 00000000 00000400 71000000
    01000000 02000000 02000000 02000000 03000000 0008 04 00 abcd`);
  const got = frames(parseCapture(file));
  assert.equal(got.length, 1);
  assert.equal(got[0].linkType, 113);
  same(got[0].data, h('abcd'));
  assert.equal(got[0].timeNs, 1_000_002_000n);
});

test('pcapng little-endian: SHB, IDB with if_tsresol=9, EPB, SPB, skipped unknown block', () => {
  const file = h(`
    0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
    01000000 20000000 0100 0000 00000400 0900 0100 09000000 00000000 20000000
    bebafeca 10000000 00000000 10000000
    06000000 50000000 00000000 00000000 d2029649 2e000000 2e000000 ${Buffer.from(FRAME).toString('hex')} 0000 50000000
    03000000 14000000 04000000 abcdef01 14000000`);
  const got = frames(parseCapture(file));
  assert.equal(got.length, 2);
  assert.equal(got[0].number, 1);
  assert.equal(got[0].linkType, 1);
  assert.equal(got[0].timeNs, 0x499602d2n); // 1234567890 ns
  same(got[0].data, FRAME);
  assert.equal(got[1].number, 2);
  same(got[1].data, h('abcdef01'));
  assert.equal(got[1].timeNs, 0n);
});

test('pcapng big-endian: two interfaces with different link types and resolutions, if_tsoffset', () => {
  const file = h(`
    0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c
    00000001 00000014 0071 0000 00000000 00000014
    00000001 0000002c 0065 0000 00000000 0009 0001 83000000 000e 0008 000000000000000a 0000 0000 0000002c
    00000006 00000024 00000001 00000000 00000010 00000002 00000002 4500 0000 00000024
    00000006 00000024 00000000 00000000 00000003 00000002 00000002 4500 0000 00000024`);
  const got = frames(parseCapture(file));
  assert.equal(got.length, 2);
  // Interface 1: 2^-3 s units (16 ticks = 2 s) plus a 10 s offset.
  assert.equal(got[0].interfaceId, 1);
  assert.equal(got[0].linkType, 101);
  assert.equal(got[0].timeNs, 12_000_000_000n);
  // Interface 0: default microseconds.
  assert.equal(got[1].interfaceId, 0);
  assert.equal(got[1].linkType, 113);
  assert.equal(got[1].timeNs, 3000n);
});

test('pcapng: a second section resets interfaces and may switch byte order', () => {
  const le = h(`
    0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
    01000000 14000000 e400 0000 00000000 14000000
    06000000 24000000 00000000 00000000 01000000 02000000 02000000 4500 0000 24000000`);
  const be = h(`
    0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c
    00000001 00000014 00e5 0000 00000000 00000014
    00000006 00000024 00000000 00000000 00000002 00000002 00000002 6000 0000 00000024`);
  const got = frames(parseCapture(Buffer.concat([le, be])));
  assert.deepEqual(got.map((f) => [f.number, f.linkType, f.timeNs]), [[1, 228, 1000n], [2, 229, 2000n]]);
});

test('chunk boundaries anywhere give the same frames', () => {
  const file = Buffer.concat([
    h('d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000'),
    h('01000000 00000000 2e000000 2e000000'), FRAME,
    h('02000000 00000000 2e000000 2e000000'), FRAME,
  ]);
  for (let size = 1; size <= 13; size++) {
    const p = new CaptureParser();
    const got: CaptureFrame[] = [];
    for (let i = 0; i < file.length; i += size) {
      const r = p.push(file.subarray(i, i + size));
      if (!r.ok) assert.fail(r.error);
      got.push(...r.value);
    }
    assert.ok(p.finish().ok);
    assert.equal(got.length, 2, `chunk size ${size}`);
    same(got[1].data, FRAME);
  }
});

test('errors: not a capture, empty, cut short, bad block length, packet before interface', () => {
  const notCap = parseCapture(Buffer.from('hello world, not a capture'));
  assert.ok(!notCap.ok && /not a pcap or pcapng capture \(starts with 0x68656c6c\)/.test(notCap.error));
  const empty = parseCapture(new Uint8Array(0));
  assert.ok(!empty.ok && /empty file/.test(empty.error));
  const cut = parseCapture(Buffer.concat([h('d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000 01000000 00000000 2e000000 2e000000'), FRAME.subarray(0, 10)]));
  assert.ok(!cut.ok && /cut short/.test(cut.error), cut.ok ? '' : cut.error);
  const badLen = parseCapture(h('0a0d0d0a 1d000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000'));
  assert.ok(!badLen.ok && /not a multiple of 4/.test(badLen.error));
  const noIf = parseCapture(h(`
    0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
    06000000 24000000 00000000 00000000 01000000 02000000 02000000 4500 0000 24000000`));
  assert.ok(!noIf.ok && /interface 0/.test(noIf.error));
  const badVer = parseCapture(h('d4c3b2a1 0300 0000 00000000 00000000 00000400 01000000'));
  assert.ok(!badVer.ok && /version 3\.0/.test(badVer.error));
  const trailer = parseCapture(h('0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 18000000'));
  assert.ok(!trailer.ok && /trailing length/.test(trailer.error));
});

test('readCaptureFrames streams frames, then the error as its last item', async () => {
  const good = Buffer.concat([h('d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000 01000000 00000000 2e000000 2e000000'), FRAME]);
  const items = [];
  for await (const it of readCaptureFrames(Readable.from([good.subarray(0, 30), good.subarray(30), h('0100')]))) items.push(it);
  assert.equal(items.length, 2);
  assert.ok(items[0].ok);
  assert.ok(!items[1].ok && /cut short/.test(items[1].error));
});
