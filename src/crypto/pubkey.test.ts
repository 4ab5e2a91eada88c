import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, getCurves } from 'node:crypto';
import { CURVES } from '../wire/constants.js';
import { decodeKeyBlob, encodeKeyBlob } from '../wire/keyblob.js';
import { blobFingerprint, blobToPublicKey, curveOid, derOid, fingerprint, publicKeyToBlob } from './pubkey.js';

const available = new Set(getCurves());

test('the curve OID table matches the OIDs OpenSSL puts in keys it generates', () => {
  for (const c of CURVES) {
    if (!available.has(c.name)) continue;
    const spki = generateKeyPairSync('ec', { namedCurve: c.name }).publicKey.export({ type: 'spki', format: 'der' });
    const oid = curveOid(c.name);
    assert.ok(oid, c.name);
    assert.ok(spki.includes(derOid(oid)), `${c.name}: ${oid} not in SPKI ${spki.toString('hex')}`);
  }
});

test('EC keys round-trip through blobs on every 5.3.12 curve OpenSSL has', () => {
  for (const c of CURVES) {
    if (!available.has(c.name)) continue;
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: c.name });
    const blob = publicKeyToBlob(publicKey);
    assert.ok(blob.ok, c.name);
    assert.equal(blob.value.kind, 'EC');
    if (blob.value.kind !== 'EC') return;
    assert.equal(blob.value.curve, c.id);
    const dec = decodeKeyBlob(encodeKeyBlob(blob.value));
    assert.ok(dec.ok);
    const back = blobToPublicKey(dec.value);
    assert.ok(back.ok, c.name);
    assert.ok(back.value.equals(publicKey), c.name);
  }
});

test('RSA keys round-trip through blobs', () => {
  for (const bits of [512, 1024, 2048]) {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
    const blob = publicKeyToBlob(publicKey);
    assert.ok(blob.ok);
    assert.equal(blob.value.kind, 'RSA');
    if (blob.value.kind !== 'RSA') return;
    assert.equal(blob.value.exponent, 65537);
    assert.equal(blob.value.modulus.length, bits / 8);
    const back = blobToPublicKey(blob.value);
    assert.ok(back.ok);
    assert.ok(back.value.equals(publicKey));
  }
});

test('compressed EC points give the same blob and fingerprint', () => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const blob = publicKeyToBlob(publicKey);
  assert.ok(blob.ok);
  // re-import the point in compressed SPKI form
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const point = spki.subarray(spki.length - 65);
  const compressed = Buffer.concat([spki.subarray(0, spki.length - 65), Buffer.from([2 + (point[64] & 1)]), point.subarray(1, 33)]);
  // fix the lengths: outer SEQUENCE and BIT STRING shrink by 32
  compressed[1] -= 32;
  compressed[compressed.length - 33 - 2] -= 32;
  const cpub = createPublicKey({ key: compressed, format: 'der', type: 'spki' });
  const cblob = publicKeyToBlob(cpub);
  assert.ok(cblob.ok);
  assert.deepEqual(cblob.value, blob.value);
  assert.deepEqual(fingerprint(cpub), fingerprint(publicKey));
});

test('fingerprint is SHA-1 of the encoded blob (EC: zero-padded to 4 bytes)', () => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const blob = publicKeyToBlob(publicKey);
  assert.ok(blob.ok);
  const fp = fingerprint(publicKey);
  assert.ok(fp.ok);
  assert.equal(fp.value, blobFingerprint(blob.value));
  const want = createHash('sha1').update(encodeKeyBlob(blob.value)).digest('hex').toUpperCase().match(/../g)?.join(':');
  assert.equal(fp.value, want);
});

test('blobToPublicKey rejects bad blobs with a message', () => {
  const bad = blobToPublicKey({ kind: 'EC', curve: 99, key: new Uint8Array(64) });
  assert.equal(bad.ok, false);
  const notOnCurve = blobToPublicKey({ kind: 'EC', curve: 23, key: new Uint8Array(64).fill(1) });
  assert.equal(notOnCurve.ok, false);
  const zeroExp = blobToPublicKey({ kind: 'RSA', exponent: 0, modulus: new Uint8Array(64).fill(0xff) });
  assert.equal(zeroExp.ok, false);
});


test('EC fingerprints hash the blob padded to a multiple of 4 (real uftp_keymgt, sect163k1)', () => {
  // uftp_keymgt -g ec:sect163k1: "ECDSA, curve sect163k1, fingerprint: 16:94:C7:...", public point from the file
  const xy = Buffer.from(
    '0706c0f52b3bc3759b78324a4288c22a1ef545742502dba7d3b0914779e880ac8012635e7dd833cf0bee',
    'hex',
  );
  assert.equal(blobFingerprint({ kind: 'EC', curve: 1, key: xy }), '16:94:C7:EE:64:2D:97:7A:ED:6F:C6:DA:29:BE:A0:F0:8B:1E:0B:D6');
});
