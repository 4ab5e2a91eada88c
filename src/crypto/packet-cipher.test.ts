import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { decrypt, encrypt, ciphertextLength, encryptInto, hmacZeroed } from './cipher.js';
import { nativePacketCiphers, packetCipher, packetMac, resetPacketCiphers } from './packet-cipher.js';
import { HASH_SUITES, KEY_SUITES, cipherAvailable, type KeySuite } from './suites.js';
import { Opener, Sealer } from '../ktftp/crypto.js';

const saved = process.env.UFTP_NATIVE_CIPHER;
afterEach(() => {
  if (saved === undefined) delete process.env.UFTP_NATIVE_CIPHER;
  else process.env.UFTP_NATIVE_CIPHER = saved;
  resetPacketCiphers();
});

/** Runs `f` with the addon's ciphers off (node:crypto only), then restores the choice. */
function withNode<T>(f: () => T): T {
  process.env.UFTP_NATIVE_CIPHER = '0';
  resetPacketCiphers();
  try {
    return f();
  } finally {
    delete process.env.UFTP_NATIVE_CIPHER;
    resetPacketCiphers();
  }
}

const suites = KEY_SUITES.filter((s) => cipherAvailable(s.openssl));

test('the addon provides the packet ciphers on Linux (npm ci builds it): GCM and CBC, not CCM', () => {
  delete process.env.UFTP_NATIVE_CIPHER;
  resetPacketCiphers();
  assert.equal(nativePacketCiphers(), process.platform === 'linux');
  if (process.platform !== 'linux') return;
  for (const s of suites) {
    const pc = packetCipher(s, randomBytes(s.keyLength), true);
    assert.equal(pc !== undefined, s.mode !== 'ccm', s.name);
  }
  process.env.UFTP_NATIVE_CIPHER = '0';
  resetPacketCiphers();
  assert.equal(nativePacketCiphers(), false);
  assert.equal(packetCipher(suites[0] as KeySuite, randomBytes(16), true), undefined);
});

test('every available suite: the addon and node:crypto give the same bytes, each opens the other\'s, 1-1500 bytes', () => {
  for (const s of suites) {
    const key = randomBytes(s.keyLength);
    for (let i = 0; i < 60; i++) {
      // an inner message has its function byte at least (node:crypto's CCM refuses an empty one)
      const len = i < 20 ? i + 1 : 1 + Math.floor(Math.random() * 1500);
      const iv = randomBytes(s.ivLength);
      const pt = randomBytes(len);
      const aad = s.mode === 'cbc' ? undefined : randomBytes(28);
      const ours = encrypt(s, key, iv, pt, aad);
      const ref = withNode(() => encrypt(s, key, iv, pt, aad));
      assert.deepEqual(ours, ref, `${s.name}, ${len} bytes`);
      assert.equal(ours.length, ciphertextLength(s, len));
      const back = decrypt(s, key, iv, ref, aad);
      assert.ok(back.ok && back.value.equals(pt), `${s.name} opens node:crypto's, ${len} bytes`);
      const back2 = withNode(() => decrypt(s, key, iv, ours, aad));
      assert.ok(back2.ok && back2.value.equals(pt), `node:crypto opens ours, ${s.name}, ${len} bytes`);
    }
  }
});

test('a flipped bit, a wrong AAD or a wrong key fails the same way as with node:crypto', () => {
  for (const s of suites) {
    const key = randomBytes(s.keyLength);
    const iv = randomBytes(s.ivLength);
    const pt = randomBytes(1000);
    const aad = s.mode === 'cbc' ? undefined : randomBytes(28);
    const ct = encrypt(s, key, iv, pt, aad);
    const bad: [Buffer, Uint8Array | undefined, Buffer][] = [];
    if (s.mode !== 'cbc') {
      for (const at of [0, 500, ct.length - 1]) {
        const t = Buffer.from(ct);
        t[at] = (t[at] ?? 0) ^ 1;
        bad.push([t, aad, key]);
      }
      const a2 = Buffer.from(aad ?? []);
      a2[3] = (a2[3] ?? 0) ^ 0x80;
      bad.push([ct, a2, key]);
    }
    // CBC: a wrong key garbles the padding (checked by OpenSSL; 1 in 256 keys would pad validly by chance, this
    // one is fixed by the loop below)
    let other = randomBytes(s.keyLength);
    while (withNode(() => decrypt(s, other, iv, ct, aad)).ok) other = randomBytes(s.keyLength);
    bad.push([ct, aad, other]);
    for (const [c, a, k] of bad) {
      const r = decrypt(s, k, iv, c, a);
      const ref = withNode(() => decrypt(s, k, iv, c, a));
      assert.equal(r.ok, false, s.name);
      assert.deepEqual(r, ref, `${s.name}: the same error text`);
    }
  }
});

test('encryptInto writes at an offset with exactly ciphertextLength of room, and refuses less', () => {
  for (const s of suites.filter((x) => x.mode !== 'ccm')) {
    const key = randomBytes(s.keyLength);
    const iv = randomBytes(s.ivLength);
    const pt = randomBytes(333);
    const aad = s.mode === 'cbc' ? undefined : randomBytes(16);
    const need = ciphertextLength(s, pt.length);
    const out = Buffer.alloc(7 + need, 0xee);
    assert.equal(encryptInto(s, key, iv, pt, out, 7, aad), need);
    assert.deepEqual(out.subarray(7), encrypt(s, key, iv, pt, aad));
    assert.equal(out.readUInt32BE(0) + out.readUInt16BE(4) + (out[6] ?? 0), 0xeeeeeeee + 0xeeee + 0xee, 'nothing before the offset');
    assert.throws(() => encryptInto(s, key, iv, pt, Buffer.alloc(6 + need), 7, aad), /refused/);
  }
});

test('a key buffer reused for another key gets a new context (no stale key schedule)', () => {
  const s = suites.find((x) => x.name === 'aes128-gcm') as KeySuite;
  const key = randomBytes(16);
  const iv = randomBytes(12);
  const pt = randomBytes(100);
  const first = encrypt(s, key, iv, pt);
  randomBytes(16).copy(key);
  const second = encrypt(s, key, iv, pt);
  assert.notDeepEqual(second, first);
  const c = createCipheriv('aes-128-gcm', key, iv);
  assert.deepEqual(second, Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]));
});

test('KTFTP: a packet sealed on the addon opens with node:crypto and the other way round; forgeries refused', () => {
  const key = randomBytes(32);
  const iv = randomBytes(4);
  const inners = [Buffer.alloc(0), randomBytes(1), randomBytes(1408), randomBytes(8192)];
  const sealAll = (): Buffer[] => {
    const sealer = new Sealer(key, iv);
    return inners.map((b) => sealer.seal(b)); // sequence numbers 0..3
  };
  const nativeSealed = sealAll();
  const nodeSealed = withNode(sealAll);
  assert.deepEqual(nativeSealed, nodeSealed, 'the same bytes for the same sequence number');
  const viaNode = withNode(() => new Opener(key, iv));
  const viaNative = new Opener(key, iv);
  for (let i = 0; i < inners.length; i++) {
    const a = viaNode.open(nativeSealed[i] as Buffer);
    assert.ok(a.ok && a.inner.equals(inners[i] as Buffer));
    const forged = Buffer.from(nodeSealed[i] as Buffer);
    forged[forged.length - 1] ^= 1;
    assert.deepEqual(new Opener(key, iv).open(forged), { ok: false, reason: 'forged' });
  }
  const s = new Sealer(key, iv);
  for (const b of inners) {
    const r = viaNative.open(s.seal(b));
    assert.ok(r.ok && r.inner.equals(b));
  }
});

test('HMAC with a zeroed field: the addon\'s keyed HMAC and node:crypto agree with an HMAC of the zeroed copy, every hash', () => {
  delete process.env.UFTP_NATIVE_CIPHER;
  resetPacketCiphers();
  for (const h of HASH_SUITES) {
    if (process.platform === 'linux') assert.notEqual(packetMac(h.openssl, randomBytes(20)), undefined, h.name);
    const key = randomBytes(h.length);
    for (let i = 0; i < 40; i++) {
      const data = randomBytes(28 + h.length + i * 37);
      const zeroLength = i % 3 === 0 ? 0 : h.length;
      const copy = Buffer.from(data);
      copy.fill(0, 28, 28 + zeroLength);
      const want = createHmac(h.openssl, key).update(copy).digest();
      assert.deepEqual(hmacZeroed(h, key, data, 28, zeroLength), want, `${h.name}, ${data.length} bytes`);
      assert.deepEqual(withNode(() => hmacZeroed(h, key, data, 28, zeroLength)), want, `node:crypto, ${h.name}`);
    }
  }
});
