// The file list walk and the option table of uftp: names as the clients will see them, and the command-line rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { walkFiles, type WalkOptions } from './files.js';
import { parseUftpArgs } from './options.js';
import { FileType } from '../../wire/constants.js';

function tree(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'uftp-walk-'));
  fs.mkdirSync(path.join(d, 'top', 'sub'), { recursive: true });
  fs.mkdirSync(path.join(d, 'top', 'emptydir'));
  fs.writeFileSync(path.join(d, 'top', 'b.txt'), 'b');
  fs.writeFileSync(path.join(d, 'top', 'a.txt'), 'aa');
  fs.writeFileSync(path.join(d, 'top', 'sub', 'c'), 'ccc');
  fs.symlinkSync('a.txt', path.join(d, 'top', 'lnk'));
  execFileSync('mkfifo', [path.join(d, 'top', 'fifo')]);
  fs.writeFileSync(path.join(d, 'single'), 'single');
  return d;
}

const base: WalkOptions = { followLinks: false, excludes: new Set(), baseDirs: [], subdir: false };
const names = (r: ReturnType<typeof walkFiles>): string[] => r.files.map((f) => `${f.displayName}:${f.fileType}`);

test('a directory is walked in name order; links as links, empty directories as DIR, special files skipped', () => {
  const d = tree();
  const r = walkFiles([path.join(d, 'top')], base);
  assert.deepEqual(names(r), [`top/a.txt:${FileType.REG}`, `top/b.txt:${FileType.REG}`, `top/emptydir:${FileType.DIR}`, `top/lnk:${FileType.LINK}`, `top/sub/c:${FileType.REG}`]);
  assert.equal(new TextDecoder().decode(r.files[3].linkName), 'a.txt');
  assert.ok(r.warnings.some((w) => /Skipping special file .*fifo/.test(w)));
  const l = walkFiles([path.join(d, 'top', 'lnk')], { ...base, followLinks: true });
  assert.deepEqual(names(l), [`lnk:${FileType.REG}`]);
  assert.equal(l.files[0].size, 2);
  fs.rmSync(d, { recursive: true, force: true });
});

test('-D renames a single operand; with several operands or -o they go below it; -E keeps the path below a base dir', () => {
  const d = tree();
  assert.deepEqual(names(walkFiles([path.join(d, 'single')], { ...base, destName: 'renamed' })), [`renamed:${FileType.REG}`]);
  assert.deepEqual(names(walkFiles([path.join(d, 'single')], { ...base, destName: 'dir', subdir: true })), [`dir/single:${FileType.REG}`]);
  assert.deepEqual(names(walkFiles([path.join(d, 'single'), path.join(d, 'top', 'sub')], { ...base, destName: 'x' })), [`x/single:${FileType.REG}`, `x/sub/c:${FileType.REG}`]);
  const e = walkFiles([path.join(d, 'top', 'sub', 'c'), '/elsewhere/f'], { ...base, baseDirs: [d] });
  assert.deepEqual(names(e), [`top/sub/c:${FileType.REG}`]);
  assert.ok(e.warnings.some((w) => /\/elsewhere\/f does not match any base directory/.test(w)));
  fs.rmSync(d, { recursive: true, force: true });
});

test('-X excludes a path as given on the command line; @DELETE: and @FREESPACE become metafile entries', () => {
  const d = tree();
  const top = path.join(d, 'top');
  const r = walkFiles([top, '@DELETE:old/file', '@FREESPACE'], { ...base, excludes: new Set([`${top}/sub`, `${top}/b.txt`]) });
  assert.deepEqual(names(r), [`top/a.txt:${FileType.REG}`, `top/emptydir:${FileType.DIR}`, `top/lnk:${FileType.LINK}`, `old/file:${FileType.DELETE}`, `.:${FileType.FREESPACE}`]);
  fs.rmSync(d, { recursive: true, force: true });
});

test('options: the man page defaults, and one-line errors naming the option', () => {
  const ok = parseUftpArgs(['f']);
  assert.equal(ok.kind, 'ok');
  if (ok.kind !== 'ok') return;
  const o = ok.options;
  assert.deepEqual([o.rate, o.bufSize, o.blockSize, o.ttl, o.port, o.robust, o.maxPasses, o.logLevel, o.maxNakPct, o.maxNakCount, o.publicAddr, o.privateAddr],
    [1000, 262144, 1300, 1, 1044, 20, 65535, 2, 100, 1, '230.4.4.1', '230.5.5.x']);
  assert.deepEqual(o.grtt, { init: 0.5, min: 0.01, max: 15 });
  assert.deepEqual([o.keyType, o.hashType, o.sigType, o.keyex], ['none', 'sha1', 'hmac', 'rsa']);
  const err = (argv: string[]): string => {
    const r = parseUftpArgs(argv);
    assert.equal(r.kind, 'error', argv.join(' '));
    return r.kind === 'error' ? r.message : '';
  };
  assert.match(err(['-s', '9', 'f']), /-s: .*robustness/);
  assert.match(err(['-R', '0', 'f']), /-R: invalid rate/);
  assert.match(err(['-r', '2:3:1', 'f']), /-r: invalid GRTT/);
  assert.match(err(['-C', 'tfmcc:speed=3', 'f']), /-C: invalid TFMCC parameter/);
  assert.match(err(['-P', 'x.1.2.3', 'f']), /-P: .*first part/);
  assert.match(err(['-e', 'dh', 'f']), /-e: invalid key exchange/);
  assert.match(err(['-z', '-Z', 'f']), /-z and -Z/);
  assert.match(err(['-F', 'r', '-H', '0x01020304']), /-F: -H may not be given/);
  assert.match(err([]), /no files to send/);
  const t = parseUftpArgs(['-C', 'tfmcc:max=9000:min=100', '-r', '0.2:0.05:4', '-R', '-1', 'f']);
  assert.ok(t.kind === 'ok' && t.options.rate === -1 && t.options.cc.type === 'tfmcc' && t.options.cc.max === 9000 && t.options.grtt.min === 0.05);
  const p = parseUftpArgs(['f', '-x', '4']);
  assert.ok(p.kind === 'ok' && p.options.logLevel === 4 && p.files[0] === 'f', 'options after operands (glibc permutation)');
});
