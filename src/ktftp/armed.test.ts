/**
 * The server session's armed reply (ServerSession.pollArm; src/core/machine.ts ArmedReply): in a plain lock-step
 * get, what it arms is exactly what it answers. A curl-like client drives the machine directly (no network):
 * whenever pollArm gives an arm, the in-order ACK is the armed `expect` and the session's whole answer to it is the
 * one datagram `reply` (same bytes); a duplicate ACK gets no answer and does not match the new arm; the last block,
 * windowsize above 1 and a sealed transfer arm nothing. And the whole path once: the real ktftpd in a network
 * namespace of its own (src/ktftp/testlab.ts), curl as the client, the engine's own count of what it sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemTagFs, ReadAheadSource, type TagFs } from './fileops.js';
import { ServerSession, type ServerContext } from './server-session.js';
import { testServerContext } from './testctx.js';
import { decode, encode, type Packet } from './wire.js';
import { generateEphemeral } from './crypto.js';
import type { ArmedReply, Transmit } from '../core/machine.js';
import type { KtftpEffect } from './machine.js';
import { KtftpLab } from './testlab.js';
import { loadNativeAddon } from '../net/engine.js';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

function must<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}
const PEER = { address: '10.0.0.9', port: 4000 };

const ctx = (fs: TagFs): ServerContext => testServerContext('pub|/srv/pub|anonymous\n', fs);

/** ktftpd's TagFs: opening and reading are effects the driver carries out (drainAll answers them). */
const EFFECT_FS: TagFs = {};

function request(options: [string, string][]): Buffer {
  return encode({ type: 'REQUEST', op: 'RRQ', tag: 'pub', mode: 'octet', options });
}

/** Empties the session's queues; read effects are answered from `file` (at most `chunk` bytes each). */
function drainAll(s: ServerSession, file: Buffer, chunk: number, now: number, blksize = 512): Transmit[] {
  const out: Transmit[] = [];
  for (let guard = 0; guard < 1000; guard++) {
    let e: KtftpEffect | undefined;
    let any = false;
    while ((e = s.pollEffect()) !== undefined) {
      any = true;
      if (e.kind === 'open' && e.mode === 'read') {
        // the file read through read effects, in reads of `chunk` bytes, two reads or two blocks ahead
        const value = new ReadAheadSource(9, e.path, file.length, () => undefined, Math.max(2 * chunk, 2 * blksize), chunk);
        s.handleEffectResult({ kind: 'open', mode: 'read', result: { ok: true, value } }, now);
      } else if (e.kind === 'read') {
        const bytes = Buffer.from(file.subarray(e.position, e.position + Math.min(e.length, chunk)));
        s.handleEffectResult({ kind: 'read', file: e.file, result: { ok: true, bytes } }, now);
      }
    }
    let t: Transmit | undefined;
    while ((t = s.pollTransmit()) !== undefined) {
      any = true;
      out.push(t);
    }
    if (!any) return out;
  }
  throw new Error('the session never went idle');
}

function packet(b: Uint8Array): Packet {
  return must((() => {
    const d = decode(b);
    return d.ok ? { ok: true as const, value: d.value } : { ok: false as const, error: d.error.message };
  })());
}

/** Runs a plain lock-step get to the end; returns the file the client got and how many answers were armed. */
function lockStepGet(file: Buffer, blksize: number, chunk: number, viaEffects: boolean, dupEvery: number): { got: Buffer; armed: number; blocks: number } {
  const mem = new MemTagFs();
  mem.files.set('/srv/pub', file);
  const fs = viaEffects ? EFFECT_FS : mem;
  const r = ServerSession.fromRequest(ctx(fs), 0, PEER, request(blksize === 512 ? [] : [['blksize', String(blksize)]]));
  assert.ok(r !== null && 'session' in r);
  const s = r.session;
  let now = 0;
  let out = drainAll(s, file, chunk, now, blksize);
  if (blksize !== 512) {
    assert.equal(packet(out[0].data).type, 'OACK');
    assert.equal(s.pollArm(), undefined, 'nothing armed before DATA 1');
    s.handle(now, PEER, encode({ type: 'ACK', block: 0 }));
    out = drainAll(s, file, chunk, now, blksize);
  }
  const parts: Buffer[] = [];
  let armed = 0;
  let blocks = 0;
  for (;;) {
    assert.equal(out.length, 1, `one DATA at a time (block ${blocks + 1})`);
    const d = packet(out[0].data);
    assert.ok(d.type === 'DATA');
    blocks++;
    assert.equal(d.block, blocks & 0xffff);
    parts.push(Buffer.from(d.data));
    const last = d.data.length < blksize;
    const arm: ArmedReply | undefined = s.pollArm();
    const ack = encode({ type: 'ACK', block: d.block });
    if (last) assert.equal(arm, undefined, 'the last block\'s ACK ends the transfer: nothing armed');
    if (arm !== undefined) {
      armed++;
      assert.deepEqual(arm.from, PEER);
      assert.deepEqual(Buffer.from(arm.expect), ack, 'the armed request is the ACK of the block just sent');
      assert.equal(s.pollArm(), arm, 'asking again gives the same arm');
    }
    now += 1;
    s.handle(now, PEER, ack);
    out = drainAll(s, file, chunk, now, blksize);
    if (last) {
      assert.equal(out.length, 0);
      break;
    }
    if (arm !== undefined) {
      assert.equal(out.length, 1, 'the whole answer is one datagram');
      assert.deepEqual(Buffer.from(out[0].data), Buffer.from(arm.reply), 'the answer is the armed reply');
      assert.deepEqual(out[0].to, PEER);
    }
    if (dupEvery > 0 && blocks % dupEvery === 0) {
      // the duplicate of the ACK just handled: no answer (no sorcerer's apprentice), and it is not the new arm
      const next = s.pollArm();
      if (next !== undefined) assert.notDeepEqual(Buffer.from(next.expect), ack);
      s.handle(now, PEER, ack);
      assert.equal(drainAll(s, file, chunk, now, blksize).length, 0, 'a duplicate ACK is not answered');
    }
  }
  return { got: Buffer.concat(parts), armed, blocks };
}

test('plain lock-step get: every arm is exactly the answer to the ACK it expects; duplicates unanswered; exact file', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40000 }),
      fc.constantFrom(512, 1408, 8192),
      fc.integer({ min: 100, max: 20000 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 5 }),
      (size, blksize, chunk, viaEffects, dupEvery) => {
        const file = Buffer.alloc(size);
        for (let i = 0; i < size; i++) file[i] = (i * 7 + (i >> 8)) & 0xff;
        const r = lockStepGet(file, blksize, chunk, viaEffects, dupEvery);
        assert.deepEqual(r.got, file);
        // from memory, every block but the last is armed; through read effects at least some are
        if (!viaEffects) assert.equal(r.armed, r.blocks - 1);
        else if (r.blocks > 4 && chunk >= blksize) assert.ok(r.armed > 0, `${r.armed} of ${r.blocks} armed`);
      },
    ),
    { numRuns: 60 },
  );
});

test('windowsize above 1 and a sealed (ktftp) request arm nothing', () => {
  const mem = new MemTagFs();
  const file = Buffer.alloc(50000, 3);
  mem.files.set('/srv/pub', file);
  const w = ServerSession.fromRequest(ctx(mem), 0, PEER, request([['windowsize', '4']]));
  assert.ok(w !== null && 'session' in w);
  drainAll(w.session, file, 0, 0);
  w.session.handle(0, PEER, encode({ type: 'ACK', block: 0 }));
  assert.equal(drainAll(w.session, file, 0, 0).length, 4, 'a window of 4 went out');
  assert.equal(w.session.pollArm(), undefined);
  const sealed = ServerSession.fromRequest(ctx(mem), 0, PEER, request([['ktftp', '1'], ['kx', generateEphemeral().publicRaw.toString('base64')]]));
  assert.ok(sealed !== null && 'session' in sealed);
  drainAll(sealed.session, file, 0, 0);
  assert.equal(sealed.session.isSecure, true);
  assert.equal(sealed.session.pollArm(), undefined);
});

test('ktftpd with curl (a namespace of our own): the native engine sends the DATA blocks itself (arm on: over 90%), none with UFTP_UDP_ARM=0; the file arrives exact both ways', {
  skip: !loadNativeAddon() ? 'addon not built' : process.getuid?.() !== 0 ? 'needs root (network namespace)' : spawnSync('curl', ['--version']).status !== 0 ? 'no curl' : false,
  timeout: 60000,
}, async () => {
  const lab = await KtftpLab.create({ prefix: 'uka-', users: [] });
  try {
    const file = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < file.length; i++) file[i] = (i * 13 + (i >> 10)) & 0xff;
    writeFileSync(lab.path('f.bin'), file);
    writeFileSync(lab.path('tags'), `f|${lab.path('f.bin')}|anonymous\n`);
    writeFileSync(lab.path('idents'), '');
    const blocks = Math.floor(file.length / 1408) + 1;
    for (const arm of ['1', '0']) {
      const srv = await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '3'], { env: { UFTP_UDP_ARM: arm }, timeoutSec: 50 });
      try {
        const out = lab.path(`got-${arm}`);
        const r = await lab.run(['curl', '-sS', '--tftp-blksize', '1408', '-o', out, `tftp://127.0.0.1:${srv.port}/f`], { timeoutSec: 30 });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(readFileSync(out), file);
        const deadline = Date.now() + 3000;
        const engineLine = (): string | undefined => srv.stderr().split('\n').find((l) => l.includes('native engine: sent'));
        while (engineLine() === undefined && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
        const line = engineLine() ?? '';
        const m = /sent (\d+) datagram\(s\) in (\d+) sendmmsg \+ (\d+) GSO/.exec(line);
        assert.ok(m, `engine line: ${line}`);
        assert.equal(Number(m[1]), blocks + 1, `the OACK and every DATA: ${line}`);
        // with the arm, the loop's own send calls are the OACK's and DATA 1's (unloaded: only those), and those of
        // blocks whose read was not back yet when their ACK came; without, one per datagram
        if (arm === '1') assert.ok(Number(m[2]) + Number(m[3]) <= blocks / 10, line);
        else assert.equal(Number(m[2]) + Number(m[3]), blocks + 1, line);
      } finally {
        await srv.stop();
      }
    }
  } finally {
    await lab.destroy();
  }
});
