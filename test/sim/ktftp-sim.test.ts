/**
 * KTFTP's machines (src/ktftp/machine.ts) on the shared simulated network (test/sim/network.ts) with its virtual
 * clock: loss, duplication and reordering, no sockets. The server runs against an in-memory TagFs; the client
 * against in-memory sinks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generateKey } from '../../src/crypto/keyfile.js';
import { fingerprint } from '../../src/crypto/pubkey.js';
import { ClientSession, exitCodeFor, type ClientAuth } from '../../src/ktftp/client-session.js';
import { MemTagFs, ReadAheadSource, WriteBehindSink, type Sink, type Source, type TagFs } from '../../src/ktftp/fileops.js';
import { ServerSession, type ServerContext } from '../../src/ktftp/server-session.js';
import { KtftpListener, type KtftpEffect, type KtftpEffectResult } from '../../src/ktftp/machine.js';
import type { Endpoint, Machine } from '../../src/core/machine.js';
import { SimNetwork, type SimNode } from './network.js';
import { testServerContext } from '../../src/ktftp/testctx.js';
import type { Outcome } from '../../src/ktftp/transfer.js';
import { decode, opcodeOf, Op, type RequestOp } from '../../src/ktftp/wire.js';

function must<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

const serverKey = must(generateKey('ec:prime256v1'));
const aliceKey = must(generateKey('ec:prime256v1'));
const malloryKey = must(generateKey('ec:prime256v1'));

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
  return testServerContext(tagText, fs, { identText: `alice|${aliceKey.fingerprint}\n`, key: serverKey }, {
    fingerprintOf: (pub) => {
      const f = fingerprint(pub);
      return f.ok ? f.value : null;
    },
    timeout: 3000,
  });
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
  /** Answers the server's `read` effects (a get through a ReadAheadSource, see readAheadFs). */
  reads?: (e: Extract<KtftpEffect, { kind: 'read' }>) => KtftpEffectResult;
  /** Answers the server's `write` and `commit` effects (a put through a WriteBehindSink, see writeBehindFs). */
  writes?: (e: Extract<KtftpEffect, { kind: 'write' | 'commit' }>) => KtftpEffectResult | undefined;
  /** Answers the server's `command` effects (push and delete through a TagFs with commandsAsEffects). */
  commands?: (e: Extract<KtftpEffect, { kind: 'command' }>) => KtftpEffectResult;
  /** Answers the server's `open` effects (a TagFs without openRead/openWrite), `openDelay` ms of virtual time later. */
  opens?: (e: Extract<KtftpEffect, { kind: 'open' }>, t: ServerSession) => KtftpEffectResult;
  openDelay?: number;
  /** The client's local file as the ktftp driver has it: a get's WriteBehindSink, a put's ReadAheadSource. */
  clientSink?: WriteBehindSink;
  clientSource?: ReadAheadSource;
  /** Answers the client's file effects (read, write, commit), `delay` ms of virtual time later. */
  clientFiles?: (e: Extract<KtftpEffect, { kind: 'read' | 'write' | 'commit' }>) => { result: KtftpEffectResult; delay: number };
}

/** Runs callbacks at virtual times (a driver's answer that takes a while: an open on a slow disk). */
class Later implements Machine<never> {
  private readonly q: { at: number; f: (now: number) => void }[] = [];
  at(when: number, f: (now: number) => void): void {
    this.q.push({ at: when, f });
    this.q.sort((a, b) => a.at - b.at);
  }
  handle(): void {}
  handleTimeout(now: number): void {
    while (this.q.length > 0 && this.q[0].at <= now) this.q.shift()!.f(now);
  }
  pollTransmit(): undefined {
    return undefined;
  }
  pollEffect(): undefined {
    return undefined;
  }
  pollTimeout(): number | undefined {
    return this.q[0]?.at;
  }
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

const CLIENT = '10.9.0.2';
const SERVER = '10.9.0.1';
const STRANGER = '10.9.0.66';

/** How the old in-memory network named endpoints (what `mangle` and `wire` see): "client", "server:PORT". */
function nameOf(e: Endpoint): string {
  return e.address === CLIENT ? 'client' : e.address === SERVER ? `server:${e.port}` : `evil:${e.port}`;
}

/** Pokes the client every millisecond (its source is a pipe that often has nothing yet), as the driver does when the pipe becomes readable. */
class Poker implements Machine<never> {
  private next = 0;
  constructor(private readonly poke: (now: number) => void) {}
  handle(): void {}
  handleTimeout(now: number): void {
    this.next = now + 1;
    this.poke(now);
  }
  pollTransmit(): undefined {
    return undefined;
  }
  pollEffect(): undefined {
    return undefined;
  }
  pollTimeout(): number {
    return this.next;
  }
}

/**
 * Runs one client operation against the server on the shared simulated network (test/sim/network.ts), to
 * completion: the client's link carries the loss, duplication and reordering both ways; `mangle` sees every
 * datagram as it is sent.
 */
function run(ctx: ServerContext, o: RunOpts): RunResult {
  const cfg: NetConfig = { loss: 0, dup: 0, jitter: 0, seed: 1, ...o.net };
  const sink = new MemSink();
  const pinned = o.pin ?? serverKey.fingerprint;
  const session = new ClientSession({
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
    source: o.clientSource ?? (o.source !== undefined ? memSource(o.source, o.starve) : undefined),
    sink: o.clientSink ?? sink,
    tsize: o.clientSource?.size ?? o.source?.length ?? null,
  }, { address: SERVER, port: 69 });
  const net = new SimNetwork({ seed: cfg.seed });
  const link = { loss: cfg.loss, dup: cfg.dup, jitterMs: cfg.jitter, delayMs: 1 };
  const clientHost = net.host('client', [CLIENT], { up: link, down: link });
  const serverHost = net.host('server', [SERVER]);
  net.host('evil', [STRANGER]);
  const sent: Buffer[] = [];
  const wire: { from: string; data: Buffer }[] = [];
  const serverOutcomes: Outcome[] = [];
  const strangerReplies: Buffer[] = [];
  const transfers: { t: ServerSession; done: boolean; node?: SimNode<KtftpEffect, KtftpEffectResult> }[] = [];
  let injected = false;
  let nextPort = 1000;
  let clientDone = false;
  const client = session;
  const clientLater = new Later();
  const clientLaterNode = clientHost.attach(clientLater, 3002);
  const clientNode = clientHost.attach<KtftpEffect, KtftpEffectResult>(client, 3000, {
    onEffect: (e) => {
      if (e.kind === 'done') clientDone = true;
      else if (e.kind === 'prepare' && o.prepare) client.prepare();
      else if ((e.kind === 'read' || e.kind === 'write' || e.kind === 'commit') && o.clientFiles) {
        const { result, delay } = o.clientFiles(e);
        clientLater.at(net.now + delay, (now) => {
          client.handleEffectResult(result, now);
          net.touch(clientNode as unknown as SimNode<unknown, unknown>);
        });
        net.touch(clientLaterNode as unknown as SimNode<unknown, unknown>);
      }
    },
  });
  const listener = new KtftpListener({ context: () => ctx, maxSessions: 256, log: () => undefined });
  const later = new Later();
  const laterNode = serverHost.attach(later, 4000);
  if (!o.serverDown) {
    serverHost.attach(listener, 69, {
      onEffect: (e) => {
        const entry: (typeof transfers)[number] = { t: e.transfer, done: false };
        transfers.push(entry);
        entry.node = serverHost.attach<KtftpEffect, KtftpEffectResult>(e.transfer, nextPort++, {
          onEffect: (x) => {
            if (x.kind === 'read') return o.reads?.(x);
            if (x.kind === 'write' || x.kind === 'commit') return o.writes?.(x);
            if (x.kind === 'command') return o.commands?.(x);
            if (x.kind === 'open' && o.opens) {
              const answer = o.opens(x, e.transfer);
              later.at(net.now + (o.openDelay ?? 0), (now) => {
                e.transfer.handleEffectResult(answer, now);
                if (entry.node) net.touch(entry.node as unknown as SimNode<unknown, unknown>);
              });
              net.touch(laterNode as unknown as SimNode<unknown, unknown>);
              return;
            }
            if (x.kind === 'prepare' && o.prepare) e.transfer.prepare();
            if (x.kind !== 'done') return;
            entry.done = true;
            listener.ended(e.transfer.peer);
            if (x.outcome !== null) serverOutcomes.push(x.outcome);
          },
        });
      },
    });
  }
  net.onSend = (f) => {
    const data = Buffer.from(f.data);
    sent.push(data);
    wire.push({ from: nameOf(f.from), data });
    if (f.to.address === STRANGER) strangerReplies.push(data);
    if (o.stranger && !injected && f.from.address === CLIENT && f.to.port !== 69) {
      const target = transfers.find((x) => x.node?.port === f.to.port)?.node;
      if (target) {
        injected = true;
        net.inject(target as unknown as SimNode<unknown, unknown>, { address: STRANGER, port: 666 }, data);
      }
    }
    if (!cfg.mangle) return true;
    const d = cfg.mangle(nameOf(f.from), nameOf(f.to), data);
    return d === null ? false : d;
  };
  if (o.starve) clientHost.attach(new Poker((now) => { client.poke(now); net.touch(clientNode as unknown as SimNode<unknown, unknown>); }), 3001);
  client.start(0);
  net.run({ until: () => clientDone && transfers.every((x) => x.done), maxTime: 600_000 });
  assert.ok(session.outcome !== null, 'client finished');
  return { outcome: session.outcome, code: exitCodeFor(session.outcome), sink, serverOutcomes, strangerReplies, sent, wire };
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
  const peer = (port: number): Endpoint => ({ address: '10.9.0.7', port });
  const first = (m: ServerSession): Buffer => Buffer.from(m.pollTransmit()!.data);
  const ok = ServerSession.fromRequest(ctx, 0, peer(1), rrq('open'));
  assert.ok(ok !== null && 'session' in ok);
  const d = decode(first(ok.session));
  assert.ok(d.ok && d.value.type === 'DATA' && Buffer.from(d.value.data).toString() === 'hello plain world');
  const refused = ServerSession.fromRequest(ctx, 0, peer(2), rrq('log'));
  assert.ok(refused !== null && 'session' in refused);
  const e = decode(first(refused.session));
  assert.ok(e.ok && e.value.type === 'ERROR' && e.value.code === 2);
  // With options: OACK, then DATA after ACK 0, tsize filled in.
  const withOpts = ServerSession.fromRequest(ctx, 0, peer(3), rrq('open', 'tsize\x000\x00blksize\x001024\x00'));
  assert.ok(withOpts !== null && 'session' in withOpts);
  const oack = decode(first(withOpts.session));
  assert.ok(oack.ok && oack.value.type === 'OACK');
  assert.deepEqual(oack.value.options, [['tsize', '17'], ['blksize', '1024']]);
  // Plain PUSH and DELETE (new opcodes) on an anonymous tag; refused on a protected one.
  const push = ServerSession.fromRequest(ctx, 0, peer(4), Buffer.from('\x00\x0aopen\x00octet\x00', 'latin1'));
  assert.ok(push !== null && 'session' in push);
  assert.deepEqual(decode(first(push.session)), { ok: true, value: { type: 'ACK', block: 0 } });
  assert.ok(fs.files.has('/srv/open~') && !fs.files.has('/srv/open'));
  const del = ServerSession.fromRequest(ctx, 0, peer(5), Buffer.from('\x00\x0bopen~\x00octet\x00', 'latin1'));
  assert.ok(del !== null && 'session' in del);
  assert.deepEqual(decode(first(del.session)), { ok: true, value: { type: 'ACK', block: 0 } });
  assert.equal(fs.files.has('/srv/open~'), false);
  const delLog = ServerSession.fromRequest(ctx, 0, peer(6), Buffer.from('\x00\x0blog\x00octet\x00', 'latin1'));
  assert.ok(delLog !== null && 'session' in delLog);
  const ed = decode(first(delLog.session));
  assert.ok(ed.ok && ed.value.type === 'ERROR' && ed.value.code === 2);
  assert.ok(fs.files.has('/var/log/app.log'));
  withOpts.session.handle(1, peer(3), Buffer.from([0, 4, 0, 0]));
  const dd = decode(first(withOpts.session));
  assert.ok(dd.ok && dd.value.type === 'DATA' && dd.value.block === 1);
});

/**
 * A TagFs whose gets read through ReadAheadSource (small bounds, so blocks straddle chunks and the sender often
 * waits for a read), and the effect handler that serves those reads from memory: at most `short` bytes a read,
 * an I/O error from `failAt` on. Counts the reads.
 */
function readAheadFs(mem: MemTagFs, o: { ahead: number; chunk: number; short: number; failAt?: number }) {
  const files = new Map<ReadAheadSource, Buffer>();
  const stats = { reads: 0, closed: 0 };
  const fs: TagFs = {
    openRead: (path) => {
      const f = mem.files.get(path);
      if (f === undefined) return { ok: false, code: 1, message: 'File not found' };
      const src = new ReadAheadSource(-1, path, f.length, () => stats.closed++, o.ahead, o.chunk);
      files.set(src, f);
      return { ok: true, value: src };
    },
    openWrite: (path, tsize) => mem.openWrite(path, tsize),
    push: (path) => mem.push(path),
    remove: (path) => mem.remove(path),
  };
  const reads = (e: Extract<KtftpEffect, { kind: 'read' }>): KtftpEffectResult => {
    stats.reads++;
    const f = files.get(e.file)!;
    if (o.failAt !== undefined && e.position >= o.failAt) return { kind: 'read', file: e.file, result: { ok: false, code: 0, message: `read ${e.file.path}: Input/output error` } };
    return { kind: 'read', file: e.file, result: { ok: true, bytes: f.subarray(e.position, Math.min(e.position + e.length, e.position + o.short, f.length)) } };
  };
  return { fs, reads, stats };
}

test('get with the file read through read effects (short reads, small read-ahead): exact file over loss, file closed', () => {
  for (const c of [
    { windowsize: 1, blksize: 512, seed: 31 },
    { windowsize: 8, blksize: 1024, seed: 32 },
  ]) {
    const mem = new MemTagFs();
    const content = randomBytes(80_000 + c.seed);
    mem.files.set('/var/log/app.log', content);
    const ra = readAheadFs(mem, { ahead: 3 * c.blksize, chunk: 1000, short: 700 });
    const ctx = { ...makeServer(mem, TAGS), fs: ra.fs };
    const r = run(ctx, { op: 'RRQ', tag: 'log', windowsize: c.windowsize, blksize: c.blksize, prepare: true, reads: ra.reads, net: { loss: 0.05, dup: 0.05, jitter: 3, seed: c.seed } });
    assert.equal(r.code, 0, JSON.stringify(r.outcome));
    assert.ok(r.sink.committed!.equals(content));
    assert.ok(ra.stats.reads >= Math.ceil(content.length / 700), `${ra.stats.reads} reads`);
    assert.equal(ra.stats.closed, 1);
  }
});

test('get whose file read fails part-way: the client gets the read error, nothing committed, file closed', () => {
  const mem = new MemTagFs();
  mem.files.set('/var/log/app.log', randomBytes(60_000));
  const ra = readAheadFs(mem, { ahead: 8192, chunk: 4096, short: 4096, failAt: 20_480 });
  const r = run({ ...makeServer(mem, TAGS), fs: ra.fs }, { op: 'RRQ', tag: 'log', windowsize: 4, blksize: 1024, reads: ra.reads });
  assert.ok(!r.outcome.ok && r.outcome.kind === 'tftp', JSON.stringify(r.outcome));
  assert.match(r.outcome.message, /read \/var\/log\/app\.log: Input\/output error/);
  assert.equal(r.sink.committed, null);
  assert.ok(r.sink.aborted);
  assert.equal(ra.stats.closed, 1);
  assert.ok(r.serverOutcomes.length === 1 && !r.serverOutcomes[0].ok);
});

/**
 * A TagFs whose puts write through WriteBehindSink (a small chunk, so writes are many and batched at window ends),
 * and the effect handler that does those writes and the commit in memory: the temporary file is a buffer written
 * at the effect's position, the commit moves it to the target; an I/O error for a write reaching `failAt`.
 */
function writeBehindFs(mem: MemTagFs, o: { chunk: number; failAt?: number }) {
  const temps = new Map<WriteBehindSink, Buffer>();
  const stats = { writes: 0, commits: 0, cleaned: 0, maxWrite: 0 };
  const fs: TagFs = {
    openRead: (path) => mem.openRead(path),
    openWrite: (path) => {
      const sink = new WriteBehindSink(-1, path, `${path}.tmp`, () => stats.cleaned++, o.chunk);
      temps.set(sink, Buffer.alloc(0));
      return { ok: true, value: sink };
    },
    push: (path) => mem.push(path),
    remove: (path) => mem.remove(path),
  };
  const writes = (e: Extract<KtftpEffect, { kind: 'write' | 'commit' }>): KtftpEffectResult => {
    const tmp = temps.get(e.file)!;
    if (e.kind === 'commit') {
      stats.commits++;
      mem.files.set(e.file.path, tmp);
      return { kind: 'commit', file: e.file, result: { ok: true } };
    }
    stats.writes++;
    stats.maxWrite = Math.max(stats.maxWrite, e.bytes.length);
    if (o.failAt !== undefined && e.position + e.bytes.length >= o.failAt)
      return { kind: 'write', file: e.file, result: { ok: false, code: 3, message: 'Disk full or allocation exceeded: No space left on device' } };
    assert.equal(e.position, tmp.length, 'writes come in order, each where the last ended');
    temps.set(e.file, Buffer.concat([tmp, e.bytes]));
    return { kind: 'write', file: e.file, result: { ok: true } };
  };
  return { fs, writes, stats };
}

test('put with the file written through write effects over loss: exact file, committed once at the end', () => {
  for (const c of [
    { windowsize: 1, blksize: 512, seed: 41 },
    { windowsize: 8, blksize: 1024, seed: 42 },
  ]) {
    const mem = new MemTagFs();
    mem.files.set('/var/log/app.log', Buffer.from('old'));
    const content = randomBytes(70_000 + c.seed);
    const wb = writeBehindFs(mem, { chunk: 4096 });
    const ctx = { ...makeServer(mem, TAGS), fs: wb.fs };
    const r = run(ctx, { op: 'WRQ', tag: 'log', source: content, auth: aliceAuth(), windowsize: c.windowsize, blksize: c.blksize, prepare: true, writes: wb.writes, net: { loss: 0.05, dup: 0.05, jitter: 3, seed: c.seed } });
    assert.equal(r.code, 0, JSON.stringify(r.outcome));
    assert.ok(mem.files.get('/var/log/app.log')!.equals(content));
    assert.equal(wb.stats.commits, 1);
    assert.equal(wb.stats.cleaned, 0);
    // a write at a window's end or when the chunk (4096) is full, not one per block (but in lock-step)
    const bound = Math.ceil((content.length + 1) / c.blksize / c.windowsize) + Math.ceil(content.length / 4096);
    assert.ok(wb.stats.writes <= bound, `${wb.stats.writes} writes, at most ${bound}`);
    assert.ok(wb.stats.maxWrite <= 4096 && wb.stats.maxWrite >= Math.min(4096, c.windowsize * c.blksize), `largest write ${wb.stats.maxWrite}`);
  }
});

test('put whose file write fails part-way: the client gets the write error, nothing committed, temp removed', () => {
  const mem = new MemTagFs();
  mem.files.set('/var/log/app.log', Buffer.from('old'));
  const wb = writeBehindFs(mem, { chunk: 4096, failAt: 20_000 });
  const r = run({ ...makeServer(mem, TAGS), fs: wb.fs }, { op: 'WRQ', tag: 'log', source: randomBytes(60_000), auth: aliceAuth(), windowsize: 4, blksize: 1024, writes: wb.writes, net: { loss: 0.03, seed: 43 } });
  assert.ok(!r.outcome.ok && r.outcome.kind === 'tftp' && r.outcome.remote, JSON.stringify(r.outcome));
  assert.equal(r.outcome.code, 3);
  assert.match(r.outcome.message, /No space left on device/);
  assert.equal(mem.files.get('/var/log/app.log')!.toString(), 'old');
  assert.equal(wb.stats.commits, 0);
  assert.equal(wb.stats.cleaned, 1);
  assert.ok(r.serverOutcomes.length === 1 && !r.serverOutcomes[0].ok);
});

test('push and delete through command effects: done once by the driver though the answer is lost, errors reach the client', () => {
  const mem = new MemTagFs();
  const content = randomBytes(5000);
  mem.files.set('/var/log/app.log', content);
  const asked: string[] = [];
  // no push/remove: those are the driver's (command effects), never done inside the step
  const fs: TagFs = { openRead: (p) => mem.openRead(p), openWrite: (p, t) => mem.openWrite(p, t) };
  const commands = (e: Extract<KtftpEffect, { kind: 'command' }>): KtftpEffectResult => {
    asked.push(`${e.op} ${e.path}`);
    return { kind: 'command', result: e.op === 'push' ? mem.push(e.path) : mem.remove(e.path) };
  };
  const ctx = { ...makeServer(mem, TAGS), fs };
  let dropped = 0;
  const mangle = (from: string, _to: string, d: Buffer) => {
    if (from.startsWith('server:') && opcodeOf(d) === Op.SEALED && dropped < 1) {
      dropped++;
      return null;
    }
    return d;
  };
  const push = run(ctx, { op: 'PUSH', tag: 'log', commands, net: { mangle } });
  assert.equal(push.code, 0, JSON.stringify(push.outcome));
  assert.ok(mem.files.get('/var/log/app.log~')!.equals(content));
  assert.deepEqual(asked, ['push /var/log/app.log']);
  const again = run(ctx, { op: 'PUSH', tag: 'log', commands });
  assert.equal(again.code, 2, JSON.stringify(again.outcome));
  assert.ok(mem.files.get('/var/log/app.log~')!.equals(content), 'the holder is untouched');
  const del = run(ctx, { op: 'DELETE', tag: 'log~', commands });
  assert.equal(del.code, 0, JSON.stringify(del.outcome));
  assert.equal(mem.files.has('/var/log/app.log~'), false);
  assert.deepEqual(asked, ['push /var/log/app.log', 'push /var/log/app.log', 'delete /var/log/app.log~']);
});

/**
 * A TagFs that cannot open in the step (the daemon's: opening is the driver's), and the `open` handler that opens
 * from memory, the get's file through a ReadAheadSource. Records when each open was asked and answered.
 */
function openEffectsFs(mem: MemTagFs) {
  const stats = { opens: [] as string[], closed: 0, released: 0 };
  const ra = readAheadFs(mem, { ahead: 8192, chunk: 4096, short: 4096 });
  const opens = (e: Extract<KtftpEffect, { kind: 'open' }>): KtftpEffectResult => {
    stats.opens.push(`${e.mode} ${e.path}`);
    if (e.mode === 'read') return { kind: 'open', mode: 'read', result: ra.fs.openRead!(e.path) };
    return { kind: 'open', mode: 'write', result: mem.openWrite(e.path, e.tsize) };
  };
  return { fs: {} as TagFs, opens, reads: ra.reads, stats, raStats: ra.stats };
}

test('opening as an effect: get and put over loss wait for the driver\'s open (nothing sent before), exact files', () => {
  for (const c of [
    { op: 'RRQ' as const, windowsize: 1, seed: 51 },
    { op: 'RRQ' as const, windowsize: 8, seed: 52 },
    { op: 'WRQ' as const, windowsize: 1, seed: 53 },
    { op: 'WRQ' as const, windowsize: 8, seed: 54 },
  ]) {
    const mem = new MemTagFs();
    const old = randomBytes(40_000 + c.seed);
    mem.files.set('/var/log/app.log', old);
    const oe = openEffectsFs(mem);
    const content = randomBytes(30_000 + c.seed);
    const r = run({ ...makeServer(mem, TAGS), fs: oe.fs }, {
      op: c.op,
      tag: 'log',
      source: c.op === 'WRQ' ? content : undefined,
      windowsize: c.windowsize,
      blksize: 1024,
      opens: oe.opens,
      openDelay: 700,
      reads: oe.reads,
      net: { loss: 0.05, dup: 0.05, jitter: 3, seed: c.seed },
    });
    assert.equal(r.code, 0, JSON.stringify(r.outcome));
    assert.deepEqual(oe.stats.opens, [`${c.op === 'RRQ' ? 'read' : 'write'} /var/log/app.log`], 'opened once, by the driver');
    if (c.op === 'RRQ') {
      assert.ok(r.sink.committed!.equals(old));
      assert.equal(oe.raStats.closed, 1);
    } else assert.ok(mem.files.get('/var/log/app.log')!.equals(content));
    // the OACK is the server's only datagram until the open was answered (the client repeats its AUTH meanwhile)
    const firstAnswer = r.wire.findIndex((w) => w.from.startsWith('server:') && opcodeOf(w.data) !== Op.OACK);
    assert.ok(firstAnswer > 0);
    const before = r.wire.slice(0, firstAnswer);
    const clientBefore = before.filter((w) => w.from === 'client').length;
    assert.ok(clientBefore >= 4, `request and the AUTH repeated while the server was opening (${clientBefore})`);
  }
});

test('opening as an effect: a failed open reaches the client as its TFTP error; an open answered after the transfer ended is let go', () => {
  const mem = new MemTagFs();
  mem.capacity = 1000;
  const oe = openEffectsFs(mem);
  const ctx = { ...makeServer(mem, TAGS), fs: oe.fs };
  const missing = run(ctx, { op: 'RRQ', tag: 'log', opens: oe.opens, openDelay: 50 });
  assert.equal(missing.code, 2, JSON.stringify(missing.outcome));
  const full = run(ctx, { op: 'WRQ', tag: 'log', source: randomBytes(5000), opens: oe.opens, openDelay: 50 });
  assert.equal(full.code, 4, JSON.stringify(full.outcome));
  assert.equal(mem.files.has('/var/log/app.log'), false);
  // the server shuts the transfer down while the open is on its way: the file opened late is closed at once
  mem.files.set('/var/log/app.log', randomBytes(3000));
  let closedLate = 0;
  const shut = run(ctx, {
    op: 'RRQ',
    tag: 'log',
    openDelay: 100,
    opens: (e, t) => {
      t.abort();
      const r = oe.opens(e);
      assert.ok(r.kind === 'open' && r.mode === 'read' && r.result.ok);
      const src = r.result.value;
      const close = src.close.bind(src);
      src.close = () => {
        closedLate++;
        close();
      };
      return r;
    },
  });
  assert.equal(shut.code, 9, JSON.stringify(shut.outcome));
  assert.equal(closedLate, 1, 'the late open was let go');
});

test('the client\'s local files through effects: a get written slowly holds its ACKs (bounded backlog), a put read in short reads; exact over loss', () => {
  const mem = new MemTagFs();
  const content = randomBytes(6 * 1024 * 1024 + 777);
  mem.files.set('/var/log/app.log', content);
  const ctx = makeServer(mem, TAGS);
  // get: written at 250 kB/s of virtual time (a slow disk or a slow reader on standard output), slower than the network
  let cleaned = 0;
  const sink = new WriteBehindSink(-1, '/home/alice/app.log', '/home/alice/.app.log.ktftp-x', () => cleaned++);
  const written: Buffer[] = [];
  let maxBacklog = 0;
  let commits = 0;
  const get = run(ctx, {
    op: 'RRQ',
    tag: 'log',
    windowsize: 16,
    blksize: 1408,
    clientSink: sink,
    net: { loss: 0.02, seed: 61 },
    clientFiles: (e) => {
      if (e.kind === 'read') throw new Error('a get reads nothing locally');
      maxBacklog = Math.max(maxBacklog, e.file.backlog);
      if (e.kind === 'commit') {
        commits++;
        return { result: { kind: 'commit', file: e.file, result: { ok: true } }, delay: 5 };
      }
      assert.equal(e.position, written.reduce((n, b) => n + b.length, 0), 'in order');
      written.push(Buffer.from(e.bytes));
      return { result: { kind: 'write', file: e.file, result: { ok: true } }, delay: Math.ceil(e.bytes.length / 250) };
    },
  });
  assert.equal(get.code, 0, JSON.stringify(get.outcome));
  assert.ok(Buffer.concat(written).equals(content));
  assert.equal(commits, 1);
  assert.equal(cleaned, 0);
  assert.ok(sink.committed);
  // the writes fell behind (seen when a write is asked, just after one came back: up to a chunk less than the
  // peak), and the ACKs waited: never more than the bound and a window (plus a chunk) held
  assert.ok(maxBacklog > 4 * 1024 * 1024 - 256 * 1024 - 16 * 1408, `backlog reached ${maxBacklog}`);
  assert.ok(maxBacklog <= 4 * 1024 * 1024 + 16 * 1408 + 256 * 1024, `backlog ${maxBacklog} stays bounded`);
  // put: the local file read by the driver in short reads
  const up = randomBytes(200_000);
  let closed = 0;
  const src = new ReadAheadSource(-1, '/home/alice/up.bin', up.length, () => closed++, 16_384, 4096);
  const put = run(ctx, {
    op: 'WRQ',
    tag: 'log',
    windowsize: 8,
    blksize: 1024,
    clientSource: src,
    net: { loss: 0.05, dup: 0.05, jitter: 3, seed: 62 },
    clientFiles: (e) => {
      if (e.kind !== 'read') throw new Error('a put writes nothing locally');
      return { result: { kind: 'read', file: e.file, result: { ok: true, bytes: up.subarray(e.position, Math.min(e.position + e.length, e.position + 3000, up.length)) } }, delay: 3 };
    },
  });
  assert.equal(put.code, 0, JSON.stringify(put.outcome));
  assert.ok(mem.files.get('/var/log/app.log')!.equals(up));
  assert.equal(closed, 1);
});
