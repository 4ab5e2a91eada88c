/**
 * The put's file on a real disk as the ktftpd driver does it: WriteBehindSink's asks, written with pwrite at the
 * asked positions, then commitAtomic (the old file's mode kept, no temporary file left); a commit that fails
 * (the target is a directory) removes the temporary file and leaves the target alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { commitAtomic, openWriteBehind, WriteBehindSink } from './fileops.js';

/** Does the writes the sink asks for; counts them in `n.writes` and the commit asks in `n.commits`. */
function drain(sink: WriteBehindSink, n: { writes: number; commits: number }): void {
  for (let w = sink.want(); w !== null; w = sink.want()) {
    if (w.kind === 'commit') {
      n.commits++;
      return;
    }
    writeSync(sink.fd, w.bytes, 0, w.bytes.length, w.position);
    sink.feedWrite({ ok: true });
    n.writes++;
  }
}

test('write-behind put on disk: gathered writes at their positions, commit keeps the old mode, no temp left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktftp-wb-'));
  try {
    const target = join(dir, 'app.log');
    writeFileSync(target, 'old');
    chmodSync(target, 0o640);
    const o = openWriteBehind(target, 10);
    assert.ok(o.ok && o.value instanceof WriteBehindSink);
    const sink = o.value;
    const content = randomBytes(600_000);
    const n = { writes: 0, commits: 0 };
    for (let off = 0; off < content.length; off += 1000) {
      assert.ok(sink.write(content.subarray(off, off + 1000)).ok);
      drain(sink, n);
    }
    assert.deepEqual(n, { writes: 2, commits: 0 }, 'two full 256 KiB chunks, no commit before it is asked');
    assert.ok(sink.commit().ok);
    drain(sink, n);
    assert.deepEqual(n, { writes: 3, commits: 1 }, 'the rest, then the commit, once');
    assert.equal(sink.want(), null);
    assert.equal(readFileSync(target, 'utf8'), 'old', 'nothing replaced before the commit');
    assert.deepEqual(await commitAtomic(sink.fd, sink.tmp, sink.path), { ok: true });
    assert.ok(readFileSync(target).equals(content));
    assert.equal(statSync(target).mode & 0o777, 0o640);
    assert.deepEqual(readdirSync(dir), ['app.log']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('write-behind put on disk: a failing commit removes the temp file; abort removes it too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktftp-wb-'));
  try {
    const target = join(dir, 'adir');
    mkdirSync(join(target, 'inside'), { recursive: true });
    const o = openWriteBehind(target, null);
    assert.ok(o.ok && o.value instanceof WriteBehindSink);
    const r = await commitAtomic(o.value.fd, o.value.tmp, o.value.path);
    assert.ok(!r.ok);
    assert.match(r.message, /write .*adir/);
    assert.deepEqual(readdirSync(dir), ['adir']);
    const b = openWriteBehind(join(dir, 'b.log'), null);
    assert.ok(b.ok);
    assert.equal(readdirSync(dir).length, 2);
    b.value.abort();
    assert.deepEqual(readdirSync(dir), ['adir']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
