/**
 * uftpd's data path without the network (a benchmark, not a test): the client machine (src/session/client) takes
 * the FILESEG datagrams of one file as the driver gives them (views of one receive ring, `handle` then a drain of
 * effects), and the cost per datagram is printed. Write effects hand their buffers back to the pool at once (no
 * disk): what is measured is the machine and the views, the part of the CPU per datagram that is ours.
 *
 *   npx tsc -p . && node dist/bench/uftpd-machine.js [--size-mb 64] [--block 1400] [--runs 5]
 */
import { performance } from 'node:perf_hooks';
import type { Endpoint } from '../src/core/machine.js';
import { BufferPool } from '../src/session/client/file.js';
import { ClientMachine } from '../src/session/client/machine.js';
import { FileType, UFTP_VER_NUM } from '../src/wire/constants.js';
import type { UftpHeader } from '../src/wire/header.js';
import { encodePacket, type Message } from '../src/wire/packet.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const sizeMb = arg('size-mb', 64);
const block = arg('block', 1400);
const runs = arg('runs', 5);
const SERVER: Endpoint = { address: '10.9.9.1', port: 40000 };
const SERVER_ID = 0x0a090901;
const CLIENT_ID = 0x0a090902;

function once(run: number): { perDatagramUs: number; datagrams: number; writes: number } {
  const pool = new BufferPool();
  const m = new ClientMachine({ uid: CLIENT_ID, destDirs: ['/nonexistent'], wallMicros: (n) => n * 1000, pool });
  const groupId = 0x11220000 + run;
  let seq = 0;
  let now = 0;
  let writes = 0;
  const header = (): UftpHeader => ({ version: UFTP_VER_NUM, func: 0, seq: seq++ & 0xffff, srcId: SERVER_ID, groupId, groupInst: 0, grtt: 0x6a, gsize: 1, reserved: 0 });
  const pump = (): void => {
    for (let e = m.pollEffect(); e !== undefined; e = m.pollEffect()) {
      if (e.type === 'open') m.handleEffectResult({ req: e.req, ok: true, status: 0 });
      else if (e.type === 'write') {
        writes++;
        pool.give(e.data);
      }
    }
    while (m.pollTransmit(now) !== undefined);
  };
  const deliver = (msg: Message): void => {
    m.handle(now++, SERVER, encodePacket({ header: header(), message: msg }));
    pump();
  };
  deliver({
    type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: block, timestamp: { sec: 1, usec: 0 }, publicMcast: '230.4.4.1',
    privateMcast: '230.5.5.1', extensions: [], clientIds: [],
  });
  deliver({ type: 'REG_CONF', extensions: [], clientIds: [CLIENT_ID] });
  const size = sizeMb * 1048576;
  deliver({
    type: 'FILEINFO', fileId: 1, fileType: FileType.REG, fileSize: size, fileTimestamp: 1_700_000_000, timestamp: { sec: 1, usec: 0 },
    name: Buffer.from('big.bin'), linkName: new Uint8Array(0), extensions: [], clientIds: [CLIENT_ID],
  });
  // the datagrams, encoded before timing, back to back in one "ring" (as the engine hands them: views)
  const perSection = block * 8;
  const blocks = Math.ceil(size / block);
  const sections = Math.ceil(blocks / perSection);
  const small = Math.floor(blocks / sections);
  const big = blocks % sections;
  const payload = Buffer.alloc(block, 0x5a);
  const dgrams: Buffer[] = [];
  for (let s = 0, b = 0; s < sections; s++) {
    const n = s < big ? small + 1 : small;
    for (let i = 0; i < n; i++, b++) {
      const len = b === blocks - 1 ? size - b * block : block;
      dgrams.push(Buffer.from(encodePacket({ header: header(), message: { type: 'FILESEG', fileId: 1, section: s, secBlock: i, extensions: [], data: payload.subarray(0, len) } })));
    }
  }
  const ring = Buffer.concat(dgrams);
  const offs: number[] = [];
  let o = 0;
  for (const d of dgrams) {
    offs.push(o);
    o += d.length;
  }
  const lens = dgrams.map((d) => d.length);
  dgrams.length = 0;
  const t0 = performance.now();
  // batches of 64, a drain after each (the loop coalesces the drain of one batch)
  for (let i = 0; i < offs.length; i += 64) {
    const end = Math.min(offs.length, i + 64);
    for (let j = i; j < end; j++) m.handle(performance.now(), SERVER, ring.subarray(offs[j], offs[j] + lens[j]));
    pump();
  }
  const t1 = performance.now();
  return { perDatagramUs: ((t1 - t0) * 1000) / offs.length, datagrams: offs.length, writes };
}

const res: number[] = [];
for (let r = 0; r < runs; r++) {
  const x = once(r);
  res.push(x.perDatagramUs);
  process.stderr.write(`run ${r + 1}: ${x.datagrams} datagrams, ${x.writes} writes, ${x.perDatagramUs.toFixed(3)} us per datagram\n`);
}
res.sort((a, b) => a - b);
process.stdout.write(`median ${res[Math.floor(res.length / 2)].toFixed(3)} us per datagram (${runs} runs, ${sizeMb} MiB, block ${block})\n`);
