/**
 * A start-up warm-up of uftpd's receive path. A freshly started uftpd runs its first session in V8's interpreter
 * and baseline code and compiles the data path while the server sends at full speed; on a busy host the stalls
 * that makes overflow the socket (docs/benchmarks.md, "uftpd"). Before the daemon listens, this drives a synthetic
 * plain session through the real path: a loopback socket of the same engine, the receive handler, the event loop
 * and the machine adaptor of receive.ts (the same closure sites as the daemon's sockets, so V8's feedback and
 * optimized code are the ones the first real session uses), a throwaway ClientMachine (same class) whose file
 * effects go nowhere: nothing is written, joined or sent off the host (both sockets are bound to 127.0.0.1, and the
 * machine has no response proxy or heartbeat servers). Bounded in time; any failure only ends it early.
 */
import { DatagramReader, encodePacketInto, type Message } from '../../wire/packet.js';
import { FileType, MessageType, UFTP_VER_NUM } from '../../wire/constants.js';
import { EventLoop } from '../../daemon/loop.js';
import { UdpEndpoint } from '../../net/udp.js';
import { BufferPool, layout, sectionSize } from '../../session/client/file.js';
import { ClientMachine, type ClientConfig } from '../../session/client/machine.js';
import type { ClientEffect, ClientEffectResult } from '../../session/client/effects.js';
import { batchClock, batchReceiver, loopMachine, receiveContext } from './receive.js';

export interface WarmUpOptions {
  /** The daemon's machine configuration: the warm-up machine takes its log level, cache size and directories. */
  readonly config: ClientConfig;
  /** -B (the loopback socket's buffer). */
  readonly bufferSize: number;
  /** Wall time allowed, milliseconds. */
  readonly budgetMs: number;
  /** Block size of the synthetic session (uftp's default 1300). */
  readonly blockSize?: number;
  readonly log: (level: number, text: string) => void;
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
const FILE_BLOCKS = 12_001;
const PER_TURN = 48;
/** About 10 ms (quantized, RFC 5401 3.7.4). */
const GRTT = 0x6a;
const GRTT_MS = 12;

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

export async function warmUp(o: WarmUpOptions): Promise<WarmUpReport> {
  const t0 = performance.now();
  const deadline = t0 + o.budgetMs;
  const blockSize = o.blockSize ?? 1300;
  // a small pool: the write-cache buffers of the synthetic file are dropped with it
  const pool = new BufferPool(2);
  const machine = new ClientMachine({
    ...o.config,
    uid: WARM_UID,
    memberIds: [],
    encryptedOnly: false,
    serverList: undefined,
    responseProxy: undefined,
    responseProxyFingerprint: undefined,
    heartbeat: undefined,
    pool,
  });
  const ctx = receiveContext();
  let files = 0;
  const rx = await UdpEndpoint.open({ family: 4, port: 0, address: '127.0.0.1', bufferSize: o.bufferSize, onBatch: batchReceiver(ctx) });
  if (!rx.ok) return { datagrams: 0, ms: performance.now() - t0, dropped: 0, files: 0, stopped: `no loopback socket: ${rx.error}` };
  // the synthetic server: counts the FILEINFO_ACK that says the file is open
  const reader = new DatagramReader();
  let acked = false;
  const tx = await UdpEndpoint.open({
    family: 4, port: 0, address: '127.0.0.1',
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) if (reader.read(b.data(i)) && reader.func === MessageType.FILEINFO_ACK) acked = true;
    },
  });
  if (!tx.ok) {
    await rx.value.close();
    return { datagrams: 0, ms: performance.now() - t0, dropped: 0, files: 0, stopped: `no loopback socket: ${tx.error}` };
  }
  const port = rx.value.address().port;
  const loop: EventLoop<ClientEffect, ClientEffectResult | undefined> = new EventLoop<ClientEffect, ClientEffectResult | undefined>({
    machine: loopMachine(machine),
    sockets: [rx.value],
    clock: batchClock(ctx),
    // the file is "opened" and its writes dropped at once; nothing else is carried out
    onEffect: (e) => {
      if (e.type === 'open') return { req: e.req, ok: true, status: 0 };
      if (e.type === 'finish') {
        files++;
        return { req: e.req, ok: true, status: 0 };
      }
      if (e.type === 'write') pool.give(e.data);
      return undefined;
    },
  });
  ctx.loop = loop;
  loop.start();

  const out = Buffer.alloc(blockSize + 512);
  const data = Buffer.alloc(blockSize, 0x5a);
  let groupId = 0;
  let seq = 0;
  const send = (message: Message): void => {
    const n = encodePacketInto({ header: { version: UFTP_VER_NUM, func: 0, seq: seq++ & 0xffff, srcId: SERVER_ID, groupId, groupInst: 0, grtt: GRTT, gsize: 1, reserved: 0 }, message }, out);
    tx.value.send(out, 0, n, port, '127.0.0.1');
  };
  let sent = 0;
  let stopped: string | undefined;
  try {
    // two sessions, so that what a session does once (its first datagrams, a new sender, a file's last block) is
    // seen again after V8 has started to collect type feedback; sections of two sizes, a last block shorter
    for (let round = 0; round < ROUNDS && stopped === undefined && performance.now() < deadline; round++) {
      groupId = (0x80000000 | ((Date.now() + round) & 0xffffff)) >>> 0;
      const size = FILE_BLOCKS * blockSize - Math.floor(blockSize / 3);
      const l = layout(size, blockSize);
      if (l === undefined) break;
      acked = false;
      send({
        type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize, timestamp: { sec: Math.floor(Date.now() / 1000), usec: 0 },
        publicMcast: '230.4.4.1', privateMcast: '230.5.5.1', extensions: [], clientIds: [],
      });
      send({ type: 'REG_CONF', extensions: [], clientIds: [WARM_UID] });
      send({
        type: 'FILEINFO', fileId: 1, fileType: FileType.REG, fileSize: size, fileTimestamp: 1_700_000_000,
        timestamp: { sec: 1, usec: 0 }, name: Buffer.from('uftpd-warm-up'), linkName: new Uint8Array(0), extensions: [], clientIds: [WARM_UID],
      });
      while (!acked && performance.now() < deadline) await turn();
      if (!acked) {
        stopped = 'no FILEINFO_ACK';
        break;
      }
      for (let sec = 0, b = 0; sec < l.sections && performance.now() < deadline; sec++) {
        const n = sectionSize(l, sec);
        for (let i = 0; i < n && performance.now() < deadline; ) {
          for (let k = 0; k < PER_TURN && i < n; k++, i++, b++, sent++) {
            const len = b === l.blocks - 1 ? size - b * blockSize : blockSize;
            send({ type: 'FILESEG', fileId: 1, section: sec, secBlock: i, extensions: [], data: len === blockSize ? data : data.subarray(0, len) });
          }
          await turn();
        }
        // the section timer (a GRTT after a new section) fires, as in a real session
        await new Promise((r) => setTimeout(r, GRTT_MS));
      }
      // the end of the pass, as a server ends it: the file completes (or STATUS NAKs what is missing)
      send({ type: 'DONE', fileId: 1, section: l.sections - 1, extensions: [], clientIds: [] });
      await turn();
      await turn();
    }
  } catch (e) {
    stopped = (e as Error).message;
  } finally {
    loop.stop();
    ctx.loop = undefined;
    await tx.value.close();
    await rx.value.close();
  }
  let dropped = 0;
  for (const n of machine.drops.values()) dropped += n;
  return { datagrams: sent, ms: performance.now() - t0, dropped, files, ...(stopped !== undefined ? { stopped } : {}) };
}
