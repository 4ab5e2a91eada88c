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
import { commitAtomic, openWriteAsync, writeAt, WriteBehindSink } from './fileops.js';

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
    const o = await openWriteAsync(target, 10);
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
    assert.deepEqual(await commitAtomic(sink), { ok: true });
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
    const o = await openWriteAsync(target, null);
    assert.ok(o.ok && o.value instanceof WriteBehindSink);
    const r = await commitAtomic(o.value);
    assert.ok(!r.ok);
    assert.match(r.message, /write .*adir/);
    assert.deepEqual(readdirSync(dir), ['adir']);
    const b = await openWriteAsync(join(dir, 'b.log'), null);
    assert.ok(b.ok);
    assert.equal(readdirSync(dir).length, 2);
    b.value.abort();
    await new Promise((res) => setTimeout(res, 50)); // the temp file goes on the thread pool
    assert.deepEqual(readdirSync(dir), ['adir']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('write-behind put on disk: an abort taken while the commit runs (before its rename) keeps the old file; after it, the new one stays', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ktftp-wb-'));
  try {
    const target = join(dir, 'app.log');
    writeFileSync(target, 'old');
    const content = randomBytes(100_000);
    const put = async (): Promise<WriteBehindSink> => {
      const o = await openWriteAsync(target, content.length);
      assert.ok(o.ok);
      const sink = o.value;
      assert.ok(sink.write(content).ok && sink.commit().ok);
      for (let w = sink.want(); w !== null; w = sink.want()) {
        if (w.kind === 'commit') break;
        sink.feedWrite(await writeAt(sink, w.position, w.bytes));
      }
      return sink;
    };
    const a = await put();
    const committing = commitAtomic(a);
    a.abort(); // the client's ERROR (or a shutdown) reaches the machine while the driver commits
    const r = await committing;
    assert.ok(!r.ok && /aborted before the rename/.test(r.message), JSON.stringify(r));
    assert.equal(readFileSync(target, 'utf8'), 'old', 'the old file stays');
    assert.deepEqual(readdirSync(dir), ['app.log'], 'no temporary file left');
    const b = await put();
    assert.deepEqual(await commitAtomic(b), { ok: true });
    b.abort(); // too late: the new file is in place and stays
    assert.ok(readFileSync(target).equals(content));
    assert.deepEqual(readdirSync(dir), ['app.log']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
