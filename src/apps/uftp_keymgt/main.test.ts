import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main, USAGE } from './main.js';

function run(argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(argv, { err: (t) => (err += t), out: (t) => (out += t) });
  return { code, out, err };
}

test('--help prints the usage on stdout and exits 0 (the C program has no help)', () => {
  const r = run(['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.out, USAGE);
  assert.match(r.out, /-g SPEC FILE/);
  assert.equal(r.err, '');
});

test('-h stays an invalid option, as in the C program', () => {
  const r = run(['-h']);
  assert.equal(r.code, 0);
  assert.equal(r.out, '');
  assert.equal(r.err, "uftp_keymgt: invalid option -- 'h'\n");
});

test('a bad -g spec exits 1 with the C program\'s message', () => {
  const r = run(['-g', 'dsa:1024', '/nonexistent/k.pem']);
  assert.equal(r.code, 1);
  assert.match(r.err, /^Invalid key specification\n$/);
});
