/**
 * A start-up warm-up of uftpd's receive path. A freshly started uftpd runs its first session in V8's interpreter
 * and baseline code and compiles the data path while the server sends at full speed; on a busy host the stalls
 * that makes overflow the socket (docs/benchmarks.md, "uftpd"). Before the daemon listens, this drives two synthetic
 * plain sessions through the real path: each through a loopback socket of the same engine, the receive handler,
 * the event loop and the machine adaptor of receive.ts (the same closure sites as the daemon's sockets, so V8's
 * feedback and optimized code are the ones the first real session uses), a throwaway ClientMachine (same class)
 * whose file effects go nowhere: nothing is written, joined or sent off the host (all sockets are bound to
 * 127.0.0.1, and the machine has no response proxy or heartbeat servers). What a real session does is done here
 * too, so that its first datagrams cost no deoptimization and the data phase no recompilation (counted with
 * `--trace-opt --trace-deopt` after `Listening on port`: 22 optimizations and 3-5 deoptimizations before this
 * form, docs/benchmarks.md): a lossy first pass (STATUS with NAKs from the section timer and the DONE), a second
 * pass of scattered blocks, datagrams from two senders, IDs above 2^31, sections of two sizes and a short last
 * block, batches of 4 and of 48 datagrams (thousands of event loop turns: the loop's per-turn functions get hot),
 * a file's end answered at once and later (a promise, as the disk does with writes in flight). Bounded in time;
 * any failure only ends it early. */
import { DatagramReader, encodePacketInto, type Message } from '../../wire/packet.js';
import { FileType, MessageType, UFTP_VER_NUM } from '../../wire/constants.js';
import { EventLoop } from '../../daemon/loop.js';
import { UdpEndpoint } from '../../net/udp.js';
import { BufferPool, layout, sectionSize, sectionStart, type Layout } from '../../session/client/file.js';
import { ClientMachine, type ClientConfig } from '../../session/client/machine.js';
import type { ClientEffect, ClientEffectResult } from '../../session/client/effects.js';
import { ReceivePath, type ClientLoop, type EffectHandler } from './receive.js';

export interface WarmUpOptions {
  /** The daemon's machine configuration: the warm-up machine takes its log level, cache size and directories. */
  readonly config: ClientConfig;
  /** The daemon's receive path (receive.ts): the warm-up's loops and sockets use its functions. */
  readonly path: ReceivePath;
  /** -B (the loopback socket's buffer). */
  readonly bufferSize: number;
  /** Wall time allowed, milliseconds. */
  readonly budgetMs: number;
  /** Block size of the synthetic sessions: small, so that their files have many sections (a section's NAK bitmap
   *  covers 8 x blocksize blocks) and the section timer's path runs again and again. Default 256. */
  readonly blockSize?: number;
  readonly log: (level: number, text: string) => void;
  /** Called between the two synthetic sessions (uftpd: its start-up garbage collection, see run.ts). */
  readonly betweenRounds?: () => void;
}

export interface WarmUpReport {
  /** FILESEGs sent to the loopback socket. */
  readonly datagrams: number;
  readonly ms: number;
  /** Datagrams the throwaway machine dropped (none when the synthetic sessions are what it expects). */
  readonly dropped: number;
  /** Files the throwaway machine received completely. */
  readonly files: number;
  /** Why it ended before its budget or its file, if it did. */
  readonly stopped?: string;
}

// IDs above 2^31 (as half of all random group IDs are): V8 then learns that the 32-bit fields are not always small
// integers, and a real session's large IDs cost no deoptimization
const SERVER_ID = 0xc0a80001;
const WARM_UID = 0xc0a800fe;
/** Synthetic sessions, blocks of each one's file (two sections of unequal size), FILESEGs per event loop turn. */
const ROUNDS = 2;
const FILE_BLOCKS = 10_401;
const PER_TURN = 4;
const LONG_TURN = 48;
/** Pass 1 leaves out every LOST-th block of the second half of the last two sections (STATUS with NAKs from the
 *  section timer and the DONE, a second pass of scattered blocks); the rest goes in whole cache buffers, as a
 *  lossless transfer does. */
const LOST = 97;
/** About 2.6 ms (quantized, RFC 5401 3.7.4): the section timers fire soon. */
const GRTT = 0x58;
const GRTT_MS = 4;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

export async function warmUp(o: WarmUpOptions): Promise<WarmUpReport> {
  const t0 = performance.now();
  const deadline = t0 + o.budgetMs;
  const blockSize = o.blockSize ?? 256;
  // a small pool: the write-cache buffers of the synthetic files are dropped with it
  const pool = new BufferPool(2);
  let files = 0;
  let sent = 0;
  let dropped = 0;
  let stopped: string | undefined;
  // the synthetic server: two sockets (the engine's path for a sender other than the last one runs again and again,
  // as in a daemon that hears from a server after the warm-up's); the first counts the FILEINFO_ACK
  const reader = new DatagramReader();
  let acked = false;
  const senders: UdpEndpoint[] = [];
  for (let k = 0; k < 2; k++) {
    const tx = await UdpEndpoint.open({
      family: 4, port: 0, address: '127.0.0.1',
      onBatch: (b) => {
        for (let i = 0; i < b.count; i++) if (reader.read(b.data(i)) && reader.func === MessageType.FILEINFO_ACK) acked = true;
      },
    });
    if (!tx.ok) {
      for (const x of senders) await x.close();
      return { datagrams: 0, ms: performance.now() - t0, dropped: 0, files: 0, stopped: `no loopback socket: ${tx.error}` };
    }
    senders.push(tx.value);
  }
  const out = Buffer.alloc(blockSize + 512);
  const data = Buffer.alloc(blockSize, 0x5a);
  try {
    // two sessions, so that what a session does once (its first datagrams, a new sender, a file's last block) is
    // seen again after V8 has started to collect type feedback; sections of two sizes, a last block shorter. Each
    // round has a socket, a machine and a loop of its own, as the daemon then has once more, all driven through the
    // functions of the one receive path (same call targets as the daemon's). The effect handler behind it changes
    // from effect to effect between two functions in the first round and is a promise-returning one in the second:
    // its call site is generic before V8 optimizes the loop, and the daemon's handler (one more) costs nothing.
    const path = o.path;
    const sinkA: EffectHandler = (e) => {
      path.effect = sinkB;
      return sinkEffect(e, pool, () => files++);
    };
    const sinkB: EffectHandler = (e) => {
      path.effect = sinkA;
      return sinkEffect(e, pool, () => files++);
    };
    // a file's end answered later, as the daemon's disk does when writes are still in flight
    const sinkLater: EffectHandler = (e) => {
      if (e.type !== 'finish') return sinkEffect(e, pool, undefined);
      files++;
      return new Promise((r) => setImmediate(() => r({ req: e.req, ok: true, status: 0 })));
    };
    for (let round = 0; round < ROUNDS && stopped === undefined && performance.now() < deadline; round++) {
      const machine = new ClientMachine({ ...o.config, uid: WARM_UID, memberIds: [], encryptedOnly: false, serverList: undefined, responseProxy: undefined, responseProxyFingerprint: undefined, heartbeat: undefined, pool });
      path.client = machine;
      path.effect = round === 0 ? sinkA : sinkLater;
      const r = await oneSession(round, path, senders, o.bufferSize, blockSize, deadline, out, data, () => acked, () => {
        acked = false;
      });
      sent += r.sent;
      stopped = r.stopped;
      for (const n of machine.drops.values()) dropped += n;
      if (round === 0) o.betweenRounds?.();
    }
  } catch (e) {
    stopped = (e as Error).message;
  } finally {
    o.path.client = undefined;
    o.path.effect = () => undefined;
    for (const x of senders) await x.close();
  }
  return { datagrams: sent, ms: performance.now() - t0, dropped, files, ...(stopped !== undefined ? { stopped } : {}) };
}

/** Block `b` (block `i` of section `sec`) of the synthetic file (the last one shorter). */
function fileSeg(l: Layout, sec: number, i: number, b: number, size: number, blockSize: number, data: Buffer): Message {
  const len = b === l.blocks - 1 ? size - b * blockSize : blockSize;
  return { type: 'FILESEG', fileId: 1, section: sec, secBlock: i, extensions: [], data: len === blockSize ? data : data.subarray(0, len) };
}

/** The throwaway machine's effects: a file is "opened" and "finished" at once, its writes dropped, nothing else done. */
function sinkEffect(e: ClientEffect, pool: BufferPool, finished: (() => void) | undefined): ClientEffectResult | undefined {
  if (e.type === 'open') return { req: e.req, ok: true, status: 0 };
  if (e.type === 'finish') {
    finished?.();
    return { req: e.req, ok: true, status: 0 };
  }
  if (e.type === 'write') pool.give(e.data);
  return undefined;
}

/** One synthetic session through a socket and loop of its own (the machine is `path.client`). */
async function oneSession(
  round: number, path: ReceivePath, senders: readonly UdpEndpoint[], bufferSize: number, blockSize: number, deadline: number,
  out: Buffer, data: Buffer, acked: () => boolean, resetAck: () => void,
): Promise<{ sent: number; stopped?: string }> {
  const rx = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', bufferSize, onBatch: path.onBatch });
  if (!rx.ok) return { sent: 0, stopped: `no loopback socket: ${rx.error}` };
  const port = rx.value.address().port;
  const loop: ClientLoop = new EventLoop<ClientEffect, ClientEffectResult | undefined>({
    machine: path.machine,
    sockets: [rx.value],
    clock: path.clock,
    onEffect: path.onEffect,
  });
  path.loop = loop;
  loop.start();
  const groupId = (0x80000000 | ((Date.now() + round) & 0xffffff)) >>> 0;
  let seq = 0;
  let sent = 0;
  const send = (message: Message, from: UdpEndpoint): void => {
    const n = encodePacketInto({ header: { version: UFTP_VER_NUM, func: 0, seq: seq++ & 0xffff, srcId: SERVER_ID, groupId, groupInst: 0, grtt: GRTT, gsize: 1, reserved: 0 }, message }, out);
    from.send(out, 0, n, port, '127.0.0.1');
  };
  const server = senders[0];
  try {
    const size = FILE_BLOCKS * blockSize - Math.floor(blockSize / 3);
    const l = layout(size, blockSize);
    if (l === undefined) return { sent, stopped: 'no layout' };
    resetAck();
    send({
      type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize, timestamp: { sec: Math.floor(Date.now() / 1000), usec: 0 },
      publicMcast: '230.4.4.1', privateMcast: '230.5.5.1', extensions: [], clientIds: [],
    }, server);
    send({ type: 'REG_CONF', extensions: [], clientIds: [WARM_UID] }, server);
    send({
      type: 'FILEINFO', fileId: 1, fileType: FileType.REG, fileSize: size, fileTimestamp: 1_700_000_000,
      timestamp: { sec: 1, usec: 0 }, name: Buffer.from('uftpd-warm-up'), linkName: new Uint8Array(0), extensions: [], clientIds: [WARM_UID],
    }, server);
    while (!acked() && performance.now() < deadline) await turn();
    if (!acked()) return { sent, stopped: 'no FILEINFO_ACK' };
    // pass 1: some blocks left out; turns of PER_TURN datagrams (many turns: the loop's per-turn functions
    // get hot too), one in five from the other sender, in the second round a long one now and then (the daemon's
    // batches are of every size)
    const lost: number[][] = [];
    let t = 0;
    for (let sec = 0, b = 0; sec < l.sections && performance.now() < deadline; sec++) {
      const n = sectionSize(l, sec);
      const miss: number[] = [];
      lost.push(miss);
      for (let i = 0; i < n && performance.now() < deadline; t++) {
        const from = senders[t % 5 === 4 ? 1 : 0];
        const per = round === 1 && t % 16 === 0 ? LONG_TURN : PER_TURN;
        for (let k = 0; k < per && i < n; k++, i++, b++) {
          if (sec >= l.sections - 2 && i >= n >> 1 && b % LOST === LOST - 1) {
            miss.push(i);
            continue;
          }
          send(fileSeg(l, sec, i, b, size, blockSize, data), from);
          sent++;
        }
        await turn();
      }
      // the section timer (a GRTT after a new section) fires and NAKs the section before, as in a real session
      await new Promise((r) => setTimeout(r, GRTT_MS));
    }
    // the end of the pass, as a server ends it (STATUS NAKs the rest), then pass 2: the blocks left out, and DONE
    // again: the file completes
    send({ type: 'DONE', fileId: 1, section: l.sections - 1, extensions: [], clientIds: [] }, server);
    await turn();
    for (let sec = 0; sec < lost.length && performance.now() < deadline; sec++) {
      const start = sectionStart(l, sec);
      for (let j = 0; j < lost[sec].length; t++) {
        for (let k = 0; k < PER_TURN && j < lost[sec].length; k++, j++, sent++) {
          const i = lost[sec][j];
          send(fileSeg(l, sec, i, start + i, size, blockSize, data), senders[t % 5 === 4 ? 1 : 0]);
        }
        await turn();
      }
    }
    send({ type: 'DONE', fileId: 1, section: l.sections - 1, extensions: [], clientIds: [] }, server);
    await turn();
    await turn();
    return { sent };
  } finally {
    loop.stop();
    path.loop = undefined;
    await rx.value.close();
  }
}
