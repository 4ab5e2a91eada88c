// The three-hop tunnel of the uftpproxyd manual's Figure 1 on the shared simulated network (test/sim/network.ts):
// a scripted server, OUR server proxy, OUR client proxy, 40 scripted clients, with loss, duplication and
// reordering on the tunnel and loss on the clients' links. The server and clients are scripts that speak just
// enough UFTP (built and read with src/wire) to exercise what the proxies do; the proxies are the real machines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint, Machine, Transmit } from '../../src/core/machine.js';
import { ServerProxy } from '../../src/session/proxy/server.js';
import { ClientProxy } from '../../src/session/proxy/client.js';
import { ResponseProxy } from '../../src/session/proxy/response.js';
import { generateKey, type LoadedKey } from '../../src/crypto/keyfile.js';
import type { ProxyEffect } from '../../src/session/proxy/common.js';
import { decodePacket, encodePacket, type Message } from '../../src/wire/packet.js';
import { UFTP_VER_NUM } from '../../src/wire/constants.js';
import { quantizeGrtt } from '../../src/wire/quantize.js';
import { SimNetwork, simRandom, type SimNode } from './network.js';

const PUB = '230.4.4.1';
const PRIV = '230.5.5.9';
const G = 0x7e57_0001;
const SERVER_ID = 0x0a010001;
const SP_ID = 0x0a010002;
const CP_ID = 0x0a020002;
const CLIENT_PORT = 1045;
const BLOCKS = 400;
const BLOCK = 1000;

function datagram(srcId: number, message: Message, seq = 0): Uint8Array {
  return encodePacket({ header: { version: UFTP_VER_NUM, func: 0, seq, srcId, groupId: G, groupInst: 0, grtt: quantizeGrtt(0.05), gsize: 0, reserved: 0 }, message });
}

function block(i: number): Uint8Array {
  const b = new Uint8Array(BLOCK);
  for (let k = 0; k < BLOCK; k++) b[k] = (i * 7 + k) & 0xff;
  return b;
}

/** A queue of transmits and a timer: what the scripts share. */
abstract class Script implements Machine<ProxyEffect> {
  protected out: Transmit[] = [];
  protected wake: number | undefined = 0;
  abstract handle(now: number, from: Endpoint, bytes: Uint8Array): void;
  abstract handleTimeout(now: number): void;
  pollTransmit(): Transmit | undefined {
    return this.out.shift();
  }
  pollEffect(): undefined {
    return undefined;
  }
  pollTimeout(): number | undefined {
    return this.wake;
  }
}

/** ANNOUNCE every 100 ms for 1 s, then the file's FILESEGs, one a millisecond; keeps what comes back. */
class ServerScript extends Script {
  constructor(private readonly aggregator: number) {
    super();
  }
  registered = new Map<number, number>();
  registerAggregates: number[][] = [];
  upstreamFrom = new Set<string>();
  statusNaks = new Uint8Array(BLOCKS / 8);
  private announces = 0;
  private seg = 0;
  handle(_now: number, from: Endpoint, bytes: Uint8Array): void {
    this.upstreamFrom.add(`${from.address}:${from.port}`);
    const p = decodePacket(bytes);
    assert.ok(p.ok, 'the server gets well-formed datagrams only');
    const m = p.value.message;
    if (m.type === 'REGISTER') {
      assert.equal(p.value.header.srcId, this.aggregator, 'aggregates carry the proxy\'s ID');
      this.registerAggregates.push(m.clientIds);
      for (const id of m.clientIds) this.registered.set(id, (this.registered.get(id) ?? 0) + 1);
    } else if (m.type === 'STATUS') {
      for (let i = 0; i < m.naks.length && i < this.statusNaks.length; i++) this.statusNaks[i] |= m.naks[i];
    }
  }
  handleTimeout(now: number): void {
    if (this.announces < 10) {
      this.announces++;
      this.out.push({ to: { address: PUB, port: 1044 }, data: datagram(SERVER_ID, { type: 'ANNOUNCE', flags: 0, robust: 5, ccType: 0, blockSize: 1300, timestamp: { sec: 1000, usec: 0 }, publicMcast: PUB, privateMcast: PRIV, extensions: [], clientIds: [] }, this.announces) });
      this.wake = now + 100;
      return;
    }
    if (this.seg < BLOCKS) {
      const i = this.seg++;
      this.out.push({ to: { address: PRIV, port: 1044 }, data: datagram(SERVER_ID, { type: 'FILESEG', fileId: 1, section: 0, secBlock: i, extensions: [], data: block(i) }, 100 + i) });
      this.wake = now + 1;
      return;
    }
    this.wake = undefined;
  }
}

/** A client: REGISTER to whoever sent the ANNOUNCE (every time), FILESEGs checked; its NAKs in a STATUS at the end. */
class ClientScript extends Script {
  got = new Set<number>();
  bad = 0;
  node!: SimNode<ProxyEffect, never>;
  private proxy: Endpoint | undefined;
  /** `respondTo`: a response proxy's address (uftpd -R); else the clients answer whoever sent the ANNOUNCE. */
  constructor(readonly id: number, private readonly respondTo?: Endpoint) {
    super();
    this.wake = undefined;
  }
  handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    const p = decodePacket(bytes);
    if (!p.ok) {
      this.bad++;
      return;
    }
    const m = p.value.message;
    if (m.type === 'ANNOUNCE') {
      if (!this.proxy) this.node.join(PRIV);
      this.proxy = this.respondTo ?? from;
      this.out.push({ to: this.proxy, data: datagram(this.id, { type: 'REGISTER', timestamp: { sec: 1000, usec: 0 }, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] }) });
    } else if (m.type === 'FILESEG') {
      if (Buffer.compare(Buffer.from(m.data), Buffer.from(block(m.secBlock))) !== 0) this.bad++;
      this.got.add(m.secBlock);
      this.wake = now + 300; // the STATUS goes out once the FILESEGs stop
    }
  }
  handleTimeout(): void {
    this.wake = undefined;
    if (!this.proxy) return;
    this.out.push({ to: this.proxy, data: datagram(this.id, { type: 'STATUS', fileId: 1, section: 0, extensions: [], naks: this.naks() }) });
  }
  naks(): Uint8Array {
    const n = new Uint8Array(BLOCKS / 8);
    for (let i = 0; i < BLOCKS; i++) if (!this.got.has(i)) n[i >> 3] |= 1 << (7 - (i & 7));
    return n;
  }
}

function run(seed: number) {
  const net = new SimNetwork({ seed });
  const tunnel = { loss: 0.05, dup: 0.02, jitterMs: 3, delayMs: 2 };
  const sHost = net.host('server', ['10.1.0.1']);
  const spHost = net.host('sproxy', ['10.1.0.2']);
  const cpHost = net.host('cproxy', ['10.2.0.2'], { up: tunnel, down: tunnel });
  const server = new ServerScript(CP_ID);
  const sp = new ServerProxy({ uid: SP_ID, dest: { address: '10.2.0.2', port: 1044 }, random: simRandom(seed) });
  const cp = new ClientProxy({ uid: CP_ID, destPort: CLIENT_PORT, random: simRandom(seed + 1) });
  const effects = { sp: [] as string[], cp: [] as string[] };
  const carry = (log: string[]) => (e: ProxyEffect, node: SimNode<ProxyEffect, never>): void => {
    if (e.kind === 'join') node.join(e.group);
    else if (e.kind === 'leave') node.leave(e.group);
    if (e.kind !== 'log') log.push(`${e.kind} ${e.group}`);
  };
  sHost.attach(server, 1044);
  spHost.attach(sp, 1044, { onEffect: carry(effects.sp) }).join(PUB); // -M: the public address is joined at start
  const cpNode = cpHost.attach(cp, 1044, { onEffect: carry(effects.cp) });
  const clients: ClientScript[] = [];
  for (let i = 0; i < 40; i++) {
    const c = new ClientScript(0x0b000000 + i);
    const h = net.host(`client${i}`, [`10.2.1.${i + 1}`], { down: { loss: 0.02, jitterMs: 1 }, up: { loss: 0.02 } });
    c.node = h.attach<ProxyEffect, never>(c, CLIENT_PORT);
    c.node.join(PUB);
    clients.push(c);
  }
  // what crosses the client proxy: FILESEGs in, FILESEG copies out, STATUS in and aggregated STATUS out
  const cpIn = { fileseg: 0, statusNaks: new Uint8Array(BLOCKS / 8) };
  const cpOut = { fileseg: 0, statusNaks: new Uint8Array(BLOCKS / 8) };
  net.onDeliver = (f, node) => {
    if (node !== cpNode) return;
    const p = decodePacket(f.data);
    if (!p.ok) return;
    if (p.value.message.type === 'FILESEG') cpIn.fileseg++;
    if (p.value.message.type === 'STATUS') p.value.message.naks.forEach((b, i) => (cpIn.statusNaks[i] |= b));
  };
  net.onSend = (f) => {
    if (f.from.address !== '10.2.0.2') return true;
    const p = decodePacket(f.data);
    if (p.ok && p.value.message.type === 'FILESEG') cpOut.fileseg++;
    if (p.ok && p.value.message.type === 'STATUS') p.value.message.naks.forEach((b, i) => (cpOut.statusNaks[i] |= b));
    return true;
  };
  net.run({ maxTime: 120_000 });
  return { net, server, sp, cp, clients, cpIn, cpOut, effects };
}

test('Figure 1 tunnel with 5% loss, duplication and reordering: proxies forward unchanged, aggregate every client once per message, OR NAKs, and reclaim', { timeout: 60_000 }, () => {
  const r = run(7);
  const { server, clients, cpIn, cpOut } = r;
  assert.ok(r.net.stats.lost > 0 && r.net.stats.duplicated > 0, `impairments happened (lost ${r.net.stats.lost}, duplicated ${r.net.stats.duplicated})`);
  // forwarding: every FILESEG that reached the client proxy went out once to the clients, unchanged
  assert.equal(cpOut.fileseg, cpIn.fileseg, 'one re-multicast per FILESEG received (duplicates included: the proxy does not filter)');
  assert.ok(cpIn.fileseg > BLOCKS * 0.85 && cpIn.fileseg < BLOCKS * 1.1, `FILESEGs through the tunnel: ${cpIn.fileseg}`);
  for (const c of clients) {
    assert.equal(c.bad, 0, `client ${c.id.toString(16)} got only intact datagrams`);
    assert.ok(c.got.size > BLOCKS * 0.8, `client ${c.id.toString(16)} got ${c.got.size} blocks`);
  }
  // registration: every client reached the server through the proxies despite loss, and no aggregate lists an ID twice
  assert.deepEqual([...server.registered.keys()].sort(), clients.map((c) => c.id).sort());
  for (const ids of server.registerAggregates) assert.equal(new Set(ids).size, ids.length, 'an ID once per aggregate');
  assert.ok(server.registerAggregates.length < 10 * clients.length / 4, `REGISTERs were aggregated: ${server.registerAggregates.length} upstream for ${clients.length} clients`);
  assert.deepEqual([...server.upstreamFrom], ['10.1.0.2:1044'], 'upstream traffic reaches the server from its server proxy only');
  // STATUS: the aggregate NAKs are the OR of the clients' NAKs that reached the proxy, duplicates and order notwithstanding
  assert.deepEqual([...cpOut.statusNaks], [...cpIn.statusNaks]);
  assert.ok(cpIn.statusNaks.some((b) => b !== 0), 'some blocks were NAKed');
  // idle sessions are reclaimed and the private group is left on both proxies
  assert.equal(r.sp.sessionCount, 0);
  assert.equal(r.cp.sessionCount, 0);
  assert.deepEqual(r.effects.sp, [`join ${PRIV}`, `leave ${PRIV}`]);
});

test('the same seed gives the same run; another seed another one', { timeout: 60_000 }, () => {
  const a = run(11);
  const b = run(11);
  const c = run(12);
  assert.deepEqual(a.net.stats, b.net.stats);
  assert.deepEqual(a.clients.map((x) => x.got.size), b.clients.map((x) => x.got.size));
  assert.notDeepEqual(a.net.stats, c.net.stats);
});

const RP_ID = 0x0a030002;

test('response proxy beside 30 clients that hear the server themselves, with loss, duplication and reordering: it joins, never re-multicasts, aggregates every client, ORs NAKs, leaves', { timeout: 60_000 }, () => {
  const net = new SimNetwork({ seed: 5 });
  const key = generateKey('rsa:512');
  assert.ok(key.ok);
  const sHost = net.host('server', ['10.3.0.1']);
  const rpHost = net.host('rproxy', ['10.3.0.2'], { up: { loss: 0.03, dup: 0.02, jitterMs: 3 }, down: { loss: 0.03, dup: 0.02, jitterMs: 3 } });
  const server = new ServerScript(RP_ID);
  const rp = new ResponseProxy({ uid: RP_ID, destPort: 1044, random: simRandom(5), publicAddrs: [PUB], key: key.value as LoadedKey, keys: [key.value as LoadedKey] });
  const effects: string[] = [];
  sHost.attach(server, 1044);
  const rpNode = rpHost.attach(rp, 1044, {
    onEffect: (e, node) => {
      if (e.kind === 'join') node.join(e.group);
      else if (e.kind === 'leave') node.leave(e.group);
      if (e.kind !== 'log') effects.push(`${e.kind} ${e.group}`);
    },
  });
  rpNode.join(PUB); // -M: the public address is joined at start
  const clients: ClientScript[] = [];
  for (let i = 0; i < 30; i++) {
    const c = new ClientScript(0x0c000000 + i, { address: '10.3.0.2', port: 1044 });
    const h = net.host(`client${i}`, [`10.3.1.${i + 1}`], { down: { loss: 0.05, jitterMs: 2 }, up: { loss: 0.05, jitterMs: 2 } });
    c.node = h.attach<ProxyEffect, never>(c, 1044);
    c.node.join(PUB);
    clients.push(c);
  }
  const rpIn = new Uint8Array(BLOCKS / 8);
  const rpOut = new Uint8Array(BLOCKS / 8);
  const rpSentTo = new Set<string>();
  net.onDeliver = (f, node) => {
    if (node !== rpNode) return;
    const p = decodePacket(f.data);
    if (p.ok && p.value.message.type === 'STATUS') p.value.message.naks.forEach((b, i) => (rpIn[i] |= b));
  };
  net.onSend = (f) => {
    if (f.from.address !== '10.3.0.2') return true;
    rpSentTo.add(`${f.to.address}:${f.to.port}`);
    const p = decodePacket(f.data);
    if (p.ok && p.value.message.type === 'STATUS') p.value.message.naks.forEach((b, i) => (rpOut[i] |= b));
    return true;
  };
  net.run({ maxTime: 120_000 });
  assert.ok(net.stats.lost > 0 && net.stats.duplicated > 0);
  assert.deepEqual([...rpSentTo], ['10.3.0.1:1044'], 'the response proxy sends only upstream, to the server: it never re-multicasts');
  for (const c of clients) assert.ok(c.got.size > BLOCKS * 0.8 && c.bad === 0, `client ${c.id.toString(16)} heard the server itself: ${c.got.size} blocks`);
  assert.deepEqual([...server.registered.keys()].sort(), clients.map((c) => c.id).sort());
  for (const ids of server.registerAggregates) assert.equal(new Set(ids).size, ids.length, 'an ID once per aggregate');
  assert.deepEqual([...rpOut], [...rpIn], 'aggregate NAKs = OR of the NAKs that reached the proxy');
  assert.ok(rpIn.some((b) => b !== 0));
  assert.deepEqual(effects, [`join ${PRIV}`, `leave ${PRIV}`], 'the private group joined to follow the session, left when it ended');
  assert.equal(rp.sessionCount, 0);
});

test('signed heartbeats over a lossy link: the server proxy (-s fp=) adopts the client proxy that holds the key, never a forger', { timeout: 60_000 }, () => {
  const net = new SimNetwork({ seed: 9 });
  const good = generateKey('ec:prime256v1');
  const bad = generateKey('ec:prime256v1');
  assert.ok(good.ok && bad.ok);
  const lossy = { loss: 0.3, dup: 0.05, jitterMs: 5, delayMs: 2 };
  const spHost = net.host('sproxy', ['10.1.0.2']);
  const cpHost = net.host('cproxy', ['10.2.0.2'], { up: lossy, down: lossy });
  const evilHost = net.host('forger', ['10.6.0.6']);
  const sp = new ServerProxy({ uid: SP_ID, fingerprint: good.value.fingerprint, random: simRandom(9) });
  const hb = (k: LoadedKey) => ({ servers: [{ address: '10.1.0.2', port: 1044 }], intervalMs: 1000, key: { privateKey: k.privateKey, blob: k.blob } });
  const cp = new ClientProxy({ uid: CP_ID, destPort: CLIENT_PORT, random: simRandom(10), heartbeats: hb(good.value) });
  const forger = new ClientProxy({ uid: 0x0a060006, destPort: CLIENT_PORT, random: simRandom(11), heartbeats: hb(bad.value) });
  spHost.attach(sp, 1044);
  cpHost.attach(cp, 1044);
  evilHost.attach(forger, 1044);
  const adoptedAt: number[] = [];
  net.onDeliver = () => {
    if (sp.dest && adoptedAt.length === 0) adoptedAt.push(net.now);
  };
  net.run({ maxTime: 30_000 });
  assert.ok(net.stats.lost > 0, 'heartbeats were lost');
  assert.deepEqual(sp.dest, { address: '10.2.0.2', port: 1044 }, 'the key holder is the downstream address');
  assert.equal(cp.heartbeatState.get('10.1.0.2:1044'), 'ok');
  assert.equal(forger.heartbeatState.get('10.1.0.2:1044'), 'failed', 'the forger is told it failed');
  assert.ok(adoptedAt[0] < 10_000, `adopted within a few heartbeat intervals despite 30% loss (at ${adoptedAt[0]} ms)`);
});
