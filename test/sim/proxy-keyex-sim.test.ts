// The client proxy's key exchange (protocol.txt 5.1.1.2) without sockets: a server and two clients played with
// src/crypto and src/wire drive the ClientProxy machine with a virtual clock, and check every message it produces
// with the keys they hold. The lab tests do the same against the real uftp/uftpd; this one needs neither.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ClientProxy } from '../../src/session/proxy/client.js';
import { drain, type Endpoint } from '../../src/core/machine.js';
import type { ProxyEffect } from '../../src/session/proxy/common.js';
import { testRandom } from './proxy-harness.js';
import { generateKey, type LoadedKey } from '../../src/crypto/keyfile.js';
import { blobToPublicKey } from '../../src/crypto/pubkey.js';
import { rsaDecryptPremaster, rsaEncryptPremaster } from '../../src/crypto/sign.js';
import { hashSuite, keySuite } from '../../src/crypto/suites.js';
import { decryptGroupMaster, deriveClientSession, deriveGroupKeys, encryptGroupMaster } from '../../src/crypto/handshake.js';
import { verifyData } from '../../src/crypto/keys.js';
import { openEncrypted, sealEncrypted, type GroupCrypto } from '../../src/crypto/encrypted.js';
import { decodePacket, encodePacket, encodeMessageBody, type Message, type Packet } from '../../src/wire/packet.js';
import { HashType, KeyType, KeyexType, SigType, UFTP_VER_NUM } from '../../src/wire/constants.js';
import { parseIPv4 } from '../../src/wire/fields.js';
import type { KeyInfoEntry } from '../../src/wire/keyinfo.js';
import type { UftpHeader } from '../../src/wire/header.js';
import { quantizeGrtt } from '../../src/wire/quantize.js';

interface Sent {
  to: Endpoint;
  data: Uint8Array;
}

/** The client proxy with its output drained here after every call. */
class Net {
  sent: Sent[] = [];
  logs: string[] = [];
  private cp: ClientProxy | undefined;
  /** The machine this network drives: handle() and handleTimeout() are followed by a drain. */
  drive(cp: ClientProxy): { handle(now: number, from: Endpoint, d: Uint8Array): void; handleTimeout(now: number): void; readonly stats: ClientProxy['stats'] } {
    this.cp = cp;
    return {
      handle: (now, from, d) => {
        cp.handle(now, from, d);
        this.flush(now);
      },
      handleTimeout: (now) => {
        cp.handleTimeout(now);
        this.flush(now);
      },
      stats: cp.stats,
    };
  }
  private flush(now: number): void {
    if (!this.cp) return;
    drain(this.cp, now, {
      effect: (e: ProxyEffect) => {
        if (e.kind === 'log') this.logs.push(`${e.level} ${e.message}`);
      },
      transmit: (t) => {
        this.sent.push({ to: t.to, data: Uint8Array.from(t.data) });
        return true;
      },
    });
  }
  take(): Packet[] {
    const out = this.sent.map((s) => {
      const p = decodePacket(s.data);
      assert.ok(p.ok, p.ok ? '' : p.error.message);
      return p.value;
    });
    this.sent = [];
    return out;
  }
  takeRaw(): Sent[] {
    const s = this.sent;
    this.sent = [];
    return s;
  }
}

function must<T>(r: { ok: true; value: T } | { ok: false; error: unknown }): T {
  if (!r.ok) throw new Error(String(typeof r.error === 'string' ? r.error : JSON.stringify(r.error)));
  return r.value;
}

const SERVER: Endpoint = { address: '10.1.1.1', port: 40000 };
const SERVER_ID = 0x0a010101;
const PROXY_ID = 0x0a020202;
const GROUP = 0x5eed0001;
const PRIV = '230.5.5.77';
const suite = must(keySuite(KeyType.AES128_CBC));
const hash = must(hashSuite(HashType.SHA1));

function hdr(srcId: number, seq = 0): UftpHeader {
  return { version: UFTP_VER_NUM, func: 0, seq, srcId, groupId: GROUP, groupInst: 0, grtt: quantizeGrtt(0.05), gsize: 0, reserved: 0 };
}

function pkt(srcId: number, message: Message, seq = 0): Uint8Array {
  return encodePacket({ header: hdr(srcId, seq), message });
}

test('client proxy key exchange, RSA + AES-128-CBC + HMAC/SHA-1: every message checks out with the keys of the server and the clients', () => {
  const serverKey = must(generateKey('rsa:1024')) as LoadedKey;
  const proxyKeys = [must(generateKey('rsa:512')), must(generateKey('ec:prime256v1')), must(generateKey('rsa:1024'))];
  const serverRandom = randomBytes(32);
  const net = new Net();
  const cp = net.drive(new ClientProxy({ uid: PROXY_ID, destPort: 1044, keys: proxyKeys, random: testRandom() }));
  const announce = pkt(SERVER_ID, {
    type: 'ANNOUNCE', flags: 0, robust: 5, ccType: 0, blockSize: 1300, timestamp: { sec: 1000, usec: 0 },
    publicMcast: '230.4.4.1', privateMcast: PRIV,
    extensions: [{ type: 'EXT_ENC_INFO', flags: 0, keyexType: KeyexType.RSA, sigType: SigType.HMAC, keyType: suite.id, hashType: hash.id, serverRandom, publicKey: serverKey.blob, dhKey: null, signature: new Uint8Array(0) }],
    clientIds: [],
  });
  let now = 0;
  cp.handle(now, SERVER, announce);
  // 1. the clients get the ANNOUNCE with the proxy's 1024-bit key (the one matching the server's), same server random
  const [ann] = net.take();
  assert.equal(ann.message.type, 'ANNOUNCE');
  const ei = ann.message.type === 'ANNOUNCE' ? ann.message.extensions.find((x) => x.type === 'EXT_ENC_INFO') : undefined;
  assert.ok(ei && ei.type === 'EXT_ENC_INFO');
  assert.deepEqual(ei.publicKey, proxyKeys[2].blob, 'the key of the server\'s type and size');
  assert.deepEqual(Buffer.from(ei.serverRandom), serverRandom);
  const proxyPub = must(blobToPublicKey(ei.publicKey));

  // 2. two clients REGISTER with premasters encrypted to the proxy's key
  const clients = [0x0b000001, 0x0b000002].map((id) => {
    const premaster = Buffer.concat([Buffer.from([UFTP_VER_NUM]), randomBytes(47)]);
    const random = randomBytes(32);
    return { id, premaster, random, session: deriveClientSession(hash, suite, premaster, serverRandom, random), addr: { address: `10.3.0.${id & 0xff}`, port: 1044 } };
  });
  for (const c of clients) {
    now += 3;
    cp.handle(now, c.addr, pkt(c.id, { type: 'REGISTER', timestamp: { sec: 1000, usec: 10 }, clientRandom: c.random, keyInfo: rsaEncryptPremaster(proxyPub, c.premaster), extensions: [], clientIds: [] }));
  }
  assert.equal(net.sent.length, 0);
  now += 100;
  cp.handleTimeout(now);
  // 3. the proxy's own REGISTER upstream: its premaster, encrypted to the server's key, and both client IDs
  const [reg] = net.take();
  assert.equal(reg.header.srcId, PROXY_ID);
  assert.ok(reg.message.type === 'REGISTER');
  assert.deepEqual([...reg.message.clientIds].sort(), clients.map((c) => c.id));
  const proxyPremaster = must(rsaDecryptPremaster(serverKey.privateKey, reg.message.keyInfo));
  const proxySession = deriveClientSession(hash, suite, proxyPremaster, serverRandom, reg.message.clientRandom);

  // 4. the server's KEYINFO for the proxy; the proxy answers an ENCRYPTED KEYINFO_ACK with the right verify_data
  const groupMaster = Buffer.concat([Buffer.from([UFTP_VER_NUM]), randomBytes(47)]);
  const group: GroupCrypto = { keySuite: suite, hashSuite: hash, sigType: SigType.HMAC, keys: deriveGroupKeys(hash, suite, groupMaster, serverRandom) };
  cp.handle(now, SERVER, pkt(SERVER_ID, { type: 'KEYINFO', ivCounter: 7n, extensions: [], keys: [{ clientId: PROXY_ID, encryptedGroupMaster: encryptGroupMaster(suite, proxySession.keys, SERVER_ID, 7n, groupMaster) }] }, 1));
  const [ackRaw] = net.takeRaw();
  assert.deepEqual(ackRaw.to, SERVER);
  const ack = must(openEncrypted(group, ackRaw.data));
  assert.equal(ack.header.srcId, PROXY_ID);
  assert.ok(ack.message.type === 'KEYINFO_ACK');
  const privAddr = parseIPv4(PRIV) ?? new Uint8Array(4);
  const want = verifyData(hash, groupMaster, { groupId: GROUP, privateAddress: privAddr, serverRandom, clientRandom: reg.message.clientRandom, premaster: proxyPremaster });
  assert.deepEqual(Buffer.from(ack.message.verifyData), want);

  // 5. REG_CONF is not passed on; instead the proxy multicasts its KEYINFO in the server's name (and counts the
  // confirmation: the daemon re-warms its data path after the first, src/apps/uftpproxyd/warmup.ts)
  assert.equal(cp.stats.confirmed, 0);
  cp.handle(now, SERVER, pkt(SERVER_ID, { type: 'REG_CONF', extensions: [], clientIds: clients.map((c) => c.id) } as Message, 2));
  assert.equal(cp.stats.confirmed, 1);
  const sent = net.takeRaw();
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].to, { address: PRIV, port: 1044 });
  const ki = must(decodePacket(sent[0].data));
  assert.equal(ki.message.type, 'KEYINFO');
  assert.equal(ki.header.srcId, SERVER_ID);
  if (ki.message.type !== 'KEYINFO') return;
  const entries = ki.message.keys;
  const kiCtr = ki.message.ivCounter;
  for (const c of clients) {
    const e: KeyInfoEntry | undefined = entries.find((k) => k.clientId === c.id);
    assert.ok(e, `an entry for ${c.id.toString(16)}`);
    const gm: Buffer = must(decryptGroupMaster(suite, c.session.keys, SERVER_ID, kiCtr, e.encryptedGroupMaster));
    assert.deepEqual(gm, groupMaster);
  }
  // the KEYINFO is resent after 2 GRTT to clients that have not answered
  now += 1000;
  cp.handleTimeout(now);
  assert.equal(net.takeRaw().length, 1, 'KEYINFO resent');

  // 6. the clients acknowledge; their COMPLETEs come back aggregated and sealed under the proxy's ID
  let ctr = 1n;
  for (const c of clients) {
    const vd = verifyData(hash, groupMaster, { groupId: GROUP, privateAddress: privAddr, serverRandom, clientRandom: c.random, premaster: c.premaster });
    cp.handle(now, c.addr, must(sealEncrypted(group, hdr(c.id), encodeMessageBody({ type: 'KEYINFO_ACK', verifyData: vd, extensions: [] }), ctr++)));
  }
  assert.equal(net.logs.filter((l) => l.includes('has the group key')).length, 2);
  now += 1000;
  cp.handleTimeout(now);
  assert.equal(net.takeRaw().length, 0, 'no KEYINFO once everyone has the key');
  for (const c of clients) {
    cp.handle(now, c.addr, must(sealEncrypted(group, hdr(c.id), encodeMessageBody({ type: 'COMPLETE', fileId: 1, status: 0, extensions: [], clientIds: [] }), ctr++)));
  }
  now += 100;
  cp.handleTimeout(now);
  const [up] = net.takeRaw();
  const opened = must(openEncrypted(group, up.data));
  assert.equal(opened.header.srcId, PROXY_ID);
  assert.ok(opened.message.type === 'COMPLETE');
  assert.deepEqual([...opened.message.clientIds].sort(), clients.map((c) => c.id));
  // a forged ENCRYPTED (wrong key) is dropped without effect
  const before = cp.stats.dropped;
  const wrong: GroupCrypto = { ...group, keys: deriveGroupKeys(hash, suite, randomBytes(48), serverRandom) };
  cp.handle(now, clients[0].addr, must(sealEncrypted(wrong, hdr(clients[0].id), encodeMessageBody({ type: 'COMPLETE', fileId: 2, status: 0, extensions: [], clientIds: [] }), ctr++)));
  assert.equal(cp.stats.dropped, before + 1);
  now += 100;
  cp.handleTimeout(now);
  assert.equal(net.takeRaw().length, 0);
});
