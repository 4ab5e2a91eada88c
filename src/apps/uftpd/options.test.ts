import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUftpdArgs } from './options.js';

function ok(argv: string[]) {
  const r = parseUftpdArgs(argv);
  assert.equal(r.kind, 'ok', r.kind === 'error' ? r.message : '');
  return (r as Extract<typeof r, { kind: 'ok' }>).args;
}
function bad(argv: string[], re: RegExp): void {
  const r = parseUftpdArgs(argv);
  assert.equal(r.kind, 'error', `${argv.join(' ')} accepted`);
  assert.match((r as Extract<typeof r, { kind: 'error' }>).message, re);
}

test('defaults are the manual\'s', () => {
  const a = ok([]);
  assert.equal(a.port, 1044);
  assert.equal(a.bufSize, 262144);
  assert.equal(a.logLevel, 2);
  assert.deepEqual(a.destDirs, ['/tmp']);
  assert.equal(a.logFile, '/tmp/uftpd.log');
  assert.equal(a.cacheSize, 1048576);
  assert.equal(a.maxLogCount, 5);
  assert.equal(a.maxLogSize, undefined);
  assert.deepEqual(a.publicMcast, ['230.4.4.1']);
  assert.equal(a.priority, 0);
  assert.equal(a.dscp, 0);
  assert.equal(a.debug, false);
});

test('every option is read, lists split at commas, relative directories made absolute', () => {
  const a = ok(['-d', '-p', '1055', '-B', '65536', '-E', '-Q', '0x2e', '-U', '0x01020304', '-x', '5', '-t', '-D', 'a,/b', '-A', 'c,/d',
    '-L', '/l', '-F', '@LOG', '-q', '-P', '/p', '-S', '/s', '-R', 'proxy/' + '0A:'.repeat(19) + '0B', '-c', '10240', '-k', 'k1,k2',
    '-K', 'rsa:1024,ec:prime256v1', '-m', '-N', '-20', '-s', '/bin/true', '-g', '1024', '-n', '1000', '-H', 'h1,h2:99', '-h', '3',
    '-I', 'eth0,10.0.0.1', '-M', '230.1.1.1,230.2.2.2']);
  assert.equal(a.dscp, 46);
  assert.equal(a.uid, 0x01020304);
  assert.deepEqual(a.destDirs, [`${process.cwd()}/a`, '/b']);
  assert.deepEqual(a.backupDirs, [`${process.cwd()}/c`, '/d']);
  assert.equal(a.responseProxy?.host, 'proxy');
  assert.equal(a.responseProxy?.fingerprint, '0A:'.repeat(19) + '0B');
  assert.deepEqual(a.keyFiles, ['k1', 'k2']);
  assert.equal(a.newKeys.length, 2);
  assert.deepEqual(a.hbServers, [{ host: 'h1', port: 1044 }, { host: 'h2', port: 99 }]);
  assert.deepEqual(a.interfaces, ['eth0', '10.0.0.1']);
  assert.deepEqual(a.publicMcast, ['230.1.1.1', '230.2.2.2']);
  assert.equal(a.maxLogSize, 1024);
  assert.equal(a.maxLogCount, 1000);
});

test('ranges and combinations: one line naming the option', () => {
  bad(['-p', '0'], /-p: /);
  bad(['-B', '65535'], /-B: /);
  bad(['-B', '104857601'], /-B: /);
  bad(['-Q', '64'], /-Q: /);
  bad(['-x', '6'], /-x: /);
  bad(['-c', '10239'], /-c: /);
  bad(['-c', '20971521'], /-c: /);
  bad(['-N', '20'], /-N: /);
  bad(['-g', '0'], /-g: /);
  bad(['-n', '1001'], /-n: /);
  bad(['-U', '0xffffffff'], /-U: /);
  bad(['-M', '10.0.0.1'], /-M: /);
  bad(['-M', '230.1.1.1,ff15::1'], /-M: .*mix/);
  bad(['-K', 'rsa:100'], /-K: /);
  bad(['-R', 'p/zz'], /-R: /);
  bad(['-T', '/t', '-A', '/a'], /-T and -A/);
  bad(['-T', '/t', '-t'], /-T and -t/);
  bad(['-T', '/t', '-D', '/a,/b'], /-T cannot be used with more than one -D/);
  bad(['-A', '/a,/b'], /-A must list as many directories as -D/);
  bad(['-k', 'a,b', '-K', 'rsa:512'], /-k and -K/);
  bad(['-z'], /invalid option|-z/);
});
