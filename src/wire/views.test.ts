// The zero-copy views agree with the Reprs on every message the codec can produce, never throw or read past the
// end on cut or mutated bytes, and their setters change exactly their field. Literal bytes first (smoltcp style).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AbortView } from './abort.js';
import { AnnounceView } from './announce.js';
import { EncryptedView, withSignatureLength } from './encrypted.js';
import { FileSegView } from './fileseg.js';
import { decodeHeader, HeaderView } from './header.js';
import { decodePacket, encodePacket, signatureSpan, viewDatagram } from './packet.js';
import { StatusView, encodeStatusRaw } from './status.js';
import { messages, packet, packetOf } from './arbitraries.test-util.js';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

test('literal ANNOUNCE: header and ANNOUNCE views read the fields protocol.txt puts there', () => {
  // an ANNOUNCE as uftp 4.10 sends it: plain, IPv4, no extensions, one client ID
  const d = hex('40 01 0003 0a630001 039a4ee2 00 32 00 00 01 06 00 14 00 00 0514 000003e8 00000000 e6040401 e6050505 0a630015');
  const h = viewDatagram(d);
  assert.ok(h.ok);
  assert.equal(h.value.func, 1);
  assert.equal(h.value.seq, 3);
  assert.equal(h.value.srcId, 0x0a630001);
  assert.equal(h.value.groupId, 0x039a4ee2);
  assert.equal(h.value.grtt, 0x32);
  const a = AnnounceView.check(d);
  assert.ok(a.ok);
  assert.equal(a.value.robust, 20);
  assert.equal(a.value.blockSize, 1300);
  assert.equal(a.value.publicAddr, '230.4.4.1');
  assert.equal(a.value.privateAddr, '230.5.5.5');
  assert.equal(a.value.encrypted, false);
  assert.equal(a.value.signatureSpan, undefined);
  assert.deepEqual(a.value.clientIds(), [0x0a630015]);
  // cut anywhere: an error, never a read past the end
  for (let n = 0; n < d.length; n++) {
    const v = AnnounceView.check(d.subarray(0, n));
    if (v.ok) assert.ok(n >= 16 + 24 && (n - 16 - 24) % 4 === 0, `accepted a cut at ${n}`);
  }
  // a header whose function byte disagrees with the message's
  const bad = Buffer.from(d);
  bad[16] = 2;
  assert.equal(viewDatagram(bad).ok, false);
});

test('literal ENCRYPTED: lengths must fill the datagram; withSignatureLength keeps header, IV counter and payload', () => {
  const d = hex('40 12 0007 0a630001 039a4ee2 00 00 00 00  0000000000000009 0004 0003  aabbccdd 010203');
  const e = EncryptedView.check(d);
  assert.ok(e.ok);
  assert.equal(e.value.ivCounter, 9n);
  assert.equal(e.value.signatureLength, 4);
  assert.deepEqual([...e.value.signature], [0xaa, 0xbb, 0xcc, 0xdd]);
  assert.deepEqual([...e.value.payload], [1, 2, 3]);
  const r = withSignatureLength(e.value, 6);
  const again = EncryptedView.check(r);
  assert.ok(again.ok);
  assert.equal(again.value.signatureLength, 6);
  assert.deepEqual([...again.value.signature], [0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...again.value.payload], [1, 2, 3]);
  assert.equal(again.value.ivCounter, 9n);
  assert.deepEqual(Buffer.from(r.subarray(0, 24)), d.subarray(0, 24));
  assert.equal(EncryptedView.check(d.subarray(0, d.length - 1)).ok, false, 'one byte short');
  assert.equal(EncryptedView.check(Buffer.concat([d, Buffer.from([0])])).ok, false, 'one byte too many');
});

test('HeaderView and viewDatagram agree with decodeHeader / decodePacket on every encodable packet', () => {
  fc.assert(
    fc.property(packet, (p) => {
      const d = encodePacket(p);
      const h = HeaderView.check(d);
      const r = decodeHeader(d);
      assert.ok(h.ok && r.ok);
      assert.deepEqual(h.value.toRepr(), r.value);
      assert.ok(viewDatagram(d).ok, 'a datagram the codec made passes the light check');
    }),
    { numRuns: 500 },
  );
});

test('AnnounceView agrees with the ANNOUNCE Repr, and its signature span with signatureSpan()', () => {
  fc.assert(
    fc.property(packetOf(messages.ANNOUNCE), (p) => {
      const d = encodePacket(p);
      const full = decodePacket(d);
      assert.ok(full.ok && full.value.message.type === 'ANNOUNCE');
      const m = full.value.message;
      const v = AnnounceView.check(d);
      assert.ok(v.ok);
      assert.equal(v.value.flags, m.flags);
      assert.equal(v.value.robust, m.robust);
      assert.equal(v.value.blockSize, m.blockSize);
      assert.equal(v.value.publicAddr, m.publicMcast);
      assert.equal(v.value.privateAddr, m.privateMcast);
      assert.deepEqual(v.value.clientIds(), m.clientIds);
      assert.equal(v.value.encrypted, m.extensions.some((x) => x.type === 'EXT_ENC_INFO'));
      const span = signatureSpan(d, full.value);
      const first = m.extensions.find((x) => x.type === 'EXT_ENC_INFO');
      if (first && first.type === 'EXT_ENC_INFO' && first.signature.length > 0) assert.deepEqual(v.value.signatureSpan, span ?? undefined);
    }),
    { numRuns: 300 },
  );
});

test('StatusView, FileSegView, EncryptedView and AbortView agree with their Reprs', () => {
  fc.assert(
    fc.property(fc.oneof(packetOf(messages.STATUS), packetOf(messages.FILESEG), packetOf(messages.ENCRYPTED), packetOf(messages.ABORT)), fc.nat(), (p, host) => {
      const d = encodePacket(p);
      const m = p.message;
      if (m.type === 'STATUS') {
        const v = StatusView.check(d);
        assert.ok(v.ok);
        assert.equal(v.value.fileId, m.fileId);
        assert.equal(v.value.section, m.section);
        assert.deepEqual([...v.value.naks], [...m.naks]);
        // the raw extensions passed on re-encode to the same message
        const again = encodeStatusRaw(m.fileId, m.section, v.value.extensions, v.value.naks);
        assert.deepEqual(Buffer.from(again), Buffer.from(d.subarray(16)));
      } else if (m.type === 'FILESEG') {
        const v = FileSegView.check(d);
        assert.ok(v.ok);
        assert.deepEqual([v.value.fileId, v.value.section, v.value.secBlock], [m.fileId, m.section, m.secBlock]);
        assert.deepEqual([...v.value.data], [...m.data]);
      } else if (m.type === 'ENCRYPTED') {
        const v = EncryptedView.check(d);
        assert.ok(v.ok);
        assert.equal(v.value.ivCounter, m.ivCounter);
        assert.deepEqual([...v.value.signature], [...m.signature]);
        assert.deepEqual([...v.value.payload], [...m.payload]);
      } else if (m.type === 'ABORT') {
        const b = Uint8Array.from(d);
        const v = AbortView.check(b);
        assert.ok(v.ok);
        assert.equal(v.value.host, m.host);
        v.value.setHost(host >>> 0);
        const after = decodePacket(b);
        assert.ok(after.ok && after.value.message.type === 'ABORT');
        assert.equal(after.value.message.host, host >>> 0);
        assert.equal(after.value.message.message, m.message, 'only Host changed');
      }
    }),
    { numRuns: 400 },
  );
});

test('views never throw on random, cut or mutated bytes', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), packet.map((p) => encodePacket(p))), fc.nat(), fc.uint8Array({ maxLength: 4 }), (d0, cut, noise) => {
      const d = Uint8Array.from(d0.subarray(0, d0.length === 0 ? 0 : cut % (d0.length + 1)));
      for (let i = 0; i < noise.length && d.length > 0; i++) d[(cut + i * 13) % d.length] ^= noise[i];
      for (const check of [viewDatagram, AnnounceView.check, StatusView.check, FileSegView.check, EncryptedView.check, AbortView.check]) {
        const v = check(d);
        if (v.ok && v.value instanceof AnnounceView) {
          void v.value.publicAddr;
          void v.value.privateAddr;
          void v.value.clientIds();
          void v.value.signatureSpan;
        }
      }
    }),
    { numRuns: 2000 },
  );
});
