import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeKeyBlob, encodeKeyBlob, type KeyBlob } from './keyblob.js';

test('RSA key blob round-trips and rejects a wrong modulus length', () => {
  const blob: KeyBlob = { kind: 'RSA', exponent: 65537, modulus: new Uint8Array([0xc3, 1, 2, 3, 4, 5, 6, 7]) };
  const bytes = encodeKeyBlob(blob);
  assert.deepEqual([...bytes.subarray(0, 8)], [1, 0, 0, 8, 0, 1, 0, 1]);
  const back = decodeKeyBlob(bytes);
  assert.ok(back.ok);
  assert.deepEqual(back.value, blob);
  const bad = decodeKeyBlob(bytes.subarray(0, bytes.length - 1));
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.equal(bad.error.kind, 'inconsistent');
});

test('EC key blob round-trips; unknown blob type is a typed error', () => {
  const blob: KeyBlob = { kind: 'EC', curve: 23, key: new Uint8Array(65).fill(4) };
  const back = decodeKeyBlob(encodeKeyBlob(blob));
  assert.ok(back.ok);
  assert.deepEqual(back.value, blob);
  const r = decodeKeyBlob(new Uint8Array([9, 0, 0, 0]));
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.kind, 'bad-type');
});

test('EC key blobs are zero padded to 4 bytes on encode (sect163: key 42 -> blob 48) and accepted with or without it', () => {
  const blob: KeyBlob = { kind: 'EC', curve: 1, key: new Uint8Array(42).fill(7) };
  const bytes = encodeKeyBlob(blob);
  assert.equal(bytes.length, 48);
  assert.deepEqual([...bytes.subarray(0, 4)], [2, 1, 0, 42]);
  assert.deepEqual([...bytes.subarray(46)], [0, 0]);
  const padded = decodeKeyBlob(bytes);
  assert.ok(padded.ok);
  assert.deepEqual(padded.value, blob);
  const unpadded = decodeKeyBlob(bytes.subarray(0, 46));
  assert.ok(unpadded.ok);
  assert.deepEqual(unpadded.value, blob);
  const dirty = Uint8Array.from(bytes);
  dirty[47] = 1;
  const r = decodeKeyBlob(dirty);
  assert.ok(!r.ok && r.error.kind === 'bad-value');
  // RSA blobs are not padded
  assert.equal(encodeKeyBlob({ kind: 'RSA', exponent: 3, modulus: new Uint8Array(65) }).length, 73);
});
