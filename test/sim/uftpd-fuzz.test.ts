// Fuzzing the client machine: 10,000,000 random and mutated datagrams, inside and outside established sessions
// (4 seeded runs of 2,500,000), through the pure machine. Nothing may throw, every datagram the machine sends
// must decode, memory stays bounded. Effects are answered the way the disk layer answers them (success, or the
// error a failing disk gives every 97th time): this test is about the protocol machine, the disk has its own
// tests (uftpd-hostile). Also: an ANNOUNCE flood cannot grow the session table past its bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientMachine } from '../../src/session/client/machine.js';
import type { ClientEffectResult } from '../../src/session/client/effects.js';
import { CompStat, FileType, UFTP_VER_NUM } from '../../src/wire/constants.js';
import { decodePacket, encodePacket, type Message } from '../../src/wire/packet.js';

const CLIENT = 0x0a000002;
const SERVER_ID = 0x0a000001;

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function corpus(groupId: number): Uint8Array[] {
  let seq = 0;
  const h = () => ({ version: UFTP_VER_NUM, func: 0, seq: seq++, srcId: SERVER_ID, groupId, groupInst: 0, grtt: 0x6a, gsize: 1, reserved: 0 });
  const msgs: Message[] = [
    { type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: 64, timestamp: { sec: 5, usec: 6 }, publicMcast: '230.4.4.1', privateMcast: '230.5.5.1', extensions: [], clientIds: [] },
    { type: 'REG_CONF', extensions: [], clientIds: [CLIENT] },
    { type: 'FILEINFO', fileId: 1, fileType: FileType.REG, fileSize: 300, fileTimestamp: 1, timestamp: { sec: 1, usec: 0 }, name: Buffer.from('dir/f.bin'), linkName: new Uint8Array(0), extensions: [], clientIds: [CLIENT] },
    { type: 'FILESEG', fileId: 1, section: 0, secBlock: 0, extensions: [], data: new Uint8Array(64).fill(1) },
    { type: 'FILESEG', fileId: 1, section: 0, secBlock: 4, extensions: [], data: new Uint8Array(44).fill(2) },
    { type: 'DONE', fileId: 1, section: 0, extensions: [], clientIds: [CLIENT] },
    { type: 'FILEINFO', fileId: 2, fileType: FileType.DIR, fileSize: 0, fileTimestamp: 1, timestamp: { sec: 1, usec: 0 }, name: Buffer.from('d2'), linkName: new Uint8Array(0), extensions: [], clientIds: [] },
    { type: 'FILEINFO', fileId: 3, fileType: FileType.LINK, fileSize: 0, fileTimestamp: 1, timestamp: { sec: 1, usec: 0 }, name: Buffer.from('l'), linkName: Buffer.from('t'), extensions: [], clientIds: [] },
    { type: 'FILEINFO', fileId: 4, fileType: FileType.FREESPACE, fileSize: 0, fileTimestamp: 1, timestamp: { sec: 1, usec: 0 }, name: Buffer.from('.'), linkName: new Uint8Array(0), extensions: [], clientIds: [] },
    { type: 'DONE', fileId: 0, section: 0, extensions: [], clientIds: [CLIENT] },
    { type: 'DONE_CONF', extensions: [], clientIds: [CLIENT] },
    { type: 'ABORT', flags: 1, host: 0, message: 'x', extensions: [] },
    { type: 'KEYINFO', ivCounter: 1n, extensions: [], keys: [{ clientId: CLIENT, encryptedGroupMaster: new Uint8Array(48) }] },
    { type: 'CONG_CTRL', ccSeq: 1, ccRate: 2, timestamp: { sec: 1, usec: 1 }, extensions: [], items: [] },
  ];
  const out = msgs.map((message) => encodePacket({ header: h(), message }));
  // an ENCRYPTED datagram (garbage inside) and an ANNOUNCE with an EXT_ENC_INFO-looking extension
  const enc = new Uint8Array(16 + 12 + 32);
  enc.set(out[1].subarray(0, 16));
  enc[1] = 18;
  enc[16 + 11] = 32;
  out.push(enc);
  return out;
}

function fuzzRun(seed: number, n: number): { sent: number; sessionsMax: number; drops: number } {
  const rnd = xorshift(seed);
  const m = new ClientMachine({ uid: CLIENT, destDirs: ['/nonexistent-dest'], wallMicros: (t) => t * 1000, maxSessions: 64 });
  const groups = [0x11111111, 0x22222222, 0x33333333];
  const base = groups.flatMap(corpus);
  let now = 0;
  let sent = 0;
  let sessionsMax = 0;
  let nextResult = 0;
  const scratch = new Uint8Array(2048);
  for (let i = 0; i < n; i++) {
    now += rnd() % 7;
    const r = rnd() % 100;
    let d: Uint8Array;
    if (r < 20) {
      d = base[rnd() % base.length]; // a valid datagram: keeps sessions established
    } else if (r < 75) {
      // a mutated valid datagram: flips, truncation, extension
      const src = base[rnd() % base.length];
      let len = src.length;
      const how = rnd() % 4;
      if (how === 1) len = rnd() % (src.length + 1);
      else if (how === 2) len = Math.min(scratch.length, src.length + (rnd() % 64));
      scratch.set(src.subarray(0, Math.min(len, src.length)));
      for (let k = src.length; k < len; k++) scratch[k] = rnd() & 0xff;
      const flips = 1 + (rnd() % 4);
      for (let k = 0; k < flips && len > 0; k++) scratch[rnd() % len] = rnd() & 0xff;
      d = scratch.subarray(0, len);
    } else {
      // random bytes behind a plausible header
      const len = rnd() % 300;
      for (let k = 0; k < len; k++) scratch[k] = rnd() & 0xff;
      if (len > 16) {
        scratch[0] = UFTP_VER_NUM;
        scratch[1] = 1 + (rnd() % 21);
        const g = groups[rnd() % groups.length];
        scratch[8] = g >>> 24;
        scratch[9] = (g >>> 16) & 0xff;
        scratch[10] = (g >>> 8) & 0xff;
        scratch[11] = g & 0xff;
        if (len > 17 && rnd() % 2 === 0) scratch[16] = scratch[1];
      }
      d = scratch.subarray(0, len);
    }
    m.handle(now, { address: '10.0.0.1', port: 1000 + (rnd() % 2) }, d);
    if (rnd() % 50 === 0) {
      const at = m.pollTimeout();
      if (at !== undefined && at <= now + 5000) {
        now = Math.max(now, at);
        m.handleTimeout(now);
      }
    }
    for (let e = m.pollEffect(); e; e = m.pollEffect()) {
      if ('req' in e && (e.type === 'open' || e.type === 'finish' || e.type === 'mkdir' || e.type === 'symlink' || e.type === 'delete' || e.type === 'freespace')) {
        const res: ClientEffectResult = ++nextResult % 97 === 0
          ? { req: e.req, ok: false, error: 'ENOSPC: no space left on device', disk: true }
          : { req: e.req, ok: true, status: CompStat.NORMAL, free: e.type === 'freespace' ? 12345n : undefined };
        m.handleEffectResult(res);
      }
    }
    for (let t = m.pollTransmit(now); t; t = m.pollTransmit(now)) {
      sent++;
      const p = decodePacket(t.data);
      if (!p.ok) assert.fail(`the machine sent a datagram that does not decode: ${p.error.message}`);
    }
    if (m.sessionCount > sessionsMax) sessionsMax = m.sessionCount;
  }
  let drops = 0;
  for (const v of m.drops.values()) drops += v;
  return { sent, sessionsMax, drops };
}

for (const seed of [1, 2, 3, 4]) {
  test(`fuzz run ${seed}/4: 2,500,000 random and mutated datagrams in and out of sessions, no exception, every sent datagram decodes`, { timeout: 120_000 }, () => {
    const t0 = Date.now();
    const r = fuzzRun(seed * 7919, 2_500_000);
    assert.ok(r.sent > 1000, `the machine answered (${r.sent} datagrams)`);
    assert.ok(r.drops > 1_000_000, `most garbage was dropped and counted (${r.drops})`);
    assert.ok(r.sessionsMax <= 64, `sessions stayed within the bound (${r.sessionsMax})`);
    process.stdout.write(`fuzz ${seed}: 2.5M datagrams in ${Date.now() - t0} ms, ${r.sent} sent, ${r.drops} dropped, max ${r.sessionsMax} sessions\n`);
  });
}

test('ANNOUNCE flood: 1,000,000 ANNOUNCEs with fresh group IDs keep the session table at its bound and the heap flat', () => {
  const m = new ClientMachine({ uid: CLIENT, destDirs: ['/x'], wallMicros: (t) => t * 1000, maxSessions: 1000 });
  const a: Message = { type: 'ANNOUNCE', flags: 0, robust: 255, ccType: 0, blockSize: 1300, timestamp: { sec: 5, usec: 6 }, publicMcast: '230.4.4.1', privateMcast: '230.5.5.1', extensions: [], clientIds: [] };
  const d = encodePacket({ header: { version: UFTP_VER_NUM, func: 1, seq: 0, srcId: SERVER_ID, groupId: 1, groupInst: 0, grtt: 0xff, gsize: 0, reserved: 0 }, message: a });
  const run = (from: number, count: number, now: number): void => {
    for (let g = from; g < from + count; g++) {
      d[8] = g >>> 24;
      d[9] = (g >>> 16) & 0xff;
      d[10] = (g >>> 8) & 0xff;
      d[11] = g & 0xff;
      m.handle(now, { address: '10.0.0.9', port: 9 }, d);
      while (m.pollEffect()) { /* drained */ }
      while (m.pollTransmit(now)) { /* drained */ }
    }
  };
  run(1, 100_000, 0);
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  run(100_001, 900_000, 1);
  global.gc?.();
  const grown = process.memoryUsage().heapUsed - heap0;
  assert.equal(m.sessionCount, 1000, 'at most maxSessions sessions');
  assert.ok((m.drops.get('session-limit') ?? 0) >= 999_000, 'the rest counted as dropped');
  assert.ok(grown < 64 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MiB over 900,000 more ANNOUNCEs`);
  // registrations that never complete give up (GRTT and ROBUST at their maximum: clamped to 10 minutes)
  const at = m.pollTimeout();
  assert.ok(at !== undefined && at <= 600_001);
  for (let now = 0, i = 0; m.sessionCount > 0 && i < 100_000; i++) {
    now = m.pollTimeout() ?? now;
    m.handleTimeout(now);
    while (m.pollEffect()) { /* drained */ }
    while (m.pollTransmit(now)) { /* drained */ }
  }
  assert.equal(m.sessionCount, 0, 'every flooded session timed out');
});
