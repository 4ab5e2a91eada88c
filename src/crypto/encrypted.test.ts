import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHmac } from 'node:crypto';
import { HashType, KeyType, SigType } from '../wire/constants.js';
import type { UftpHeader } from '../wire/header.js';
import { encodeMessageBody } from '../wire/packet.js';
import { sealEncrypted, sealEncryptedInto, sealedLength, openEncrypted, SIGNATURE_OFFSET, type GroupCrypto } from './encrypted.js';
import { groupKeys } from './keys.js';
import { hashSuite, keySuite, cipherAvailable } from './suites.js';
import { p1363ToUftp, uftpToP1363 } from './sign.js';

function must<T>(r: { ok: true; value: T } | { ok: false; error: unknown }): T {
  if (!r.ok) throw new Error(String(r.error));
  return r.value;
}

const header: UftpHeader = { version: 0x40, func: 0, seq: 7, srcId: 0x0a3e0001, groupId: 0x12345678, groupInst: 0, grtt: 10, gsize: 1, reserved: 0 };
const inner = encodeMessageBody({ type: 'KEYINFO_ACK', verifyData: new Uint8Array(12).fill(9), extensions: [] });

function group(keyType: number, hashType: number, sigType: number): GroupCrypto {
  const ks = must(keySuite(keyType));
  const hs = must(hashSuite(hashType));
  return { keySuite: ks, hashSuite: hs, sigType, keys: groupKeys(hs, ks, Buffer.alloc(48, 0x40), Buffer.alloc(32, 1)) };
}

test('seal then open returns the inner message for HMAC, AUTHENC and KEYEX', () => {
  const cases: GroupCrypto[] = [
    group(KeyType.AES128_CBC, HashType.SHA1, SigType.HMAC),
    group(KeyType.AES256_CBC, HashType.SHA512, SigType.HMAC),
    group(KeyType.AES128_GCM, HashType.SHA256, SigType.AUTHENC),
    group(KeyType.AES256_CCM, HashType.SHA384, SigType.AUTHENC),
  ];
  if (cipherAvailable('des-ede3-cbc')) cases.push(group(KeyType.DES_EDE3, HashType.SHA256, SigType.HMAC));
  for (const g of cases) {
    const d = must(sealEncrypted(g, header, inner, 5n));
    const o = must(openEncrypted(g, d));
    assert.equal(o.message.type, 'KEYINFO_ACK');
    assert.equal(o.ivCounter, 5n);
    assert.deepEqual(o.body, Buffer.from(inner));
    // any flipped bit anywhere is rejected (header, counter, signature, payload)
    for (const at of [3, 17, SIGNATURE_OFFSET, d.length - 1]) {
      const bad = Buffer.from(d);
      bad[at] ^= 0x01;
      assert.equal(openEncrypted(g, bad).ok, false, `${g.keySuite.name}/${g.sigType} bit at ${at}`);
    }
  }
  for (const kp of [generateKeyPairSync('rsa', { modulusLength: 1024 }), generateKeyPairSync('ec', { namedCurve: 'secp384r1' })]) {
    const g = group(KeyType.AES128_CBC, HashType.SHA256, SigType.KEYEX);
    const d = must(sealEncrypted(g, header, inner, 9n, kp.privateKey));
    assert.equal(must(openEncrypted(g, d, kp.publicKey)).message.type, 'KEYINFO_ACK');
    const other = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    assert.equal(openEncrypted(g, d, other.publicKey).ok, false);
  }
});

test('HMAC covers the whole datagram with the signature zeroed', () => {
  const g = group(KeyType.AES128_CBC, HashType.SHA1, SigType.HMAC);
  const d = Buffer.from(must(sealEncrypted(g, header, inner, 1n)));
  const sig = Buffer.from(d.subarray(SIGNATURE_OFFSET, SIGNATURE_OFFSET + 20));
  d.fill(0, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 20);
  assert.deepEqual(createHmac('sha1', g.keys.hmacKey).update(d).digest(), sig);
  assert.equal(d[1], 18, 'function is ENCRYPTED');
  assert.equal(d.readUInt16BE(26), 32, 'payload 16 bytes + a full block of padding');
});

test('UFTP ECDSA encoding: length-prefixed r and s without leading zeros, padded to 4', () => {
  const p = Buffer.concat([Buffer.alloc(32, 0), Buffer.alloc(32, 0)]);
  p[1] = 0x11; // r has one leading zero byte
  p[40] = 0x22;
  const u = p1363ToUftp(p);
  assert.equal(u.readUInt16BE(0), 31);
  assert.equal(u.readUInt16BE(2), 24);
  assert.equal(u.length % 4, 0);
  assert.deepEqual(must(uftpToP1363(u, 32)), p);
  assert.equal(uftpToP1363(Buffer.from([0, 40, 0, 40]), 32).ok, false);
});

test('sealEncryptedInto writes the datagram sealEncrypted gives (HMAC, AUTHENC), leaves KEYEX to it, refuses a short buffer', () => {
  for (const g of [group(KeyType.AES128_CBC, HashType.SHA256, SigType.HMAC), group(KeyType.AES256_GCM, HashType.SHA256, SigType.AUTHENC)]) {
    const out = Buffer.alloc(400, 0xa5);
    const n = sealEncryptedInto(g, header, inner, 77n, out);
    assert.equal(n, sealedLength(g, inner.length));
    assert.deepEqual(out.subarray(0, n), Buffer.from(must(sealEncrypted(g, header, inner, 77n))));
    assert.equal(out[n ?? 0], 0xa5, 'nothing written past the datagram');
    assert.equal(must(openEncrypted(g, out.subarray(0, n))).message.type, 'KEYINFO_ACK');
    assert.throws(() => sealEncryptedInto(g, header, inner, 77n, Buffer.alloc((n ?? 0) - 1)), RangeError);
  }
  const keyex = { ...group(KeyType.AES128_CBC, HashType.SHA256, SigType.KEYEX) };
  assert.equal(sealEncryptedInto(keyex, header, inner, 1n, Buffer.alloc(400)), undefined);
  assert.equal(sealedLength(keyex, inner.length), undefined);
});
