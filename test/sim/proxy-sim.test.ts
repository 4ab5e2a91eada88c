// The proxy state machines driven with a virtual clock through an in-memory network: no sockets.
// Datagrams are built and checked with the independent wire codec (src/wire), so the proxies' own lean
// readers and builders are cross-checked against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { ClientProxy } from '../../src/session/proxy/client.js';
import { buildHbReq, readHbResp } from '../../src/session/proxy/heartbeat.js';
import { ServerProxy, MIN_IDLE_MS, MAX_IDLE_MS } from '../../src/session/proxy/server.js';
import { drain, type Endpoint, type Transmit } from '../../src/core/machine.js';
import { blobFingerprint, publicKeyToBlob } from '../../src/crypto/pubkey.js';
import { decodePacket, encodePacket, type Message, type Packet } from '../../src/wire/packet.js';
import { HbAuth, UFTP_VER_NUM } from '../../src/wire/constants.js';
import { quantizeGrtt, unquantizeGrtt } from '../../src/wire/quantize.js';
import { Driven, Recorder, testRandom } from './proxy-harness.js';

const SERVER: Endpoint = { address: '10.1.1.1', port: 40000 };
const SERVER_ID = 0x0a010101;
const UPSTREAM: Endpoint = { address: '10.2.2.1', port: 1044 };
const CP_ID = 0x0a020202;

function pkt(message: Message, srcId: number, groupId: number, grtt = 0.5, seq = 0, groupInst = 0): Uint8Array {
  const p: Packet = {
    header: { version: UFTP_VER_NUM, func: 0, seq, srcId, groupId, groupInst, grtt: quantizeGrtt(grtt), gsize: 0, reserved: 0 },
    message,
  };
  return encodePacket(p);
}

function announce(groupId: number, priv = '230.5.5.7', robust = 20, blockSize = 1300, grtt = 0.5): Uint8Array {
  return pkt(
    { type: 'ANNOUNCE', flags: 0, robust, ccType: 0, blockSize, timestamp: { sec: 1000, usec: 0 }, publicMcast: '230.4.4.1', privateMcast: priv, extensions: [], clientIds: [] },
    SERVER_ID,
    groupId,
    grtt,
  );
}

function register(clientId: number, groupId: number, tsUs: number): Uint8Array {
  return pkt(
    { type: 'REGISTER', timestamp: { sec: Math.floor(tsUs / 1e6), usec: tsUs % 1e6 }, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] },
    clientId,
    groupId,
    0,
  );
}

function decoded(d: Uint8Array): Packet {
  const p = decodePacket(d);
  assert.ok(p.ok, p.ok ? '' : p.error.message);
  return p.value;
}

test('1,000 clients behind one client proxy: one aggregated REGISTER round within 1 GRTT, slowest client first', () => {
  const io = new Recorder();
  const cp = new Driven(new ClientProxy({ uid: CP_ID, destPort: 1044, random: testRandom() }), io);
  const G = 0x11223344;
  cp.handle(0, UPSTREAM, announce(G));
  const [re] = io.take();
  assert.deepEqual(re.to, { address: '230.4.4.1', port: 1044 });
  assert.ok(re.multicast);
  // clients answer between 1 and 300 ms later; client i echoes a timestamp that makes client 777 the slowest
  const base = 1000e6;
  const n = 1000;
  for (let i = 0; i < n; i++) {
    const id = 0x0b000000 + i;
    const rx = 1 + ((i * 37) % 300);
    io.now = rx;
    const echoed = base + rx * 1000 - (i === 777 ? 250_000 : 10_000 + (i % 50) * 1000);
    cp.handle(rx, { address: `10.3.${i >> 8}.${i & 255}`, port: 1044 }, register(id, G, echoed));
  }
  assert.equal(io.sent.length, 0, 'nothing sent before the aggregation window ends');
  const grttMs = unquantizeGrtt(quantizeGrtt(0.5)) * 1000; // the ANNOUNCE's GRTT as the header carries it
  const deadline = cp.nextDeadline();
  assert.ok(deadline !== undefined && deadline <= 1 + grttMs + 1, `deadline ${deadline}`);
  io.now = deadline;
  cp.handleTimeout(deadline);
  const out = io.take();
  const per = Math.floor((1300 - 44) / 4);
  assert.equal(out.length, Math.ceil(n / per), 'split to fit the block size');
  const ids: number[] = [];
  for (const s of out) {
    assert.deepEqual(s.to, UPSTREAM);
    const p = decoded(s.data);
    assert.equal(p.header.srcId, CP_ID);
    assert.equal(p.header.groupId, G);
    assert.equal(p.message.type, 'REGISTER');
    if (p.message.type === 'REGISTER') {
      assert.ok(p.message.clientIds.length <= per);
      ids.push(...p.message.clientIds);
    }
  }
  assert.equal(ids.length, n);
  assert.equal(new Set(ids).size, n, 'every client exactly once');
  assert.equal(ids[0], 0x0b000000 + 777, 'slowest client first');
  // its timestamp, advanced by the time the proxy held it
  const first = decoded(out[0].data).message;
  assert.equal(first.type, 'REGISTER');
  if (first.type === 'REGISTER') {
    const rx777 = 1 + ((777 * 37) % 300);
    const echoed = base + rx777 * 1000 - 250_000;
    const got = first.timestamp.sec * 1e6 + first.timestamp.usec;
    const want = echoed + (deadline - rx777) * 1000;
    assert.ok(Math.abs(got - want) < 1, `timestamp ${got}, want ${want} (echoed + hold)`);
  }
  // sequence numbers of the proxy's own messages count up
  assert.deepEqual(out.map((s) => decoded(s.data).header.seq), out.map((_, i) => i));
});

test('COMPLETE, FILEINFO_ACK and STATUS are aggregated per file (NAKs OR-ed); CC_ACK goes up at once', () => {
  const io = new Recorder();
  const cp = new Driven(new ClientProxy({ uid: CP_ID, destPort: 1044, random: testRandom() }), io);
  const G = 0x55;
  cp.handle(0, UPSTREAM, announce(G, '230.5.5.9', 20, 1300, 0.1));
  io.take();
  const c = (i: number): Endpoint => ({ address: `10.3.0.${i}`, port: 1044 });
  cp.handle(1, c(1), pkt({ type: 'COMPLETE', fileId: 3, status: 0, extensions: [], clientIds: [] }, 0x0c000001, G));
  cp.handle(2, c(2), pkt({ type: 'COMPLETE', fileId: 3, status: 0, extensions: [], clientIds: [] }, 0x0c000002, G));
  cp.handle(3, c(3), pkt({ type: 'COMPLETE', fileId: 4, status: 0, extensions: [], clientIds: [] }, 0x0c000003, G));
  cp.handle(4, c(1), pkt({ type: 'STATUS', fileId: 5, section: 2, extensions: [], naks: Uint8Array.from([0x81, 0, 0, 0]) }, 0x0c000001, G));
  cp.handle(5, c(2), pkt({ type: 'STATUS', fileId: 5, section: 2, extensions: [], naks: Uint8Array.from([0x01, 0x10, 0, 0]) }, 0x0c000002, G));
  cp.handle(6, c(2), pkt({ type: 'FILEINFO_ACK', fileId: 6, flags: 0, timestamp: { sec: 1000, usec: 5 }, extensions: [], clientIds: [] }, 0x0c000002, G));
  cp.handle(7, c(1), pkt({ type: 'CC_ACK', extensions: [] } as unknown as Message, 0x0c000001, G));
  const immediate = io.take();
  assert.equal(immediate.length, 1, 'CC_ACK forwarded at once');
  assert.equal(decoded(immediate[0].data).message.type, 'CC_ACK');
  cp.handleTimeout(200);
  const out = io.take().map((s) => decoded(s.data).message);
  const complete3 = out.find((m) => m.type === 'COMPLETE' && m.fileId === 3);
  const complete4 = out.find((m) => m.type === 'COMPLETE' && m.fileId === 4);
  const status = out.find((m) => m.type === 'STATUS');
  const fack = out.find((m) => m.type === 'FILEINFO_ACK');
  assert.ok(complete3 && complete3.type === 'COMPLETE');
  assert.deepEqual([...complete3.clientIds].sort(), [0x0c000001, 0x0c000002]);
  assert.ok(complete4 && complete4.type === 'COMPLETE');
  assert.deepEqual(complete4.clientIds, [0x0c000003]);
  assert.ok(status && status.type === 'STATUS');
  assert.equal(status.section, 2);
  assert.deepEqual([...status.naks], [0x81, 0x10, 0, 0]);
  assert.ok(fack && fack.type === 'FILEINFO_ACK');
  assert.deepEqual(fack.clientIds, [0x0c000002]);
});

test('aggregation: a FILEINFO_ACK, COMPLETE or STATUS goes up once every registered client answered; one silent client makes it wait the GRTT', () => {
  const io = new Recorder();
  const cp = new Driven(new ClientProxy({ uid: CP_ID, destPort: 1044, random: testRandom() }), io);
  const G = 0x5a5a;
  const grtt = unquantizeGrtt(quantizeGrtt(0.1)) * 1000;
  cp.handle(0, UPSTREAM, announce(G, '230.5.5.9', 20, 1300, 0.1));
  io.take();
  const ids = [0x0c000001, 0x0c000002, 0x0c000003];
  const c = (i: number): Endpoint => ({ address: `10.3.0.${i + 1}`, port: 1044 });
  ids.forEach((id, i) => cp.handle(1 + i, c(i), register(id, G, 1000e6)));
  assert.equal(io.take().length, 0, 'REGISTERs wait the GRTT even when every client seen so far answered');
  cp.handleTimeout(1 + grtt);
  const reg = io.take().map((x) => decoded(x.data).message);
  assert.equal(reg.length, 1);
  assert.ok(reg[0].type === 'REGISTER' && reg[0].clientIds.length === 3);

  // FILEINFO_ACK: sent the moment the third client answers, with the slowest client's timestamp advanced
  const t0 = 500;
  const fack = (id: number, usec: number): Uint8Array => pkt({ type: 'FILEINFO_ACK', fileId: 1, flags: 0, timestamp: { sec: 2000, usec }, extensions: [], clientIds: [] }, id, G);
  cp.handle(t0, c(0), fack(ids[0], 4000));
  cp.handle(t0 + 2, c(1), fack(ids[1], 1000)); // echoed 3 ms earlier than client 1's, 2 ms later: the slowest
  assert.equal(io.take().length, 0, 'two of three: held');
  cp.handle(t0 + 5, c(2), fack(ids[2], 6000));
  const early = io.take();
  assert.equal(early.length, 1, 'the third answer sends it at once, not at the end of the GRTT');
  assert.equal(early[0].at, t0 + 5);
  const fm = decoded(early[0].data).message;
  assert.ok(fm.type === 'FILEINFO_ACK');
  assert.deepEqual([...fm.clientIds].sort(), [...ids].sort());
  assert.equal(fm.clientIds[0], ids[1], 'slowest first');
  assert.equal(fm.timestamp.sec * 1e6 + fm.timestamp.usec, 2000e6 + 1000 + 3000, 'its timestamp advanced by the 3 ms we held it');
  cp.handleTimeout(t0 + grtt + 1);
  assert.equal(io.take().length, 0, 'nothing left to send at the deadline');

  // STATUS: NAKs of all three OR-ed, sent when the last arrives
  const status = (id: number, naks: number[]): Uint8Array => pkt({ type: 'STATUS', fileId: 1, section: 3, extensions: [], naks: Uint8Array.from(naks) }, id, G);
  const t1 = 1000;
  cp.handle(t1, c(0), status(ids[0], [0x01, 0]));
  cp.handle(t1 + 1, c(1), status(ids[1], [0x80, 0]));
  assert.equal(io.take().length, 0);
  cp.handle(t1 + 2, c(2), status(ids[2], [0, 0x02]));
  const st = io.take();
  assert.equal(st.length, 1);
  const sm = decoded(st[0].data).message;
  assert.ok(sm.type === 'STATUS');
  assert.deepEqual([...sm.naks], [0x81, 0x02], 'every client NAKs in the early aggregate');

  // a silent client: COMPLETE from two of three waits the full GRTT, then goes up for the two
  const complete = (id: number, fileId: number, status = 0): Uint8Array => pkt({ type: 'COMPLETE', fileId, status, extensions: [], clientIds: [] }, id, G);
  const t2 = 2000;
  cp.handle(t2, c(0), complete(ids[0], 1));
  cp.handle(t2 + 1, c(1), complete(ids[1], 1));
  cp.handleTimeout(t2 + grtt - 1);
  assert.equal(io.take().length, 0, 'held while one client is silent');
  cp.handleTimeout(t2 + grtt);
  const late = io.take().map((x) => decoded(x.data).message);
  assert.equal(late.length, 1);
  assert.ok(late[0].type === 'COMPLETE');
  assert.deepEqual([...late[0].clientIds].sort(), [ids[0], ids[1]]);

  // answers that differ (a rejected file) are separate aggregates, none complete: both wait the GRTT
  const t3 = 3000;
  cp.handle(t3, c(0), complete(ids[0], 2));
  cp.handle(t3 + 1, c(1), complete(ids[1], 2));
  cp.handle(t3 + 2, c(2), complete(ids[2], 2, 1));
  assert.equal(io.take().length, 0, 'no aggregate has all three');
  cp.handleTimeout(t3 + grtt + 2);
  assert.equal(io.take().length, 2);

  // a client that aborts is no longer waited for: its ABORT completes the pending COMPLETE of the other two
  const t4 = 4000;
  cp.handle(t4, c(0), complete(ids[0], 3));
  cp.handle(t4 + 1, c(1), complete(ids[1], 3));
  assert.equal(io.take().length, 0);
  cp.handle(t4 + 2, c(2), pkt({ type: 'ABORT', flags: 0, host: 0, message: 'disk full', extensions: [] }, ids[2], G));
  const after = io.take().map((x) => decoded(x.data).message);
  assert.deepEqual(after.map((m) => m.type), ['ABORT', 'COMPLETE']);
  assert.ok(after[1].type === 'COMPLETE');
  assert.deepEqual([...after[1].clientIds].sort(), [ids[0], ids[1]]);
  cp.handle(t4 + 10, c(0), complete(ids[0], 4));
  cp.handle(t4 + 11, c(1), complete(ids[1], 4));
  assert.equal(io.take().length, 1, 'and later rounds go up once the two remaining clients answered');
});

test('server proxy: forwards down to the client proxy and up to where the ANNOUNCE came from; sessions kept apart and reclaimed', () => {
  const io = new Recorder();
  const dest = { address: '10.2.2.2', port: 1044 };
  const sp = new Driven(new ServerProxy({ uid: 0x0a0a0a0a, dest, random: testRandom(() => 7) }), io);
  const server2: Endpoint = { address: '10.1.1.9', port: 50000 };
  sp.handle(0, SERVER, announce(0xaaaa, '230.5.5.1', 20, 1300, 0.01));
  sp.handle(1, server2, pkt({ type: 'ANNOUNCE', flags: 0, robust: 5, ccType: 0, blockSize: 1300, timestamp: { sec: 1, usec: 0 }, publicMcast: '230.4.4.1', privateMcast: '230.5.5.2', extensions: [], clientIds: [] }, 0x0a010109, 0xbbbb, 0.01));
  assert.deepEqual(io.joins, ['230.5.5.1', '230.5.5.2']);
  assert.equal(sp.sessionCount, 2);
  io.take();
  // responses from downstream go to their own server
  sp.handle(2, dest, pkt({ type: 'COMPLETE', fileId: 1, status: 0, extensions: [], clientIds: [1] }, CP_ID, 0xbbbb));
  sp.handle(3, dest, pkt({ type: 'COMPLETE', fileId: 1, status: 0, extensions: [], clientIds: [1] }, CP_ID, 0xaaaa));
  const up = io.take();
  assert.deepEqual(up.map((s) => s.to), [server2, SERVER]);
  // a server message for an unknown group, and a client message from a stranger, are dropped
  const dropped = sp.stats.dropped;
  sp.handle(4, SERVER, pkt({ type: 'DONE_CONF', extensions: [], clientIds: [] } as unknown as Message, SERVER_ID, 0xcccc));
  sp.handle(5, { address: '10.9.9.9', port: 1044 }, pkt({ type: 'COMPLETE', fileId: 1, status: 0, extensions: [], clientIds: [] }, 5, 0xaaaa));
  assert.equal(io.take().length, 0);
  assert.equal(sp.stats.dropped, dropped + 2);
  // silence: both sessions reclaimed after 4*ROBUST*GRTT (at least MIN_IDLE_MS), the groups left
  sp.handleTimeout(MIN_IDLE_MS - 10);
  assert.equal(sp.sessionCount, 2);
  const d = sp.nextDeadline();
  assert.ok(d !== undefined);
  sp.handleTimeout(d + 10);
  assert.equal(sp.sessionCount, 0);
  assert.deepEqual(io.leaves.sort(), ['230.5.5.1', '230.5.5.2']);
  assert.equal(sp.nextDeadline(), undefined, 'nothing left to wait for');
});

test('heartbeats: challenge with a fresh nonce, verify, adopt; a forged key gets HB_AUTH_FAILED and changes nothing', () => {
  const io = new Recorder();
  const good = generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey;
  const forged = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const goodBlob = publicKeyToBlob(good);
  const forgedBlob = publicKeyToBlob(forged);
  assert.ok(goodBlob.ok && forgedBlob.ok);
  let n = 100;
  const sp = new Driven(new ServerProxy({ uid: 1, fingerprint: blobFingerprint(goodBlob.value), random: testRandom(() => ++n) }), io);
  const cpAddr = { address: '192.0.2.7', port: 31000 };
  const evil = { address: '192.0.2.66', port: 1044 };
  const resp = (): { auth: number; nonce: number; to: Endpoint } => {
    const [s] = io.take();
    const r = readHbResp(s.data);
    assert.ok(r.ok);
    return { ...r.value, to: s.to };
  };
  // the forger: challenged, signs with the wrong key -> FAILED, no destination
  sp.handle(0, evil, buildHbReq(9, 0));
  const ch1 = resp();
  assert.equal(ch1.auth, HbAuth.CHALLENGE);
  sp.handle(1, evil, buildHbReq(9, ch1.nonce, { privateKey: forged, blob: forgedBlob.value }));
  assert.equal(resp().auth, HbAuth.FAILED);
  assert.equal(sp.dest, undefined);
  // the real client proxy: challenged with a different nonce, signs -> adopted
  sp.handle(2, cpAddr, buildHbReq(2, 0));
  const ch2 = resp();
  assert.equal(ch2.auth, HbAuth.CHALLENGE);
  assert.notEqual(ch2.nonce, ch1.nonce, 'a fresh nonce per challenge');
  // a signature over the wrong nonce fails
  sp.handle(3, cpAddr, buildHbReq(2, ch2.nonce + 1, { privateKey: good, blob: goodBlob.value }));
  assert.equal(resp().auth, HbAuth.FAILED);
  sp.handle(4, cpAddr, buildHbReq(2, 0));
  const ch3 = resp();
  sp.handle(5, cpAddr, buildHbReq(2, ch3.nonce, { privateKey: good, blob: goodBlob.value }));
  assert.equal(resp().auth, HbAuth.OK);
  assert.deepEqual(sp.dest, cpAddr);
  // replaying the same signed heartbeat (nonce used) is not accepted again without a new challenge
  sp.handle(6, evil, buildHbReq(2, ch3.nonce, { privateKey: good, blob: goodBlob.value }));
  assert.equal(resp().auth, HbAuth.CHALLENGE);
  assert.deepEqual(sp.dest, cpAddr);
  // the established peer's unsigned heartbeats are accepted without a challenge
  sp.handle(7, cpAddr, buildHbReq(2, 0));
  assert.equal(resp().auth, HbAuth.OK);
  // the forger again, signed: still FAILED, destination unchanged
  sp.handle(8, evil, buildHbReq(9, 0));
  const ch4 = resp();
  sp.handle(9, evil, buildHbReq(9, ch4.nonce, { privateKey: forged, blob: forgedBlob.value }));
  assert.equal(resp().auth, HbAuth.FAILED);
  assert.deepEqual(sp.dest, cpAddr);
  // and downstream forwarding now uses the learnt address
  sp.handle(10, SERVER, announce(0x77));
  assert.deepEqual(io.take()[0].to, cpAddr);
});

test('hostile input: random, truncated and mutated datagrams never throw and never disturb a session', () => {
  const io = new Recorder();
  const dest = { address: '10.2.2.2', port: 1044 };
  const sp = new Driven(new ServerProxy({ uid: 1, dest, random: testRandom(() => 3) }), io);
  const cio = new Recorder();
  const cp = new Driven(new ClientProxy({ uid: CP_ID, destPort: 1044, random: testRandom() }), cio);
  const ann = announce(0x4242);
  sp.handle(0, SERVER, ann);
  cp.handle(0, UPSTREAM, ann);
  const samples = [ann, register(5, 0x4242, 1e9), pkt({ type: 'STATUS', fileId: 1, section: 0, extensions: [], naks: new Uint8Array(8) }, 5, 0x4242), buildHbReq(1, 0)];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 1600 }),
        fc.tuple(fc.constantFrom(...samples), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([s, pos, bytes]) => {
          const b = Uint8Array.from(s);
          for (let i = 0; i < bytes.length; i++) b[(pos + i * 7) % b.length] = bytes[i];
          return b;
        }),
        fc.tuple(fc.constantFrom(...samples), fc.nat()).map(([s, cut]) => s.subarray(0, cut % s.length)),
      ),
      fc.constantFrom<Endpoint>(SERVER, dest, UPSTREAM, { address: '10.6.6.6', port: 9 }),
      (d, from) => {
        sp.handle(1, from, d);
        cp.handle(1, from, d);
        sp.handleTimeout(2);
        cp.handleTimeout(2);
      },
    ),
    { numRuns: 3000, seed: 42 },
  );
  // the legitimate session still forwards
  io.take();
  sp.handle(3, SERVER, pkt({ type: 'FILESEG', fileId: 1, section: 0, secBlock: 0, extensions: [], data: new Uint8Array(100) } as Message, SERVER_ID, 0x4242));
  const fwd = io.take();
  assert.ok(fwd.some((s) => s.to === dest || (s.to.address === dest.address && s.to.port === dest.port)), 'FILESEG still forwarded');
  // forged ANNOUNCEs may open sessions, but silence reclaims them (MAX_IDLE_MS at most, whatever ROBUST and
  // GRTT they claim) while the real one, still talking, stays
  assert.ok(sp.sessionCount > 1 && cp.sessionCount > 1, 'some forged ANNOUNCEs opened sessions');
  for (let t = 1000; t <= MAX_IDLE_MS + 2000; t += 1000) {
    sp.handle(t, SERVER, ann);
    cp.handle(t, UPSTREAM, ann);
    sp.handleTimeout(t);
    cp.handleTimeout(t);
  }
  assert.equal(sp.sessionCount, 1);
  assert.equal(cp.sessionCount, 1);
});

/** A driver's socket for drain(): records copies of what it takes, refuses everything while `socket.full`. */
function blockableSocket(): { sent: Uint8Array[]; held: { tx?: Transmit }; sink: { effect: () => undefined; transmit: (t: Transmit) => boolean }; socket: { full: boolean } } {
  const sent: Uint8Array[] = [];
  const socket = { full: false };
  const sink = {
    effect: () => undefined,
    transmit: (t: Transmit) => {
      if (socket.full) return false;
      sent.push(Uint8Array.from(t.data));
      return true;
    },
  };
  return { sent, held: {}, sink, socket };
}

test('a datagram the driver holds (socket full) is not changed by datagrams forwarded meanwhile', () => {
  const dest = { address: '10.2.2.2', port: 1044 };
  const sp = new ServerProxy({ uid: 1, dest, random: testRandom() });
  const { sent, held, sink, socket } = blockableSocket();
  const seg = (i: number): Uint8Array => pkt({ type: 'FILESEG', fileId: 1, section: 0, secBlock: i, extensions: [], data: new Uint8Array(50).fill(i) } as Message, SERVER_ID, 0x99);
  sp.handle(0, SERVER, announce(0x99));
  drain(sp, 0, sink, Infinity, held);
  sent.length = 0;
  sp.handle(1, SERVER, seg(1));
  socket.full = true;
  assert.equal(drain(sp, 1, sink, Infinity, held), 'blocked');
  assert.ok(held.tx, 'the driver holds FILESEG 1');
  sp.handle(2, SERVER, seg(2));
  sp.handle(3, SERVER, seg(3));
  socket.full = false;
  drain(sp, 3, sink, Infinity, held);
  assert.deepEqual(sent.map((d) => { const p = decoded(d); return p.message.type === 'FILESEG' ? p.message.secBlock : -1; }), [1, 2, 3]);
});

test('detach: datagrams queued as views of a receive ring survive its reuse, held one included, in order', () => {
  // the driver's fast path (src/apps/uftpproxyd/run.ts): a client proxy is handed views of the engine's ring;
  // after a blocked turn the queued ones must be copied out before the ring is overwritten by the next batch
  const cp = new ClientProxy({ uid: CP_ID, destPort: 1044, random: testRandom(), ringViews: true });
  const { sent, held, sink, socket } = blockableSocket();
  const seg = (i: number): Uint8Array => pkt({ type: 'FILESEG', fileId: 1, section: 0, secBlock: i, extensions: [], data: new Uint8Array(1300).fill(i) } as Message, SERVER_ID, 0x77);
  // the ANNOUNCE comes in the ring too: it is copied before it is read (the session keeps parts of it)
  const a = announce(0x77);
  const aRing = new Uint8Array(a.length + 8);
  aRing.set(a, 8);
  cp.handle(0, UPSTREAM, aRing.subarray(8));
  aRing.fill(0xee);
  drain(cp, 0, sink, Infinity, held);
  assert.deepEqual(sent[0], a, 'the ANNOUNCE re-multicast unchanged although its ring was overwritten');
  sent.length = 0;
  const size = seg(0).length;
  const ring = new Uint8Array(size * 8);
  const batch = (first: number, n: number): Uint8Array[] => {
    const views: Uint8Array[] = [];
    for (let k = 0; k < n; k++) {
      ring.set(seg(first + k), k * size);
      views.push(ring.subarray(k * size, (k + 1) * size));
    }
    return views;
  };
  // batch 1: 8 datagrams; the socket takes 3, then is full (one held, four queued)
  let taken = 0;
  const limited = { ...sink, transmit: (t: Transmit) => (taken++ < 3 ? sink.transmit(t) : false) };
  for (const v of batch(1, 8)) cp.handle(1, UPSTREAM, v);
  assert.equal(drain(cp, 1, limited, Infinity, held), 'blocked');
  assert.equal(cp.detach(ring.buffer), 5, 'the held datagram and the four queued ones are copied');
  // batch 2 overwrites the ring while they wait
  for (const v of batch(9, 8)) cp.handle(2, UPSTREAM, v);
  socket.full = false;
  drain(cp, 2, sink, Infinity, held);
  assert.equal(cp.detach(ring.buffer), 0, 'after a full drain (the last poll found nothing) nothing is a view any more');
  assert.equal(sent.length, 16);
  sent.forEach((d, k) => assert.deepEqual(d, seg(k + 1), `datagram ${k + 1} byte for byte`));
  // without detach the held ones would carry batch 2's bytes: the check above fails then
});
