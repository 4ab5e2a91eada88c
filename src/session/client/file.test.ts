// The reception's write cache: what it hands to the disk layer, and how much memory that costs when blocks come
// scattered over the file (the passes after a lossy first one) while the disk layer's writes are in flight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, layout, Reception, sectionStart, sectionSize, type Layout } from './file.js';

const MiB = 1048576;
const BLOCK = 1300;

/** Block number -> (section, block in section). */
function where(l: Layout, block: number): { section: number; secBlock: number } {
  for (let s = 0; s < l.sections; s++) {
    const start = sectionStart(l, s);
    if (block < start + sectionSize(l, s)) return { section: s, secBlock: block - start };
  }
  throw new Error(`block ${block} is not in the file`);
}

function blockData(l: Layout, b: number): Uint8Array {
  const len = b === l.blocks - 1 ? l.size - b * l.blockSize : l.blockSize;
  return Uint8Array.from({ length: len }, (_, i) => (b * 7 + i) & 0xff);
}

/**
 * Feeds `blocks` in order through a Reception with a pool, its writes held "in flight" (as libuv's pool holds
 * them) and given back to the pool `lag` writes later. Returns the file as written and the bytes of the distinct
 * buffers the writes were views of.
 */
function receive(l: Layout, blocks: number[], lag: number): { file: Uint8Array; written: Set<number>; bufferBytes: number; writes: number } {
  const pool = new BufferPool();
  const rx = new Reception(l, MiB, pool);
  const file = new Uint8Array(l.size);
  const buffers = new Set<ArrayBufferLike>();
  const inFlight: Uint8Array[] = [];
  const out: { offset: number; data: Uint8Array }[] = [];
  let writes = 0;
  const take = (): void => {
    for (const w of out) {
      file.set(w.data, w.offset);
      buffers.add(w.data.buffer);
      inFlight.push(w.data);
      writes++;
    }
    out.length = 0;
    while (inFlight.length > lag) pool.give(inFlight.shift() as Uint8Array);
  };
  for (const b of blocks) {
    const { section, secBlock } = where(l, b);
    assert.equal(rx.add(section, secBlock, blockData(l, b), out), 'new');
    take();
  }
  rx.close(out);
  take();
  let bufferBytes = 0;
  for (const b of buffers) bufferBytes += b.byteLength;
  return { file, written: new Set(blocks), bufferBytes, writes };
}

function assertWritten(l: Layout, r: { file: Uint8Array; written: Set<number> }): void {
  for (let b = 0; b < l.blocks; b++) {
    const at = b * l.blockSize;
    const want = r.written.has(b) ? blockData(l, b) : new Uint8Array(Math.min(l.blockSize, l.size - at));
    assert.deepEqual(r.file.subarray(at, at + want.length), want, `block ${b}`);
  }
}

test('scattered blocks with writes in flight: each short run is copied out, the cache buffer is kept (memory ~ the data, not a cache buffer per run)', () => {
  const l = layout(3000 * BLOCK - 100, BLOCK);
  assert.ok(l);
  // every third block: 1,000 runs of one block; 64 writes in flight at a time
  const blocks = Array.from({ length: 1000 }, (_, i) => i * 3);
  const r = receive(l, blocks, 64);
  assertWritten(l, r);
  assert.equal(r.writes, 1000, 'one write per run');
  const data = 1000 * BLOCK;
  // before: a 1 MiB buffer per run while 64 writes were in flight (65 MiB and more for 1.3 MB of data)
  assert.ok(r.bufferBytes <= MiB + 4 * data, `buffers behind the writes: ${r.bufferBytes} bytes for ${data} bytes of data`);
});

test('a contiguous file: each write is a full cache buffer handed over without a copy; the last, short run is copied', () => {
  const l = layout(5 * MiB + 777, BLOCK);
  assert.ok(l);
  const blocks = Array.from({ length: l.blocks }, (_, i) => i);
  const r = receive(l, blocks, 4);
  assertWritten(l, r);
  const perBuffer = Math.floor(MiB / BLOCK);
  assert.equal(r.writes, Math.ceil(l.blocks / perBuffer), 'one write per cache buffer');
  // at most the 4 in flight + the one being filled + the last short copy's
  assert.ok(r.bufferBytes <= 6 * MiB, `buffers behind the writes: ${r.bufferBytes} bytes`);
});

test('runs of mixed length (a burst lost in the first pass, then single drops): every block lands at its offset', () => {
  const l = layout(4 * MiB, BLOCK);
  assert.ok(l);
  const blocks: number[] = [];
  for (let b = 0; b < l.blocks; b++) if (!(b >= 500 && b < 1400) && b % 17 !== 5) blocks.push(b);
  // then the retransmission pass: the missing ones, in order
  const missing = Array.from({ length: l.blocks }, (_, i) => i).filter((b) => !blocks.includes(b));
  const r = receive(l, [...blocks, ...missing], 16);
  assertWritten(l, r);
});
