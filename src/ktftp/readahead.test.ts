/** ReadAheadSource: a get's file read by the driver (effects), handed to the sender in exact blocks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fstatSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openReadAsync, readAt, ReadAheadSource } from './fileops.js';
import { ErrCode } from './wire.js';

/** Serves every want() from `file`, `short` bytes at most per read (a short read moves on, as pread may). */
function serve(src: ReadAheadSource, file: Buffer, short = Infinity): number {
  let reads = 0;
  for (let w = src.want(); w !== null; w = src.want()) {
    reads++;
    src.feed({ ok: true, bytes: file.subarray(w.position, Math.min(w.position + w.length, w.position + short, file.length)) });
  }
  return reads;
}

test('blocks come out exact across chunk boundaries; null until the bytes are fed; the end is a short or empty block', () => {
  const file = randomBytes(10_000);
  let closed = 0;
  const src = new ReadAheadSource(7, '/x', file.length, () => closed++, 3000, 1000);
  assert.deepEqual(src.read(1408), { ok: true, value: null }, 'nothing fed yet');
  const out: Buffer[] = [];
  for (;;) {
    serve(src, file, 700);
    const r = src.read(1408);
    assert.ok(r.ok);
    if (r.value === null) assert.fail('data was fed: a block must come');
    out.push(r.value);
    if (r.value.length < 1408) break;
  }
  assert.ok(Buffer.concat(out).equals(file));
  assert.deepEqual(out.map((b) => b.length), [...Array(7).fill(1408), 10_000 - 7 * 1408]);
  // an exact multiple ends in an empty block
  const even = randomBytes(2816);
  const e = new ReadAheadSource(8, '/y', even.length, () => undefined, 4096, 1024);
  serve(e, even);
  assert.equal(e.read(1408).ok && e.read(1408).ok, true);
  const last = e.read(1408);
  assert.ok(last.ok && last.value !== null && last.value.length === 0);
  src.close();
  src.close();
  assert.equal(closed, 1, 'the descriptor is closed once');
  assert.equal(src.want(), null, 'no reads after close');
});

test('reads ahead one request at a time up to its bound, and only as the sender takes blocks', () => {
  const file = randomBytes(50_000);
  const src = new ReadAheadSource(7, '/x', file.length, () => undefined, 4000, 1000);
  const w1 = src.want();
  assert.deepEqual(w1, { position: 0, length: 1000 });
  assert.equal(src.want(), null, 'one read in flight at a time');
  src.feed({ ok: true, bytes: file.subarray(0, 1000) });
  assert.equal(serve(src, file), 3, 'three more reads fill the 4000-byte bound');
  assert.equal(src.want(), null);
  assert.ok(src.read(1500).ok);
  assert.deepEqual(src.want(), { position: 4000, length: 1000 }, 'a block taken makes room');
});

test('a read error reaches the sender once the bytes before it are used up', () => {
  const file = randomBytes(3000);
  const src = new ReadAheadSource(7, '/x', null, () => undefined, 8000, 2000);
  const w = src.want()!;
  src.feed({ ok: true, bytes: file.subarray(w.position, w.position + w.length) });
  src.want();
  src.feed({ ok: false, code: ErrCode.UNDEF, message: 'read /x: Input/output error' });
  assert.equal(src.want(), null, 'no reads after an error');
  const a = src.read(1000);
  assert.ok(a.ok && a.value?.equals(file.subarray(0, 1000)));
  const b = src.read(1000);
  assert.ok(b.ok && b.value?.equals(file.subarray(1000, 2000)));
  assert.deepEqual(src.read(1000), { ok: false, code: ErrCode.UNDEF, message: 'read /x: Input/output error' });
});

test('openReadAsync: a regular file reads through the driver; a directory or a missing file is an error', async () => {
  const d = mkdtempSync(join(tmpdir(), 'ktftp-ra-'));
  try {
    writeFileSync(join(d, 'f'), 'hello');
    mkdirSync(join(d, 'sub'));
    const f = await openReadAsync(join(d, 'f'));
    assert.ok(f.ok && f.value instanceof ReadAheadSource && f.value.size === 5);
    f.value.close();
    const dir = await openReadAsync(join(d, 'sub'));
    assert.ok(!dir.ok && /Is a directory/.test(dir.message));
    const gone = await openReadAsync(join(d, 'nope'));
    assert.ok(!gone.ok && gone.code === ErrCode.NOTFOUND);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('close() while a read is in flight: the descriptor is closed only when that read is fed, once', () => {
  let closed = 0;
  const src = new ReadAheadSource(7, '/x', 4000, () => closed++, 4000, 1000);
  const w = src.want();
  assert.ok(w !== null);
  src.close();
  assert.equal(closed, 0, 'a read still uses the descriptor: not closed under it');
  src.feed({ ok: true, bytes: Buffer.alloc(1000) });
  assert.equal(closed, 1, 'closed once the read came back');
  src.feed({ ok: true, bytes: Buffer.alloc(0) });
  src.close();
  assert.equal(closed, 1);
  assert.equal(src.want(), null);
});

test('close() during a real pread on the thread pool: the descriptor number is not recycled before the read settles', async () => {
  const d = mkdtempSync(join(tmpdir(), 'ktftp-ra-'));
  try {
    const content = randomBytes(300_000);
    writeFileSync(join(d, 'f'), content);
    writeFileSync(join(d, 'other'), 'another file');
    const o = await openReadAsync(join(d, 'f'));
    assert.ok(o.ok && o.value instanceof ReadAheadSource);
    const src = o.value;
    const w = src.want()!;
    const pending = readAt(src, w.position, w.length);
    src.close(); // the transfer ends (the client's ERROR) while the read is on the thread pool
    const other = openSync(join(d, 'other'), 'r');
    try {
      assert.notEqual(other, src.fd, 'the get\'s descriptor is still open: a new open gets another number');
      const r = await pending;
      assert.ok(r.ok && r.bytes.equals(content.subarray(0, w.length)), 'the read came from the get\'s own file');
      await new Promise((res) => setTimeout(res, 50));
      assert.throws(() => fstatSync(src.fd), /EBADF/, 'closed after the read settled');
    } finally {
      closeSync(other);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
