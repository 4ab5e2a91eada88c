/**
 * Black-box proof that src/crypto reproduces the real UFTP 4.10 crypto chain.
 *
 * In two network namespaces of our own (uc-aXXXX / uc-bXXXX, 10.62.0.0/24 on a veth pair) a real `uftp` sends a small
 * file to a real `uftpd` while tcpdump captures. Knowing only the server's private key (and the client's public key),
 * the test then uses src/crypto to: decrypt the premaster from the captured REGISTER, derive the master secret and key
 * block, decrypt the group master from KEYINFO, derive the group keys, check verify_data of the captured KEYINFO_ACK,
 * verify the HMAC / signature / GCM-CCM tag of every ENCRYPTED packet, decrypt them and reassemble the file
 * byte-identical. CLIENT_KEY signatures are checked over group ID + private address + randoms + premaster.
 * For ECDH sessions (ephemeral keys we cannot know) the ANNOUNCE signature is checked with the server's key and the
 * key blobs against the key files' fingerprints.
 *
 * Each real run is bounded (uftp 20 s, uftpd 25 s); namespaces and /etc/netns entries are removed in finally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodePacket, type Packet } from '../../src/wire/index.js';
import { KeyexType, SigType } from '../../src/wire/constants.js';
import { decodeKeyBlob, encodeKeyBlob } from '../../src/wire/keyblob.js';
import { generateKey, writeKeyFile, type LoadedKey } from '../../src/crypto/keyfile.js';
import { blobFingerprint, blobToPublicKey } from '../../src/crypto/pubkey.js';
import { hashSuite, keySuite } from '../../src/crypto/suites.js';
import { deriveClientSession, decryptGroupMaster, deriveGroupKeys } from '../../src/crypto/handshake.js';
import { clientKeySignedData, verifyData as computeVerifyData, type HandshakeValues } from '../../src/crypto/keys.js';
import { rsaDecryptPremaster, verifySignature, zeroedForSignature } from '../../src/crypto/sign.js';
import { openEncrypted, type GroupCrypto } from '../../src/crypto/encrypted.js';

interface Captured {
  readonly src: string;
  readonly raw: Buffer;
  readonly packet: Packet;
}

interface RunResult {
  readonly packets: Captured[];
  readonly sent: Buffer;
  readonly received: Buffer | undefined;
  readonly serverLog: string;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function waitExit(p: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      resolve();
    }, ms);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Runs one real transfer in fresh namespaces and returns the captured UFTP datagrams. */
async function realSession(dir: string, serverKey: string, clientKey: string, uftpArgs: string[]): Promise<RunResult> {
  const suffix = randomBytes(2).toString('hex');
  const A = `uc-a${suffix}`;
  const B = `uc-b${suffix}`;
  const src = join(dir, 'src');
  const dest = join(dir, 'dest');
  mkdirSync(src, { recursive: true });
  mkdirSync(dest, { recursive: true });
  const sent = randomBytes(5000);
  writeFileSync(join(src, 'payload.bin'), sent);
  const pcap = join(dir, 'cap.pcap');
  const procs: ChildProcess[] = [];
  try {
    for (const n of [A, B]) {
      sh('ip', ['netns', 'add', n]);
      mkdirSync(`/etc/netns/${n}`, { recursive: true });
      writeFileSync(`/etc/netns/${n}/resolv.conf`, 'nameserver 127.0.0.1\n');
      sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['link', 'add', 'va', 'netns', A, 'type', 'veth', 'peer', 'name', 'vb', 'netns', B]);
    sh('ip', ['-n', A, 'addr', 'add', '10.62.0.1/24', 'dev', 'va']);
    sh('ip', ['-n', B, 'addr', 'add', '10.62.0.2/24', 'dev', 'vb']);
    sh('ip', ['-n', A, 'link', 'set', 'va', 'up']);
    sh('ip', ['-n', B, 'link', 'set', 'vb', 'up']);
    sh('ip', ['-n', A, 'route', 'add', '224.0.0.0/4', 'dev', 'va']);
    sh('ip', ['-n', B, 'route', 'add', '224.0.0.0/4', 'dev', 'vb']);
    const td = spawn('ip', ['netns', 'exec', A, 'timeout', '30', 'tcpdump', '-i', 'va', '--immediate-mode', '-U', '-w', pcap, 'udp'], { stdio: 'ignore' });
    procs.push(td);
    const uftpd = spawn('ip', ['netns', 'exec', B, 'timeout', '25', 'uftpd', '-d', '-D', dest, '-k', clientKey], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(uftpd);
    await new Promise((r) => setTimeout(r, 1000));
    const uftp = spawn('ip', ['netns', 'exec', A, 'timeout', '20', 'uftp', '-R', '10000', ...uftpArgs, '-k', serverKey, 'payload.bin'], {
      cwd: src,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    procs.push(uftp);
    let serverLog = '';
    uftp.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
    await waitExit(uftp, 25_000);
    await new Promise((r) => setTimeout(r, 1000));
    for (const p of [uftpd, td]) {
      p.kill('SIGTERM');
      await waitExit(p, 3000);
    }
    const t = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'ip.src', '-e', 'udp.payload'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(t.status, 0, t.stderr);
    const packets: Captured[] = [];
    for (const line of t.stdout.trim().split('\n')) {
      const [from, hex] = line.split('\t');
      if (!hex) continue;
      const raw = Buffer.from(hex.replace(/:/g, ''), 'hex');
      const p = decodePacket(raw);
      assert.ok(p.ok, `captured datagram does not decode: ${p.ok ? '' : p.error.message}`);
      packets.push({ src: from, raw, packet: p.value });
    }
    let received: Buffer | undefined;
    try {
      received = readFileSync(join(dest, 'payload.bin'));
    } catch {
      received = undefined;
    }
    return { packets, sent, received, serverLog };
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const n of [A, B]) {
      spawnSync('ip', ['netns', 'del', n], { timeout: 5000 });
      rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
    }
  }
}

function must<T>(r: { ok: true; value: T } | { ok: false; error: unknown }, what: string): T {
  if (!r.ok) assert.fail(`${what}: ${typeof r.error === 'string' ? r.error : JSON.stringify(r.error)}`);
  return r.value;
}

function first<T extends Packet['message']['type']>(res: RunResult, type: T): Captured & { packet: { message: Extract<Packet['message'], { type: T }> } } {
  const c = res.packets.find((p) => p.packet.message.type === type);
  assert.ok(c, `no ${type} captured`);
  return c as Captured & { packet: { message: Extract<Packet['message'], { type: T }> } };
}

function keyPair(dir: string, name: string, spec: string): { path: string; key: LoadedKey } {
  const k = must(generateKey(spec), `generate ${spec}`);
  const path = join(dir, name);
  must(writeKeyFile(path, k), `write ${path}`);
  return { path, key: k };
}

/**
 * Full check of an RSA key exchange session: everything from the premaster to the file.
 * Returns counts for the report.
 */
function checkRsaSession(res: RunResult, server: LoadedKey, client: LoadedKey): { encrypted: number; segments: number } {
  const annC = first(res, 'ANNOUNCE');
  const ann = annC.packet.message;
  const enc = ann.extensions.find((e) => e.type === 'EXT_ENC_INFO');
  assert.ok(enc && enc.type === 'EXT_ENC_INFO');
  assert.equal(enc.keyexType, KeyexType.RSA);
  assert.equal(blobFingerprint(enc.publicKey), server.fingerprint, 'ANNOUNCE carries the server key');
  const hash = must(hashSuite(enc.hashType), 'hash');
  const suite = must(keySuite(enc.keyType), 'key type');
  const regC = first(res, 'REGISTER');
  const reg = regC.packet.message;
  const premaster = must(rsaDecryptPremaster(server.privateKey, reg.keyInfo), 'premaster');
  assert.equal(premaster.length, 48);
  const hv: HandshakeValues = {
    groupId: annC.packet.header.groupId,
    privateAddress: Buffer.from(ann.privateMcast.split('.').map(Number)),
    serverRandom: enc.serverRandom,
    clientRandom: reg.clientRandom,
    premaster,
  };
  const ckC = res.packets.find((p) => p.packet.message.type === 'CLIENT_KEY');
  let handshake = hv;
  if (ckC && ckC.packet.message.type === 'CLIENT_KEY') {
    const ck = ckC.packet.message;
    assert.equal(blobFingerprint(ck.publicKey), client.fingerprint, 'CLIENT_KEY carries the client key');
    const pub = must(blobToPublicKey(ck.publicKey), 'client key blob');
    assert.ok(verifySignature(pub, hash, clientKeySignedData(hv), ck.verifyData), 'CLIENT_KEY signature verifies');
    handshake = { ...hv, clientKeyBlob: ck.publicKey };
  }
  const session = deriveClientSession(hash, suite, premaster, enc.serverRandom, reg.clientRandom);
  const kiC = first(res, 'KEYINFO');
  const ki = kiC.packet.message;
  const entry = ki.keys.find((k) => k.clientId === regC.packet.header.srcId);
  assert.ok(entry, 'KEYINFO has an entry for the client');
  const groupMaster = must(decryptGroupMaster(suite, session.keys, kiC.packet.header.srcId, ki.ivCounter, entry.encryptedGroupMaster), 'group master');
  const group: GroupCrypto = { keySuite: suite, hashSuite: hash, sigType: enc.sigType, keys: deriveGroupKeys(hash, suite, groupMaster, enc.serverRandom) };
  const serverId = annC.packet.header.srcId;
  const clientPub = must(blobToPublicKey(client.blob), 'client public key');
  let encrypted = 0;
  let segments = 0;
  let verified = false;
  const blocks = new Map<number, Buffer>();
  let blockSize = 0;
  for (const c of res.packets) {
    if (c.packet.message.type !== 'ENCRYPTED') continue;
    const fromServer = c.packet.header.srcId === serverId;
    const opened = must(openEncrypted(group, c.raw, fromServer ? server.publicKey : clientPub), `ENCRYPTED #${encrypted} from ${c.src}`);
    encrypted++;
    const m = opened.message;
    if (m.type === 'KEYINFO_ACK') {
      assert.deepEqual(Buffer.from(m.verifyData), computeVerifyData(hash, groupMaster, handshake), 'verify_data of KEYINFO_ACK');
      verified = true;
    } else if (m.type === 'FILESEG') {
      if (m.secBlock === 0 && m.section === 0) blockSize = m.data.length;
      blocks.set(m.secBlock, Buffer.from(m.data));
      segments++;
    }
  }
  assert.ok(verified, 'a KEYINFO_ACK was checked');
  assert.ok(segments > 0, 'FILESEGs were decrypted');
  const rebuilt = Buffer.concat([...blocks.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b));
  assert.ok(blockSize > 0);
  assert.deepEqual(rebuilt, res.sent, 'file reassembled from decrypted FILESEGs is byte-identical');
  return { encrypted, segments };
}

async function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'uc-crypto-'));
  try {
    return await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const RSA_CASES: ReadonlyArray<{ name: string; args: string[]; sig: number }> = [
  { name: 'aes128-cbc sha1 hmac, client auth', args: ['-Y', 'aes128-cbc', '-h', 'sha1', '-e', 'rsa', '-c'], sig: SigType.HMAC },
  { name: 'aes256-gcm sha256 (authenc)', args: ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa'], sig: SigType.AUTHENC },
  { name: 'aes128-ccm sha512 (authenc)', args: ['-Y', 'aes128-ccm', '-h', 'sha512', '-e', 'rsa'], sig: SigType.AUTHENC },
  { name: 'aes256-cbc sha384 keyex signatures, client auth', args: ['-Y', 'aes256-cbc', '-h', 'sha384', '-w', 'keyex', '-e', 'rsa', '-c'], sig: SigType.KEYEX },
  { name: '3des sha256 hmac', args: ['-Y', '3des', '-h', 'sha256', '-e', 'rsa'], sig: SigType.HMAC },
];

for (const c of RSA_CASES) {
  test(`real uftp -> uftpd, RSA key exchange, ${c.name}: whole chain decrypted with src/crypto`, { timeout: 60_000 }, () =>
    withDir(async (dir) => {
      const server = keyPair(dir, 'server.pem', 'rsa:1024');
      const client = keyPair(dir, 'client.pem', 'rsa:1024');
      const res = await realSession(dir, server.path, client.path, c.args);
      assert.deepEqual(res.received, res.sent, `the real transfer itself worked: ${res.serverLog.slice(-400)}`);
      const enc = first(res, 'ANNOUNCE').packet.message.extensions.find((e) => e.type === 'EXT_ENC_INFO');
      assert.ok(enc && enc.type === 'EXT_ENC_INFO' && enc.sigType === c.sig);
      const n = checkRsaSession(res, server.key, client.key);
      assert.ok(n.encrypted >= 6, `${n.encrypted} ENCRYPTED packets checked`);
    }),
  );
}

const ECDH_CASES: ReadonlyArray<{ name: string; serverSpec: string; clientSpec: string; args: string[] }> = [
  { name: 'ECDH_ECDSA prime256v1, keyex signatures', serverSpec: 'ec:prime256v1', clientSpec: 'ec:prime256v1', args: ['-Y', 'aes128-cbc', '-h', 'sha256', '-w', 'keyex', '-e', 'ecdh_ecdsa', '-c'] },
  { name: 'ECDH_ECDSA sect163k1 keys (padded blobs), keyex signatures', serverSpec: 'ec:sect163k1', clientSpec: 'ec:sect163k1', args: ['-Y', 'aes128-cbc', '-h', 'sha1', '-w', 'keyex', '-e', 'ecdh_ecdsa', '-c'] },
  { name: 'ECDH_ECDSA secp521r1 keys, secp384r1 ECDH', serverSpec: 'ec:secp521r1', clientSpec: 'ec:secp521r1', args: ['-Y', 'aes256-gcm', '-h', 'sha512', '-e', 'ecdh_ecdsa:secp384r1', '-c'] },
  { name: 'ECDH_RSA secp384r1', serverSpec: 'rsa:1024', clientSpec: 'rsa:1024', args: ['-Y', 'aes128-ccm', '-h', 'sha384', '-e', 'ecdh_rsa:secp384r1', '-c'] },
];

for (const c of ECDH_CASES) {
  test(`real uftp -> uftpd, ${c.name}: ANNOUNCE signature and key blobs`, { timeout: 60_000 }, () =>
    withDir(async (dir) => {
      const server = keyPair(dir, 'server.pem', c.serverSpec);
      const client = keyPair(dir, 'client.pem', c.clientSpec);
      const res = await realSession(dir, server.path, client.path, c.args);
      assert.deepEqual(res.received, res.sent, `the real transfer itself worked: ${res.serverLog.slice(-400)}`);
      const annC = first(res, 'ANNOUNCE');
      const enc = annC.packet.message.extensions.find((e) => e.type === 'EXT_ENC_INFO');
      assert.ok(enc && enc.type === 'EXT_ENC_INFO');
      assert.ok(enc.dhKey, 'ECDH ANNOUNCE carries an ephemeral key');
      assert.equal(blobFingerprint(enc.publicKey), server.key.fingerprint);
      const hash = must(hashSuite(enc.hashType), 'hash');
      // the signature is the last field of EXT_ENC_INFO; it covers the datagram with its own bytes zeroed
      const sig = Buffer.from(enc.signature);
      const at = annC.raw.indexOf(sig);
      assert.ok(at > 0);
      assert.ok(verifySignature(server.key.publicKey, hash, zeroedForSignature(annC.raw, at, sig.length), sig), 'ANNOUNCE signature verifies');
      // a flipped bit breaks it
      const bad = Buffer.from(annC.raw);
      bad[20] ^= 1;
      assert.ok(!verifySignature(server.key.publicKey, hash, zeroedForSignature(bad, at, sig.length), sig));
      must(blobToPublicKey(enc.dhKey), 'ECDH blob is a valid point');
      const ck = first(res, 'CLIENT_KEY').packet.message;
      assert.equal(blobFingerprint(ck.publicKey), client.key.fingerprint, 'CLIENT_KEY carries the client key');
      const reg = first(res, 'REGISTER').packet.message;
      const clientDh = must(decodeKeyBlob(reg.keyInfo), 'REGISTER ECDH key blob');
      must(blobToPublicKey(clientDh), 'client ECDH key is a valid point on the curve');
      assert.equal(encodeKeyBlob(clientDh).length, reg.keyInfo.length);
      if (enc.sigType === SigType.KEYEX) {
        // every ENCRYPTED packet is signed by its sender over the datagram with the signature zeroed
        const clientPub = must(blobToPublicKey(ck.publicKey), 'client key blob');
        let checked = 0;
        for (const p of res.packets) {
          if (p.packet.message.type !== 'ENCRYPTED') continue;
          const m = p.packet.message;
          const key = p.packet.header.srcId === annC.packet.header.srcId ? server.key.publicKey : clientPub;
          assert.ok(verifySignature(key, hash, zeroedForSignature(p.raw, 28, m.signature.length), m.signature), `ENCRYPTED #${checked} signature`);
          checked++;
        }
        assert.ok(checked >= 6, `${checked} ECDSA-signed ENCRYPTED packets`);
      }
    }),
  );
}


/**
 * The other direction: a minimal UFTP server written on src/crypto + src/wire (run inside our namespace) sends a file
 * to a real uftpd. The real client must accept our ANNOUNCE, decrypt the group master from our KEYINFO (its
 * KEYINFO_ACK's verify_data must match ours), accept our sealed FILEINFO/FILESEG/DONE and write the file.
 */
const FAKE_SERVER = `
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
const repo = process.env.UC_REPO;
const w = await import(repo + '/src/wire/index.ts');
const c = await import(repo + '/src/crypto/index.ts');
const [keyFile, keyType, hashType, sigType, fileName, keyexArg] = process.argv.slice(2);
const keyex = Number(keyexArg || '1');
const eph = keyex === 1 ? null : c.generateEcdhKey('prime256v1');
const ephBlob = eph ? c.publicKeyToBlob(eph.publicKey).value : null;
const server = c.readKeyFile(keyFile); if (!server.ok) throw new Error(server.error);
const suite = c.keySuite(Number(keyType)).value, hash = c.hashSuite(Number(hashType)).value;
const data = readFileSync(fileName);
const SRC = 0x0a3e0001, GROUP = randomBytes(4).readUInt32BE(0), PRIV = '230.5.5.77', PUB = '230.4.4.1';
const serverRandom = randomBytes(32);
const groupMaster = Buffer.concat([Buffer.from([0x40]), randomBytes(47)]);
const gkeys = c.deriveGroupKeys(hash, suite, groupMaster, serverRandom);
const group = { keySuite: suite, hashSuite: hash, sigType: Number(sigType), keys: gkeys };
let seq = 0, ivctr = 1n, clientId = 0, session, premaster, clientRandom, clientPub, clientBlob, clientKeyMsg, state = 'announce';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const hdr = () => ({ version: 0x40, func: 0, seq: seq++ & 0xffff, srcId: SRC, groupId: GROUP, groupInst: 0, grtt: w.quantizeGrtt(0.5), gsize: w.quantizeGroupSize(1), reserved: 0 });
const now = () => { const t = Date.now(); return { sec: Math.floor(t / 1000), usec: (t % 1000) * 1000 }; };
const s = dgram.createSocket('udp4');
let peer;
const send = (bytes, addr) => s.send(bytes, 1044, addr);
const sealed = (msg) => { const r = c.sealEncrypted(group, hdr(), w.encodeMessageBody(msg), ++ivctr, server.value.privateKey); if (!r.ok) throw new Error(r.error); return r.value; };
function announce() {
  const ext = { type: 'EXT_ENC_INFO', flags: Number(sigType) === 2 ? 1 : 0, keyexType: keyex, sigType: Number(sigType), keyType: Number(keyType), hashType: Number(hashType), serverRandom, publicKey: server.value.blob, dhKey: ephBlob, signature: new Uint8Array(0) };
  const msg = { type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: 1300, timestamp: now(), publicMcast: PUB, privateMcast: PRIV, extensions: [ext], clientIds: [] };
  const header = hdr();
  if (keyex === 1) { send(w.encodePacket({ header, message: msg }), PUB); return; }
  // ECDH: sign the datagram with the signature bytes zeroed; the length is part of what is signed, so settle it first
  let len = 72;
  for (let i = 0; i < 16; i++) {
    ext.signature = new Uint8Array(len);
    const bytes = Buffer.from(w.encodePacket({ header, message: msg }));
    const sig = c.signData(server.value.privateKey, hash, bytes);
    if (sig.length === len) { sig.copy(bytes, bytes.length - len); send(bytes, PUB); return; }
    len = sig.length;
  }
  throw new Error('ANNOUNCE signature length did not settle');
}
function keyinfo() {
  const enc = c.encryptGroupMaster(suite, session.keys, SRC, 1n, groupMaster);
  send(w.encodePacket({ header: hdr(), message: { type: 'KEYINFO', ivCounter: 1n, extensions: [], keys: [{ clientId, encryptedGroupMaster: enc }] } }), PRIV);
}
function fileinfo() {
  send(sealed({ type: 'FILEINFO', fileId: 1, fileType: 0, fileSize: data.length, fileTimestamp: Math.floor(Date.now() / 1000), timestamp: now(), name: Buffer.from('ours.bin'), linkName: new Uint8Array(0), extensions: [], clientIds: [clientId] }), PRIV);
}
function segments() {
  for (let i = 0; i * 1300 < data.length; i++) send(sealed({ type: 'FILESEG', fileId: 1, section: 0, secBlock: i, extensions: [], data: data.subarray(i * 1300, (i + 1) * 1300) }), PRIV);
  send(sealed({ type: 'DONE', fileId: 1, section: 0, extensions: [], clientIds: [clientId] }), PRIV);
}
s.on('message', (m, rinfo) => {
  const p = w.decodePacket(m);
  if (!p.ok) { out({ bad: p.error.message }); return; }
  peer = rinfo.address;
  const msg = p.value.message;
  if (msg.type === 'REGISTER' && state === 'announce') {
    clientId = p.value.header.srcId; clientRandom = msg.clientRandom;
    let pm;
    if (keyex === 1) pm = c.rsaDecryptPremaster(server.value.privateKey, msg.keyInfo);
    else { const b = w.decodeKeyBlob(msg.keyInfo); const k = b.ok ? c.blobToPublicKey(b.value) : b; pm = k.ok ? c.ecdhPremaster(eph.privateKey, k.value) : { ok: false, error: 'client ECDH key: ' + JSON.stringify(k.error) }; }
    if (!pm.ok) { out({ error: pm.error }); return; }
    premaster = pm.value;
    session = c.deriveClientSession(hash, suite, premaster, serverRandom, clientRandom);
    state = 'keyinfo'; out({ step: 'REGISTER' }); keyinfo();
  } else if (msg.type === 'CLIENT_KEY') {
    clientBlob = msg.publicKey; clientKeyMsg = msg;
    const k = c.blobToPublicKey(msg.publicKey); if (!k.ok) { out({ error: k.error }); return; }
    clientPub = k.value;
    out({ step: 'CLIENT_KEY' });
  } else if (msg.type === 'ENCRYPTED') {
    const o = c.openEncrypted(group, m, clientPub);
    if (!o.ok) { out({ error: o.error }); return; }
    const inner = o.value.message;
    out({ step: inner.type });
    if (inner.type === 'KEYINFO_ACK' && state === 'keyinfo') {
      const hv = { groupId: GROUP, privateAddress: Buffer.from([230, 5, 5, 77]), serverRandom, clientRandom, premaster, clientKeyBlob: clientBlob };
      const want = c.verifyData(hash, groupMaster, hv);
      out({ verifyData: Buffer.from(inner.verifyData).equals(want) });
      if (clientKeyMsg) out({ clientKeySignature: c.verifySignature(clientPub, hash, c.clientKeySignedData(hv), clientKeyMsg.verifyData) });
      state = 'fileinfo'; fileinfo();
    } else if (inner.type === 'FILEINFO_ACK' && state === 'fileinfo') {
      state = 'data'; segments();
    } else if (inner.type === 'COMPLETE' && inner.fileId === 1 && state === 'data') {
      state = 'done'; send(sealed({ type: 'DONE', fileId: 0, section: 0, extensions: [], clientIds: [clientId] }), PRIV);
    } else if (inner.type === 'COMPLETE' && inner.fileId === 0 && state === 'done') {
      state = 'conf'; send(sealed({ type: 'DONE_CONF', extensions: [], clientIds: [clientId] }), PRIV);
      out({ step: 'finished' }); setTimeout(() => process.exit(0), 300);
    }
  } else if (msg.type === 'ABORT') {
    out({ abort: Buffer.from(msg.message).toString('latin1').replace(/\\0.*$/s, '') });
  }
});
s.bind(0, '10.62.0.1', () => {
  s.setMulticastInterface('10.62.0.1');
  const t = setInterval(() => { if (state === 'announce') announce(); else if (state === 'keyinfo') keyinfo(); else if (state === 'fileinfo') fileinfo(); }, 700);
  announce();
  setTimeout(() => { clearInterval(t); out({ step: 'timeout', state }); process.exit(2); }, 15000);
});
`;

const SEAL_CASES: ReadonlyArray<{ name: string; keyType: number; hashType: number; sigType: number; keyex?: number; keySpec?: string }> = [
  { name: 'ECDH_ECDSA prime256v1, aes128-gcm sha256, ECDSA-signed ANNOUNCE', keyType: 5, hashType: 3, sigType: SigType.AUTHENC, keyex: KeyexType.ECDH_ECDSA, keySpec: 'ec:prime256v1' },
  { name: 'ECDH_ECDSA secp384r1 keys, aes256-cbc sha256, ECDSA keyex signatures', keyType: 4, hashType: 3, sigType: SigType.KEYEX, keyex: KeyexType.ECDH_ECDSA, keySpec: 'ec:secp384r1' },
  { name: 'aes128-cbc sha1 hmac', keyType: 3, hashType: 2, sigType: SigType.HMAC },
  { name: 'aes256-gcm sha256 authenc', keyType: 6, hashType: 3, sigType: SigType.AUTHENC },
  { name: 'aes128-ccm sha512 authenc', keyType: 7, hashType: 5, sigType: SigType.AUTHENC },
  { name: 'aes256-cbc sha384 keyex (RSA signatures)', keyType: 4, hashType: 4, sigType: SigType.KEYEX },
];

for (const c of SEAL_CASES) {
  test(`our server (src/crypto) -> real uftpd, ${c.name}: the real client decrypts, verifies and stores the file`, { timeout: 60_000 }, () =>
    withDir(async (dir) => {
      const server = keyPair(dir, 'server.pem', c.keySpec ?? 'rsa:1024');
      const client = keyPair(dir, 'client.pem', c.keySpec ?? 'rsa:1024');
      const script = join(dir, 'fake-server.mjs');
      writeFileSync(script, FAKE_SERVER);
      const payload = randomBytes(4000);
      writeFileSync(join(dir, 'ours.bin'), payload);
      const lines = await inNamespaces(dir, client.path, [
        join(process.cwd(), 'node_modules', '.bin', 'tsx'),
        script,
        server.path,
        String(c.keyType),
        String(c.hashType),
        String(c.sigType),
        join(dir, 'ours.bin'),
        String(c.keyex ?? KeyexType.RSA),
      ]);
      const steps = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(!steps.some((x) => 'error' in x || 'abort' in x || 'bad' in x), JSON.stringify(steps));
      assert.ok(steps.some((x) => x.verifyData === true), `verify_data from the real client matches ours: ${JSON.stringify(steps)}`);
      for (const want of ['KEYINFO_ACK', 'FILEINFO_ACK', 'COMPLETE', 'finished']) {
        assert.ok(steps.some((x) => x.step === want), `${want} in ${JSON.stringify(steps)}`);
      }
      if (c.sigType === SigType.KEYEX) assert.ok(steps.some((x) => x.clientKeySignature === true), 'CLIENT_KEY signature verified');
      assert.deepEqual(readFileSync(join(dir, 'dest', 'ours.bin')), payload, 'the real uftpd wrote the file we sealed');
    }),
  );
}

/** Runs a real uftpd in namespace B and `cmd` in namespace A; returns cmd's stdout lines. */
async function inNamespaces(dir: string, clientKey: string, cmd: string[]): Promise<string[]> {
  const suffix = randomBytes(2).toString('hex');
  const A = `uc-a${suffix}`;
  const B = `uc-b${suffix}`;
  const dest = join(dir, 'dest');
  mkdirSync(dest, { recursive: true });
  const procs: ChildProcess[] = [];
  try {
    for (const n of [A, B]) {
      sh('ip', ['netns', 'add', n]);
      mkdirSync(`/etc/netns/${n}`, { recursive: true });
      writeFileSync(`/etc/netns/${n}/resolv.conf`, 'nameserver 127.0.0.1\n');
      sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['link', 'add', 'va', 'netns', A, 'type', 'veth', 'peer', 'name', 'vb', 'netns', B]);
    sh('ip', ['-n', A, 'addr', 'add', '10.62.0.1/24', 'dev', 'va']);
    sh('ip', ['-n', B, 'addr', 'add', '10.62.0.2/24', 'dev', 'vb']);
    sh('ip', ['-n', A, 'link', 'set', 'va', 'up']);
    sh('ip', ['-n', B, 'link', 'set', 'vb', 'up']);
    sh('ip', ['-n', A, 'route', 'add', '224.0.0.0/4', 'dev', 'va']);
    sh('ip', ['-n', B, 'route', 'add', '224.0.0.0/4', 'dev', 'vb']);
    const uftpd = spawn('ip', ['netns', 'exec', B, 'timeout', '25', 'uftpd', '-d', '-D', dest, '-k', clientKey], { stdio: ['ignore', 'ignore', 'ignore'] });
    procs.push(uftpd);
    await new Promise((r) => setTimeout(r, 1000));
    const child = spawn('ip', ['netns', 'exec', A, 'timeout', '20', ...cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, UC_REPO: process.cwd() },
    });
    procs.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitExit(child, 25_000);
    await new Promise((r) => setTimeout(r, 500));
    uftpd.kill('SIGTERM');
    await waitExit(uftpd, 3000);
    const lines = stdout.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) assert.fail(`fake server printed nothing; stderr: ${stderr.slice(-600)}`);
    return lines;
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const n of [A, B]) {
      spawnSync('ip', ['netns', 'del', n], { timeout: 5000 });
      rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
    }
  }
}
