import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHash, randomBytes } from 'node:crypto';
import { buildIv, buildIvInto, clientKeySignedData, groupKeys, masterSecret, sessionKeys, verifyData } from './keys.js';
import { prf } from './prf.js';
import { hashSuite, keySuite, KEY_SUITES, cipherAvailable } from './suites.js';
import { decrypt, encrypt, decryptCbc, encryptCbc } from './cipher.js';
import { ecdhPremaster, rsaDecryptPremaster, rsaEncryptPremaster, signData, verifySignature as verifySig } from './sign.js';
import { HashType, KeyType } from '../wire/constants.js';

function must<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}
const sha1 = must(hashSuite(HashType.SHA1));
const sha256 = must(hashSuite(HashType.SHA256));
const aes128cbc = must(keySuite(KeyType.AES128_CBC));
const aes256gcm = must(keySuite(KeyType.AES256_GCM));

test('IV constructions of protocol.txt 4', () => {
  const s = Buffer.from('a1b2c3d4', 'hex');
  assert.equal(buildIv(16, s, 0x0a3e0002, 0x0102030405060708n).toString('hex'), 'a1b2c3d40a3e00020102030405060708');
  assert.equal(buildIv(12, s, 0x0a3e0002, 0x0102030405060708n).toString('hex'), ((0xa1b2c3d4 ^ 0x0a3e0002) >>> 0).toString(16).padStart(8, '0') + '0102030405060708');
  const iv8 = buildIv(8, s, 0x0a3e0002, 0x0102030405060708n);
  assert.equal(iv8.readBigUInt64BE(0), 0xa1b2c3d40a3e0002n ^ 0x0102030405060708n);
});

test('key schedule follows the formulas of section 4', () => {
  const pre = Buffer.alloc(48, 7);
  const sr = Buffer.alloc(32, 1);
  const cr = Buffer.alloc(32, 2);
  const m = masterSecret(sha1, pre, sr, cr);
  assert.deepEqual(m, prf('sha1', pre, 'master secret', Buffer.concat([sr, cr]), 48));
  const k = sessionKeys(sha1, aes128cbc, m, sr, cr);
  const block = prf('sha1', m, 'key expansion', Buffer.concat([sr, cr]), 40);
  assert.deepEqual(k.hmacKey, block.subarray(0, 20));
  assert.deepEqual(k.key, block.subarray(20, 36));
  assert.deepEqual(k.salt, block.subarray(36, 40));
  const gm = Buffer.alloc(48, 9);
  const g = groupKeys(sha256, aes256gcm, gm, sr);
  const gblock = prf('sha256', gm, 'key expansion', sr, 32 + 32 + 4);
  assert.deepEqual(Buffer.concat([g.hmacKey, g.key, g.salt]), gblock);
  const hv = { groupId: 0x11223344, privateAddress: Buffer.from([230, 5, 5, 1]), serverRandom: sr, clientRandom: cr, premaster: pre };
  assert.deepEqual(clientKeySignedData(hv), Buffer.concat([Buffer.from('11223344e6050501', 'hex'), sr, cr, pre]));
  const vd = verifyData(sha256, gm, hv);
  const digest = createHash('sha256').update(Buffer.concat([clientKeySignedData(hv), gm])).digest();
  assert.deepEqual(vd, prf('sha256', gm, 'client finished', digest, 12));
});

test('every available cipher round-trips; GCM/CCM reject a flipped bit', () => {
  for (const s of KEY_SUITES) {
    if (!cipherAvailable(s.openssl)) continue;
    const key = Buffer.alloc(s.keyLength, 3);
    const iv = Buffer.alloc(s.ivLength, 4);
    const pt = Buffer.from('a message of some length that is not a block multiple');
    const ct = encrypt(s, key, iv, pt);
    assert.deepEqual(must(decrypt(s, key, iv, ct)), pt, s.name);
    if (s.mode === 'cbc') {
      assert.equal(ct.length % s.blockSize, 0);
    } else {
      assert.equal(ct.length, pt.length + s.tagLength);
      const bad = Buffer.from(ct);
      bad[0] ^= 1;
      assert.equal(decrypt(s, key, iv, bad).ok, false, s.name);
    }
  }
  // 47 bytes (the group master) become 48 in CBC with PKCS#7 padding
  const ct = encryptCbc('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(47, 5));
  assert.equal(ct.length, 48);
  assert.deepEqual(must(decryptCbc('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(16), ct)), Buffer.alloc(47, 5));
  assert.equal(decryptCbc('aes-128-cbc', Buffer.alloc(16, 1), Buffer.alloc(16), ct).ok, false);
});

test('DES is reported clearly when the local OpenSSL lacks it', () => {
  const r = keySuite(KeyType.DES);
  if (!r.ok) assert.match(r.error, /des.*not available in this OpenSSL/);
  assert.equal(keySuite(99).ok, false);
});

test('RSA premaster and signatures, ECDSA signatures, ECDH premaster', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const pre = Buffer.alloc(48, 0x42);
  const enc = rsaEncryptPremaster(rsa.publicKey, pre);
  assert.equal(enc.length, 128);
  assert.deepEqual(must(rsaDecryptPremaster(rsa.privateKey, enc)), pre);
  const data = Buffer.from('signed bytes');
  const sig = signData(rsa.privateKey, sha1, data);
  assert.ok(verifySig(rsa.publicKey, sha1, data, sig));
  assert.ok(!verifySig(rsa.publicKey, sha1, Buffer.from('other'), sig));
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const esig = signData(ec.privateKey, sha256, data);
  assert.ok(verifySig(ec.publicKey, sha256, data, esig));
  const a = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const b = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const p1 = must(ecdhPremaster(a.privateKey, b.publicKey));
  const p2 = must(ecdhPremaster(b.privateKey, a.publicKey));
  assert.deepEqual(p1, p2);
  assert.equal(p1.length, 20);
});

test('buildIvInto (from the counter bytes of a datagram) gives protocol.txt 4\'s IV for 8, 12 and 16 bytes', () => {
  // the formulas written out here with BigInt, independently of keys.ts: S + UID + CTR, (S XOR UID) + CTR,
  // (S + UID) XOR CTR
  const out = new Uint8Array(16);
  const hex = (n: bigint, bytes: number): string => n.toString(16).padStart(bytes * 2, '0');
  for (let i = 0; i < 300; i++) {
    const salt = randomBytes(4);
    const uid = randomBytes(4).readUInt32BE(0);
    const ctrBytes = randomBytes(8);
    const ctr = ctrBytes.readBigUInt64BE(0);
    const S = BigInt(salt.readUInt32BE(0));
    const U = BigInt(uid);
    const want: Record<number, string> = {
      16: hex(S, 4) + hex(U, 4) + hex(ctr, 8),
      12: hex(S ^ U, 4) + hex(ctr, 8),
      8: hex(((S << 32n) | U) ^ ctr, 8),
    };
    for (const len of [8, 12, 16]) {
      assert.equal(Buffer.from(buildIvInto(out, len, salt, uid, ctrBytes)).toString('hex'), want[len], `${len} bytes`);
      assert.equal(buildIv(len, salt, uid, ctr).toString('hex'), want[len], `buildIv, ${len} bytes`);
    }
  }
  assert.throws(() => buildIvInto(out, 10, randomBytes(4), 1, randomBytes(8)), /no IV construction/);
});
