import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { encodePacket, type Message, type UftpHeader } from '../wire/index.js';
import { newStats, readUdpDatagrams } from './datagrams.js';
import { hexId, inspectEvent, InspectSummary, isoTime, snakeCase, toJsonValue, type Inspected } from './inspect.js';
import { LinkType } from './link.js';
import { linkFrame, udpIpPacket, writePcap } from './writer.js';

const HEADER: UftpHeader = {
  version: 0x40, func: 0, seq: 7, srcId: 0x0a400001, groupId: 0xc9828e08, groupInst: 2, grtt: 106, gsize: 24, reserved: 0,
};

function datagram(message: Message, header: Partial<UftpHeader> = {}): Uint8Array {
  return encodePacket({ header: { ...HEADER, ...header }, message });
}

async function inspectAll(payloads: Uint8Array[], port = 1044): Promise<Inspected[]> {
  const file = writePcap(
    { linkType: LinkType.ETHERNET },
    payloads.map((payload, i) => ({
      timeNs: 1_795_378_063_000_000_000n + BigInt(i) * 1_500_000n,
      data: linkFrame(LinkType.ETHERNET, udpIpPacket({ srcAddr: '10.64.0.1', dstAddr: '230.4.4.1', srcPort: 40000, dstPort: port, payload })),
    })),
  );
  const out: Inspected[] = [];
  for await (const r of readUdpDatagrams(Readable.from([file]), { port: 1044 })) {
    if (!r.ok) assert.fail(r.error);
    out.push(inspectEvent(r.value));
  }
  return out;
}

test('snakeCase, hexId, isoTime', () => {
  assert.equal(snakeCase('ivCounter'), 'iv_counter');
  assert.equal(snakeCase('publicMcast'), 'public_mcast');
  assert.equal(snakeCase('clientIds'), 'client_ids');
  assert.equal(snakeCase('secBlock'), 'sec_block');
  assert.equal(snakeCase('type'), 'type');
  assert.equal(hexId(0x0a400002), '0x0a400002');
  assert.equal(hexId(0xffffffff), '0xffffffff');
  assert.equal(isoTime(1_795_378_063_328_304_999n), '2026-11-22T20:07:43.328304Z');
  assert.equal(isoTime(0n), '1970-01-01T00:00:00.000000Z');
});

test('toJsonValue: bytes as hex, bigints, IDs as hex, nested objects snake_cased', () => {
  assert.deepEqual(
    toJsonValue({
      ivCounter: 5n,
      big: 2n ** 60n,
      keys: [{ clientId: 0x0a400002, encryptedGroupMaster: Uint8Array.of(1, 0xab) }],
      publicKey: { kind: 'EC', curve: 23, key: new Uint8Array([0xff]) },
      dhKey: null,
      fileId: 1,
      host: 0x01020304,
      skipped: undefined,
    }),
    {
      iv_counter: 5,
      big: '1152921504606846976',
      keys: [{ client_id: '0x0a400002', encrypted_group_master: '01ab' }],
      public_key: { kind: 'EC', curve: 23, key: 'ff' },
      dh_key: null,
      file_id: 1,
      host: '0x01020304',
    },
  );
});

test('JSON record: header fields first, unquantized grtt/gsize, message fields in snake_case, names as text', async () => {
  const [x] = await inspectAll([
    datagram({
      type: 'FILEINFO', fileId: 1, fileType: 0, fileSize: 20000, fileTimestamp: 1795378061,
      timestamp: { sec: 1795378065, usec: 401766 }, name: new TextEncoder().encode('dir/file.bin'), linkName: new Uint8Array(0),
      extensions: [], clientIds: [0x0a400002, 0x0a400003],
    }),
  ]);
  assert.equal(x.error, null);
  assert.deepEqual(Object.keys(x.json).slice(0, 11), ['type', 'seq', 'src_id', 'group_id', 'group_inst', 'grtt', 'gsize', 'src', 'dst', 'time', 'frame']);
  assert.equal(x.json.type, 'FILEINFO');
  assert.equal(x.json.seq, 7);
  assert.equal(x.json.src_id, '0x0a400001');
  assert.equal(x.json.group_id, '0xc9828e08');
  assert.equal(x.json.group_inst, 2);
  assert.ok(Math.abs((x.json.grtt as number) - 0.0105273) < 1e-6);
  assert.equal(x.json.gsize, 1);
  assert.equal(x.json.grtt_q, 106);
  assert.equal(x.json.gsize_q, 24);
  assert.equal(x.json.src, '10.64.0.1:40000');
  assert.equal(x.json.dst, '230.4.4.1:1044');
  assert.equal(x.json.time, '2026-11-22T20:07:43.000000Z');
  assert.equal(x.json.frame, 1);
  assert.equal(x.json.file_size, 20000);
  assert.equal(x.json.name, 'dir/file.bin');
  assert.deepEqual(x.json.timestamp, { sec: 1795378065, usec: 401766 });
  assert.deepEqual(x.json.client_ids, ['0x0a400002', '0x0a400003']);
  assert.match(x.line, /^20:07:43\.000000 10\.64\.0\.1:40000 -> 230\.4\.4\.1:1044 FILEINFO seq=7 /);
});

test('ENCRYPTED keeps its name as type; a bad datagram gets error and keeps the header', async () => {
  const enc = datagram({ type: 'ENCRYPTED', ivCounter: 3n, signature: new Uint8Array(0), payload: Uint8Array.of(1, 2, 3, 4) });
  const badBody = datagram({ type: 'DONE', fileId: 1, section: 0, extensions: [], clientIds: [] });
  badBody[17] = 200; // DONE's header length byte: far beyond the datagram
  const notUftp = Uint8Array.of(1, 2, 3);
  const xs = await inspectAll([enc, badBody, notUftp]);
  assert.equal(xs[0].json.type, 'ENCRYPTED');
  assert.equal(xs[0].json.iv_counter, 3);
  assert.equal(xs[0].json.payload, '01020304');
  assert.equal(xs[1].json.type, 'DONE');
  assert.equal(xs[1].json.seq, 7);
  assert.equal(typeof xs[1].json.error, 'string');
  assert.match(xs[1].line, /ERROR DONE/);
  assert.equal(xs[2].json.type, null);
  assert.match(String(xs[2].json.error), /UFTP header/);
  const s = new InspectSummary();
  for (const x of xs) s.add(x);
  const j = s.toJson(newStats(), 1044);
  assert.equal(j.datagrams, 3);
  assert.equal(j.errors, 2);
  assert.deepEqual(j.by_type, { ENCRYPTED: 1 });
  assert.deepEqual(j.by_group, { '0xc9828e08': { messages: 2, instances: [2], sources: ['0x0a400001'] } });
  assert.match(s.toText(newStats(), 1044), /3 on port 1044: 1 decoded, 2 errors/);
});

test('datagrams off the UFTP port are ignored', async () => {
  const d = datagram({ type: 'KEY_REQ', extensions: [] });
  assert.equal((await inspectAll([d], 1045)).length, 0);
  assert.equal((await inspectAll([d], 1044)).length, 1);
});

test('TFMCC rates and CONG_CTRL RTTs: decoded value, and the value as sent in *_q', async () => {
  const [x] = await inspectAll([
    datagram({
      type: 'CONG_CTRL', ccSeq: 3, ccRate: 0x9274, timestamp: { sec: 1, usec: 2 }, extensions: [],
      items: [{ clientId: 0x0a400002, flags: 7, rtt: 106 }],
    }),
  ]);
  assert.equal(x.error, null, x.error ?? '');
  assert.equal(x.json.cc_rate_q, 0x9274);
  assert.equal(Math.round(x.json.cc_rate as number), 57202); // docs/protocol-notes.md, Wire: 0x9274 = 57202
  const item = (x.json.items as Record<string, unknown>[])[0];
  assert.equal(item.client_id, '0x0a400002');
  assert.equal(item.rtt_q, 106);
  assert.ok(Math.abs((item.rtt as number) - 0.0105273) < 1e-6);
});
