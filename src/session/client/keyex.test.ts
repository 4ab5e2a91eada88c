// The client's key exchange inside the machine, against a server half built from src/crypto: RSA key exchange,
// AES-128-CBC with HMAC/SHA-1. KEYINFO -> KEYINFO_ACK with the verify_data the server expects, sealed FILEINFO
// answered with a sealed FILEINFO_ACK, a replayed or altered ENCRYPTED datagram dropped and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ClientMachine } from './machine.js';
import { keyexFactory } from './keyex.js';
import type { ClientEffect } from './effects.js';
import { generateKey } from '../../crypto/keyfile.js';
import { rsaDecryptPremaster } from '../../crypto/sign.js';
import { deriveClientSession, deriveGroupKeys, encryptGroupMaster } from '../../crypto/handshake.js';
import { verifyData } from '../../crypto/keys.js';
import { hashSuite, keySuite } from '../../crypto/suites.js';
import { openEncrypted, sealEncrypted, type GroupCrypto } from '../../crypto/encrypted.js';
import { CompStat, HashType, KeyType, KeyexType, SigType, UFTP_VER_NUM } from '../../wire/constants.js';
import { decodePacket, encodeMessageBody, encodePacket, type Message } from '../../wire/packet.js';
import type { UftpHeader } from '../../wire/header.js';

const SERVER = { address: '10.1.1.1', port: 40000 };
const SID = 0x0a010101;
const CID = 0x0a010102;
const GROUP = 0x55aa55aa;

test('RSA / AES-128-CBC / HMAC-SHA-1: KEYINFO_ACK verify_data, sealed answers, replay and tampering refused', () => {
  const key = generateKey('rsa:1024');
  const ckey = generateKey('rsa:1024');
  assert.ok(key.ok && ckey.ok);
  const suite = keySuite(KeyType.AES128_CBC);
  const hash = hashSuite(HashType.SHA1);
  assert.ok(suite.ok && hash.ok);
  const m = new ClientMachine({ uid: CID, destDirs: ['/d'], wallMicros: (n) => n * 1000, keyex: keyexFactory([ckey.value], (n) => randomBytes(n)) });
  let seq = 0;
  const h = (): UftpHeader => ({ version: UFTP_VER_NUM, func: 0, seq: seq++, srcId: SID, groupId: GROUP, groupInst: 0, grtt: 0x6a, gsize: 1, reserved: 0 });
  const serverRandom = randomBytes(32);
  const out = (): { tx: Uint8Array[]; fx: ClientEffect[] } => {
    const tx: Uint8Array[] = [];
    const fx: ClientEffect[] = [];
    for (let e = m.pollEffect(); e; e = m.pollEffect()) fx.push(e);
    for (let t = m.pollTransmit(0); t; t = m.pollTransmit(0)) tx.push(t.data);
    return { tx, fx };
  };
  m.handle(0, SERVER, encodePacket({
    header: h(),
    message: {
      type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: 1000, timestamp: { sec: 1, usec: 0 }, publicMcast: '230.4.4.1', privateMcast: '230.5.5.9', clientIds: [],
      extensions: [{ type: 'EXT_ENC_INFO', flags: 0, keyexType: KeyexType.RSA, sigType: SigType.HMAC, keyType: KeyType.AES128_CBC, hashType: HashType.SHA1, serverRandom, publicKey: key.value.blob, dhKey: null, signature: new Uint8Array(0) }],
    },
  }));
  const reg = decodePacket(out().tx[0]);
  assert.ok(reg.ok && reg.value.message.type === 'REGISTER');
  const r = reg.value.message;
  const pm = rsaDecryptPremaster(key.value.privateKey, r.keyInfo);
  assert.ok(pm.ok, 'the server opens our premaster');
  assert.equal(pm.value[0], UFTP_VER_NUM);
  const sess = deriveClientSession(hash.value, suite.value, pm.value, serverRandom, r.clientRandom);
  const gm = Buffer.concat([Buffer.from([UFTP_VER_NUM]), randomBytes(47)]);
  m.handle(1, SERVER, encodePacket({ header: h(), message: { type: 'KEYINFO', ivCounter: 1n, extensions: [], keys: [{ clientId: CID, encryptedGroupMaster: encryptGroupMaster(suite.value, sess.keys, SID, 1n, gm) }] } }));
  const g: GroupCrypto = { keySuite: suite.value, hashSuite: hash.value, sigType: SigType.HMAC, keys: deriveGroupKeys(hash.value, suite.value, gm, serverRandom) };
  const ack = openEncrypted(g, out().tx[0]);
  assert.ok(ack.ok && ack.value.message.type === 'KEYINFO_ACK', 'KEYINFO_ACK sealed with the group key');
  const want = verifyData(hash.value, gm, { groupId: GROUP, privateAddress: Uint8Array.from([230, 5, 5, 9]), serverRandom, clientRandom: r.clientRandom, premaster: pm.value });
  assert.deepEqual(Buffer.from(ack.value.message.verifyData), want, 'verify_data as the server computes it');
  let ctr = 1n;
  const seal = (msg: Message): Uint8Array => {
    const s = sealEncrypted(g, h(), encodeMessageBody(msg), ++ctr);
    assert.ok(s.ok);
    return s.value;
  };
  const fi: Message = { type: 'FILEINFO', fileId: 1, fileType: 0, fileSize: 10, fileTimestamp: 1, timestamp: { sec: 1, usec: 0 }, name: Buffer.from('f'), linkName: new Uint8Array(0), extensions: [], clientIds: [CID] };
  const d1 = seal(fi);
  m.handle(2, SERVER, d1);
  const open = out().fx.find((e): e is Extract<ClientEffect, { type: 'open' }> => e.type === 'open');
  assert.ok(open);
  m.handleEffectResult({ req: open.req, ok: true, status: CompStat.NORMAL });
  const fa = openEncrypted(g, out().tx[0]);
  assert.ok(fa.ok && fa.value.message.type === 'FILEINFO_ACK', 'sealed FILEINFO_ACK');
  // the same datagram again: a replay
  m.handle(3, SERVER, d1);
  assert.equal(out().tx.length, 0, 'no answer to a replay');
  assert.equal(m.drops.get('replay'), 1);
  // a fresh copy of the FILEINFO (new IV counter) is answered again
  m.handle(4, SERVER, seal(fi));
  assert.equal(out().tx.length, 1, 'a real repeat is answered');
  // altered: one byte of the payload
  const bad = Uint8Array.from(seal(fi));
  bad[bad.length - 1] ^= 1;
  m.handle(5, SERVER, bad);
  assert.equal(out().tx.length, 0);
  assert.equal(m.drops.get('crypto'), 1, 'HMAC mismatch dropped and counted');
  // plain FILEINFO in an encrypted session: refused
  m.handle(6, SERVER, encodePacket({ header: h(), message: fi }));
  assert.equal(m.drops.get('plain-refused'), 1);
});
