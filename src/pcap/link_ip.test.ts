import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIPv6, UdpExtractor, type IpDecode } from './ip.js';
import { decodeLink, LinkType, type LinkDecode } from './link.js';
import { parseIPv6 } from './writer.js';

function h(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}
function hexOf(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

// IPv4 10.64.0.1 -> 230.4.4.1, UDP 53430 -> 1044, payload "deadbeef".
const IP4 = '4500 0020 1234 0000 4011 0000 0a400001 e6040401  d0b6 0414 000c 0000  deadbeef';
// IPv6 fd00::1 -> ff02::1:3, UDP 1044 -> 1044, payload "cafe".
const IP6 =
  '6000 0000 000a 11 40 fd000000000000000000000000000001 ff020000000000000000000000010003  0414 0414 000a 0000  cafe';

function ip(r: LinkDecode): { version: number; hex: string } {
  if (r.kind !== 'ip') assert.fail(`expected IP, got ${JSON.stringify(r)}`);
  return { version: r.version, hex: hexOf(r.packet) };
}

test('Ethernet, plain and with 802.1Q + 802.1ad tags', () => {
  const plain = decodeLink(LinkType.ETHERNET, h(`01005e040401 020000000001 0800 ${IP4}`));
  assert.deepEqual(ip(plain), { version: 4, hex: hexOf(h(IP4)) });
  const tagged = decodeLink(LinkType.ETHERNET, h(`01005e040401 020000000001 88a8 0064 8100 0005 86dd ${IP6}`));
  assert.deepEqual(ip(tagged), { version: 6, hex: hexOf(h(IP6)) });
  const arp = decodeLink(LinkType.ETHERNET, h('ffffffffffff 020000000001 0806 0001080006040001'));
  assert.equal(arp.kind, 'other');
  assert.equal(decodeLink(LinkType.ETHERNET, h('ffffffffffff 0200')).kind, 'error');
});

test('Linux cooked captures v1 (113) and v2 (276)', () => {
  const sll = decodeLink(LinkType.LINUX_SLL, h(`0004 0001 0006 020000000001 0000 0800 ${IP4}`));
  assert.deepEqual(ip(sll), { version: 4, hex: hexOf(h(IP4)) });
  const sll2 = decodeLink(LinkType.LINUX_SLL2, h(`86dd 0000 00000003 0001 04 06 020000000001 0000 ${IP6}`));
  assert.deepEqual(ip(sll2), { version: 6, hex: hexOf(h(IP6)) });
  assert.equal(decodeLink(LinkType.LINUX_SLL2, h('0800 0000 00000003')).kind, 'error');
});

test('raw IP (101, 228, 229) and loopback (0 both byte orders, 108)', () => {
  assert.equal(ip(decodeLink(LinkType.RAW, h(IP4))).version, 4);
  assert.equal(ip(decodeLink(LinkType.RAW, h(IP6))).version, 6);
  assert.equal(ip(decodeLink(LinkType.IPV4, h(IP4))).version, 4);
  assert.equal(ip(decodeLink(LinkType.IPV6, h(IP6))).version, 6);
  assert.deepEqual(ip(decodeLink(LinkType.NULL, h(`02000000 ${IP4}`))), { version: 4, hex: hexOf(h(IP4)) });
  assert.deepEqual(ip(decodeLink(LinkType.NULL, h(`0000001e ${IP6}`))), { version: 6, hex: hexOf(h(IP6)) });
  assert.deepEqual(ip(decodeLink(LinkType.NULL, h(`0a000000 ${IP6}`))), { version: 6, hex: hexOf(h(IP6)) });
  assert.deepEqual(ip(decodeLink(LinkType.LOOP, h(`00000002 ${IP4}`))), { version: 4, hex: hexOf(h(IP4)) });
  assert.equal(decodeLink(147, h(IP4)).kind, 'other');
});

function udpOf(r: IpDecode) {
  if (r.kind !== 'udp') assert.fail(`expected UDP, got ${JSON.stringify(r)}`);
  const d = r.datagram;
  return { src: `${d.srcAddr}:${d.srcPort}`, dst: `${d.dstAddr}:${d.dstPort}`, payload: hexOf(d.payload), declared: d.declaredLength, fragments: d.fragments };
}

test('IPv4 UDP, with options and Ethernet padding after Total Length', () => {
  const x = new UdpExtractor();
  assert.deepEqual(udpOf(x.decode(4, h(IP4), 0n)), { src: '10.64.0.1:53430', dst: '230.4.4.1:1044', payload: 'deadbeef', declared: 4, fragments: 1 });
  // IHL 6 (one option word), padded with 6 zero bytes on the wire.
  const opt = h('4600 0024 0000 0000 4011 0000 0a400001 0a400002 94040000  0414 0414 000c 0000 01020304 000000000000');
  assert.deepEqual(udpOf(x.decode(4, opt, 0n)), { src: '10.64.0.1:1044', dst: '10.64.0.2:1044', payload: '01020304', declared: 4, fragments: 1 });
  assert.equal(x.decode(4, h('4500 0020 0000 0000 4006 0000 0a400001 0a400002'), 0n).kind, 'other'); // TCP
});

test('IPv4 fragments are reassembled in any order, at the completing frame', () => {
  // UDP 1044 -> 1044 with 16 payload bytes 00..0f, split at 16 bytes of IP payload (8 UDP header + 8 data).
  const f1 = h('4500 0024 abcd 2000 4011 0000 0a400001 e6040401  0414 0414 0018 0000 0001020304050607');
  const f2 = h('4500 001c abcd 0002 4011 0000 0a400001 e6040401  08090a0b0c0d0e0f');
  for (const order of [[f1, f2], [f2, f1]]) {
    const x = new UdpExtractor();
    assert.equal(x.decode(4, order[0], 1n).kind, 'fragment');
    assert.equal(x.pendingCount, 1);
    const r = udpOf(x.decode(4, order[1], 2n));
    assert.deepEqual(r, { src: '10.64.0.1:1044', dst: '230.4.4.1:1044', payload: '000102030405060708090a0b0c0d0e0f', declared: 16, fragments: 2 });
    assert.equal(x.pendingCount, 0);
  }
  // A fragment cut by the snaplen cannot be reassembled: an error, not a wrong datagram.
  const cut = new UdpExtractor().decode(4, f1.subarray(0, 30), 0n);
  assert.equal(cut.kind, 'error');
  // Fragment state expires by capture time.
  const x = new UdpExtractor({ timeoutNs: 10n });
  x.decode(4, f1, 0n);
  assert.equal(x.decode(4, f2, 100n).kind, 'fragment');
  assert.equal(x.droppedFragmentSets, 1);
});

test('IPv6 UDP behind hop-by-hop and destination options headers', () => {
  const withExt = h(`
    6000 0000 001a 00 40 fd000000000000000000000000000001 ff020000000000000000000000010003
    3c 00 0104 00000000
    11 00 0104 00000000
    0414 0414 000a 0000 cafe`);
  assert.deepEqual(udpOf(new UdpExtractor().decode(6, withExt, 0n)), {
    src: 'fd00::1:1044', dst: 'ff02::1:3:1044', payload: 'cafe', declared: 2, fragments: 1,
  });
  const esp = h('6000 0000 0008 32 40 fd000000000000000000000000000001 ff020000000000000000000000010003 0000000100000001');
  assert.equal(new UdpExtractor().decode(6, esp, 0n).kind, 'other');
});

test('IPv6 fragments are reassembled', () => {
  const hdr = (len: string) => `6000 0000 ${len} 2c 40 fd000000000000000000000000000001 fd000000000000000000000000000002`;
  // UDP of 8 + 12 bytes, split after 16 bytes of fragmentable part.
  const f1 = h(`${hdr('0018')} 11 00 0001 00000007  0414 0414 0014 0000 a0a1a2a3a4a5a6a7`);
  const f2 = h(`${hdr('000c')} 11 00 0010 00000007  a8a9aaab`);
  const x = new UdpExtractor();
  assert.equal(x.decode(6, f2, 0n).kind, 'fragment');
  assert.deepEqual(udpOf(x.decode(6, f1, 0n)), {
    src: 'fd00::1:1044', dst: 'fd00::2:1044', payload: 'a0a1a2a3a4a5a6a7a8a9aaab', declared: 12, fragments: 2,
  });
  // Atomic fragment (offset 0, M clear) is a whole packet.
  const atomic = h(`${hdr('0012')} 11 00 0000 00000009  0414 0414 000a 0000 cafe`);
  assert.equal(udpOf(new UdpExtractor().decode(6, atomic, 0n)).payload, 'cafe');
});

test('UDP errors keep the ports; a snaplen cut keeps the declared length', () => {
  const x = new UdpExtractor();
  const short = x.decode(4, h('4500 0020 0000 0000 4011 0000 0a400001 0a400002  0414 0414 0004 0000 00000000'), 0n);
  assert.ok(short.kind === 'error' && short.ports?.dst === 1044 && /UDP length 4 < 8/.test(short.message));
  const long = x.decode(4, h('4500 0020 0000 0000 4011 0000 0a400001 0a400002  0414 0414 00ff 0000 00000000'), 0n);
  assert.ok(long.kind === 'error' && /exceeds the IP payload/.test(long.message));
  // Captured 2 of 4 payload bytes (IP total length 32, 30 captured).
  const cut = udpOf(x.decode(4, h(IP4).subarray(0, 30), 0n));
  assert.equal(cut.payload, 'dead');
  assert.equal(cut.declared, 4);
  assert.equal(x.decode(4, h('4500 0020 0000'), 0n).kind, 'error');
  assert.equal(x.decode(4, h('4f00 0020 0000 0000 4011 0000 0a400001 0a400002'), 0n).kind, 'error');
});

test('formatIPv6 follows RFC 5952', () => {
  const f = (s: string) => formatIPv6(h(s));
  assert.equal(f('20010db8000000000000000000000001'), '2001:db8::1');
  assert.equal(f('00000000000000000000000000000000'), '::');
  assert.equal(f('00000000000000000000000000000001'), '::1');
  assert.equal(f('20010db8000000010000000000000001'), '2001:db8:0:1::1');
  assert.equal(f('20010db8000000000001000000000001'), '2001:db8::1:0:0:1');
  assert.equal(f('20010db8000100010001000100010001'), '2001:db8:1:1:1:1:1:1');
  assert.equal(f('20010db8000000010001000100010001'), '2001:db8:0:1:1:1:1:1');
  assert.equal(f('00000000000000000000ffffc0000201'), '::ffff:192.0.2.1');
  assert.equal(f('ff020000000000000000000000010003'), 'ff02::1:3');
});

test('writer parseIPv6 inverts formatIPv6, mapped addresses included', () => {
  for (const s of ['::', '::1', '2001:db8::1:0:0:1', '::ffff:192.0.2.1', 'ff02::1:3', '2001:db8:1:1:1:1:1:1']) {
    assert.equal(formatIPv6(parseIPv6(s)), s);
  }
});
