// Our uftpd machine with its real disk layer (src/files/disk.ts, a scratch directory) on the one simulated network
// (test/sim/network.ts), fed by our uftp server machines: several servers at once with loss on the client's
// link, and an attacker on the wire who rewrites file names in flight. Virtual time: seconds of protocol in
// milliseconds of test.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SimNetwork, seededRandom } from './network.js';
import { ServerMachine, UftpExit, type ServerConfig, type ServerEffect, type ServerEffectResult, type ServerFile } from '../../src/session/server/machine.js';
import { ClientMachine } from '../../src/session/client/machine.js';
import type { ClientEffect, ClientEffectResult } from '../../src/session/client/effects.js';
import { Disk } from '../../src/files/disk.js';
import { FileType } from '../../src/wire/constants.js';
import { decodePacket, encodePacket } from '../../src/wire/packet.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Uint8Array {
  const r = seededRandom(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const enc = new TextEncoder();

interface Src extends ServerFile {
  readonly data: Uint8Array;
}
function file(name: string, data: Uint8Array): Src {
  return { name: enc.encode(name), displayName: name, fileType: FileType.REG, size: data.length, mtime: 1_700_000_000, linkName: new Uint8Array(0), data };
}

/** `servers` of our uftp machines, each with its own group and files, to one of our uftpd machines writing to disk. */
function run(servers: number, loss: number, seed: number, tamper?: (net: SimNetwork) => void): { exits: (number | undefined)[]; dest: string; outside: string; files: Src[][]; drops: Map<string, number> } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'uftpd-sim-'));
  roots.push(root);
  const dest = path.join(root, 'dest');
  const outside = path.join(root, 'outside');
  fs.mkdirSync(dest);
  fs.mkdirSync(outside);
  const net = new SimNetwork({ seed });
  tamper?.(net);
  const exits: (number | undefined)[] = [];
  const files: Src[][] = [];
  for (let i = 0; i < servers; i++) {
    const fs1 = [file(`s${i}/a.bin`, bytes(150_000 + 1000 * i, seed + i)), file(`s${i}/sub/b.bin`, bytes(3000, seed + 100 + i))];
    files.push(fs1);
    const cfg: ServerConfig = {
      uid: 0x0a000100 + i, groupId: 0x10000000 + i, publicAddr: '230.4.4.1', privateAddr: `230.5.5.${10 + i}`, port: 1044, blockSize: 1300, robust: 20,
      grttInit: 0.5, grttMin: 0.01, grttMax: 15, rate: undefined, maxPasses: 65535, quitOnError: false, maxNakPct: 100, maxNakCount: 1,
      sync: false, syncPreview: false, ipv6: false, files: fs1, ipOverhead: 28,
    };
    const m = new ServerMachine(cfg, net.now + i * 37);
    exits.push(undefined);
    net.host(`server${i}`, [`10.0.0.${10 + i}`]).attach<ServerEffect, ServerEffectResult>(m, 40000, {
      onEffect: (e) => {
        if (e.type === 'finished') exits[i] = e.exitCode;
        if (e.type === 'read') return { type: 'read', file: e.file, offset: e.offset, data: fs1[e.file].data.subarray(e.offset, e.offset + e.length) };
        return undefined;
      },
    });
  }
  const client = new ClientMachine({ uid: 0x0a000002, destDirs: [dest], wallMicros: (n) => n * 1000 });
  const disk = new Disk({ destDirs: [dest], tempFiles: true, runScript: () => undefined, log: () => undefined });
  const node = net.host('client', ['10.0.0.2'], { up: { loss }, down: { loss } }).attach<ClientEffect, ClientEffectResult>(client, 1044, {
    onEffect: (e, nd) => {
      if (e.type === 'join') nd.join(e.group);
      else if (e.type === 'leave') nd.leave(e.group);
      else if (e.type !== 'log' && e.type !== 'connect' && e.type !== 'result') {
        const r = disk.execute(e);
        if (r instanceof Promise) throw new Error('synchronous disk expected');
        return r;
      }
      return undefined;
    },
  });
  node.join('230.4.4.1');
  net.run({ until: () => exits.every((x) => x !== undefined) && client.sessionCount === 0, maxTime: 600_000 });
  return { exits, dest, outside, files, drops: new Map([...client.drops].map(([k, v]) => [k, v])) };
}

test('eight of our uftp servers at once to one of our uftpd (real disk layer), 10% loss on its link each way: every file byte-exact', { timeout: 120_000 }, () => {
  const r = run(8, 0.1, 7);
  assert.deepEqual(r.exits, r.exits.map(() => UftpExit.OK), `server exits ${r.exits.join(',')}`);
  for (const fsx of r.files) {
    for (const f of fsx) assert.equal(sha(fs.readFileSync(path.join(r.dest, f.displayName))), sha(f.data), f.displayName);
  }
  assert.deepEqual(fs.readdirSync(r.dest).sort(), Array.from({ length: 8 }, (_, i) => `s${i}`).sort(), 'nothing else in the destination (no temp files)');
});

test('an attacker on the wire rewrites FILEINFO names to "../outside/..." and absolute paths: rejected, nothing written outside', { timeout: 120_000 }, () => {
  let rewritten = 0;
  const r = run(2, 0, 11, (net) => {
    net.onSend = (f) => {
      const p = decodePacket(f.data);
      if (!p.ok || p.value.message.type !== 'FILEINFO') return true;
      const m = p.value.message;
      const name = Buffer.from(m.name).toString();
      if (!name.endsWith('a.bin')) return true;
      rewritten++;
      const evil = name.startsWith('s0') ? `../outside/${name}` : `/etc/${name}`;
      return encodePacket({ header: p.value.header, message: { ...m, name: Buffer.from(evil) } });
    };
  });
  assert.ok(rewritten >= 2, 'the attack happened');
  assert.deepEqual(fs.readdirSync(r.outside), [], 'nothing outside the destination');
  for (const fsx of r.files) {
    assert.equal(fs.existsSync(path.join(r.dest, fsx[0].displayName)), false, `${fsx[0].displayName} (renamed in flight) not received`);
    assert.equal(sha(fs.readFileSync(path.join(r.dest, fsx[1].displayName))), sha(fsx[1].data), `${fsx[1].displayName} (untouched) received`);
  }
});
