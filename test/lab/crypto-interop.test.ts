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

