import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  quantizeGrtt, quantizeGroupSize, quantizeRate, RTT_MAX, RTT_MIN, unquantizeGrtt, unquantizeGroupSize, unquantizeRate,
} from './quantize.js';

test('GRTT: RFC 5401 3.7.4 formula at both ends and in the middle', () => {
  assert.equal(unquantizeGrtt(0), RTT_MIN);
  assert.equal(unquantizeGrtt(31), 32 * RTT_MIN);
  assert.equal(unquantizeGrtt(255), RTT_MAX);
  assert.ok(Math.abs(unquantizeGrtt(100) - RTT_MAX / Math.exp(155 / 13)) < 1e-15);
  assert.equal(quantizeGrtt(0), 0);
  assert.equal(quantizeGrtt(-1), 0);
  assert.equal(quantizeGrtt(Number.NaN), 0);
  assert.equal(quantizeGrtt(1e9), 255);
  assert.equal(quantizeGrtt(5e-6), 4); // floor(5e-6 / 1e-6) - 1
  assert.equal(quantizeGrtt(0.5), Math.ceil(255 - 13 * Math.log(RTT_MAX / 0.5)));
});

test('GRTT: bytes seen from UFTP 4.10 (-r 0.2 -> 0x91, -r 0.1 -> 0x88, 0.0105 s measured -> 0x6a)', () => {
  assert.equal(quantizeGrtt(0.2), 0x91);
  assert.equal(quantizeGrtt(0.1), 0x88);
  assert.equal(quantizeGrtt(0.5), 157);
  assert.equal(quantizeGrtt(0.0105), 0x6a);
  // tshark (Wireshark's UFTP4 dissector) shows 0.211446517977342 for 0x91
  assert.ok(Math.abs(unquantizeGrtt(0x91) - 0.211446517977342) < 1e-12);
});

test('GRTT: quantize(unquantize(q)) === q for every byte; monotone; never below the true RTT', () => {
  for (let q = 0; q < 256; q++) assert.equal(quantizeGrtt(unquantizeGrtt(q)), q, `q=${q}`);
  for (let q = 1; q < 256; q++) assert.ok(unquantizeGrtt(q) > unquantizeGrtt(q - 1));
  fc.assert(
    fc.property(fc.double({ min: RTT_MIN, max: RTT_MAX, noNaN: true }), fc.double({ min: RTT_MIN, max: RTT_MAX, noNaN: true }), (a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      assert.ok(quantizeGrtt(lo) <= quantizeGrtt(hi));
      if (lo >= 33 * RTT_MIN) assert.ok(unquantizeGrtt(quantizeGrtt(lo)) >= lo * (1 - 1e-9));
    }),
  );
});

test('group size: bytes seen from UFTP 4.10 (1, 2, 3, 13 clients -> 0x18, 0x30, 0x50, 0x21)', () => {
  assert.equal(quantizeGroupSize(0), 0);
  assert.equal(quantizeGroupSize(1), 0x18);
  assert.equal(quantizeGroupSize(2), 0x30);
  assert.equal(quantizeGroupSize(3), 0x50);
  assert.equal(quantizeGroupSize(13), 0x21);
  assert.equal(quantizeGroupSize(10), 31 << 3); // 9.6875 is nearer than 3 * 10^1 * 10/32 = 9.375
  assert.equal(quantizeGroupSize(100), (31 << 3) | 1);
  assert.equal(quantizeGroupSize(1000), (31 << 3) | 2);
  assert.equal(quantizeGroupSize(1200), (4 << 3) | 3); // 1250 is nearer than 968.75
  assert.equal(quantizeGroupSize(1e12), 0xff);
  // tshark shows 1 and 13 for 0x18 and 0x21
  assert.equal(unquantizeGroupSize(0x18), 1);
  assert.equal(unquantizeGroupSize(0x21), 13);
  assert.equal(unquantizeGroupSize(0x50), 3);
});

test('group size: monotone and the nearest representable value', () => {
  const values = Array.from({ length: 256 }, (_, b) => ((b >> 3) * 10 / 32) * 10 ** (b & 7));
  let prev = 0;
  for (let n = 1; n <= 2_000_000; n += n < 2000 ? 1 : 9973) {
    const v = values[quantizeGroupSize(n)];
    assert.ok(v >= prev, `n=${n} not monotone`);
    for (const w of values) assert.ok(Math.abs(w - n) >= Math.abs(v - n) - 1e-9, `n=${n}: ${w} is nearer than ${v}`);
    prev = v;
  }
});

test('TFMCC rates: 12-bit mantissa, 4-bit exponent (0x9274 is 57202 per tshark; 0x1cf4 is 11303)', () => {
  assert.equal(Math.floor(unquantizeRate(0x9274)), 57202);
  assert.equal(Math.floor(unquantizeRate(0x1cf4)), 11303);
  assert.equal(quantizeRate(0), 0);
  for (const r of [1, 9.99, 10, 1234, 57202, 11303, 1e6, 1.25e8]) {
    const back = unquantizeRate(quantizeRate(r));
    assert.ok(Math.abs(back - r) / r < 2.5e-3, `rate ${r} -> ${back}`);
  }
  assert.equal(quantizeRate(unquantizeRate(0x9274)), 0x9274);
});
