import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ipFamily, parseIPv4, parseIPv6, isMulticastAddress, isSsmAddress, uidFromAddress, formatUid } from './address.js';

test('parse IPv4 and IPv6 to bytes', () => {
  assert.deepEqual(parseIPv4('10.63.0.1'), Uint8Array.from([10, 63, 0, 1]));
  assert.equal(parseIPv4('10.63.0'), undefined);
  assert.deepEqual(parseIPv6('ff15::1'), Uint8Array.from([0xff, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
  assert.deepEqual(parseIPv6('fe80::1:2%eth0')?.subarray(12), Uint8Array.from([0, 1, 0, 2]));
  assert.deepEqual(parseIPv6('::ffff:10.1.2.3')?.subarray(10), Uint8Array.from([0xff, 0xff, 10, 1, 2, 3]));
  assert.deepEqual(parseIPv6('1:2:3:4:5:6:7:8')?.subarray(14), Uint8Array.from([0, 8]));
  assert.equal(parseIPv6('1::2::3'), undefined);
  assert.equal(ipFamily('fe80::1%b1'), 6);
  assert.equal(ipFamily('host.example'), 0);
});

test('property: parseIPv6 agrees with the canonical 8-group form', () => {
  fc.assert(
    fc.property(fc.ipV6(), (a) => {
      const b = parseIPv6(a);
      assert.ok(b, a);
      const full = Array.from({ length: 8 }, (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]).toString(16)).join(':');
      assert.deepEqual(parseIPv6(full), b);
    }),
  );
});

test('SSM and multicast ranges', () => {
  for (const a of ['232.0.0.1', '232.255.255.255', 'ff3e::8000:1', 'ff35::1234', 'ff30::1']) assert.equal(isSsmAddress(a), true, a);
  for (const a of ['231.255.255.255', '233.0.0.1', '230.4.4.1', 'ff15::1', 'ff3e:0:0:0:1::1', 'ff0e::1', 'fd00::1', 'x']) {
    assert.equal(isSsmAddress(a), false, a);
  }
  assert.equal(isMulticastAddress('224.0.0.1'), true);
  assert.equal(isMulticastAddress('239.255.255.255'), true);
  assert.equal(isMulticastAddress('240.0.0.1'), false);
  assert.equal(isMulticastAddress('ff02::1'), true);
  assert.equal(isMulticastAddress('fe80::1'), false);
});

test('UID from an address: IPv4 is the address, IPv6 its last 4 bytes', () => {
  assert.equal(uidFromAddress('10.63.1.2'), 0x0a3f0102);
  assert.equal(uidFromAddress('255.1.2.3'), 0xff010203);
  assert.equal(uidFromAddress('fe80::213:72ff:fed6:69ca'), 0xfed669ca);
  assert.equal(uidFromAddress('nope'), undefined);
  assert.equal(formatUid(0x0a3f0102), '0x0A3F0102');
});
