/**
 * ktftpd and ktftp on src/net's UDP engine (issue 9): the same sealed windowed get and plain lock-step get on
 * the native batched engine and on the node:dgram fallback (UFTP_UDP_BACKEND=dgram for ktftpd and ktftp; curl is the
 * plain client), byte-exact;
 * ktftpd names its backend, and on the native engine a window of DATA leaves in fewer send calls than datagrams.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { KtftpLab } from '../../src/ktftp/testlab.js';
import { loadNativeAddon } from '../../src/net/engine.js';

let lab: KtftpLab;
const SIZE = 2 * 1024 * 1024 + 333;
let sum = '';

before(async () => {
  lab = await KtftpLab.create({ prefix: 'uke-', users: ['alice'] });
  mkdirSync(lab.path('srv'));
  const data = randomBytes(SIZE);
  sum = createHash('sha256').update(data).digest('hex');
  writeFileSync(lab.path('srv', 'big.bin'), data);
  writeFileSync(lab.path('tags'), `big|${lab.path('srv')}/big.bin|alice,anonymous\n`);
  writeFileSync(lab.path('idents'), `alice|${lab.ids.alice.fingerprint}\n`);
});

after(async () => {
  await lab?.destroy();
});

const digest = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** `sent N datagram(s) in A sendmmsg + B GSO send call(s)` of each transfer ktftpd logged at -x 3. */
function sendLines(log: string): { sent: number; calls: number }[] {
  return [...log.matchAll(/native engine: sent (\d+) datagram\(s\) in (\d+) sendmmsg \+ (\d+) GSO send call\(s\)/g)].map((m) => ({
    sent: Number(m[1]),
    calls: Number(m[2]) + Number(m[3]),
  }));
}

const native = loadNativeAddon() !== undefined;

describe('KTFTP on the UDP engine, both backends', { timeout: 120_000 }, () => {
  for (const backend of ['native', 'dgram'] as const) {
    test(`${backend}: sealed get at windowsize 16 and plain lock-step get, byte-exact; ktftpd names its engine`, { skip: backend === 'native' && !native ? 'native addon not built' : false }, async () => {
      const env = { UFTP_UDP_BACKEND: backend };
      const srv = await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '3'], { env });
      const out = lab.path(`sealed-${backend}.bin`);
      const g = await lab.ktftp(srv.port, ['-k', lab.ids.alice.keyPath, '-b', '1408', '-w', '16', 'get', '127.0.0.1:big', out], { env });
      assert.equal(g.code, 0, g.stderr);
      assert.equal(digest(out), sum);
      // plain RFC 1350 lock-step (the anonymous tag) with curl as the client
      const plainOut = lab.path(`plain-${backend}.bin`);
      const p = await lab.run(['curl', '-sS', '--tftp-blksize', '1408', '-o', plainOut, `tftp://127.0.0.1:${srv.port}/big`], { timeoutSec: 60 });
      assert.equal(p.code, 0, p.stderr);
      assert.equal(digest(plainOut), sum);
      await srv.stop();
      const log = srv.stderr();
      if (backend === 'dgram') {
        assert.match(log, /UDP engine: node:dgram \(UFTP_UDP_BACKEND=dgram\)/);
        assert.match(log, /dgram engine: sent \d+ datagram\(s\) in one send each/);
        assert.doesNotMatch(log, /native engine:/);
        return;
      }
      assert.match(log, /UDP engine: native \(recvmmsg \+ UDP GRO, sendmmsg \+ UDP GSO\)/);
      const lines = sendLines(log);
      assert.equal(lines.length, 2, log);
      const blocks = Math.floor(SIZE / 1408) + 1;
      // the windowed get: every block at least once, and windows of 16 leave in far fewer calls than datagrams
      const windowed = lines.find((l) => l.sent >= blocks && l.calls * 4 <= l.sent);
      assert.ok(windowed, `no batched transfer in ${JSON.stringify(lines)}`);
      // lock-step: one DATA per ACK, so about one call per datagram
      const lockstep = lines.find((l) => l !== windowed);
      assert.ok(lockstep && lockstep.sent >= blocks, JSON.stringify(lines));
    });
  }
});
