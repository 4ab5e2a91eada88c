/**
 * Hostile input to the server machine: arbitrary datagrams and arbitrary requests never throw, and the only
 * paths the server ever opens, renames or removes are the tag table's (or their `~` holders).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemTagFs, type TagFs } from './fileops.js';
import { MAX_WINDOW_BYTES, ServerSession, type ServerContext } from './server-session.js';
import { testServerContext } from './testctx.js';
import { decode, encode } from './wire.js';

const TAGS = 'log|/srv/log|alice\npub|/srv/pub|anonymous\nall|/srv/all|*\n';
const PEER = { address: '10.0.0.9', port: 1 };
const ALLOWED = new Set(['/srv/log', '/srv/pub', '/srv/all', '/srv/log~', '/srv/pub~', '/srv/all~']);

function recordingFs(seen: string[]): TagFs {
  const mem = new MemTagFs();
  mem.files.set('/srv/pub', Buffer.alloc(3000, 7));
  mem.files.set('/srv/log', Buffer.alloc(10, 1));
  return {
    openRead: (p) => (seen.push(p), mem.openRead(p)),
    openWrite: (p, t) => (seen.push(p), mem.openWrite(p, t)),
    push: (p) => (seen.push(p), mem.push(p)),
    remove: (p) => (seen.push(p), mem.remove(p)),
  };
}

const ctx = (fs: TagFs): ServerContext => testServerContext(TAGS, fs);

const tagArb = fc.oneof(
  fc.constantFrom('pub', 'pub~', 'log', 'all~', '../srv/pub', '/srv/pub', 'pub/../log', '..', '.', '', 'pub~~', 'x'.repeat(300)),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const optArb = fc.array(
  fc.tuple(fc.constantFrom('blksize', 'windowsize', 'timeout', 'tsize', 'ktftp', 'kx', 'auth', 'junk'), fc.oneof(fc.constantFrom('0', '1', '8', '65464', '99999999999', '-1', 'abc', ''), fc.string({ maxLength: 50 }))),
  { maxLength: 6 },
);

test('arbitrary requests and follow-up datagrams never throw and touch only tag paths', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('RRQ', 'WRQ', 'PUSH', 'DELETE'),
      tagArb,
      fc.constantFrom('octet', 'netascii', 'mail', 'OCTET', ''),
      optArb,
      fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 8 }),
      (op, tag, mode, options, follow) => {
        if (tag.includes('\0') || mode.includes('\0') || options.some(([, v]) => v.includes('\0'))) return;
        const seen: string[] = [];
        const req = encode({ type: 'REQUEST', op: op as 'RRQ', tag, mode, options });
        const r = ServerSession.fromRequest(ctx(recordingFs(seen)), 0, PEER, req);
        if (r !== null && 'session' in r) {
          let now = 0;
          for (const d of follow) {
            now += 50;
            r.session.handle(now, PEER, Buffer.concat([Buffer.from([0, d.length % 7]), d]));
            r.session.handleTimeout(now);
          }
          r.session.abort();
        }
        for (const p of seen) assert.ok(ALLOWED.has(p), `opened ${p} for tag ${JSON.stringify(tag)}`);
      },
    ),
    { numRuns: 400 },
  );
});

test('arbitrary bytes on the request port never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1200 }), (b) => {
      const seen: string[] = [];
      const r = ServerSession.fromRequest(ctx(recordingFs(seen)), 0, PEER, b);
      if (r !== null && 'session' in r) r.session.abort();
      for (const p of seen) assert.ok(ALLOWED.has(p));
    }),
    { numRuns: 1000 },
  );
});

test('a session never holds more than MAX_WINDOW_BYTES of window, whatever the client asks', () => {
  const seen: string[] = [];
  const req = encode({ type: 'REQUEST', op: 'RRQ', tag: 'pub', mode: 'octet', options: [['blksize', '65464'], ['windowsize', '65535']] });
  const r = ServerSession.fromRequest(ctx(recordingFs(seen)), 0, PEER, req);
  assert.ok(r !== null && 'session' in r);
  const oack = decode(r.session.pollTransmit()!.data);
  assert.ok(oack.ok && oack.value.type === 'OACK');
  const w = Number(oack.value.options.find(([n]) => n === 'windowsize')![1]);
  const b = Number(oack.value.options.find(([n]) => n === 'blksize')![1]);
  assert.equal(b, 65464);
  assert.ok(w >= 1 && w * b <= MAX_WINDOW_BYTES, `${w} x ${b}`);
});
