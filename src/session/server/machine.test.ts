/**
 * The server machine on a virtual clock against scripted receivers that speak the wire protocol the way the real
 * uftpd does (REGISTER echoing the ANNOUNCE timestamp, FILEINFO_ACK, STATUS bitmaps for sections with holes, COMPLETE,
 * COMPLETE for file 0). Seeded loss on every datagram in both directions. Files are compared byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Endpoint, Transmit } from '../../core/machine.js';
import {
  CompStat, FileType, UFTP_VER_NUM, decodePacket, encodePacket, MessageType, type Message, type Timestamp,
} from '../../wire/index.js';
import { fileLayout, sectionLength, sectionOf, sectionStart } from './layout.js';
import { ServerMachine, UftpExit, type ServerConfig, type ServerFile } from './machine.js';

const enc = new TextEncoder();

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

interface SimFile extends ServerFile {
  readonly data: Uint8Array;
}

function file(name: string, data: Uint8Array, fileType: number = FileType.REG, link = ''): SimFile {
  return { name: enc.encode(name), displayName: name, fileType, size: fileType === FileType.REG ? data.length : 0, mtime: 1_700_000_000, linkName: enc.encode(link), data };
}

/** A receiver as the real uftpd behaves on the wire (no encryption). */
class Receiver {
  registered = false;
  files = new Map<string, Uint8Array>();
  private fileId = 0;
  private size = 0;
  private name = '';
  private got = new Uint8Array(0);
  private data = new Uint8Array(0);
  private ftype = 0;
  completed = new Set<number>();
  confirmed = false;
  aborted = '';
  /** Set: stop answering from this file ID on. */
  deadFrom = Infinity;
  skip = new Set<string>();
  reject = new Set<string>();
  /** Files answered with an ABORT (as the real uftpd when -D has no room for them). */
  abortOn = new Set<string>();
  /** Answers FILEINFO but hears no FILESEG or DONE. */
  deaf = false;

  constructor(readonly id: number, readonly addr: Endpoint) {}

  private reply(groupId: number, message: Message): Uint8Array {
    return encodePacket({ header: { version: UFTP_VER_NUM, func: MessageType[message.type], seq: 0, srcId: this.id, groupId, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 }, message });
  }

  onDatagram(bytes: Uint8Array, blockSize: () => number): Uint8Array[] {
    const p = decodePacket(bytes);
    assert.ok(p.ok, 'the server sent a datagram that decodes');
    const { header, message: m } = p.value;
    const g = header.groupId;
    const listed = (ids: number[]): boolean => ids.length === 0 || ids.includes(this.id);
    switch (m.type) {
      case 'ANNOUNCE':
        if (this.registered || !listed(m.clientIds)) return [];
        return [this.reply(g, { type: 'REGISTER', timestamp: m.timestamp, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] })];
      case 'REG_CONF':
        if (m.clientIds.includes(this.id)) this.registered = true;
        return [];
      case 'FILEINFO': {
        if (!m.clientIds.includes(this.id) || m.fileId >= this.deadFrom) return [];
        const name = new TextDecoder().decode(m.name);
        if (this.fileId !== m.fileId) {
          this.fileId = m.fileId;
          this.size = m.fileSize;
          this.name = name;
          this.ftype = m.fileType;
          const l = fileLayout(m.fileSize, blockSize());
          this.got = new Uint8Array(l.blocks);
          this.data = new Uint8Array(m.fileSize);
        }
        if (this.skip.has(name)) return [this.reply(g, { type: 'COMPLETE', fileId: m.fileId, status: CompStat.SKIPPED, extensions: [], clientIds: [] })];
        if (this.abortOn.has(name)) return [this.reply(g, { type: 'ABORT', flags: 0, host: 0, message: 'Not enough disk space', extensions: [] })];
        if (this.reject.has(name)) return [this.reply(g, { type: 'COMPLETE', fileId: m.fileId, status: CompStat.REJECTED, extensions: [], clientIds: [] })];
        if (m.fileType !== FileType.REG) {
          this.completed.add(m.fileId);
          return [this.reply(g, { type: 'COMPLETE', fileId: m.fileId, status: CompStat.NORMAL, extensions: [], clientIds: [] })];
        }
        return [this.reply(g, { type: 'FILEINFO_ACK', fileId: m.fileId, flags: 0, timestamp: m.timestamp, extensions: [], clientIds: [] })];
      }
      case 'FILESEG': {
        if (m.fileId !== this.fileId || m.fileId >= this.deadFrom || this.deaf) return [];
        const l = fileLayout(this.size, blockSize());
        const b = sectionStart(l, m.section) + m.secBlock;
        assert.ok(m.secBlock < sectionLength(l, m.section), 'block inside its section');
        this.data.set(m.data, b * l.blockSize);
        this.got[b] = 1;
        return [];
      }
      case 'DONE': {
        if (!listed(m.clientIds) || m.fileId >= this.deadFrom || (this.deaf && m.fileId !== 0)) return [];
        if (m.fileId === 0) return [this.reply(g, { type: 'COMPLETE', fileId: 0, status: CompStat.NORMAL, extensions: [], clientIds: [] })];
        if (m.fileId !== this.fileId) return [];
        if (this.completed.has(m.fileId) || this.got.every((x) => x === 1)) {
          if (!this.completed.has(m.fileId) && this.ftype === FileType.REG) this.files.set(this.name, this.data);
          this.completed.add(m.fileId);
          return [this.reply(g, { type: 'COMPLETE', fileId: m.fileId, status: CompStat.NORMAL, extensions: [], clientIds: [] })];
        }
        const l = fileLayout(this.size, blockSize());
        const out: Uint8Array[] = [];
        for (let s = 0; s <= m.section && s < l.sections; s++) {
          const start = sectionStart(l, s);
          const len = sectionLength(l, s);
          const naks = new Uint8Array(Math.ceil(len / 8));
          let any = false;
          for (let i = 0; i < len; i++) {
            if (!this.got[start + i]) {
              naks[i >> 3] |= 1 << (i & 7);
              any = true;
            }
          }
          if (any) out.push(this.reply(g, { type: 'STATUS', fileId: m.fileId, section: s, extensions: [], naks }));
        }
        return out;
      }
      case 'DONE_CONF':
        if (m.clientIds.includes(this.id)) this.confirmed = true;
        return [];
      case 'ABORT':
        if (m.host === 0 || m.host === this.id) this.aborted = m.message;
        return [];
      default:
        return [];
    }
  }
}

interface SimResult {
  machine: ServerMachine;
  receivers: Receiver[];
  exitCode: number | undefined;
  status: string[];
  logs: string[];
  sent: Map<string, number>;
  /** Virtual ms from start to finish. */
  elapsed: number;
  dataMs: number;
  restart: { id: number; completed: readonly number[] }[] | undefined;
}

function config(files: readonly ServerFile[], over: Partial<ServerConfig> = {}): ServerConfig {
  return {
    uid: 0x0a000001, groupId: 0x12345678, publicAddr: '230.4.4.1', privateAddr: '230.5.5.9', port: 1044, blockSize: 1300, robust: 10,
    grttInit: 0.5, grttMin: 0.01, grttMax: 15, rate: undefined, maxPasses: 65535, quitOnError: false, maxNakPct: 100, maxNakCount: 1,
    sync: false, syncPreview: false, ipv6: false, files, ipOverhead: 28, ...over,
  };
}

/** Runs a whole session on a virtual clock: one-way delay 1 ms, seeded loss in both directions. */
function simulate(files: readonly SimFile[], n: number, o: { loss?: number; seed?: number; cfg?: Partial<ServerConfig>; setup?: (rs: Receiver[]) => void; limitMs?: number } = {}): SimResult {
  const loss = o.loss ?? 0;
  const rand = rng(o.seed ?? 7);
  const cfg = config(files, o.cfg);
  let now = 1_700_000_000_000;
  const start = now;
  const m = new ServerMachine(cfg, now);
  const receivers = Array.from({ length: n }, (_, i) => new Receiver(0x0a000100 + i, { address: `10.0.0.${i + 2}`, port: 1044 }));
  o.setup?.(receivers);
  const events: { at: number; to: 'server' | number; from: Endpoint; data: Uint8Array }[] = [];
  const status: string[] = [];
  const logs: string[] = [];
  const sent = new Map<string, number>();
  let exitCode: number | undefined;
  let restart: { id: number; completed: readonly number[] }[] | undefined;
  let dataStart = 0;
  let dataEnd = 0;
  const deliver = (t: Transmit): void => {
    const p = decodePacket(t.data);
    if (p.ok) sent.set(p.value.message.type, (sent.get(p.value.message.type) ?? 0) + 1);
    if (p.ok && p.value.message.type === 'FILESEG') {
      if (dataStart === 0) dataStart = now;
      dataEnd = now;
    }
    const copy = Uint8Array.from(t.data);
    for (let i = 0; i < receivers.length; i++) {
      if (loss > 0 && rand() < loss) continue;
      events.push({ at: now + 1, to: i, from: { address: '10.0.0.1', port: 40000 }, data: copy });
    }
  };
  const drain = (): void => {
    for (;;) {
      let progressed = false;
      for (let e = m.pollEffect(); e !== undefined; e = m.pollEffect()) {
        progressed = true;
        if (e.type === 'status') status.push(e.line);
        else if (e.type === 'log') logs.push(e.text);
        else if (e.type === 'finished') exitCode = e.exitCode;
        else if (e.type === 'restart') restart = [...e.failed];
        else if (e.type === 'read') {
          const f = files[e.file];
          m.handleEffectResult({ type: 'read', file: e.file, offset: e.offset, data: f.data.subarray(e.offset, e.offset + e.length) });
        }
      }
      const t = m.pollTransmit(now);
      if (t) {
        deliver(t);
        progressed = true;
      }
      if (!progressed) return;
    }
  };
  const limit = start + (o.limitMs ?? 600_000);
  m.handleTimeout(now);
  drain();
  while (exitCode === undefined && now < limit) {
    events.sort((a, b) => a.at - b.at);
    const tm = m.pollTimeout();
    const next = events.length > 0 ? events[0].at : Infinity;
    if (tm === undefined && next === Infinity) break;
    if (tm !== undefined && tm <= next) {
      now = Math.max(now, tm);
      m.handleTimeout(now);
      drain();
      continue;
    }
    const ev = events.shift();
    if (!ev) break;
    now = Math.max(now, ev.at);
    if (ev.to === 'server') {
      m.handle(now, ev.from, ev.data);
    } else {
      const r = receivers[ev.to];
      for (const reply of r.onDatagram(ev.data, () => cfg.blockSize)) {
        if (loss > 0 && rand() < loss) continue;
        events.push({ at: now + 1, to: 'server', from: r.addr, data: reply });
      }
    }
    drain();
  }
  // deliver what is still in flight (DONE_CONF)
  for (const ev of events.sort((a, b) => a.at - b.at)) if (ev.to !== 'server') receivers[ev.to].onDatagram(ev.data, () => cfg.blockSize);
  return { machine: m, receivers, exitCode, status, logs, sent, elapsed: now - start, dataMs: dataEnd - dataStart, restart };
}

test('layout: blocks, sections of at most blockSize*8 blocks, big sections first (as the real uftp logs)', () => {
  const l = fileLayout(512 * 4099, 512);
  assert.deepEqual([l.blocks, l.sections, l.small, l.bigCount], [4099, 2, 2049, 1]);
  assert.equal(sectionLength(l, 0), 2050);
  assert.equal(sectionLength(l, 1), 2049);
  assert.equal(sectionStart(l, 1), 2050);
  assert.equal(sectionOf(l, 2049), 0);
  assert.equal(sectionOf(l, 2050), 1);
  const l2 = fileLayout(3_000_000, 512);
  assert.deepEqual([l2.blocks, l2.sections, l2.small, l2.bigCount], [5860, 2, 2930, 0]);
  const l3 = fileLayout(0, 1300);
  assert.deepEqual([l3.blocks, l3.sections], [0, 0]);
  for (let b = 0; b < l.blocks; b += 97) assert.ok(b >= sectionStart(l, sectionOf(l, b)) && b < sectionStart(l, sectionOf(l, b)) + sectionLength(l, sectionOf(l, b)));
});

test('clean session: 3 receivers get every file byte-exact; CONNECT, RESULT, HSTATS, STATS lines; exit 0', () => {
  const big = bytes(200_000, 1);
  const files = [file('big.bin', big), file('d/empty', new Uint8Array(0)), file('d/lnk', new Uint8Array(0), FileType.LINK, '../big.bin'), file('d/sub/a.txt', enc.encode('hi\n'))];
  const r = simulate(files, 3);
  assert.equal(r.exitCode, UftpExit.OK);
  for (const rc of r.receivers) {
    assert.equal(sha(rc.files.get('big.bin') ?? new Uint8Array(1)), sha(big));
    assert.deepEqual(rc.files.get('d/sub/a.txt'), enc.encode('hi\n'));
    assert.ok(rc.confirmed, 'DONE_CONF received');
  }
  assert.equal(r.sent.get('ANNOUNCE'), 10, 'an open group sends ROBUST ANNOUNCEs');
  assert.equal(r.sent.get('FILESEG'), Math.ceil(200_000 / 1300) + 1, 'every block once, plus the 3-byte file');
  assert.equal(r.machine.passes, 1);
  const ids = r.receivers.map((x) => '0x' + x.id.toString(16).toUpperCase().padStart(8, '0'));
  assert.deepEqual(r.status.filter((l) => l.startsWith('CONNECT')), ids.map((i) => `CONNECT;success;${i}`));
  const results = r.status.filter((l) => l.startsWith('RESULT'));
  assert.equal(results.length, 12);
  assert.match(results[0], /^RESULT;0x0A000100;big\.bin;195KB;copy;\d+\.\d\dKB\/s$/);
  assert.match(results[6], /^RESULT;0x0A000100;d\/lnk;0KB;copy;0\.00KB\/s$/);
  assert.equal(r.status.at(-4), 'HSTATS;target;copy;overwrite;skip;totalMB;time;speedKB/s');
  assert.match(r.status.at(-3) ?? '', /^STATS;0x0A000100;4;0;0;0MB;\d+\.\d{3};\d+\.\d\dKB\/s$/);
});

test('20% loss both ways, 5 receivers, 1 MB in 512-byte blocks (3 sections): byte-exact after several passes', () => {
  const big = bytes(1_000_000, 2);
  const r = simulate([file('img', big)], 5, { loss: 0.2, seed: 11, cfg: { blockSize: 512 } });
  assert.equal(r.exitCode, UftpExit.OK, r.logs.slice(-10).join('\n'));
  for (const rc of r.receivers) assert.equal(sha(rc.files.get('img') ?? new Uint8Array(1)), sha(big), `receiver ${rc.id.toString(16)}`);
  assert.ok(r.machine.passes >= 3, `${r.machine.passes} passes`);
  const blocks = Math.ceil(1_000_000 / 512);
  const segs = r.sent.get('FILESEG') ?? 0;
  // a block is lost by at least one of 5 receivers with p = 1 - 0.8^5 = 0.67 per pass: repair passes resend only
  // the NAKed blocks, once each however many receivers NAKed them (expected total ~2.5 x blocks)
  assert.ok(segs < blocks * 3, `${segs} FILESEGs for ${blocks} blocks`);
});

test('5% loss, 50 receivers: every receiver byte-exact, NAKs of all receivers merged into one repair pass each', () => {
  const big = bytes(300_000, 3);
  const r = simulate([file('f', big)], 50, { loss: 0.05, seed: 5 });
  assert.equal(r.exitCode, UftpExit.OK);
  for (const rc of r.receivers) assert.equal(sha(rc.files.get('f') ?? new Uint8Array(1)), sha(big));
  const blocks = Math.ceil(300_000 / 1300);
  // with 50 receivers nearly every block is lost by someone in pass 1, but a block is resent once per pass, not per receiver
  assert.ok((r.sent.get('FILESEG') ?? 0) < blocks * (r.machine.passes + 1));
});

test('exit 7: nobody registers; ROBUST ANNOUNCEs 3 GRTT apart, then the session ends', () => {
  const r = simulate([file('f', bytes(10, 1))], 0, { cfg: { robust: 12, grttInit: 0.2 } });
  assert.equal(r.exitCode, UftpExit.NO_REGISTER);
  assert.equal(r.sent.get('ANNOUNCE'), 12);
  assert.ok(Math.abs(r.elapsed - 12 * 600) < 5, `${r.elapsed} ms`);
  assert.deepEqual(r.status, [], 'no status lines without clients');
});

test('closed group (-H): only listed clients register, the ANNOUNCE lists who is missing and stops once all are in', () => {
  const r = simulate([file('f', bytes(5000, 4))], 3, { cfg: { hosts: [0x0a000100, 0x0a000101, 0x0a0009ff] } });
  assert.equal(r.exitCode, UftpExit.OK);
  assert.ok(r.receivers[0].files.has('f') && r.receivers[1].files.has('f'));
  assert.ok(!r.receivers[2].files.has('f'), 'the unlisted client got nothing');
  assert.deepEqual(r.status.filter((l) => l.startsWith('CONNECT')), ['CONNECT;success;0x0A000100', 'CONNECT;success;0x0A000101', 'CONNECT;failed;0x0A0009FF']);
  // as the real uftp: the listed host that never answered is 'mute' with an empty speed, and has a STATS line of zeros
  assert.ok(r.status.includes('RESULT;0x0A0009FF;f;4KB;mute;'), r.status.join('\n'));
  assert.ok(r.status.includes('STATS;0x0A0009FF;0;0;0;0MB;0.000;0.00KB/s'));
  const r2 = simulate([file('f', bytes(5000, 4))], 2, { cfg: { hosts: [0x0a000100, 0x0a000101] } });
  assert.ok((r2.sent.get('ANNOUNCE') ?? 0) <= 2, `ANNOUNCE stops when all listed clients are in: ${r2.sent.get('ANNOUNCE')}`);
});

test('a receiver that goes silent is dropped after ROBUST DONEs; the others finish; -q turns it into exit 9', () => {
  const files = [file('a', bytes(20_000, 5)), file('b', bytes(20_000, 6))];
  const r = simulate(files, 3, { setup: (rs) => (rs[1].deadFrom = 2) });
  assert.equal(r.exitCode, UftpExit.OK);
  assert.ok(r.receivers[0].files.has('b') && r.receivers[2].files.has('b'));
  assert.ok(r.receivers[1].files.has('a') && !r.receivers[1].files.has('b'));
  assert.ok(r.logs.some((l) => /0x0A000101 did not respond to FILEINFO/.test(l)));
  assert.deepEqual(r.restart, undefined, 'no restart effect without -f');
  const f = simulate(files, 3, { cfg: { restartable: true }, setup: (rs) => (rs[1].deadFrom = 2) });
  assert.deepEqual(f.restart, [{ id: 0x0a000101, completed: [0] }], '-f: the failed client and the files it did get');
  const q = simulate(files, 3, { cfg: { quitOnError: true }, setup: (rs) => (rs[1].deadFrom = 2) });
  assert.equal(q.exitCode, UftpExit.ALL_DROPPED);
  assert.ok(q.receivers[0].aborted !== '', 'everyone was told with an ABORT');
});

test('exit 8 when nobody answers the first FILEINFO; exit 10 when every file is rejected, 0 when every file is skipped', () => {
  const r = simulate([file('a', bytes(100, 1))], 2, { setup: (rs) => rs.forEach((x) => (x.deadFrom = 1)) });
  assert.equal(r.exitCode, UftpExit.NO_FILEINFO_ACK);
  const j = simulate([file('a', bytes(100, 1))], 2, { setup: (rs) => rs.forEach((x) => x.reject.add('a')) });
  assert.equal(j.exitCode, UftpExit.NOTHING_RECEIVED);
  assert.ok(j.status.includes('RESULT;0x0A000100;a;0KB;rejected;'));
  const s = simulate([file('a', bytes(100, 1))], 2, { setup: (rs) => rs.forEach((x) => x.skip.add('a')) });
  assert.equal(s.exitCode, UftpExit.OK, 'skipped: the client has the file (the real uftp exits 0)');
  assert.ok(s.status.includes('RESULT;0x0A000100;a;0KB;skipped;'), 'skipped: no speed, as the real uftp');
});

test('-q: the only client aborts on the FILEINFO: exit 8 (nobody acknowledged a FILEINFO), as the real uftp; mid-file it is 9', () => {
  const r = simulate([file('a', bytes(5000, 1))], 1, { cfg: { quitOnError: true }, setup: (rs) => rs[0].abortOn.add('a') });
  assert.equal(r.exitCode, UftpExit.NO_FILEINFO_ACK);
  assert.ok(r.logs.some((l) => /Not enough disk space/.test(l)), r.logs.join('\n'));
  const n = simulate([file('a', bytes(5000, 1))], 1, { setup: (rs) => rs[0].abortOn.add('a') });
  assert.equal(n.exitCode, UftpExit.NO_FILEINFO_ACK, 'without -q too');
  const later = simulate([file('a', bytes(5000, 1)), file('b', bytes(5000, 2))], 2, { cfg: { quitOnError: true }, setup: (rs) => rs[0].abortOn.add('b') });
  assert.equal(later.exitCode, UftpExit.ALL_DROPPED, 'a FILEINFO was acknowledged before: 9');
});

test('-a max passes: receivers still missing blocks after the last pass are aborted (exit 9 when that is all of them)', () => {
  const r = simulate([file('x', bytes(200_000, 9))], 2, { loss: 0.3, seed: 3, cfg: { maxPasses: 1 } });
  assert.equal(r.exitCode, UftpExit.ALL_DROPPED);
  assert.equal(r.machine.passes, 1);
  assert.ok(r.receivers.every((x) => /Maximum passes/.test(x.aborted)));
});

test('-q with a closed group: a listed host that never registers ends the session before any file (exit 7, every CONNECT failed)', () => {
  const r = simulate([file('f', bytes(100, 1))], 1, { cfg: { quitOnError: true, hosts: [0x0a000100, 0x0a0009ff] } });
  assert.equal(r.exitCode, UftpExit.NO_REGISTER);
  assert.deepEqual(r.status, ['CONNECT;failed;0x0A000100', 'CONNECT;failed;0x0A0009FF']);
  assert.equal(r.sent.get('FILEINFO'), undefined);
  assert.match(r.receivers[0].aborted, /aborting all/);
});

test('-W: a receiver that cannot finish within W% of the optimal time is aborted; the others are not held back', () => {
  const size = 400_000;
  const rate = (8000 * 1024) / 8;
  // receiver 1 hears no data after FILEINFO: it can never complete
  const r = simulate([file('x', bytes(size, 4))], 2, { cfg: { rate, txWeight: 150 }, setup: (rs) => (rs[1].deaf = true) });
  assert.equal(r.exitCode, UftpExit.OK);
  assert.ok(r.receivers[0].files.has('x'));
  assert.match(r.receivers[1].aborted, /Maximum transfer time exceeded/);
  const optimal = ((size + Math.ceil(size / 1300) * 52) / rate) * 1000;
  assert.ok(r.logs.some((l) => /Maximum transfer time exceeded/.test(l)));
  assert.ok(r.dataMs <= optimal * 1.5 + 50, `data phase ${r.dataMs} ms, limit ${(optimal * 1.5).toFixed(0)} ms`);
});

test('-N/-m: a receiver NAKing more than N% of a section m times is dropped', () => {
  const r = simulate([file('x', bytes(100_000, 9))], 3, { loss: 0.2, seed: 8, cfg: { maxNakPct: 5, maxNakCount: 1 } });
  assert.ok(r.logs.some((l) => /Too many NAKs/.test(l)), r.logs.slice(-5).join('\n'));
});

test('-R pacing: 1 MB at 8000 Kbps takes about 1.05 s of virtual time (IP/UDP headers counted)', () => {
  const size = 1_000_000;
  const rate = (8000 * 1024) / 8;
  const r = simulate([file('x', bytes(size, 1))], 1, { cfg: { rate } });
  assert.equal(r.exitCode, UftpExit.OK);
  const blocks = Math.ceil(size / 1300);
  const want = ((size + blocks * (16 + 8 + 28)) / rate) * 1000;
  assert.ok(Math.abs(r.dataMs - want) < want * 0.03 + 5, `data phase ${r.dataMs} ms, expected ~${want.toFixed(0)} ms`);
});

test('-H with proxies: a proxy\'s REGISTER for listed clients counts only when the proxy is in the -j list', () => {
  const reg = (src: number, ids: number[]): Uint8Array => encodePacket({
    header: { version: UFTP_VER_NUM, func: MessageType.REGISTER, seq: 0, srcId: src, groupId: 0x12345678, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 },
    message: { type: 'REGISTER', timestamp: { sec: 1, usec: 0 }, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: ids },
  });
  const from = { address: '10.0.0.50', port: 1044 };
  for (const [list, want] of [[[] as number[], [] as number[]], [[0x0a0000ff], [0x0a000100, 0x0a000101]]] as const) {
    const m = new ServerMachine(config([file('f', bytes(10, 1))], { hosts: [0x0a000100, 0x0a000101], proxyList: list }), 1000);
    m.handleTimeout(1000);
    m.handle(1001, from, reg(0x0a0000ff, [0x0a000100, 0x0a000101]));
    assert.deepEqual(m.receiverIds(), want, `proxy list ${JSON.stringify(list)}`);
  }
});

test('hostile input: garbage, other groups and forged IDs change nothing', () => {
  const m = new ServerMachine(config([file('f', bytes(10, 1))]), 1000);
  m.handleTimeout(1000);
  while (m.pollEffect() || m.pollTransmit(1000)) { /* drain */ }
  const from = { address: '10.9.9.9', port: 1 };
  m.handle(1001, from, new Uint8Array([0x40, 2, 0, 0]));
  m.handle(1001, from, new Uint8Array(3000).fill(0xff));
  const ts: Timestamp = { sec: 1, usec: 0 };
  const reg = encodePacket({ header: { version: UFTP_VER_NUM, func: MessageType.REGISTER, seq: 0, srcId: 5, groupId: 0x99, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 },
    message: { type: 'REGISTER', timestamp: ts, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] } });
  m.handle(1002, from, reg);
  assert.deepEqual(m.receiverIds(), [], 'a REGISTER for another group is ignored');
  const status = encodePacket({ header: { version: UFTP_VER_NUM, func: MessageType.STATUS, seq: 0, srcId: 5, groupId: 0x12345678, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 },
    message: { type: 'STATUS', fileId: 1, section: 60000, extensions: [], naks: new Uint8Array(8000).fill(0xff) } });
  m.handle(1003, from, status);
  assert.equal(m.finished, false);
  // a REGISTER flood with made-up IDs stops at the receiver limit
  const f = new ServerMachine(config([file('f', bytes(10, 1))], { maxReceivers: 100 }), 1000);
  f.handleTimeout(1000);
  for (let i = 0; i < 5000; i++) {
    f.handle(1001, from, encodePacket({ header: { version: UFTP_VER_NUM, func: MessageType.REGISTER, seq: 0, srcId: 0x7f000000 + i, groupId: 0x12345678, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 },
      message: { type: 'REGISTER', timestamp: ts, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] } }));
  }
  assert.equal(f.receiverIds().length, 100);
});
