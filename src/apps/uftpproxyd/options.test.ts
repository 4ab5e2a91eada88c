import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMulticast, isSsm, parseProxyArgs, type ProxyArgs } from './options.js';

function ok(argv: string[]): ProxyArgs {
  const r = parseProxyArgs(argv);
  assert.equal(r.kind, 'ok', r.kind === 'error' ? r.message : '');
  return (r as { kind: 'ok'; args: ProxyArgs }).args;
}

function bad(argv: string[], re: RegExp): void {
  const r = parseProxyArgs(argv);
  assert.equal(r.kind, 'error', `${argv.join(' ')} should be rejected`);
  if (r.kind === 'error') {
    assert.match(r.message, re);
    assert.ok(r.message.startsWith('uftpproxyd: '), r.message);
    assert.ok(!r.message.includes('\n'), 'one line');
  }
}

test('defaults are those of the manual', () => {
  const a = ok(['-c']);
  assert.equal(a.mode, 'client');
  assert.equal(a.port, 1044);
  assert.equal(a.destPort, 1044);
  assert.equal(a.ttl, 1);
  assert.equal(a.dscp, 0);
  assert.equal(a.priority, 0);
  assert.equal(a.logLevel, 2);
  assert.equal(a.bufSize, 262144);
  assert.equal(a.logFile, '/tmp/uftpproxyd.log');
  assert.equal(a.maxLogSize, undefined);
  assert.equal(a.maxLogCount, 5);
  assert.deepEqual(a.publicMcast, ['230.4.4.1']);
  assert.deepEqual(a.keyFiles, []);
  assert.deepEqual(a.newKeys, []);
  assert.equal(a.debug, false);
});

test('modes: exactly one of -s, -c, -r', () => {
  assert.equal(ok(['-s', '10.0.0.2']).mode, 'server');
  assert.deepEqual(ok(['-s', '10.0.0.2']).server, { kind: 'dest', host: '10.0.0.2' });
  assert.equal(ok(['-r']).mode, 'response');
  bad([], /one of -s, -c or -r/);
  bad(['-c', '-r'], /only one of/);
  bad(['-c', '-s', 'x'], /only one of/);
});

test('-s fp= takes a 20-byte colon fingerprint, normalized to upper case', () => {
  const fp = '69:9e:c2:d5:66:7d:e6:bf:c4:22:39:72:7d:c2:fe:e8:db:2a:cb:39';
  assert.deepEqual(ok(['-s', `fp=${fp}`]).server, { kind: 'fp', fingerprint: fp.toUpperCase() });
  bad(['-s', 'fp=ZZ'], /^uftpproxyd: -s: fingerprint 'ZZ' is not a key fingerprint/);
  bad(['-s', 'fp=69:9E'], /-s: .*not a key fingerprint/);
  bad(['-s', ''], /-s: /);
});

test('ranges: every numeric option names itself when out of range', () => {
  bad(['-c', '-x', '9'], /^uftpproxyd: -x: log level 9 out of range 0-5$/);
  bad(['-c', '-x', '-1'], /-x: /);
  bad(['-c', '-p', '0'], /-p: port 0 out of range 1-65535/);
  bad(['-c', '-p', '65536'], /-p: /);
  bad(['-c', '-q', '0'], /-q: /);
  bad(['-c', '-t', '0'], /-t: ttl 0 out of range 1-255/);
  bad(['-c', '-t', '256'], /-t: /);
  bad(['-c', '-Q', '64'], /-Q: dscp 64 out of range 0-63/);
  bad(['-c', '-Q', '0x40'], /-Q: /);
  bad(['-c', '-N', '20'], /-N: priority 20 out of range -20-19/);
  bad(['-c', '-N', '-21'], /-N: /);
  bad(['-c', '-B', '65535'], /-B: buffer size 65535 out of range/);
  bad(['-c', '-B', '104857601'], /-B: /);
  bad(['-c', '-g', '0'], /-g: /);
  bad(['-c', '-g', '1025'], /-g: /);
  bad(['-c', '-n', '0'], /-n: /);
  bad(['-c', '-n', '1001'], /-n: /);
  bad(['-c', '-h', '0'], /-h: heartbeat interval 0/);
  bad(['-c', '-p', 'abc'], /-p: port 'abc' is not an integer/);
  assert.equal(ok(['-c', '-Q', '0x3f']).dscp, 63);
  assert.equal(ok(['-c', '-Q', '46']).dscp, 46);
  assert.equal(ok(['-c', '-N', '-20']).priority, -20);
  assert.equal(ok(['-c', '-B', '104857600']).bufSize, 104857600);
  assert.equal(ok(['-c', '-g', '1024', '-n', '1000']).maxLogCount, 1000);
});

test('-U: hexadecimal unique ID, not 0 or 0xffffffff', () => {
  assert.equal(ok(['-c', '-U', '0x0A430202']).uid, 0x0a430202);
  assert.equal(ok(['-c', '-U', '1234abcd']).uid, 0x1234abcd);
  bad(['-c', '-U', '0'], /-U: UID must not be 0/);
  bad(['-c', '-U', '0xffffffff'], /-U: .*reserved/);
  bad(['-c', '-U', '0x123456789'], /-U: /);
  bad(['-c', '-U', 'xyz'], /-U: /);
});

test('-H list with default port 1044, -M multicast only and one family', () => {
  const a = ok(['-c', '-H', '10.0.0.1,10.0.0.2:2000,[fe80::1]:3000']);
  assert.deepEqual(a.hbServers, [
    { host: '10.0.0.1', port: 1044 },
    { host: '10.0.0.2', port: 2000 },
    { host: 'fe80::1', port: 3000 },
  ]);
  bad(['-c', '-H', '10.0.0.1:0'], /-H: /);
  assert.deepEqual(ok(['-s', 'x', '-M', '230.4.4.1,239.1.2.3']).publicMcast, ['230.4.4.1', '239.1.2.3']);
  assert.deepEqual(ok(['-s', 'x', '-M', 'ff15::1']).publicMcast, ['ff15::1']);
  bad(['-s', 'x', '-M', '10.0.0.1'], /-M: '10.0.0.1' is not a multicast address/);
  bad(['-s', 'x', '-M', '230.4.4.1,ff15::1'], /-M: .*mix IPv4 and IPv6/);
});

test('-k / -K: several keys of different types; counts must match when both are given', () => {
  const a = ok(['-c', '-K', 'rsa:1024,ec:prime256v1,ec:secp384r1']);
  assert.deepEqual(a.newKeys, [
    { kind: 'RSA', bits: 1024 },
    { kind: 'EC', curve: 'prime256v1' },
    { kind: 'EC', curve: 'secp384r1' },
  ]);
  assert.deepEqual(ok(['-c', '-k', 'a.pem,b.pem']).keyFiles, ['a.pem', 'b.pem']);
  assert.equal(ok(['-c', '-k', 'a.pem,b.pem', '-K', 'rsa:512,ec:prime256v1']).keyFiles.length, 2);
  bad(['-c', '-k', 'a.pem', '-K', 'rsa:512,ec:prime256v1'], /-k and -K must list the same number of keys \(1 and 2\)/);
  bad(['-c', '-K', 'rsa:100'], /-K: Invalid key size/);
  bad(['-c', '-K', 'ec:nope'], /-K: Invalid curve/);
  bad(['-c', '-K', 'dsa:1024'], /-K: Invalid key specification/);
  bad(['-c', '-k', 'a.pem,,b.pem'], /-k: .*empty item/);
  bad(['-r', '-e', 'nope'], /-e: unknown EC curve 'nope'/);
  assert.equal(ok(['-r', '-e', 'secp256r1']).ecdhCurve, 'prime256v1');
  // -r [curve]: the curve as the operand of -r, anywhere on the line
  assert.equal(ok(['-r', 'secp384r1', '-d']).ecdhCurve, 'secp384r1');
  assert.equal(ok(['-d', '-r', 'prime256v1']).ecdhCurve, 'prime256v1');
  bad(['-r', 'nope'], /^uftpproxyd: -r: unknown EC curve 'nope'$/);
  bad(['-r', 'secp384r1', '-e', 'prime256v1'], /different curves/);
});

test('getopt errors: unknown option, missing argument, stray operand', () => {
  bad(['-c', '-z'], /invalid option -- 'z'/);
  bad(['-c', '-p'], /option requires an argument -- 'p'/);
  bad(['-c', 'extra'], /unexpected argument 'extra'/);
});

test('multicast and SSM ranges', () => {
  assert.ok(isMulticast('230.4.4.1'));
  assert.ok(isMulticast('ff02::1'));
  assert.ok(!isMulticast('10.1.1.1'));
  assert.ok(isSsm('232.1.2.3'));
  assert.ok(!isSsm('230.1.2.3'));
  assert.ok(isSsm('ff30::8000:1'));
  assert.ok(isSsm('ff35::1234'));
  assert.ok(!isSsm('ff30:1::1'));
  assert.ok(!isSsm('ff15::1'));
});

// The compiled program: exit 1 and one line naming the option, before anything else happens.
function packageRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}
const bin = path.join(packageRoot(), 'dist', 'src', 'cli', 'uftpproxyd.js');
test('the program exits 1 with the message for bad options (compiled bin)', () => {
  for (const [args, re] of [
    [['-c', '-x', '9'], /^uftpproxyd: -x: log level 9 out of range 0-5\n/],
    [['-s', 'fp=ZZ'], /^uftpproxyd: -s: fingerprint 'ZZ'/],
    [[], /^uftpproxyd: one of -s, -c or -r must be given\n/],
  ] as const) {
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});
