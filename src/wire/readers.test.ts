// The allocation-free readers of the data path (DatagramReader, FileSegReader) agree with the views they stand in
// for (viewDatagram, FileSegView.check): same verdict and same fields on every encodable packet and on random, cut
// or mutated bytes, with one reader reused throughout (a field left over from an earlier datagram would show).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FileSegReader, FileSegView } from './fileseg.js';
import { DatagramReader, encodePacket, viewDatagram } from './packet.js';
import { messages, packet, packetOf } from './arbitraries.test-util.js';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

test('literal FILESEG: the readers read the fields protocol.txt puts there; a cut or inconsistent one is refused', () => {
  // header (seq 7, server 0a630001, group 039a4ee2, instance 2), FILESEG file 5, section 3, block 9, 4 data bytes
  const d = hex('40 07 0007 0a630001 039a4ee2 02 32 00 00  07 02 0005 0003 0009  a1a2a3a4');
  const h = new DatagramReader();
  assert.equal(h.read(d), true);
  assert.deepEqual([h.func, h.seq, h.srcId, h.groupId, h.groupInst], [7, 7, 0x0a630001, 0x039a4ee2, 2]);
  const f = new FileSegReader();
  assert.equal(f.read(d), true);
  assert.deepEqual([f.fileId, f.section, f.secBlock], [5, 3, 9]);
  assert.deepEqual([...f.block(d)], [0xa1, 0xa2, 0xa3, 0xa4]);
  assert.equal(f.extStart, f.extEnd, 'no extensions');
  for (let n = 0; n < 24; n++) assert.equal(f.read(d.subarray(0, n)), false, `FILESEG cut at ${n}`);
  for (let n = 0; n < 20; n++) assert.equal(h.read(d.subarray(0, n)), false, `datagram cut at ${n}`);
  const other = Buffer.from(d);
  other[16] = 2; // the message's function differs from the header's
  assert.equal(h.read(other), false);
  const version = Buffer.from(d);
  version[0] = 0x30;
  assert.equal(h.read(version), false);
  const long = Buffer.from(d);
  long[17] = 8; // header length 32 bytes: more than the message holds
  assert.equal(f.read(long), false);
  assert.equal(h.read(long), false);
  assert.equal(viewDatagram(long).ok, false);
  const ext = Buffer.concat([d.subarray(0, 24), Buffer.alloc(4), d.subarray(24)]);
  ext[17] = 3; // 4 bytes of header extension before the block
  assert.equal(f.read(ext), true);
  assert.deepEqual([f.extStart, f.extEnd, f.block(ext).length], [24, 28, 4]);
});

test('DatagramReader agrees with viewDatagram, FileSegReader with FileSegView, on every encodable packet', () => {
  const h = new DatagramReader();
  const f = new FileSegReader();
  fc.assert(
    fc.property(fc.oneof(packet, packetOf(messages.FILESEG)), (p) => {
      const d = encodePacket(p);
      const v = viewDatagram(d);
      assert.equal(h.read(d), v.ok);
      if (v.ok) assert.deepEqual([h.func, h.seq, h.srcId, h.groupId, h.groupInst], [v.value.func, v.value.seq, v.value.srcId, v.value.groupId, v.value.groupInst]);
      if (p.message.type !== 'FILESEG') return;
      const s = FileSegView.check(d);
      assert.ok(s.ok);
      assert.equal(f.read(d), true);
      assert.deepEqual([f.fileId, f.section, f.secBlock], [s.value.fileId, s.value.section, s.value.secBlock]);
      assert.deepEqual(Buffer.from(f.block(d)), Buffer.from(s.value.data));
      assert.deepEqual(Buffer.from(d.subarray(f.extStart, f.extEnd)), Buffer.from(s.value.extensions));
    }),
    { numRuns: 1000 },
  );
});

test('the readers give the views\' verdict on random, cut or mutated bytes, and never throw', () => {
  const h = new DatagramReader();
  const f = new FileSegReader();
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.oneof(packet, packetOf(messages.FILESEG)).map((p) => encodePacket(p))), fc.nat(), fc.uint8Array({ maxLength: 4 }), (d0, cut, noise) => {
      const d = Uint8Array.from(d0.subarray(0, d0.length === 0 ? 0 : cut % (d0.length + 1)));
      for (let i = 0; i < noise.length && d.length > 0; i++) d[(cut + i * 13) % d.length] ^= noise[i];
      const v = viewDatagram(d);
      assert.equal(h.read(d), v.ok);
      if (v.ok) assert.deepEqual([h.func, h.seq, h.srcId, h.groupId, h.groupInst], [v.value.func, v.value.seq, v.value.srcId, v.value.groupId, v.value.groupInst]);
      const s = FileSegView.check(d);
      assert.equal(f.read(d), s.ok);
      if (s.ok) {
        assert.deepEqual([f.fileId, f.section, f.secBlock], [s.value.fileId, s.value.section, s.value.secBlock]);
        assert.equal(f.block(d).length, s.value.data.length);
      }
    }),
    { numRuns: 3000 },
  );
});
