/**
 * Property: a capture we write (any format, byte order, resolution, link type, chunking) reads back
 * as the same UDP datagrams, and only those on the chosen port.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { newStats, readUdpDatagrams } from './datagrams.js';
import { formatEndpoint, formatIPv4, formatIPv6 } from './ip.js';
import { LinkType } from './link.js';
import {
  linkFrame, pcapFileHeader, pcapngEnhancedPacket, pcapngInterface, pcapngSectionHeader, pcapRecord,
  tsresolUnits, udpIpPacket, type PcapngInterfaceOptions,
} from './writer.js';

const PORT = 1044;

const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIPv4(b));
const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIPv6(b));
const linkTypes = [LinkType.ETHERNET, LinkType.LINUX_SLL, LinkType.LINUX_SLL2, LinkType.RAW, LinkType.NULL, LinkType.LOOP];

const datagram = fc.record({
  v6: fc.boolean(),
  a: v4,
  b: v4,
  a6: v6,
  b6: v6,
  srcPort: fc.oneof(fc.constant(PORT), fc.integer({ min: 1, max: 65535 })),
  dstPort: fc.oneof(fc.constant(PORT), fc.integer({ min: 1, max: 65535 })),
  payload: fc.uint8Array({ maxLength: 1500 }),
  // Whole microseconds, so every resolution we write represents it exactly.
  timeUs: fc.bigInt({ min: 0n, max: 4_000_000_000n * 1_000_000n }),
  vlans: fc.array(fc.integer({ min: 0, max: 4095 }), { maxLength: 2 }),
});

const captureFormat = fc.oneof(
  fc.record({ kind: fc.constant('pcap' as const), nano: fc.boolean(), bigEndian: fc.boolean() }),
  fc.record({ kind: fc.constant('pcapng' as const), tsresol: fc.constantFrom(6, 9, undefined), bigEndian: fc.boolean() }),
);

test('property: write a capture, read it back, get the same datagrams on the port', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(datagram, { maxLength: 12 }),
      captureFormat,
      fc.constantFrom(...linkTypes),
      fc.integer({ min: 1, max: 700 }),
      async (dgs, format, linkType, chunk) => {
        const frames = dgs.map((d) => {
          const srcAddr = d.v6 ? d.a6 : d.a;
          const dstAddr = d.v6 ? d.b6 : d.b;
          const ip = udpIpPacket({ srcAddr, dstAddr, srcPort: d.srcPort, dstPort: d.dstPort, payload: d.payload });
          return { timeNs: d.timeUs * 1000n, data: linkFrame(linkType, ip, linkType === LinkType.ETHERNET ? d.vlans : []) };
        });
        let file: Buffer;
        if (format.kind === 'pcap') {
          const o = { linkType, nano: format.nano, bigEndian: format.bigEndian };
          file = Buffer.concat([pcapFileHeader(o), ...frames.map((f) => pcapRecord(o, f))]);
        } else {
          const iface: PcapngInterfaceOptions = { linkType, tsresol: format.tsresol, bigEndian: format.bigEndian };
          assert.ok(tsresolUnits(format.tsresol) >= 1_000_000n);
          file = Buffer.concat([pcapngSectionHeader(format.bigEndian), pcapngInterface(iface), ...frames.map((f) => pcapngEnhancedPacket(0, iface, f))]);
        }
        const chunks: Buffer[] = [];
        for (let i = 0; i < file.length; i += chunk) chunks.push(file.subarray(i, i + chunk));
        const stats = newStats();
        const got = [];
        for await (const r of readUdpDatagrams(Readable.from(chunks), { port: PORT }, stats)) {
          if (!r.ok) assert.fail(r.error);
          if (r.value.kind !== 'datagram') assert.fail(r.value.message);
          got.push({
            frame: r.value.frame,
            timeNs: r.value.timeNs,
            src: r.value.src,
            dst: r.value.dst,
            payload: Buffer.from(r.value.datagram.payload).toString('hex'),
          });
        }
        const want = dgs
          .map((d, i) => ({
            frame: i + 1,
            timeNs: d.timeUs * 1000n,
            src: formatEndpoint(d.v6 ? d.a6 : d.a, d.srcPort),
            dst: formatEndpoint(d.v6 ? d.b6 : d.b, d.dstPort),
            payload: Buffer.from(d.payload).toString('hex'),
            onPort: d.srcPort === PORT || d.dstPort === PORT,
          }))
          .filter((w) => w.onPort)
          .map(({ onPort: _onPort, ...rest }) => rest);
        assert.deepEqual(got, want);
        assert.equal(stats.frames, dgs.length);
        assert.equal(stats.udpDatagrams, dgs.length);
        assert.equal(stats.portDatagrams, want.length);
      },
    ),
    { numRuns: 150 },
  );
});

/** Splits an IPv4 packet into fragments of `size` payload bytes (a multiple of 8), as a router would. */
function fragmentV4(packet: Uint8Array, size: number): Uint8Array[] {
  const header = packet.subarray(0, 20);
  const payload = packet.subarray(20);
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += size) {
    const part = payload.subarray(off, off + size);
    const more = off + size < payload.length;
    const f = new Uint8Array(20 + part.length);
    f.set(header);
    f.set(part, 20);
    f[2] = (20 + part.length) >> 8;
    f[3] = (20 + part.length) & 0xff;
    const flagsOff = (more ? 0x2000 : 0) | (off / 8);
    f[6] = flagsOff >> 8;
    f[7] = flagsOff & 0xff;
    out.push(f);
  }
  return out;
}

test('property: IPv4 fragments in any order reassemble to the datagram, reported at the last frame', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 4000 }),
      fc.integer({ min: 1, max: 200 }).map((n) => n * 8),
      fc.integer({ min: 0, max: 0xffff }),
      fc.func(fc.integer()),
      async (payload, size, ipId, order) => {
        const packet = udpIpPacket({ srcAddr: '10.64.0.1', dstAddr: '230.5.5.1', srcPort: 40000, dstPort: PORT, payload, ipId });
        const frags = fragmentV4(packet, size)
          .map((f, i) => ({ f, key: order(i) }))
          .sort((a, b) => a.key - b.key)
          .map((x) => x.f);
        const o = { linkType: LinkType.RAW };
        const file = Buffer.concat([pcapFileHeader(o), ...frags.map((f, i) => pcapRecord(o, { timeNs: BigInt(i) * 1000n, data: f }))]);
        const stats = newStats();
        const got = [];
        for await (const r of readUdpDatagrams(Readable.from([file]), { port: PORT }, stats)) {
          if (!r.ok) assert.fail(r.error);
          if (r.value.kind !== 'datagram') assert.fail(r.value.message);
          got.push(r.value);
        }
        assert.equal(got.length, 1);
        assert.equal(got[0].frame, frags.length);
        assert.deepEqual(Buffer.from(got[0].datagram.payload), Buffer.from(payload));
        assert.equal(got[0].datagram.fragments, frags.length);
        assert.equal(stats.reassembled, frags.length > 1 ? 1 : 0);
        assert.equal(stats.incompleteFragmentSets, 0);
      },
    ),
    { numRuns: 100 },
  );
});
