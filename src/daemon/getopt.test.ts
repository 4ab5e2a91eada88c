import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  getopt, parseOptstring, parseCommandLine, flag, option, repeated, intRange, intDecOrHex, hex32, commaList,
  hostPortList, nonEmpty, usageText, optstringOf, type ParsedOpt,
} from './getopt.js';

const PROXY = 's:crdp:t:Q:N:O:U:q:mx:H:g:n:h:B:L:P:C:S:k:K:e:I:M:';

test('optstring: letters with and without argument', () => {
  const m = parseOptstring(PROXY);
  assert.equal(m.get('s'), true);
  assert.equal(m.get('c'), false);
  assert.equal(m.get('d'), false);
  assert.equal(m.get('M'), true);
  assert.equal(m.size, 27);
  assert.throws(() => parseOptstring('aa'));
});

test('getopt: the documented forms', () => {
  const cases: [string[], ParsedOpt[], string[]][] = [
    [['-dm'], [{ opt: 'd' }, { opt: 'm' }], []],
    [['-p1044'], [{ opt: 'p', arg: '1044' }], []],
    [['-p', '1044'], [{ opt: 'p', arg: '1044' }], []],
    [['-dp1044', '-c'], [{ opt: 'd' }, { opt: 'p', arg: '1044' }, { opt: 'c' }], []],
    [['-dp', '-c'], [{ opt: 'd' }, { opt: 'p', arg: '-c' }], []],
    [['-c', '--', '-d', 'x'], [{ opt: 'c' }], ['-d', 'x']],
    [['-c', 'file', '-d'], [{ opt: 'c' }], ['file', '-d']],
    [['-c', '-', '-d'], [{ opt: 'c' }], ['-', '-d']],
    [['-x', '5', '-x5'], [{ opt: 'x', arg: '5' }, { opt: 'x', arg: '5' }], []],
    [[], [], []],
  ];
  for (const [argv, options, operands] of cases) {
    const r = getopt(argv, PROXY);
    assert.ok(r.ok, argv.join(' '));
    assert.deepEqual(r.value, { options, operands }, argv.join(' '));
  }
});

test('getopt: permute mode takes options after operands', () => {
  const r = getopt(['a', '-d', 'b', '-p', '9', '--', '-c'], PROXY, { permute: true });
  assert.ok(r.ok);
  assert.deepEqual(r.value.options, [{ opt: 'd' }, { opt: 'p', arg: '9' }]);
  assert.deepEqual(r.value.operands, ['a', 'b', '-c']);
});

test('getopt: glibc error messages', () => {
  const cases: [string[], string][] = [
    [['-z'], "invalid option -- 'z'"],
    [['-dz'], "invalid option -- 'z'"],
    [['-p'], "option requires an argument -- 'p'"],
    [['-d', '-x'], "option requires an argument -- 'x'"],
    [['--help'], "invalid option -- '-'"],
  ];
  for (const [argv, msg] of cases) {
    const r = getopt(argv, PROXY);
    assert.ok(!r.ok, argv.join(' '));
    assert.equal(r.error, msg);
  }
});

// Property: any sequence of options rendered in any of the legal styles parses back to itself.
test('getopt: property: render/parse round trip', () => {
  const letters = 'abcdefgxyzABCDEFG'.split('');
  const arbSpec = fc.uniqueArray(fc.constantFrom(...letters), { minLength: 1, maxLength: 10 }).chain((ls) =>
    fc.tuple(fc.constant(ls), fc.array(fc.boolean(), { minLength: ls.length, maxLength: ls.length })),
  );
  const arbCase = arbSpec.chain(([ls, args]) => {
    const takes = new Map(ls.map((l, i) => [l, args[i]] as [string, boolean]));
    const optstring = ls.map((l) => l + (takes.get(l) ? ':' : '')).join('');
    type Item = [string, string | undefined, string];
    const arbOpt: fc.Arbitrary<Item> = fc.constantFrom(...ls).chain((l): fc.Arbitrary<Item> =>
      takes.get(l)
        ? fc.tuple(fc.constant(l), fc.string({ maxLength: 6 }), fc.constantFrom('attached', 'separate'))
        : fc.tuple(fc.constant(l), fc.constant(undefined), fc.constantFrom('alone', 'cluster')),
    );
    return fc.record({
      optstring: fc.constant(optstring),
      opts: fc.array(arbOpt, { maxLength: 8 }),
      operands: fc.array(fc.string({ maxLength: 5 }), { maxLength: 4 }),
      dashdash: fc.boolean(),
    });
  });
  fc.assert(
    fc.property(arbCase, ({ optstring, opts, operands, dashdash }) => {
      const argv: string[] = [];
      const expected: ParsedOpt[] = [];
      let clusterOpen = false; // last argv word is a cluster of flags we may extend
      for (const [l, arg, style] of opts) {
        if (arg === undefined) {
          expected.push({ opt: l });
          if (style === 'cluster' && clusterOpen) argv[argv.length - 1] += l;
          else argv.push('-' + l);
          clusterOpen = true;
        } else {
          expected.push({ opt: l, arg });
          if (style === 'attached' && arg.length > 0) {
            if (clusterOpen) argv[argv.length - 1] += l + arg;
            else argv.push('-' + l + arg);
          } else {
            argv.push('-' + l, arg);
          }
          clusterOpen = false;
        }
      }
      const needDashDash = dashdash || (operands.length > 0 && operands[0].startsWith('-') && operands[0].length > 1);
      if (needDashDash) argv.push('--');
      argv.push(...operands);
      const r = getopt(argv, optstring);
      assert.ok(r.ok, `${optstring} ${JSON.stringify(argv)}`);
      assert.deepEqual(r.value.options, expected);
      assert.deepEqual(r.value.operands, operands);
    }),
    { numRuns: 500 },
  );
});

// Property: a letter not in the optstring is always reported by name.
test('getopt: property: unknown letters are reported', () => {
  fc.assert(
    fc.property(fc.constantFrom(...'ijklnouvwZ0123'.split('')), fc.array(fc.constantFrom('-d', '-m', '-p1'), { maxLength: 3 }), (bad, before) => {
      const r = getopt([...before, '-d' + bad], 'dmp:');
      assert.ok(!r.ok);
      assert.equal(r.error, `invalid option -- '${bad}'`);
    }),
  );
});

const table = {
  debug: flag('d', 'run in the foreground, log to stderr'),
  port: option('p', 'port', 'UDP port to listen on', intRange('port', 1, 65535), 1044),
  logLevel: option('x', 'log_level', 'log level 0-5', intRange('log level', 0, 5), 2),
  dscp: option('Q', 'dscp', 'DSCP 0-63, decimal or hex', intDecOrHex('dscp', 0, 63), 0),
  uid: option('U', 'UID', 'unique ID (0xnnnnnnnn)', hex32('UID')),
  hb: option('H', 'hb_server[:port][,...]', 'heartbeat servers', hostPortList('heartbeat server', 1044)),
  ifaces: option('I', 'interface[,...]', 'interfaces', commaList(nonEmpty('interface'), 'interface list')),
  keys: repeated('k', 'keyfile', 'key file', nonEmpty('keyfile')),
};
const spec = { prog: 'uftpproxyd', table };

test('command line: typed values and defaults', () => {
  const r = parseCommandLine(spec, ['-dp', '2000', '-Q0x2e', '-U', '0x1234abcd', '-H', 'a,b:7,[fe80::1]:9,fe80::2', '-I', 'eth0,10.0.0.1', '-k', 'a', '-kb']);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  const o = r.options;
  const debug: boolean = o.debug;
  const port: number = o.port;
  const uid: number | undefined = o.uid;
  assert.equal(debug, true);
  assert.equal(port, 2000);
  assert.equal(o.logLevel, 2);
  assert.equal(o.dscp, 0x2e);
  assert.equal(uid, 0x1234abcd);
  assert.deepEqual(o.hb, [
    { host: 'a', port: 1044 }, { host: 'b', port: 7 }, { host: 'fe80::1', port: 9 }, { host: 'fe80::2', port: 1044 },
  ]);
  assert.deepEqual(o.ifaces, ['eth0', '10.0.0.1']);
  assert.deepEqual(o.keys, ['a', 'b']);
  const d = parseCommandLine(spec, []);
  assert.equal(d.kind, 'ok');
  if (d.kind === 'ok') {
    assert.equal(d.options.debug, false);
    assert.equal(d.options.uid, undefined);
    assert.deepEqual(d.options.keys, []);
  }
});

test('command line: one-line errors naming the option', () => {
  const cases: [string[], string][] = [
    [['-x', '9'], 'uftpproxyd: -x: log level 9 out of range 0-5'],
    [['-x', 'abc'], "uftpproxyd: -x: log level 'abc' is not an integer"],
    [['-p0'], 'uftpproxyd: -p: port 0 out of range 1-65535'],
    [['-Q', '64'], 'uftpproxyd: -Q: dscp 64 out of range 0-63'],
    [['-Q', '0x40'], 'uftpproxyd: -Q: dscp 0x40 out of range 0-63'],
    [['-Q', 'ef'], "uftpproxyd: -Q: dscp 'ef' is not a decimal or hexadecimal (0x..) integer"],
    [['-U', 'zz'], "uftpproxyd: -U: UID 'zz' is not a hexadecimal 32-bit number (0xnnnnnnnn)"],
    [['-U', '0x123456789'], "uftpproxyd: -U: UID '0x123456789' is not a hexadecimal 32-bit number (0xnnnnnnnn)"],
    [['-U', '0'], 'uftpproxyd: -U: UID must not be 0'],
    [['-H', 'a:0'], 'uftpproxyd: -H: heartbeat server port 0 out of range 1-65535'],
    [['-H', 'a,,b'], "uftpproxyd: -H: heartbeat server 'a,,b' has an empty item"],
    [['-I', ''], 'uftpproxyd: -I: interface list must not be empty'],
    [['-z'], "uftpproxyd: invalid option -- 'z'"],
    [['-d', '-p'], "uftpproxyd: option requires an argument -- 'p'"],
    [['-d', 'extra'], "uftpproxyd: unexpected argument 'extra'"],
  ];
  for (const [argv, msg] of cases) {
    const r = parseCommandLine(spec, argv);
    assert.equal(r.kind, 'error', argv.join(' '));
    if (r.kind === 'error') {
      assert.equal(r.message, msg);
      assert.match(r.usage, /^usage: uftpproxyd \[ -d \] \[ -p port \]/);
    }
  }
});

test('command line: --help and usage text from the table', () => {
  const r = parseCommandLine(spec, ['-d', '--help']);
  assert.equal(r.kind, 'help');
  if (r.kind !== 'help') return;
  assert.equal(r.text, usageText(spec));
  assert.match(r.text, /\[ -x log_level \]/);
  assert.match(r.text, /\n {2}-p port +UDP port to listen on \(default: 1044\)\n/);
  assert.match(r.text, /\n {2}-d +run in the foreground, log to stderr\n/);
  for (const line of r.text.split('\n')) assert.ok(line.length <= 100, line);
  assert.equal(optstringOf(table), 'dp:x:Q:U:H:I:k:');
  // after "--" it is an operand, not a request for help
  const o = parseCommandLine({ ...spec, maxOperands: 1, operandsUsage: 'file' }, ['--', '--help']);
  assert.equal(o.kind, 'ok');
});

test('command line: operand bounds', () => {
  const s = { ...spec, minOperands: 1, maxOperands: 2, operandsUsage: 'file...' };
  const none = parseCommandLine(s, ['-d']);
  assert.equal(none.kind, 'error');
  if (none.kind === 'error') assert.equal(none.message, 'uftpproxyd: missing file...');
  const many = parseCommandLine(s, ['a', 'b', 'c']);
  assert.equal(many.kind, 'error');
  if (many.kind === 'error') assert.equal(many.message, "uftpproxyd: too many arguments ('c')");
  const ok = parseCommandLine(s, ['-d', 'a', 'b']);
  assert.equal(ok.kind, 'ok');
  if (ok.kind === 'ok') assert.deepEqual(ok.operands, ['a', 'b']);
});
