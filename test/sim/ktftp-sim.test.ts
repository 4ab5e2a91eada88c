/**
 * KTFTP state machines on an in-memory network with a virtual clock: loss, duplication and reordering,
 * no sockets. The server machine runs against an in-memory TagFs; the client against in-memory sinks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generateKey } from '../../src/crypto/keyfile.js';
import { fingerprint } from '../../src/crypto/pubkey.js';
import { ClientSession, exitCodeFor, type ClientAuth } from '../../src/ktftp/client-session.js';
import { publicKeyDer } from '../../src/ktftp/crypto.js';
import { MemTagFs, type Sink, type Source } from '../../src/ktftp/fileops.js';
import { ServerSession, type ServerContext } from '../../src/ktftp/server-session.js';
import { parseIdentTable, parseTagTable } from '../../src/ktftp/tags.js';
import type { Outcome } from '../../src/ktftp/transfer.js';
import { decode, opcodeOf, Op, type RequestOp } from '../../src/ktftp/wire.js';

function must<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

const serverKey = must(generateKey('ec:prime256v1'));
const aliceKey = must(generateKey('ec:prime256v1'));
const malloryKey = must(generateKey('ec:prime256v1'));

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface NetConfig {
  loss: number;
  dup: number;
  /** max extra delay in ms; with a base of 1 ms, anything above ~1 reorders */
  jitter: number;
  seed: number;
  /** Called on every datagram in flight; may return a replacement (tampering) or null (drop). */
  mangle?: (from: string, to: string, d: Buffer) => Buffer | null;
}

function makeServer(fs: MemTagFs, tagText: string): ServerContext {
  const idents = must(
    (() => {
      const r = parseIdentTable(`alice|${aliceKey.fingerprint}\n`, 'ident');
      return r.ok ? { ok: true as const, value: r.value } : { ok: false as const, error: r.error };
    })(),
  );
  const t = parseTagTable(tagText, 'tags');
  if (!t.ok) throw new Error(t.error);
  return {
    tags: t.value,
    idents,
    fs,
    key: { privateKey: serverKey.privateKey, publicDer: publicKeyDer(serverKey.publicKey) },
    fingerprintOf: (pub) => {
      const f = fingerprint(pub);
      return f.ok ? f.value : null;
    },
    krb5: false,
    log: () => undefined,
    maxBlksize: 65464,
    maxWindow: 64,
    rexmt: 100,
    timeout: 3000,
  };
}

const TAGS = 'log|/var/log/app.log|alice\nopen|/srv/open|anonymous\nall|/srv/all|*\n';

class MemSink implements Sink {
  parts: Buffer[] = [];
  committed: Buffer | null = null;
  aborted = false;
  write(d: Uint8Array) {
    this.parts.push(Buffer.from(d));
    return { ok: true as const, value: undefined };
  }
  commit() {
    this.committed = Buffer.concat(this.parts);
    return { ok: true as const, value: undefined };
  }
  abort() {
    this.aborted = true;
  }
}

function memSource(b: Buffer, starve = false): Source {
  let off = 0;
  let calls = 0;
  return {
    size: starve ? null : b.length,
    read: (max) => {
      // A pipe that has nothing yet on every other call.
      if (starve && calls++ % 2 === 0 && off < b.length) return { ok: true, value: null };
      const out = b.subarray(off, off + max);
      off += out.length;
      return { ok: true, value: Buffer.from(out) };
    },
    close: () => undefined,
  };
}

interface RunOpts {
  op: RequestOp;
  tag: string;
  auth?: ClientAuth;
  source?: Buffer;
  blksize?: number;
  windowsize?: number;
  pin?: string;
  net?: Partial<NetConfig>;
  serverDown?: boolean;
  /** Inject one copy of a client packet from another port into the session. */
  stranger?: boolean;
  /** The put's source is a pipe that often has nothing yet (it is poked on every step). */
  starve?: boolean;
  /** Both ends seal ahead (prepare()) after every step, as the drivers do when idle. */
  prepare?: boolean;
}

interface RunResult {
  outcome: Outcome;
  code: number;
  sink: MemSink;
  serverOutcomes: Outcome[];
  strangerReplies: Buffer[];
  sent: Buffer[];
  /** Every datagram in the order its sender sent it. */
  wire: { from: string; data: Buffer }[];
}

function aliceAuth(): ClientAuth {
  return { method: 'key', privateKey: aliceKey.privateKey, publicKey: aliceKey.publicKey };
}

/** Runs one client operation against the server on the simulated network, to completion. */
function run(ctx: ServerContext, o: RunOpts): RunResult {
  const net: NetConfig = { loss: 0, dup: 0, jitter: 0, seed: 1, ...o.net };
  const rand = rng(net.seed);
  const sink = new MemSink();
  const pinned = o.pin ?? serverKey.fingerprint;
  const client = new ClientSession({
    op: o.op,
    tag: o.tag,
    mode: 'octet',
    blksize: o.blksize ?? 512,
    windowsize: o.windowsize ?? 1,
    rexmt: 200,
    timeout: 5000,
    auth: o.auth ?? aliceAuth(),
    verifyServer: (pub) => {
      const f = fingerprint(pub);
      return f.ok && f.value === pinned ? null : `server key ${f.ok ? f.value : '?'} does not match the pinned fingerprint`;
    },
    source: o.source !== undefined ? memSource(o.source, o.starve) : undefined,
    sink,
    tsize: o.source?.length ?? null,
  });
  let now = 0;
  const queue: { at: number; to: string; from: string; data: Buffer }[] = [];
  const sent: Buffer[] = [];
  const wire: { from: string; data: Buffer }[] = [];
  let injected = false;
  const send = (from: string, to: string, data: Buffer) => {
    sent.push(data);
    wire.push({ from, data });
    if (o.stranger && !injected && from === 'client' && to !== 'server:69') {
      injected = true;
      queue.push({ at: now + 1, to, from: 'evil:666', data });
    }
    if (rand() < net.loss) return;
    const copies = rand() < net.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let d: Buffer | null = data;
      if (net.mangle) d = net.mangle(from, to, data);
      if (d === null) continue;
      queue.push({ at: now + 1 + rand() * net.jitter, to, from, data: d });
    }
  };
  const sessions = new Map<string, ServerSession>();
  const serverOutcomes: Outcome[] = [];
  const strangerReplies: Buffer[] = [];
  let nextPort = 1000;
  for (const d of client.start(now)) send('client', 'server:69', d);
  for (let steps = 0; steps < 5_000_000; steps++) {
    if (client.outcome !== null && [...sessions.values()].every((s) => s.deadline === null)) break;
    let t = Infinity;
    for (const q of queue) t = Math.min(t, q.at);
    const cd = client.deadline;
    if (cd !== null) t = Math.min(t, cd);
    for (const s of sessions.values()) if (s.deadline !== null) t = Math.min(t, s.deadline);
    if (t === Infinity) break;
    now = Math.max(now, t);
    // deliveries due
    queue.sort((a, b) => a.at - b.at);
    while (queue.length > 0 && queue[0].at <= now) {
      const q = queue.shift()!;
      if (q.to === 'client') {
        for (const d of client.handle(now, q.data)) send('client', client.locked ? q.from : 'server:69', d);
      } else if (q.to === 'server:69') {
        if (o.serverDown) continue;
        if (opcodeOf(q.data) < 1 || opcodeOf(q.data) > 11) continue;
        // A duplicate request from the same client port is the same session (RFC 1350).
        if ([...sessions.values()].some((s) => s.peer === q.from && s.deadline !== null)) continue;
        const r = ServerSession.fromRequest(ctx, now, q.from, q.data);
        if (r === null) continue;
        const port = `server:${nextPort++}`;
        if ('error' in r) {
          send(port, q.from, r.error);
          continue;
        }
        sessions.set(port, r.session);
        for (const d of r.send) send(port, q.from, d);
      } else {
        const s = sessions.get(q.to);
        if (s === undefined) continue;
        if (q.from !== s.peer) {
          const reply = ServerSession.strangerReply();
          strangerReplies.push(reply);
          send(q.to, q.from, reply);
          continue;
        }
        for (const d of s.handle(now, q.data)) send(q.to, s.peer, d);
        if (s.outcome !== null && s.deadline === null) serverOutcomes.push(s.outcome);
      }
    }
    if (o.starve) for (const d of client.poke(now)) send('client', [...sessions.keys()].pop() ?? 'server:69', d);
    for (const d of client.handleTimeout(now)) send('client', client.locked ? [...sessions.keys()].pop() ?? 'server:69' : 'server:69', d);
    for (const [port, s] of sessions) {
      const before = s.deadline;
      for (const d of s.handleTimeout(now)) send(port, s.peer, d);
      if (before !== null && s.deadline === null && s.outcome !== null) serverOutcomes.push(s.outcome);
    }
    if (o.prepare) {
      client.prepare();
      for (const s of sessions.values()) s.prepare();
    }
  }
  assert.ok(client.outcome !== null, 'client finished');
  return { outcome: client.outcome, code: exitCodeFor(client.outcome), sink, serverOutcomes, strangerReplies, sent, wire };
}

test('get over a lossy, duplicating, reordering network delivers the exact file (window 8)', () => {
  const fs = new MemTagFs();
  const content = randomBytes(200_000);
  fs.files.set('/var/log/app.log', content);
  const r = run(makeServer(fs, TAGS), { op: 'RRQ', tag: 'log', windowsize: 8, blksize: 1024, net: { loss: 0.05, dup: 0.05, jitter: 5, seed: 7 } });
  assert.equal(r.code, 0, JSON.stringify(r.outcome));
  assert.ok(r.sink.committed !== null);
  assert.ok(r.sink.committed.equals(content));
});

/** The sequence numbers each end put on the wire, in sending order, must only grow (no nonce used twice). */
function assertSeqsGrow(wire: { from: string; data: Buffer }[]): number {
  const last = new Map<string, number>();
  let n = 0;
  for (const { from, data } of wire) {
    if (opcodeOf(data) !== Op.SEALED) continue;
    const seq = Number(data.readBigUInt64BE(2));
    const prev = last.get(from);
    if (prev !== undefined) assert.ok(seq > prev, `${from}: seq ${seq} after ${prev}`);
    last.set(from, seq);
    n++;
  }
  return n;
}

test('sealing ahead (prepare) on both ends: exact files over loss, duplication and reordering, seqs only grow', () => {
  const cases = [
    { op: 'RRQ' as const, windowsize: 1, blksize: 512, seed: 21 },
    { op: 'RRQ' as const, windowsize: 8, blksize: 1024, seed: 22 },
    { op: 'WRQ' as const, windowsize: 1, blksize: 700, seed: 23 },
    { op: 'WRQ' as const, windowsize: 16, blksize: 1400, seed: 24 },
  ];
  for (const c of cases) {
    for (const loss of [0, 0.07]) {
      const fs = new MemTagFs();
      const content = randomBytes(60_000 + c.seed);
      if (c.op === 'RRQ') fs.files.set('/var/log/app.log', content);
      const r = run(makeServer(fs, TAGS), {
        op: c.op,
        tag: 'log',
        source: c.op === 'WRQ' ? content : undefined,
        windowsize: c.windowsize,
        blksize: c.blksize,
        prepare: true,
        net: { loss, dup: loss, jitter: loss > 0 ? 4 : 0, seed: c.seed },
      });
      const what = `${c.op} w${c.windowsize} loss ${loss}`;
      assert.equal(r.code, 0, `${what}: ${JSON.stringify(r.outcome)}`);
      const got = c.op === 'RRQ' ? r.sink.committed : fs.files.get('/var/log/app.log');
      assert.ok(got !== null && got !== undefined && got.equals(content), what);
      assert.ok(assertSeqsGrow(r.wire) > 40, what);
    }
  }
});

test('lock-step get with loss delivers the exact file', () => {
  const fs = new MemTagFs();
  const content = randomBytes(30_000);
  fs.files.set('/var/log/app.log', content);
  const r = run(makeServer(fs, TAGS), { op: 'RRQ', tag: 'log', net: { loss: 0.1, dup: 0.1, jitter: 3, seed: 3 } });
  assert.equal(r.code, 0);
  assert.ok(r.sink.committed!.equals(content));
});

test('put over a lossy network lands the exact file, atomically replacing the old one', () => {
  const fs = new MemTagFs();
  fs.files.set('/var/log/app.log', Buffer.from('old'));
  const content = randomBytes(150_001);
  const r = run(makeServer(fs, TAGS), { op: 'WRQ', tag: 'log', source: content, windowsize: 16, blksize: 1400, net: { loss: 0.05, dup: 0.05, jitter: 4, seed: 11 } });
  assert.equal(r.code, 0, JSON.stringify(r.outcome));
  assert.ok(fs.files.get('/var/log/app.log')!.equals(content));
});

test('put from a source that often has nothing yet (a pipe) still lands the exact file', () => {
  for (const windowsize of [1, 8]) {
    const fs = new MemTagFs();
    const content = randomBytes(50_000);
    const r = run(makeServer(fs, TAGS), { op: 'WRQ', tag: 'log', source: content, windowsize, blksize: 700, starve: true, net: { loss: 0.03, seed: windowsize } });
    assert.equal(r.code, 0, JSON.stringify(r.outcome));
    assert.ok(fs.files.get('/var/log/app.log')!.equals(content));
  }
});

test('a file of an exact multiple of blksize ends with an empty block', () => {
  const fs = new MemTagFs();
  const content = randomBytes(4096);
  fs.files.set('/var/log/app.log', content);
  const r = run(makeServer(fs, TAGS), { op: 'RRQ', tag: 'log', blksize: 512, windowsize: 4 });
  assert.ok(r.sink.committed!.equals(content));
  const r2 = run(makeServer(fs, TAGS), { op: 'WRQ', tag: 'log~', source: content, blksize: 512, windowsize: 4 });
  assert.equal(r2.code, 0);
  assert.ok(fs.files.get('/var/log/app.log~')!.equals(content));
});

test('block numbers roll over past 65535', () => {
  const fs = new MemTagFs();
  const content = randomBytes(70_000 * 8 + 3);
  fs.files.set('/var/log/app.log', content);
  const r = run(makeServer(fs, TAGS), { op: 'RRQ', tag: 'log', blksize: 8, windowsize: 32 });
  assert.equal(r.code, 0);
  assert.ok(r.sink.committed!.equals(content));
});

test('push, get tag~, delete tag~: the seed recipe, with the final ACKs lost once', () => {
  const fs = new MemTagFs();
  const content = Buffer.from('line 1\nline 2\n');
  fs.files.set('/var/log/app.log', content);
  const ctx = makeServer(fs, TAGS);
  let dropped = 0;
  // Drop the first sealed server answer of each command once: the client repeats AUTH, the server must
  // answer again without renaming twice.
  const mangle = (from: string, _to: string, d: Buffer) => {
    if (from.startsWith('server:') && opcodeOf(d) === Op.SEALED && dropped < 1) {
      dropped++;
      return null;
    }
    return d;
  };
  const push = run(ctx, { op: 'PUSH', tag: 'log', net: { mangle } });
  assert.equal(push.code, 0, JSON.stringify(push.outcome));
  assert.equal(fs.files.has('/var/log/app.log'), false);
  assert.ok(fs.files.get('/var/log/app.log~')!.equals(content));
  const get = run(ctx, { op: 'RRQ', tag: 'log~' });
  assert.equal(get.code, 0);
  assert.ok(get.sink.committed!.equals(content));
  dropped = 0;
  const del = run(ctx, { op: 'DELETE', tag: 'log~', net: { mangle } });
  assert.equal(del.code, 0, JSON.stringify(del.outcome));
  assert.equal(fs.files.has('/var/log/app.log~'), false);
  // Second push has nothing to move: ENOTFOUND.
  assert.equal(run(ctx, { op: 'PUSH', tag: 'log' }).code, 2);
});

test('exit codes: ENOTFOUND 2, EACCESS 3, ENOSPACE 4, EBADOP 5, ENOUSER 8, ETIMEOUT 9, pin mismatch 255', () => {
  const fs = new MemTagFs();
  const ctx = makeServer(fs, TAGS);
  assert.equal(run(ctx, { op: 'RRQ', tag: 'log' }).code, 2);
  const mallory = { method: 'key' as const, privateKey: malloryKey.privateKey, publicKey: malloryKey.publicKey };
  const nouser = run(ctx, { op: 'RRQ', tag: 'log', auth: mallory });
  assert.equal(nouser.code, 8);
  assert.equal(run(ctx, { op: 'RRQ', tag: 'log', auth: { method: 'none' } }).code, 3);
  assert.equal(run(ctx, { op: 'RRQ', tag: 'nosuchtag' }).code, 3);
  assert.equal(run(ctx, { op: 'RRQ', tag: '../etc/passwd' }).code, 3);
  fs.files.set('/var/log/app.log', Buffer.from('keep me'));
  fs.capacity = 1000;
  const full = run(ctx, { op: 'WRQ', tag: 'log', source: randomBytes(5000) });
  assert.equal(full.code, 4);
  assert.equal(fs.files.get('/var/log/app.log')!.toString(), 'keep me');
  assert.equal(run(ctx, { op: 'PUSH', tag: 'log~' }).code, 5);
  assert.equal(run(ctx, { op: 'RRQ', tag: 'log', serverDown: true }).code, 9);
  const pin = run(ctx, { op: 'RRQ', tag: 'log', pin: 'AA:BB' });
  assert.equal(pin.code, 255);
  assert.match(pin.outcome.ok ? '' : pin.outcome.message, /pinned/);
  // Anonymous (no key) may use an anonymous tag, sealed all the same; '*' admits any known identity.
  fs.files.set('/srv/open', Buffer.from('public'));
  const anon = run(ctx, { op: 'RRQ', tag: 'open', auth: { method: 'none' } });
  assert.equal(anon.code, 0);
  assert.equal(anon.sink.committed!.toString(), 'public');
  fs.files.set('/srv/all', Buffer.from('x'));
  assert.equal(run(ctx, { op: 'RRQ', tag: 'all' }).code, 0);
  assert.equal(run(ctx, { op: 'RRQ', tag: 'all', auth: mallory }).code, 8);
});

test('a tampered sealed packet is dropped and the transfer recovers by retransmission', () => {
  const fs = new MemTagFs();
  const content = randomBytes(20_000);
  fs.files.set('/var/log/app.log', content);
  let tampered = 0;
  const mangle = (from: string, _to: string, d: Buffer) => {
    if (from.startsWith('server:') && opcodeOf(d) === Op.SEALED && d.length > 100 && tampered < 5) {
      tampered++;
      const t = Buffer.from(d);
      t[20] ^= 0x01;
      return t;
    }
    return d;
  };
  const r = run(makeServer(fs, TAGS), { op: 'RRQ', tag: 'log', blksize: 1024, net: { mangle } });
  assert.equal(tampered, 5);
  assert.equal(r.code, 0);
  assert.ok(r.sink.committed!.equals(content));
});

test('replayed sealed packets are rejected: replaying the whole client flow moves nothing twice', () => {
  const fs = new MemTagFs();
  fs.files.set('/var/log/app.log', Buffer.from('a'));
  const ctx = makeServer(fs, TAGS);
  // Record every datagram in flight, deliver each twice (a replay right behind the original).
  const r = run(ctx, { op: 'PUSH', tag: 'log', net: { dup: 1 } });
  assert.equal(r.code, 0);
  assert.ok(fs.files.has('/var/log/app.log~'));
  assert.ok(r.sent.every((d) => opcodeOf(d) !== Op.DATA && opcodeOf(d) !== Op.ACK), 'no plain DATA/ACK on a secure session');
});

test('a packet from a stranger port gets ERROR 5 (EBADID) and the transfer goes on', () => {
  const fs = new MemTagFs();
  const content = randomBytes(5000);
  fs.files.set('/var/log/app.log', content);
  const r = run(makeServer(fs, TAGS), { op: 'RRQ', tag: 'log', stranger: true });
  assert.equal(r.code, 0);
  assert.ok(r.sink.committed!.equals(content));
  assert.equal(r.strangerReplies.length, 1);
  const e = decode(r.strangerReplies[0]);
  assert.ok(e.ok && e.value.type === 'ERROR' && e.value.code === 5);
  // What our client makes of such errors when a server sends them in a session: 6 and 7.
  assert.equal(exitCodeFor({ ok: false, kind: 'tftp', code: 5, message: 'Unknown transfer ID', remote: true }), 6);
  assert.equal(exitCodeFor({ ok: false, kind: 'tftp', code: 6, message: 'File exists', remote: true }), 7);
});

test('plain RFC 1350 requests: anonymous tag served in the clear, protected tag refused with access violation', () => {
  const fs = new MemTagFs();
  fs.files.set('/srv/open', Buffer.from('hello plain world'));
  fs.files.set('/var/log/app.log', Buffer.from('secret'));
  const ctx = makeServer(fs, TAGS);
  const rrq = (tag: string, opts = '') => Buffer.from(`\x00\x01${tag}\x00octet\x00${opts}`, 'latin1');
  const ok = ServerSession.fromRequest(ctx, 0, 'c:1', rrq('open'));
  assert.ok(ok !== null && 'session' in ok);
  const d = decode(ok.send[0]);
  assert.ok(d.ok && d.value.type === 'DATA' && Buffer.from(d.value.data).toString() === 'hello plain world');
  const refused = ServerSession.fromRequest(ctx, 0, 'c:2', rrq('log'));
  assert.ok(refused !== null && 'session' in refused);
  const e = decode(refused.send[0]);
  assert.ok(e.ok && e.value.type === 'ERROR' && e.value.code === 2);
  // With options: OACK, then DATA after ACK 0, tsize filled in.
  const withOpts = ServerSession.fromRequest(ctx, 0, 'c:3', rrq('open', 'tsize\x000\x00blksize\x001024\x00'));
  assert.ok(withOpts !== null && 'session' in withOpts);
  const oack = decode(withOpts.send[0]);
  assert.ok(oack.ok && oack.value.type === 'OACK');
  assert.deepEqual(oack.value.options, [['tsize', '17'], ['blksize', '1024']]);
  // Plain PUSH and DELETE (new opcodes) on an anonymous tag; refused on a protected one.
  const push = ServerSession.fromRequest(ctx, 0, 'c:4', Buffer.from('\x00\x0aopen\x00octet\x00', 'latin1'));
  assert.ok(push !== null && 'session' in push);
  assert.deepEqual(decode(push.send[0]), { ok: true, value: { type: 'ACK', block: 0 } });
  assert.ok(fs.files.has('/srv/open~') && !fs.files.has('/srv/open'));
  const del = ServerSession.fromRequest(ctx, 0, 'c:5', Buffer.from('\x00\x0bopen~\x00octet\x00', 'latin1'));
  assert.ok(del !== null && 'session' in del);
  assert.deepEqual(decode(del.send[0]), { ok: true, value: { type: 'ACK', block: 0 } });
  assert.equal(fs.files.has('/srv/open~'), false);
  const delLog = ServerSession.fromRequest(ctx, 0, 'c:6', Buffer.from('\x00\x0blog\x00octet\x00', 'latin1'));
  assert.ok(delLog !== null && 'session' in delLog);
  const ed = decode(delLog.send[0]);
  assert.ok(ed.ok && ed.value.type === 'ERROR' && ed.value.code === 2);
  assert.ok(fs.files.has('/var/log/app.log'));
  const data = withOpts.session.handle(1, Buffer.from([0, 4, 0, 0]));
  const dd = decode(data[0]);
  assert.ok(dd.ok && dd.value.type === 'DATA' && dd.value.block === 1);
});
