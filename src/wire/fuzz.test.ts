/**
 * Fuzz: at least 1,000,000 random and mutated datagrams through decodePacket (and a share through
 * decodeMessageBody). No exception may escape; every failure is a typed WireError with a message; every
 * success re-encodes without throwing to bytes that decode to the same packet.
 * Seeded (FUZZ_SEED, default 1) so a failure is reproducible; FUZZ_COUNT overrides the count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { messages, packetOf } from './arbitraries.test-util.js';
import { decodeMessageBody, decodePacket, encodePacket, type Message } from './packet.js';
import type { Result, WireErrorKind } from './result.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 1_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? 1);
const KINDS: ReadonlySet<WireErrorKind> = new Set(['truncated', 'oversized', 'bad-version', 'bad-type', 'inconsistent', 'bad-value']);

/** mulberry32: small, fast, seeded. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Real datagrams from UFTP 4.10 (REG_CONF, ENCRYPTED/GCM, HB_RESP, FILESEG with EXT_TFMCC_DATA_INFO). */
const REAL = [
  '400400010a3d00010c267d2c006a1800040100000a3d0002',
  '401200020a3d000235c170a200000000000000000000000100000020293e46f691c8200dc6d52d984df14d6a49fceb10bb10a8b8d4cdb617ca031866',
  '400f00000a3d000100000000000000000f020200ca452cc8',
  '400900160a3d0001522434ce006a18000904000100000000020292740000481e68656c6c6f2075667470207769726520636f6465630a',
];

function seeds(): Uint8Array[] {
  const out: Uint8Array[] = REAL.map((h) => new Uint8Array(Buffer.from(h, 'hex')));
  let s = SEED;
  for (const arb of Object.values(messages) as fc.Arbitrary<Message>[]) {
    for (const p of fc.sample(packetOf(arb), { seed: s++, numRuns: 12 })) out.push(encodePacket(p));
  }
  return out;
}

test(`fuzz: ${COUNT} random and mutated datagrams, no exception escapes the decoder`, () => {
  const rnd = prng(SEED);
  const int = (n: number): number => Math.floor(rnd() * n);
  const base = seeds();
  const buf = new Uint8Array(70000);
  const stats = { ok: 0, err: 0, thrown: 0, body: 0 };
  const byKind = new Map<string, number>();
  let firstThrow = '';
  const t0 = performance.now();

  function check(r: Result<unknown>, input: Uint8Array): void {
    if (r.ok) {
      stats.ok++;
      return;
    }
    stats.err++;
    assert.ok(KINDS.has(r.error.kind), `unknown error kind ${r.error.kind}`);
    assert.ok(typeof r.error.message === 'string' && r.error.message.length > 0, `empty message for ${Buffer.from(input).toString('hex')}`);
    byKind.set(r.error.kind, (byKind.get(r.error.kind) ?? 0) + 1);
  }

  for (let i = 0; i < COUNT; i++) {
    let d: Uint8Array;
    const mode = rnd();
    if (mode < 0.1) {
      // pure random bytes, random length (sometimes past the UDP maximum)
      const len = rnd() < 0.001 ? 65508 + int(4000) : int(700);
      d = buf.subarray(0, len);
      for (let j = 0; j < len; j++) d[j] = int(256);
      if (rnd() < 0.7 && len >= 17) {
        d[0] = 0x40; // get past the version check most of the time
        d[1] = 1 + int(21);
        d[16] = d[1];
      }
    } else {
      const src = base[int(base.length)];
      let len = src.length;
      buf.set(src, 0);
      const ops = 1 + int(3);
      for (let k = 0; k < ops; k++) {
        const op = int(8);
        if (op === 0 && len > 0) {
          for (let f = 1 + int(8); f > 0; f--) buf[int(len)] ^= 1 << int(8); // bit flips
        } else if (op === 1) {
          len = int(len + 1); // truncation
        } else if (op === 2) {
          const extra = 1 + int(64); // extension with random bytes
          for (let j = 0; j < extra; j++) buf[len + j] = int(256);
          len += extra;
        } else if (op === 3 && len > 17) {
          buf[17] = rnd() < 0.5 ? int(256) : buf[17] + (int(5) - 2); // header length corruption
        } else if (op === 4 && len > 20) {
          const o = 16 + 2 * int(Math.min(40, (len - 18) >> 1)); // some 16-bit length field
          const v = rnd() < 0.5 ? int(65536) : 0xffff;
          buf[o] = v >> 8;
          buf[o + 1] = v;
        } else if (op === 5 && len > 16) {
          // plant an extension header at a word boundary inside the message header
          const o = 16 + 4 * int(Math.max(1, Math.min(buf[17], (len - 16) >> 2)));
          if (o + 1 < len) {
            buf[o] = int(9);
            buf[o + 1] = int(4);
          }
        } else if (op === 6 && len > 0) {
          buf[int(len)] = rnd() < 0.5 ? 0 : 0xff;
        } else if (op === 7 && len > 16) {
          // delete or duplicate a 4-byte word (shifts every field after it)
          const o = 16 + 4 * int((len - 16) >> 2);
          if (rnd() < 0.5 && o + 4 <= len) {
            buf.copyWithin(o, o + 4, len);
            len -= 4;
          } else {
            buf.copyWithin(o + 4, o, len);
            len += 4;
          }
        }
      }
      d = buf.subarray(0, len);
    }
    try {
      const r = decodePacket(d);
      check(r, d);
      if (r.ok) {
        // a decoded packet must re-encode (no throw) to bytes that decode to the same packet
        const again = decodePacket(encodePacket(r.value));
        assert.ok(again.ok, `re-encoded packet does not decode: ${again.ok ? '' : again.error.message}`);
        assert.deepStrictEqual(again.value, r.value);
      }
      if ((i & 7) === 0 && d.length > 16) {
        stats.body++;
        check(decodeMessageBody(d.subarray(16)), d);
      }
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      stats.thrown++;
      if (!firstThrow) firstThrow = `${String(e)} on ${Buffer.from(d).toString('hex')}`;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `fuzz: ${COUNT} datagrams (+${stats.body} bodies) in ${secs.toFixed(1)} s: ${stats.ok} decoded, ${stats.err} typed errors ` +
      `(${[...byKind].map(([k, v]) => `${k} ${v}`).join(', ')}), ${stats.thrown} exceptions`,
  );
  assert.equal(stats.thrown, 0, firstThrow);
  assert.ok(stats.ok > COUNT / 20, 'too few mutations decode: the fuzzer is not reaching message decoders');
  for (const k of KINDS) assert.ok((byKind.get(k) ?? 0) > 0, `no '${k}' errors produced`);
});
