// The client machine against literal datagrams of a real session (the real uftp 4.10.2 -b 512 sending
// src/f1 (5,000,000 bytes), src/empty, src/lnk -> f1, src/d/e/f2 to the real uftpd 0x0A510114, captured
// 2026-11-30 in our namespaces). Our answers are compared byte for byte with the real uftpd's, except for the
// echoed timestamps (ours echo at once: hold time 0 in a test with a frozen clock) and sequence numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientMachine, logTag } from './machine.js';
import type { ClientEffect, ClientEffectResult } from './effects.js';
import { CompStat } from '../../wire/constants.js';
import { decodePacket, encodePacket } from '../../wire/packet.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const SERVER = { address: '10.81.1.10', port: 42693 };
const UID = 0x0a510114;

const ANNOUNCE = hex('400100000a51010ac546667a009d000001060014000002006b0cd4a2000b09a5e6040401e6050544');
const REGISTER_REAL = hex('400200000a510114c546667a00000000020b00006b0cd4a2000b0a21' + '00'.repeat(32));
const REG_CONF = hex('400400010a51010ac546667a006a1800040100000a510114');
const FILEINFO_F1 = hex('400700150a51010ac546667a006a1800070900010000000002000000004c4b406b0cd4a26b0cd4a4000c2dea7372632f663100000a510114');
const FILEINFO_ACK_REAL = hex('400800010a510114c546667a0000000008040001000000006b0cd4a4000c2f20');
const DONE_F1_SEC2 = hex('400a263c0a51010ac546667a006a18000a020001000200000a510114');
const FILEINFO_EMPTY = hex('4007263d0a51010ac546667a006a1800070a00020000000003000000000000006b0cd4a26b0cd4a6000e83f97372632f656d7074790000000a510114');
const DONE_EMPTY = hex('400a263e0a51010ac546667a006a18000a020002000000000a510114');
const COMPLETE_EMPTY_REAL = hex('400c00040a510114c546667a000000000c02000200000000');
const FILEINFO_LINK = hex('4007263f0a51010ac546667a006a1800070a0003020000000201000000000000000000006b0cd4a6000e896d7372632f6c6e6b00663100000a510114');
const DONE_GROUP = hex('400a26430a51010ac546667a006a18000a020000000000000a510114');
const DONE_CONF = hex('400d26440a51010ac546667a006a18000d0100000a510114');

function machine(): ClientMachine {
  return new ClientMachine({ uid: UID, destDirs: ['/dest'], wallMicros: (now) => now * 1000 });
}

function drain(m: ClientMachine): { tx: Uint8Array[]; fx: ClientEffect[] } {
  const tx: Uint8Array[] = [];
  const fx: ClientEffect[] = [];
  for (let e = m.pollEffect(); e; e = m.pollEffect()) fx.push(e);
  for (let t = m.pollTransmit(0); t; t = m.pollTransmit(0)) {
    assert.deepEqual(t.to, SERVER, 'answers go to the address and port the ANNOUNCE came from');
    tx.push(t.data);
  }
  return { tx, fx };
}

/** A copy of `b` with bytes [at, at+len) taken from `from`, and the header's sequence number from `seqOf`. */
function patched(b: Uint8Array, seqOf: Uint8Array, ...spans: [number, Uint8Array][]): Uint8Array {
  const o = Uint8Array.from(b);
  o.set(seqOf.subarray(2, 4), 2);
  for (const [at, v] of spans) o.set(v, at);
  return o;
}

function register(m: ClientMachine): void {
  m.handle(1000, SERVER, ANNOUNCE);
  const { tx, fx } = drain(m);
  assert.equal(tx.length, 1);
  // the real uftpd echoed the ANNOUNCE's timestamp + 124 us (its hold time); ours holds 0 us in this frozen clock
  assert.deepEqual(tx[0], patched(REGISTER_REAL, tx[0], [24, ANNOUNCE.subarray(28, 32)]), 'REGISTER as the real uftpd sends it');
  assert.deepEqual(fx.filter((e) => e.type === 'join'), [{ type: 'join', group: '230.5.5.68', source: undefined }]);
  assert.ok(fx.some((e) => e.type === 'connect'), 'a CONNECT line for the status file');
  m.handle(1010, SERVER, REG_CONF);
  assert.ok(drain(m).fx.some((e) => e.type === 'log' && e.text.endsWith('Registration confirmed')));
}

test('ANNOUNCE -> REGISTER byte for byte like the real uftpd; REG_CONF confirms', () => {
  register(machine());
});

test('FILEINFO -> open effect with the placed name; FILEINFO_ACK like the real one; DONE with nothing received -> full NAK bitmaps per section', () => {
  const m = machine();
  register(m);
  m.handle(1020, SERVER, FILEINFO_F1);
  const { fx } = drain(m);
  const open = fx.find((e) => e.type === 'open');
  assert.ok(open && open.type === 'open');
  assert.deepEqual(open.placed, { destIndex: 0, parts: ['src', 'f1'] });
  assert.equal(open.size, 5_000_000);
  assert.ok(fx.some((e) => e.type === 'log' && e.text === `${logTag(0xc546667a, 0, 1)}: Bytes: 5000000, Blocks: 9766, Sections: 3`));
  m.handleEffectResult({ req: open.req, ok: true, status: CompStat.NORMAL });
  const ack = drain(m).tx;
  assert.equal(ack.length, 1);
  assert.deepEqual(ack[0], patched(FILEINFO_ACK_REAL, ack[0], [28, FILEINFO_F1.subarray(40, 44)]), 'FILEINFO_ACK as the real uftpd sends it');
  // first block of section 1 (block 3256): data for it
  m.handle(1030, SERVER, encodePacket({ header: decodeHeaderOf(DONE_F1_SEC2), message: { type: 'FILESEG', fileId: 1, section: 1, secBlock: 0, extensions: [], data: new Uint8Array(512).fill(7) } }));
  m.handle(1040, SERVER, DONE_F1_SEC2);
  const st = drain(m).tx.map((d) => decodePacket(d)).map((p) => (p.ok ? p.value.message : undefined));
  assert.deepEqual(st.map((x) => x?.type), ['STATUS', 'STATUS', 'STATUS']);
  const sizes = [3256, 3255, 3255];
  st.forEach((x, i) => {
    assert.ok(x && x.type === 'STATUS');
    assert.equal(x.section, i);
    assert.equal(x.naks.length, Math.ceil(sizes[i] / 8), `section ${i} bitmap: one bit per block`);
    let set = 0;
    for (let b = 0; b < sizes[i]; b++) if (x.naks[b >> 3] & (1 << (b & 7))) set++;
    assert.equal(set, i === 1 ? sizes[i] - 1 : sizes[i], `section ${i}: every block NAKed except the one received`);
    if (i === 1) assert.equal(x.naks[0] & 1, 0, 'bit 0 of section 1 (received) is clear');
  });
});

function decodeHeaderOf(d: Uint8Array): ReturnType<typeof headerOf> {
  return headerOf(d);
}
/** A registered session, `fileinfo` received and its file opened (the open effect answered). */
function openFile(m: ClientMachine, fileinfo: Uint8Array): void {
  register(m);
  m.handle(1020, SERVER, fileinfo);
  const open = drain(m).fx.find((e): e is Extract<ClientEffect, { type: 'open' }> => e.type === 'open');
  assert.ok(open);
  m.handleEffectResult({ req: open.req, ok: true, status: CompStat.NORMAL });
}
function headerOf(d: Uint8Array) {
  const p = decodePacket(d);
  assert.ok(p.ok);
  return p.value.header;
}

test('an empty file: FILEINFO_ACK, then DONE -> COMPLETE like the real one; a link -> COMPLETE at once; DONE 0 -> COMPLETE 0; DONE_CONF ends the session', () => {
  const m = machine();
  openFile(m, FILEINFO_EMPTY);
  const r1 = drain(m);
  assert.equal(r1.tx.length, 1, 'FILEINFO_ACK');
  const fin = r1.fx.find((e) => e.type === 'finish');
  assert.ok(fin && fin.type === 'finish', 'an empty file is complete at once');
  m.handleEffectResult({ req: fin.req, ok: true, status: CompStat.NORMAL } satisfies ClientEffectResult);
  m.handle(1030, SERVER, DONE_EMPTY);
  const c = drain(m);
  assert.equal(c.tx.length, 1);
  assert.deepEqual(c.tx[0], patched(COMPLETE_EMPTY_REAL, c.tx[0]), 'COMPLETE as the real uftpd sends it');
  assert.ok(c.fx.some((e) => e.type === 'result' && e.name === 'src/empty' && e.word === 'copied'));
  // a symlink: COMPLETE without FILEINFO_ACK (as the real uftpd)
  m.handle(1040, SERVER, FILEINFO_LINK);
  const l = drain(m).fx.find((e) => e.type === 'symlink');
  assert.ok(l && l.type === 'symlink');
  assert.equal(l.target, 'f1');
  assert.deepEqual(l.placed.parts, ['src', 'lnk']);
  m.handleEffectResult({ req: l.req, ok: true, status: CompStat.NORMAL });
  const lc = decodePacket(drain(m).tx[0]);
  assert.ok(lc.ok && lc.value.message.type === 'COMPLETE' && lc.value.message.fileId === 3 && lc.value.message.status === CompStat.NORMAL);
  m.handle(1050, SERVER, DONE_GROUP);
  const g = decodePacket(drain(m).tx[0]);
  assert.ok(g.ok && g.value.message.type === 'COMPLETE' && g.value.message.fileId === 0);
  m.handle(1060, SERVER, DONE_CONF);
  const end = drain(m).fx;
  assert.ok(end.some((e) => e.type === 'session-end' && e.ok));
  assert.ok(end.some((e) => e.type === 'leave' && e.group === '230.5.5.68'));
  assert.equal(m.sessionCount, 0);
});

test('FILESEGs: duplicates, blocks of the wrong length or outside the section are dropped and counted; the write cache writes runs', () => {
  const m = machine();
  openFile(m, FILEINFO_F1);
  drain(m);
  const h = headerOf(DONE_F1_SEC2);
  const seg = (section: number, secBlock: number, len = 512): Uint8Array =>
    encodePacket({ header: h, message: { type: 'FILESEG', fileId: 1, section, secBlock, extensions: [], data: new Uint8Array(len).fill(secBlock & 0xff) } });
  for (let b = 0; b < 10; b++) m.handle(1030, SERVER, seg(0, b));
  m.handle(1030, SERVER, seg(0, 3));
  m.handle(1030, SERVER, seg(0, 11, 100));
  m.handle(1030, SERVER, seg(0, 3256));
  m.handle(1030, SERVER, seg(3, 0));
  assert.equal(m.drops.get('duplicate'), 1);
  assert.equal(m.drops.get('bad-block'), 3);
  // nothing written yet (1 MiB cache), then DONE flushes one run of 10 blocks at offset 0
  m.handle(1040, SERVER, DONE_F1_SEC2);
  const writes = drain(m).fx.filter((e) => e.type === 'write');
  assert.equal(writes.length, 1);
  const w = writes[0];
  assert.ok(w.type === 'write');
  assert.equal(w.offset, 0);
  assert.equal(w.data.length, 5120);
  assert.equal(w.data[512 * 9], 9);
});

test('a FILEINFO name outside the destination is rejected (COMPLETE REJECTED) with no effect on the disk', () => {
  const m = machine();
  register(m);
  const h = headerOf(FILEINFO_F1);
  for (const [id, name] of [[5, '../etc/passwd'], [6, '/etc/passwd'], [7, 'a/../../b'], [8, '']] as const) {
    m.handle(1020, SERVER, encodePacket({
      header: h,
      message: { type: 'FILEINFO', fileId: id, fileType: 0, fileSize: 10, fileTimestamp: 0, timestamp: { sec: 1, usec: 0 }, name: Buffer.from(name), linkName: new Uint8Array(0), extensions: [], clientIds: [UID] },
    }));
    const { tx, fx } = drain(m);
    assert.ok(!fx.some((e) => e.type === 'open' || e.type === 'symlink' || e.type === 'mkdir' || e.type === 'delete'), `${name}: no disk effect`);
    const c = decodePacket(tx[0]);
    assert.ok(c.ok && c.value.message.type === 'COMPLETE' && c.value.message.status === CompStat.REJECTED, `${name}: rejected`);
    assert.ok(fx.some((e) => e.type === 'result' && e.word === 'rejected'));
  }
});

test('timers: REGISTER again after 4 GRTT, session dropped after 4 ROBUST GRTT without REG_CONF; idle transfer dropped after ROBUST GRTT (1 s floor)', () => {
  const m = machine();
  m.handle(0, SERVER, ANNOUNCE); // GRTT 0x9d = 0.53 s, ROBUST 20
  drain(m);
  const t1 = m.pollTimeout();
  assert.ok(t1 !== undefined && Math.abs(t1 - 4 * 532.2) < 5, `retry at 4 GRTT, got ${t1}`);
  m.handleTimeout(t1);
  assert.equal(drain(m).tx.length, 1, 'REGISTER again');
  let now = t1;
  for (let i = 0; i < 100 && m.sessionCount > 0; i++) {
    now = m.pollTimeout() ?? now;
    m.handleTimeout(now);
    drain(m);
  }
  assert.equal(m.sessionCount, 0);
  assert.ok(now >= 4 * 20 * 532 - 1 && now < 4 * 20 * 533, `given up after 4 ROBUST GRTT (${now} ms)`);
  const m2 = machine();
  register(m2);
  const idle = m2.pollTimeout();
  assert.ok(idle !== undefined);
  assert.equal(idle, 1010 + 1000 * Math.max(1, 20 * 0.0105) , 'transfer timer: ROBUST * GRTT (0.21 s) floored at 1 s after the last server message');
  m2.handleTimeout(idle);
  assert.ok(drain(m2).fx.some((e) => e.type === 'session-end' && !e.ok));
});

test('STATUS once per section and pass, as the real uftpd (black-box, 4.10.2): the section timer reports what a pass left behind, the DONE the rest, a repeated DONE nothing (all when it names us or the third time); a new pass anew', () => {
  const m = machine();
  openFile(m, FILEINFO_F1);
  drain(m);
  const h = headerOf(DONE_F1_SEC2);
  const seg = (section: number, secBlock: number): Uint8Array =>
    encodePacket({ header: h, message: { type: 'FILESEG', fileId: 1, section, secBlock, extensions: [], data: new Uint8Array(512) } });
  /** Runs the machine's timers due up to `to` and returns the sections of the STATUS it sent, with their NAKs. */
  const statuses = (to?: number): string[] => {
    for (let i = 0, t = m.pollTimeout(); to !== undefined && i < 10 && t !== undefined && t <= to; i++, t = m.pollTimeout()) m.handleTimeout(t);
    return drain(m).tx.map((d) => decodePacket(d)).flatMap((p) => {
      if (!p.ok || p.value.message.type !== 'STATUS') return [];
      let n = 0;
      for (const b of p.value.message.naks) for (let x = b; x; x &= x - 1) n++;
      return [`${p.value.message.section}:${n}`];
    });
  };
  const sizes = [3256, 3255, 3255];
  // pass 1: two blocks of section 0, one of section 1 (the section timer, a GRTT later: section 0), one of section 2
  // (section 1), then the DONE for section 2: section 2 only
  m.handle(1030, SERVER, seg(0, 0));
  m.handle(1030, SERVER, seg(0, 1));
  m.handle(1031, SERVER, seg(1, 0));
  assert.deepEqual(statuses(1031), []);
  assert.deepEqual(statuses(1060), [`0:${sizes[0] - 2}`], 'the section timer: section 0');
  m.handle(1061, SERVER, seg(2, 0));
  assert.deepEqual(statuses(1100), [`1:${sizes[1] - 1}`], 'the section timer: section 1');
  // the DONE to everyone (empty list, as the real uftp sends it)
  const doneAll = encodePacket({ header: h, message: { type: 'DONE', fileId: 1, section: 2, extensions: [], clientIds: [] } });
  m.handle(1101, SERVER, doneAll);
  assert.deepEqual(statuses(), [`2:${sizes[2] - 1}`], 'the DONE: only the section the timer did not report');
  // the server sends it again (it waits for its rewind timer or for other clients): nothing new to say, twice
  m.handle(1131, SERVER, doneAll);
  m.handle(1161, SERVER, doneAll);
  assert.deepEqual(statuses(), [], 'a repeated DONE to everyone: no STATUS again');
  // the third time without a block in between: a STATUS may have been lost, everything again
  const all = [`0:${sizes[0] - 2}`, `1:${sizes[1] - 1}`, `2:${sizes[2] - 1}`];
  m.handle(1191, SERVER, doneAll);
  assert.deepEqual(statuses(), all, 'the third repeat: all');
  // a DONE that names us: the server has no STATUS from us, all again
  m.handle(1195, SERVER, DONE_F1_SEC2);
  assert.deepEqual(statuses(), all, 'a DONE naming us: all');
  // pass 2: the rewind; a block of section 0, then of section 1 (the timer: section 0 again), the DONE: 1 and 2
  m.handle(1200, SERVER, seg(0, 2));
  m.handle(1201, SERVER, seg(1, 1));
  assert.deepEqual(statuses(1240), [`0:${sizes[0] - 3}`], 'pass 2, the section timer: section 0');
  m.handle(1241, SERVER, DONE_F1_SEC2);
  assert.deepEqual(statuses(), [`1:${sizes[1] - 2}`, `2:${sizes[2] - 1}`], 'pass 2, the DONE: sections 1 and 2');
});
