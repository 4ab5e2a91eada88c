/**
 * Our server machine (src/session/server) against our client machine (src/session/client, uftpd's protocol) on the
 * one simulated network (test/sim/network.ts): many receivers, seeded independent loss on every receiver's link in
 * both directions, files compared byte for byte in each receiver's in-memory disk. Records the CPU time and the
 * memory per receiver of the 1,000-receiver run (both machines simulated in this process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SimNetwork, seededRandom } from './network.js';
import { ServerMachine, UftpExit, type ServerConfig, type ServerEffect, type ServerEffectResult, type ServerFile } from '../../src/session/server/machine.js';
import { ClientMachine } from '../../src/session/client/machine.js';
import type { ClientEffect, ClientEffectResult } from '../../src/session/client/effects.js';
import { CompStat, FileType } from '../../src/wire/constants.js';

const enc = new TextEncoder();

interface SimFile extends ServerFile {
  readonly data: Uint8Array;
}

function file(name: string, data: Uint8Array): SimFile {
  return { name: enc.encode(name), displayName: name, fileType: FileType.REG, size: data.length, mtime: 1_700_000_000, linkName: new Uint8Array(0), data };
}

function bytes(n: number, seed: number): Uint8Array {
  const r = seededRandom(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Disk {
  /** open req -> [name, buffer] */
  readonly open: Map<number, { name: string; data: Uint8Array }>;
  readonly done: Map<string, Uint8Array>;
  ended: boolean;
}

function session(n: number, files: readonly SimFile[], loss: number, seed: number, over: Partial<ServerConfig> = {}, rateBps?: number): {
  exit: number | undefined; disks: Disk[]; cpuMs: number; heapPerReceiver: number; simMs: number; passes: number; datagrams: number;
  /** The slowest receiver's transfer time from the server's STATS lines. */
  dataMs: number;
} {
  const net = new SimNetwork({ seed });
  const cfg: ServerConfig = {
    uid: 0x0a000001, groupId: 0x0badcafe, publicAddr: '230.4.4.1', privateAddr: '230.5.5.7', port: 1044, blockSize: 1300, robust: 20,
    grttInit: 0.5, grttMin: 0.01, grttMax: 15, rate: undefined, maxPasses: 65535, quitOnError: false, maxNakPct: 100, maxNakCount: 1,
    sync: false, syncPreview: false, ipv6: false, files, ipOverhead: 28, ...over,
  };
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  const server = new ServerMachine(cfg, net.now);
  let exit: number | undefined;
  let statsMs = 0;
  const sh = net.host('server', ['10.0.0.1']);
  sh.attach<ServerEffect, ServerEffectResult>(server, 40000, {
    onEffect: (e) => {
      if (e.type === 'finished') exit = e.exitCode;
      if (e.type === 'status' && e.line.startsWith('STATS;')) statsMs = Math.max(statsMs, Number(e.line.split(';')[6]) * 1000);
      if (e.type === 'read') return { type: 'read', file: e.file, offset: e.offset, data: files[e.file].data.subarray(e.offset, e.offset + e.length) };
      return undefined;
    },
  });
  const disks: Disk[] = [];
  for (let i = 0; i < n; i++) {
    const addr = `10.${1 + (i >> 8)}.${i & 255}.2`;
    const h = net.host(`c${i}`, [addr], { up: { loss }, down: { loss, rateBps, queueMs: 50 } });
    const disk: Disk = { open: new Map(), done: new Map(), ended: false };
    disks.push(disk);
    const m = new ClientMachine({ uid: 0x0b000000 + i, destDirs: ['/dest'], wallMicros: (now) => now * 1000 });
    const node = h.attach<ClientEffect, ClientEffectResult>(m, 1044, {
      onEffect: (e, nd) => {
        switch (e.type) {
          case 'join':
            nd.join(e.group);
            return undefined;
          case 'leave':
            nd.leave(e.group);
            return undefined;
          case 'open':
            disk.open.set(e.req, { name: e.placed.parts.join('/'), data: new Uint8Array(e.size) });
            return { req: e.req, ok: true, status: CompStat.NORMAL };
          case 'write':
            disk.open.get(e.req)?.data.set(e.data, e.offset);
            return undefined;
          case 'finish': {
            const f = disk.open.get(e.req);
            if (f) disk.done.set(f.name, f.data);
            disk.open.delete(e.req);
            return { req: e.req, ok: true, status: CompStat.NORMAL };
          }
          case 'discard':
            disk.open.delete(e.req);
            return undefined;
          case 'mkdir': case 'symlink': case 'delete': case 'freespace':
            return { req: e.req, ok: true, status: CompStat.NORMAL };
          case 'session-end':
            disk.ended = true;
            return undefined;
          default:
            return undefined;
        }
      },
    });
    node.join('230.4.4.1');
  }
  net.run({ until: () => exit !== undefined && disks.every((d) => d.ended), maxTime: 1_200_000 });
  const cpu = process.cpuUsage(cpu0);
  const heap = process.memoryUsage().heapUsed - heap0;
  return { exit, disks, cpuMs: (cpu.user + cpu.system) / 1000, heapPerReceiver: heap / Math.max(1, n), simMs: net.now, passes: server.passes, datagrams: net.stats.sent, dataMs: statsMs };
}

test('our uftp machine -> 20 of our uftpd machines, 10% loss each way: byte-exact', { timeout: 60_000 }, () => {
  const files = [file('empty', new Uint8Array(0)), file('dir/b.bin', bytes(5_000, 2)), file('a.bin', bytes(400_000, 1))];
  const r = session(20, files, 0.1, 3);
  assert.equal(r.exit, UftpExit.OK);
  for (const [i, d] of r.disks.entries()) {
    for (const f of files) assert.equal(sha(d.done.get(f.displayName) ?? new Uint8Array([1])), sha(f.data), `receiver ${i}: ${f.displayName}`);
  }
  assert.ok(r.passes >= 2, `repair passes on the last file: ${r.passes}`);
});

test('TFMCC: 5 receivers behind 40 Mbit/s links (50 ms of queue): the rate settles near the bottleneck, byte-exact', { timeout: 120_000 }, () => {
  const data = bytes(3_000_000, 4);
  const bottleneck = 40e6 / 8;
  const r = session(5, [file('cc.bin', data)], 0, 21, {
    tfmcc: { min: 1300, init: 32 * 1024, max: Number.MAX_SAFE_INTEGER, blockSize: 1300 },
  }, 40e6);
  assert.equal(r.exit, UftpExit.OK);
  for (const d of r.disks) assert.equal(sha(d.done.get('cc.bin') ?? new Uint8Array([1])), sha(data));
  const goodput = data.length / (r.dataMs / 1000);
  process.stdout.write(`TFMCC behind 40 Mbit/s: ${(goodput / 1e6).toFixed(2)} MB/s goodput (${((100 * goodput) / bottleneck).toFixed(0)}% of the link), ${r.passes} passes\n`);
  assert.ok(goodput > 0.5 * bottleneck, `goodput ${(goodput / 1e6).toFixed(2)} MB/s, link ${(bottleneck / 1e6).toFixed(2)} MB/s`);
  assert.ok(r.passes <= 4, `${r.passes} passes: the rate did not overrun the link for long`);
});

test('1,000 receivers with 5% independent loss on each link (both ways): every receiver byte-exact; CPU and memory recorded', { timeout: 300_000 }, () => {
  const data = bytes(256 * 1024, 9);
  const r = session(1000, [file('image.bin', data)], 0.05, 1000);
  assert.equal(r.exit, UftpExit.OK);
  const want = sha(data);
  let ok = 0;
  for (const d of r.disks) if (sha(d.done.get('image.bin') ?? new Uint8Array([1])) === want) ok++;
  assert.equal(ok, 1000, `${ok} of 1000 receivers byte-exact`);
  process.stdout.write(`1000 receivers, 5% loss, 256 KiB: ${r.passes} passes, ${(r.simMs / 1000).toFixed(1)} s simulated, ${r.datagrams} datagrams, ` +
    `CPU ${(r.cpuMs / 1000).toFixed(2)} s (${(r.cpuMs / 1000).toFixed(2)} ms per receiver), heap ${(r.heapPerReceiver / 1024).toFixed(1)} KiB per receiver (both machines and the network)\n`);
});

