/** src/files/atomic.ts on a real disk: temp creation, commit, cancel before the rename, failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitReplace, createTemp, tempNameBeside } from './atomic.js';

function withDir(f: (d: string) => Promise<void>): Promise<void> {
  const d = mkdtempSync(join(tmpdir(), 'files-atomic-'));
  return f(d).finally(() => rmSync(d, { recursive: true, force: true }));
}

test('tempNameBeside: hidden, beside the target, unique', () => {
  const a = tempNameBeside('/srv/logs/app.log', 'ktftp');
  assert.match(a, /^\/srv\/logs\/\.app\.log\.ktftp-[0-9a-f]{12}$/);
  assert.notEqual(a, tempNameBeside('/srv/logs/app.log', 'ktftp'));
});

test('createTemp + commitReplace: 0600 while written, the old mode after, the temp gone, a link at the target replaced not followed', () =>
  withDir(async (d) => {
    const target = join(d, 'app.log');
    writeFileSync(target, 'old');
    chmodSync(target, 0o640);
    const t = await createTemp(target, 'ktftp');
    assert.ok(t.ok);
    assert.equal(statSync(t.value.tmp).mode & 0o777, 0o600);
    writeSync(t.value.fd, 'new content');
    assert.deepEqual(await commitReplace(t.value.fd, t.value.tmp, target), { ok: true, value: undefined });
    assert.equal(readFileSync(target, 'utf8'), 'new content');
    assert.equal(statSync(target).mode & 0o777, 0o640);
    assert.deepEqual(readdirSync(d), ['app.log']);
    // a link where the file goes: replaced by the file, its target untouched
    writeFileSync(join(d, 'victim'), 'precious');
    symlinkSync(join(d, 'victim'), join(d, 'link'));
    const l = await createTemp(join(d, 'link'), 'ktftp');
    assert.ok(l.ok);
    writeSync(l.value.fd, 'x');
    assert.ok((await commitReplace(l.value.fd, l.value.tmp, join(d, 'link'))).ok);
    assert.equal(readFileSync(join(d, 'victim'), 'utf8'), 'precious');
    assert.ok(lstatSync(join(d, 'link')).isFile());
  }));

test('commitReplace: cancelled before the rename keeps the old file; a failing rename removes the temp; a missing directory fails createTemp', () =>
  withDir(async (d) => {
    const target = join(d, 'app.log');
    writeFileSync(target, 'old');
    const t = await createTemp(target, 'ktftp');
    assert.ok(t.ok);
    writeSync(t.value.fd, 'partial');
    let asked = 0;
    const r = await commitReplace(t.value.fd, t.value.tmp, target, () => ++asked > 0);
    assert.deepEqual(r, { ok: false, cancelled: true });
    assert.equal(asked, 1);
    assert.equal(readFileSync(target, 'utf8'), 'old');
    assert.deepEqual(readdirSync(d), ['app.log']);
    mkdirSync(join(d, 'adir', 'inside'), { recursive: true });
    const u = await createTemp(join(d, 'adir'), 'ktftp');
    assert.ok(u.ok);
    const f = await commitReplace(u.value.fd, u.value.tmp, join(d, 'adir'));
    assert.ok(!f.ok && 'error' in f && /EISDIR|ENOTEMPTY|EEXIST/.test(f.error.code ?? ''), JSON.stringify(f));
    assert.deepEqual(readdirSync(d).sort(), ['adir', 'app.log']);
    const m = await createTemp(join(d, 'nodir', 'x'), 'ktftp');
    assert.ok(!m.ok && m.error.code === 'ENOENT');
  }));
