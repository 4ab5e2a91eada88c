// Hostile servers against our uftpd's machine and its real disk effects, on a scratch tree: a server built from
// src/wire sends what the real uftp never would. After each attack, nothing outside the destination directory
// has changed (the whole scratch tree outside it is hashed before and after, symlink targets included), and
// nothing was written, renamed or deleted through a symlink below the destination directory.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CompStat, FileType } from '../../src/wire/constants.js';
import { Rig } from '../../src/session/client/rig.test-util.js';

let root = '';
let dest = '';
let outside = '';

/** Every entry under `dir` (not following links): type, link target, content hash, mode. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) out.set(r, `link ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${st.mode}`);
        walk(p, r);
      } else out.set(r, `file ${st.mode} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir, '');
  return out;
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'uftpd-hostile-'));
  dest = path.join(root, 'dest');
  outside = path.join(root, 'outside');
  fs.mkdirSync(path.join(outside, 'secret'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'passwd'), 'root:x:0:0\n');
  fs.writeFileSync(path.join(outside, 'secret', 'key'), randomBytes(64));
  fs.mkdirSync(dest);
  // links an attacker (any local user, when dest is /tmp) planted in the destination
  fs.symlinkSync(outside, path.join(dest, 'evil'));
  fs.symlinkSync(path.join(outside, 'passwd'), path.join(dest, 'passwd-link'));
  fs.mkdirSync(path.join(dest, 'real'));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(dest, 'real', 'deeper'));
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function attack(name: string, fn: (r: Rig) => void, o: ConstructorParameters<typeof Rig>[1] = {}): Rig {
  const before = snapshot(outside);
  const r = new Rig([dest], o);
  r.register();
  fn(r);
  r.end();
  assert.deepEqual(snapshot(outside), before, `${name}: nothing outside the destination changed`);
  assert.equal(r.disk.openCount, 0, `${name}: no file left open`);
  return r;
}

test('names with "..", absolute names outside -D, NUL bytes, over-long names and paths: rejected, nothing outside changes', () => {
  const r = attack('names', (r) => {
    const data = Buffer.from('pwned\n');
    const names: (string | Uint8Array)[] = [
      '../outside/passwd', `../${path.basename(root)}/outside/passwd`, 'a/../../outside/passwd', path.join(outside, 'passwd'),
      `${dest}/../outside/passwd`, Uint8Array.from([...Buffer.from('x'), 0, ...Buffer.from('/../../outside/passwd')]),
      'x'.repeat(300), 'y'.repeat(990), `ok/${'z'.repeat(256)}/f`, Uint8Array.from([0xc0, 0xaf, 0x2e, 0x2e]),
    ];
    names.forEach((n, i) => {
      const st = r.file(i + 1, n, data);
      // a NUL ends the name on the wire (the codec cuts there): "x" is then a fine name inside dest
      if (typeof n !== 'string' && n.includes(0)) assert.equal(st, CompStat.NORMAL);
      else assert.equal(st, CompStat.REJECTED, `${Buffer.from(n).toString().slice(0, 60)} rejected`);
    });
  });
  assert.ok(r.results.filter((x) => x.word === 'rejected').length >= 8, 'RESULT lines say rejected');
  assert.deepEqual(fs.readdirSync(dest).sort(), ['evil', 'passwd-link', 'real', 'x'].sort(), 'only the NUL-cut name "x" was written');
});

test('a symlink planted in the destination tree is never written through: files, directories, links below it are rejected', () => {
  attack('through links', (r) => {
    assert.equal(r.file(1, 'evil/passwd', Buffer.from('pwned\n')), CompStat.REJECTED);
    assert.equal(r.file(2, 'evil/new-file', Buffer.from('pwned\n')), CompStat.REJECTED);
    assert.equal(r.file(3, 'real/deeper/key', randomBytes(10)), CompStat.REJECTED);
    assert.equal(r.entry(4, FileType.DIR, 'evil/newdir'), CompStat.REJECTED);
    assert.equal(r.entry(5, FileType.LINK, 'evil/l', '/etc/shadow'), CompStat.REJECTED);
    assert.equal(r.entry(6, FileType.DIR, 'real/deeper/sub'), CompStat.REJECTED);
  });
  assert.equal(fs.readlinkSync(path.join(dest, 'evil')), outside, 'the planted link itself is left alone');
});

test('a file whose own name is a planted symlink replaces the link, never its target (direct and with -t)', () => {
  for (const tempFiles of [false, true]) {
    attack(`leaf link${tempFiles ? ' -t' : ''}`, (r) => {
      assert.equal(r.file(1, 'passwd-link', Buffer.from('new content\n')), CompStat.NORMAL);
    }, { disk: { tempFiles } });
    const p = path.join(dest, 'passwd-link');
    assert.equal(fs.lstatSync(p).isFile(), true, 'the link became a regular file');
    assert.equal(fs.readFileSync(p, 'utf8'), 'new content\n');
    fs.rmSync(p);
    fs.symlinkSync(path.join(outside, 'passwd'), p);
  }
});

test('@DELETE outside the destination or through a link is refused; deleting a planted link removes the link only', () => {
  attack('delete', (r) => {
    assert.equal(r.entry(1, FileType.DELETE, '../outside/passwd'), CompStat.REJECTED);
    assert.equal(r.entry(2, FileType.DELETE, path.join(outside, 'passwd')), CompStat.REJECTED);
    assert.equal(r.entry(3, FileType.DELETE, 'evil/passwd'), CompStat.REJECTED);
    assert.equal(r.entry(4, FileType.DELETE, 'real/deeper/key'), CompStat.REJECTED);
    assert.equal(r.entry(5, FileType.DELETE, 'evil'), CompStat.NORMAL);
    assert.equal(r.entry(6, FileType.DELETE, 'real'), CompStat.NORMAL);
  });
  assert.deepEqual(fs.readdirSync(dest), ['passwd-link'], 'the link "evil" and the directory "real" (with the link in it) are gone');
});

test('-D itself may be a symlink (the operator\'s): files arrive through it', () => {
  const linkDest = path.join(root, 'dest-link');
  fs.symlinkSync(dest, linkDest);
  const before = snapshot(outside);
  const r = new Rig([linkDest]);
  r.register();
  assert.equal(r.file(1, 'sub/ok.txt', Buffer.from('fine\n')), CompStat.NORMAL);
  assert.equal(r.file(2, `${linkDest}/abs.txt`, Buffer.from('abs\n')), CompStat.NORMAL, 'an absolute name below the -D given');
  r.end();
  assert.equal(fs.readFileSync(path.join(dest, 'sub', 'ok.txt'), 'utf8'), 'fine\n');
  assert.equal(fs.readFileSync(path.join(dest, 'abs.txt'), 'utf8'), 'abs\n');
  assert.deepEqual(snapshot(outside), before);
});

test('-T: absolute names refused; a failed session keeps nothing in the destination; files move at the end', () => {
  const tmp = path.join(root, 'tmp');
  fs.mkdirSync(tmp);
  const r = attack('-T', (r) => {
    assert.equal(r.file(1, path.join(dest, 'abs'), Buffer.from('x')), CompStat.REJECTED);
    assert.equal(r.file(2, 'd/ok', Buffer.from('ok\n')), CompStat.NORMAL);
    assert.equal(fs.existsSync(path.join(dest, 'd')), false, 'not in the destination before the session ends');
  }, { disk: { tempDir: tmp }, client: { tempDir: true } });
  void r;
  assert.equal(fs.readFileSync(path.join(dest, 'd', 'ok'), 'utf8'), 'ok\n', 'moved at the end of the session');
  assert.deepEqual(fs.readdirSync(tmp), [], 'the session directory is gone');
});

test('an ABORT in the middle of a file with -t leaves no partial file in the destination', () => {
  const r = new Rig([dest], { disk: { tempFiles: true } });
  r.register();
  r.send({ type: 'FILEINFO', fileId: 1, fileType: FileType.REG, fileSize: 5000, fileTimestamp: 1, timestamp: { sec: 1, usec: 0 }, name: Buffer.from('part.bin'), linkName: new Uint8Array(0), extensions: [], clientIds: [] });
  r.send({ type: 'FILESEG', fileId: 1, section: 0, secBlock: 0, extensions: [], data: new Uint8Array(1000) });
  r.send({ type: 'ABORT', flags: 0, host: 0, message: 'bye', extensions: [] });
  assert.equal(r.m.sessionCount, 0);
  assert.deepEqual(fs.readdirSync(dest).filter((n) => n.startsWith('part')), [], 'no part.bin and no temp file');
  assert.equal(r.disk.openCount, 0);
});
