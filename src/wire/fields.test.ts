import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './fields.js';

const v6 = (s: string): Uint8Array => {
  const b = parseIPv6(s);
  assert.ok(b, s);
  return b;
};

test('IPv6 text is RFC 5952: lower case, first longest zero run compressed, single zero groups kept', () => {
  assert.equal(formatIPv6(v6('0:0:0:0:0:0:0:0'), 0), '::');
  assert.equal(formatIPv6(v6('::1'), 0), '::1');
  assert.equal(formatIPv6(v6('1::'), 0), '1::');
  assert.equal(formatIPv6(v6('FF02:0:0:0:0:1:2:3'), 0), 'ff02::1:2:3');
  assert.equal(formatIPv6(v6('2001:db8:0:0:1:0:0:1'), 0), '2001:db8::1:0:0:1');
  assert.equal(formatIPv6(v6('2001:db8:0:1:1:1:1:1'), 0), '2001:db8:0:1:1:1:1:1');
  assert.deepEqual([...v6('::ffff:1.2.3.4').subarray(10)], [0xff, 0xff, 1, 2, 3, 4]);
  for (const bad of ['', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::', '1.2.3.4', '::1.2.3.256']) {
    assert.equal(parseIPv6(bad), undefined, bad);
  }
});

test('IPv4 text', () => {
  assert.equal(formatIPv4(new Uint8Array([230, 4, 4, 1]), 0), '230.4.4.1');
  assert.deepEqual([...(parseIPv4('10.61.0.1') ?? [])], [10, 61, 0, 1]);
  for (const bad of ['', '1.2.3', '1.2.3.256', '1.2.3.4.5', 'a.b.c.d', '::1']) assert.equal(parseIPv4(bad), undefined, bad);
});

test('formatting then parsing gives the same 16 bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 7 }), (b, zeros) => {
      b.fill(0, zeros * 2, Math.min(16, zeros * 2 + 6)); // make zero runs common
      assert.deepEqual(parseIPv6(formatIPv6(b, 0)), b);
    }),
  );
});
