/** Property tests: every message type and extension round-trips; encode is a fresh, stable byte string. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { extension, keyBlob, messages, packet, packetOf } from './arbitraries.test-util.js';
import { decodeExtensions, encodeExtensionsInto, extensionLength } from './extensions.js';
import { decodeKeyBlob, encodeKeyBlob } from './keyblob.js';
import { decodeMessageBody, decodePacket, encodeMessageBody, encodePacket, encodePacketInto, packetLength, type Message } from './packet.js';

const RUNS = 300;

for (const [type, arb] of Object.entries(messages) as [Message['type'], fc.Arbitrary<Message>][]) {
  test(`${type}: decode(encode(p)) deep-equals p, and re-encoding gives the same bytes`, () => {
    fc.assert(
      fc.property(packetOf(arb), (p) => {
        const bytes = encodePacket(p);
        assert.equal(bytes.length, packetLength(p));
        const back = decodePacket(bytes);
        if (!back.ok) assert.fail(`${back.error.kind}: ${back.error.message}`);
        assert.deepStrictEqual(back.value, p);
        assert.deepStrictEqual(encodePacket(back.value), bytes);
        if (type !== 'ENCRYPTED') {
          const body = decodeMessageBody(encodeMessageBody(p.message));
          if (!body.ok) assert.fail(body.error.message);
          assert.deepStrictEqual(body.value, p.message);
        }
      }),
      { numRuns: RUNS },
    );
  });
}

test('IPv4 and IPv6 ANNOUNCE: the IPV6 flag follows the address family', () => {
  fc.assert(
    fc.property(packetOf(messages.ANNOUNCE), (p) => {
      const m = p.message;
      assert.ok(m.type === 'ANNOUNCE');
      const bytes = encodePacket(p);
      const v6 = m.publicMcast.includes(':');
      assert.equal((bytes[16 + 2] & 0x04) !== 0, v6);
      const hlenMin = 16 + (v6 ? 32 : 8);
      assert.ok(bytes[16 + 1] * 4 >= hlenMin);
    }),
    { numRuns: RUNS },
  );
});

test('every extension round-trips on its own and in a list', () => {
  fc.assert(
    fc.property(fc.array(extension, { minLength: 1, maxLength: 3 }), (xs) => {
      const len = xs.reduce((n, x) => n + extensionLength(x), 0);
      const out = new Uint8Array(len);
      assert.equal(encodeExtensionsInto(xs, out, 0), len);
      const back = decodeExtensions(out, 0, len, 'test');
      if (!back.ok) assert.fail(back.error.message);
      assert.deepStrictEqual(back.value, xs);
    }),
    { numRuns: RUNS * 2 },
  );
});

test('both key blob kinds round-trip', () => {
  fc.assert(
    fc.property(keyBlob, (k) => {
      const back = decodeKeyBlob(encodeKeyBlob(k));
      if (!back.ok) assert.fail(back.error.message);
      assert.deepStrictEqual(back.value, k);
    }),
    { numRuns: RUNS },
  );
});

test('encode produces fresh bytes; encodePacketInto writes the same bytes into a reused buffer', () => {
  const buf = new Uint8Array(65536);
  fc.assert(
    fc.property(packet, (p) => {
      const a = encodePacket(p);
      const n = encodePacketInto(p, buf);
      assert.deepStrictEqual(buf.subarray(0, n), a);
      const back = decodePacket(a);
      assert.ok(back.ok);
      const again = encodePacket(back.value);
      assert.notEqual(again.buffer, a.buffer); // not a view of the decoded input
      again.fill(0);
      assert.deepStrictEqual(decodePacket(a).ok, true);
    }),
    { numRuns: RUNS },
  );
});

test('encodePacket sets header.func from the message type', () => {
  fc.assert(
    fc.property(packet, (p) => {
      const bytes = encodePacket({ header: { ...p.header, func: 0 }, message: p.message });
      const back = decodePacket(bytes);
      assert.ok(back.ok);
      if (back.ok) assert.equal(back.value.header.func, p.header.func);
    }),
    { numRuns: 100 },
  );
});
