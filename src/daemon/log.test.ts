import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { Logger, formatTimestamp, LOG_LINE_RE } from './log.js';
import { StartupError } from './exitcodes.js';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'un-log-'));
}

test('timestamp layout matches the real daemons: YYYY/MM/DD HH:MM:SS.uuuuuu', () => {
  const d = new Date(2026, 10, 2, 3, 4, 5, 6); // local time
  const s = formatTimestamp(d.getTime() * 1000 + 789);
  assert.equal(s, '2026/11/02 03:04:05.006789');
  assert.match(s + ': x', LOG_LINE_RE);
  // a line the real uftpd wrote
  assert.match('2026/11/22 20:04:17.798798: UFTP version 4.10.2  Copyright (C) 2001-2020  Dennis A. Bush', LOG_LINE_RE);
});

test('levels: a message is written when its level <= -x; lines are timestamped', async () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'd.log');
    const log = Logger.open({ level: 3, foreground: false, file });
    assert.equal(log.enabled(3), true);
    assert.equal(log.enabled(4), false);
    log.log(0, 'zero');
    log.log(3, 'three');
    log.log(4, 'four');
    log.error('err');
    log.close();
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.deepEqual(lines.map((l) => l.replace(LOG_LINE_RE, '')), ['zero', 'three', 'err']);
    for (const l of lines) assert.match(l, LOG_LINE_RE);
    const t = Date.parse(lines[0].slice(0, 19).replace(/\//g, '-').replace(' ', 'T'));
    assert.ok(Math.abs(t - Date.now()) < 5000, 'timestamp is now, local time');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('writes are batched: nothing hits the file per line, everything after one turn of the event loop', async () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'b.log');
    const log = Logger.open({ level: 5, foreground: false, file });
    for (let i = 0; i < 100; i++) log.log(5, `line ${i}`);
    assert.equal(fs.statSync(file).size, 0, 'no synchronous write per line');
    await tick();
    const text = fs.readFileSync(file, 'utf8');
    assert.equal(text.split('\n').length - 1, 100);
    assert.match(text, /: line 99\n$/);
    log.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('appends to an existing log file', () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, 'old\n');
    const log = Logger.open({ level: 2, foreground: false, file });
    log.log(1, 'new');
    log.close();
    assert.match(fs.readFileSync(file, 'utf8'), /^old\n.*: new\n$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rolling: logfile -> .1, older shift up, beyond -n deleted', () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'r.log');
    // each line is 28 (timestamp + ': ') + 8 + 1 = 37 bytes; limit 100 bytes -> 2 lines per file
    const log = Logger.open({ level: 2, foreground: false, file, maxSizeMB: 1, bytesPerMB: 100, maxCount: 3 });
    for (let i = 0; i < 12; i++) {
      log.log(1, `msg ${String(i).padStart(4, '0')}`);
      log.flush();
    }
    log.close();
    const names = fs.readdirSync(dir).sort();
    assert.deepEqual(names, ['r.log', 'r.log.1', 'r.log.2', 'r.log.3']);
    const body = (f: string): string[] => fs.readFileSync(path.join(dir, f), 'utf8').trimEnd().split('\n').map((l) => l.replace(LOG_LINE_RE, ''));
    assert.deepEqual(body('r.log'), ['msg 0010', 'msg 0011']);
    assert.deepEqual(body('r.log.1'), ['msg 0008', 'msg 0009']);
    assert.deepEqual(body('r.log.2'), ['msg 0006', 'msg 0007']);
    assert.deepEqual(body('r.log.3'), ['msg 0004', 'msg 0005']);
    for (const f of names) assert.ok(fs.statSync(path.join(dir, f)).size <= 100);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rolling within one batch of lines', () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'r.log');
    const log = Logger.open({ level: 2, foreground: false, file, maxSizeMB: 1, bytesPerMB: 100 });
    for (let i = 0; i < 9; i++) log.log(1, `msg ${String(i).padStart(4, '0')}`);
    log.close();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['r.log', 'r.log.1', 'r.log.2', 'r.log.3', 'r.log.4']);
    assert.match(fs.readFileSync(file, 'utf8'), /: msg 0008\n$/);
    assert.match(fs.readFileSync(file + '.4', 'utf8'), /: msg 0000\n.*: msg 0001\n$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('open failure is a StartupError with exit code 4 naming the file', () => {
  assert.throws(
    () => Logger.open({ level: 2, foreground: false, file: '/nonexistent-dir-un/x.log' }),
    (e: unknown) => e instanceof StartupError && e.code === 4 && /Error opening log file \/nonexistent-dir-un\/x\.log/.test(e.message),
  );
});

test('roll failure calls onFatal (the daemon exits 4)', () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'f.log');
    fs.mkdirSync(file + '.1');
    fs.writeFileSync(path.join(file + '.1', 'keep'), 'x');
    const fatal: string[] = [];
    const log = Logger.open({ level: 2, foreground: false, file, maxSizeMB: 1, bytesPerMB: 50, maxCount: 1, onFatal: (m) => fatal.push(m) });
    for (let i = 0; i < 4; i++) log.log(1, `line ${i}`);
    log.flush();
    assert.equal(fatal.length, 1);
    assert.match(fatal[0], /^Error rolling log file .*f\.log: /);
    log.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('foreground ignores the file', () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'fg.log');
    const log = Logger.open({ level: 2, foreground: true, file });
    assert.equal(log.path, undefined);
    log.close();
    assert.equal(fs.existsSync(file), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
