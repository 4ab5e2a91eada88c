import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { agree, deriveKeys, generateEphemeral, Opener, SealAhead, Sealer, sha256 } from './crypto.js';
import { decode, encode, checkTagName, unwrapBlock } from './wire.js';

test('sealed packets open once; a replay, a stale packet and a flipped bit are refused', () => {
  const keys = deriveKeys(Buffer.alloc(32, 1), sha256(Buffer.from('t')));
  const s = new Sealer(keys.clientKey, keys.clientIv);
  const o = new Opener(keys.clientKey, keys.clientIv);
  const p = Array.from({ length: 1100 }, (_, i) => s.seal(encode({ type: 'ACK', block: i })));
  const first = o.open(p[0]);
  assert.ok(first.ok);
  assert.deepEqual(decode(first.inner), { ok: true, value: { type: 'ACK', block: 0 } });
  assert.deepEqual(o.open(p[0]), { ok: false, reason: 'replayed' });
  // Reordering inside the window is accepted, once.
  assert.ok(o.open(p[5]).ok);
  assert.ok(o.open(p[3]).ok);
  assert.deepEqual(o.open(p[3]), { ok: false, reason: 'replayed' });
  assert.ok(o.open(p[1099]).ok);
  assert.deepEqual(o.open(p[10]), { ok: false, reason: 'stale' });
  const t = Buffer.from(p[1098]);
  t[t.length - 1] ^= 1;
  assert.deepEqual(o.open(t), { ok: false, reason: 'forged' });
  const h = Buffer.from(p[1098]);
  h[9] ^= 1; // header (sequence number) is authenticated too
  assert.equal(o.open(h).ok, false);
  assert.ok(o.open(p[1098]).ok);
  // The other direction's key does not open it.
  const other = new Opener(keys.serverKey, keys.serverIv);
  assert.deepEqual(other.open(p[2]), { ok: false, reason: 'forged' });
});

test('X25519 agreement gives both sides the same secret; a bad point is refused', () => {
  const a = generateEphemeral();
  const b = generateEphemeral();
  assert.deepEqual(agree(a, b.publicRaw), agree(b, a.publicRaw));
  assert.equal(agree(a, Buffer.alloc(32)), null);
  assert.equal(agree(a, Buffer.alloc(31, 1)), null);
});

test('wire: requests round-trip, options are case-insensitive, truncation is an error', () => {
  const req = encode({ type: 'REQUEST', op: 'PUSH', tag: 'log', mode: 'octet', options: [['blksize', '1400']] });
  assert.equal(req.readUInt16BE(0), 10);
  const d = decode(req);
  assert.ok(d.ok && d.value.type === 'REQUEST' && d.value.op === 'PUSH' && d.value.tag === 'log');
  const upper = decode(Buffer.from('\x00\x01x\x00OCTET\x00BLKSIZE\x00512\x00', 'latin1'));
  assert.ok(upper.ok && upper.value.type === 'REQUEST' && upper.value.mode === 'octet' && upper.value.options[0][0] === 'blksize');
  assert.equal(decode(Buffer.from('\x00\x01x\x00octet', 'latin1')).ok, false);
  assert.equal(decode(Buffer.from([0, 3, 0])).ok, false);
  const auth = encode({ type: 'AUTH', method: 'key', credential: Buffer.from([1, 2, 3]), proof: Buffer.from([4]) });
  const a = decode(auth);
  assert.ok(a.ok && a.value.type === 'AUTH' && a.value.method === 'key' && a.value.proof[0] === 4);
  assert.equal(decode(auth.subarray(0, auth.length - 1)).ok, false);
});

test('tag names are names, never paths', () => {
  for (const bad of ['', '../x', 'a/b', '/etc/passwd', 'a\0b', '..', '.hidden', 'a..b', 'x'.repeat(129), 'tag~~'])
    assert.notEqual(checkTagName(bad), null, bad);
  for (const good of ['log', 'log~', 'web-01.access_log', 'x'.repeat(128)]) assert.equal(checkTagName(good), null, good);
});

test('block numbers unwrap across the 16-bit rollover', () => {
  assert.equal(unwrapBlock(0, 65535), 65536);
  assert.equal(unwrapBlock(65535, 65536), 65535);
  assert.equal(unwrapBlock(5, 131072 + 3), 131077);
});

test('SealAhead: a packet sealed ahead is sent only if the same bytes come next; otherwise it is dropped and seqs still grow', () => {
  const keys = deriveKeys(randomBytes(32), randomBytes(32));
  const s = new SealAhead(new Sealer(keys.serverKey, keys.serverIv));
  const o = new Opener(keys.serverKey, keys.serverIv);
  const a = encode({ type: 'ACK', block: 1 });
  const b = encode({ type: 'ACK', block: 2 });
  s.prepare([a, b]);
  assert.equal(s.empty, false);
  const pa = s.seal(a);
  assert.equal(pa.readBigUInt64BE(2), 0n); // the prepared packet, seq 0
  // Something else comes next: the prepared ACK 2 (seq 1) is dropped, the fresh one gets seq 2.
  const pc = s.seal(encode({ type: 'ACK', block: 7 }));
  assert.equal(pc.readBigUInt64BE(2), 2n);
  assert.equal(s.empty, true);
  const pb = s.seal(b);
  assert.equal(pb.readBigUInt64BE(2), 3n);
  for (const [p, inner] of [[pa, a], [pc, encode({ type: 'ACK', block: 7 })], [pb, b]] as const) {
    const r = o.open(p);
    assert.ok(r.ok && r.inner.equals(inner));
  }
  // A prepared batch used in full, in order.
  s.prepare([a, b]);
  assert.equal(s.seal(a).readBigUInt64BE(2), 4n);
  assert.equal(s.seal(b).readBigUInt64BE(2), 5n);
  assert.equal(s.empty, true);
});
