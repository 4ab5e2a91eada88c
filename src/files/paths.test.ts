import { test } from 'node:test';
import assert from 'node:assert/strict';
import { placeName, sessionTempName, tempSuffix } from './paths.js';

const b = (s: string): Uint8Array => Buffer.from(s);
const D = ['/srv/in', '/data/x'];

test('relative names land in the first destination directory, "." and empty parts dropped', () => {
  assert.deepEqual(placeName(b('a/b.txt'), D, false), { ok: true, value: { destIndex: 0, parts: ['a', 'b.txt'] } });
  assert.deepEqual(placeName(b('./a//b'), D, false), { ok: true, value: { destIndex: 0, parts: ['a', 'b'] } });
});

test('absolute names must lie strictly below a destination directory, component-wise', () => {
  assert.deepEqual(placeName(b('/data/x/y/z'), D, false), { ok: true, value: { destIndex: 1, parts: ['y', 'z'] } });
  assert.equal(placeName(b('/data/xy/z'), D, false).ok, false, '/data/xy is not below /data/x');
  assert.equal(placeName(b('/data/x'), D, false).ok, false, 'the directory itself is not a file below it');
  assert.equal(placeName(b('/etc/passwd'), D, false).ok, false);
  assert.equal(placeName(b('/srv/in/a'), D, true).ok, false, 'no absolute names with -T');
});

test('hostile names are refused: .., NUL, invalid UTF-8, over-long names and components, nothing left', () => {
  for (const n of ['..', '../x', 'a/../../x', 'a/..', '/srv/in/../etc/passwd', '', '.', '/', './/']) {
    assert.equal(placeName(b(n), D, false).ok, false, JSON.stringify(n));
  }
  assert.equal(placeName(Uint8Array.from([0x61, 0, 0x62]), D, false).ok, false, 'NUL');
  assert.equal(placeName(Uint8Array.from([0x61, 0xff, 0x62]), D, false).ok, false, 'invalid UTF-8');
  assert.equal(placeName(b('a'.repeat(256)), D, false).ok, false, 'component over 255 bytes');
  assert.equal(placeName(b('a'.repeat(255)), D, false).ok, true);
  assert.equal(placeName(b('a/'.repeat(2048)), D, false).ok, false, 'path over 4095 bytes');
});

test('temp names are the real uftpd\'s', () => {
  assert.equal(tempSuffix(0xc91ee3e4, 1), '.~uftp-C91EE3E4-0001');
  assert.equal(sessionTempName(0x3d16dddc), '_group_3D16DDDC');
});
