/**
 * A fresh proxy's first session rehearsed at start-up: its key-exchange calls made once, a plain session's
 * opening run through a throwaway machine, and its forwarding data path run hot on loopback.
 *
 * The server measures its GRTT for the whole announce phase on one round trip, the first REGISTER's, through both
 * proxies (docs/protocol-notes.md, "uftpproxyd at full speed"), and that is the round trip a fresh proxy process
 * serves cold. Node compiles its own crypto code (HMAC, for the key exchange's PRF) and OpenSSL sets up each
 * digest and signature on first use. Measured in the Figure 1 lab (docs/benchmarks.md, "Figure 1 at -R -1: a
 * fresh proxy's first round trip"): an encrypted session's first ANNOUNCE took 2.8-4.2 ms through our client
 * proxy with only the RSA calls primed (1.3 ms of it in the first premaster-to-keys derivation in one CPU
 * profile), 2.0-3.5 ms with both of these (two series, 13 sessions: within the spread between series); in-process
 * the derivation, signature and check take ~0.4 ms primed against ~1.3 ms. These two touch no socket and none of
 * the daemon's state. The third, warmDataPath, runs the forwarding data path hot through loopback sockets of its
 * own (see there).
 */
import { randomBytes } from 'node:crypto';
import { drain, type Endpoint, type Random } from '../../core/machine.js';
import type { LoadedKey } from '../../crypto/keyfile.js';
import { deriveClientSession } from '../../crypto/handshake.js';
import { blobToPublicKey } from '../../crypto/pubkey.js';
import { rsaDecryptPremaster, rsaEncryptPremaster, signData, verifySignature } from '../../crypto/sign.js';
import { HASH_SUITES, KEY_SUITES } from '../../crypto/suites.js';
import { EventLoop } from '../../daemon/loop.js';
import { UdpEndpoint, type RecvBatch, type TurnHooks } from '../../net/udp.js';
import { ClientProxy } from '../../session/proxy/client.js';
import type { ProxyBase, ProxyEffect, ProxySession } from '../../session/proxy/common.js';
import { ServerProxy } from '../../session/proxy/server.js';
import { UFTP_VER_NUM } from '../../wire/constants.js';
import { encodePacket, type Message } from '../../wire/packet.js';
import { quantizeGrtt } from '../../wire/quantize.js';
import { batchForwarder, newForwardState } from './forward.js';

/**
 * The key exchange's first calls, with each of our keys: a key imported from its blob, a premaster encrypted to it
 * and decrypted (RSA), a signature made and checked for every session hash (sha1 is uftp's default, sha256 common;
 * OpenSSL sets up each digest on first use), and a premaster-to-keys derivation per session hash (Node loads its
 * HMAC code on the first one). The results are not used. Returns how many of these operations succeeded
 * (a round trip counts when it gave back what went in).
 */
/** The hashes a session can use (uftp -h: sha1, sha256, sha384, sha512; MD5 is in the table for other uses). */
export const SESSION_HASHES = HASH_SUITES.filter((h) => h.name !== 'md5');

export function primeKeyExchange(keys: readonly LoadedKey[]): number {
  let n = 0;
  const data = randomBytes(64);
  const suite = KEY_SUITES.find((s) => s.name === 'aes256-gcm') ?? KEY_SUITES[KEY_SUITES.length - 1];
  for (const h of SESSION_HASHES) {
    try {
      deriveClientSession(h, suite, randomBytes(48), randomBytes(32), randomBytes(32));
      n++;
    } catch {
      // a digest this OpenSSL lacks: a real session with it would fail the same way, later
    }
  }
  for (const k of keys) {
    const pub = blobToPublicKey(k.blob);
    if (!pub.ok) continue;
    if (k.kind === 'RSA') {
      const premaster = randomBytes(48);
      const back = rsaDecryptPremaster(k.privateKey, rsaEncryptPremaster(pub.value, premaster));
      if (back.ok && back.value.equals(premaster)) n++;
    }
    for (const h of SESSION_HASHES) {
      try {
        if (verifySignature(pub.value, h, data, signData(k.privateKey, h, data))) n++;
      } catch {
        // as above
      }
    }
  }
  return n;
}

// above 2^31, as half of all group IDs are: V8 stores the sessions' group ID as a double then, and a warm-up with a
// small one leaves the daemon's first session objects with another map (their code thrown away, "wrong map")
const WARM_GROUP_ID = 0xfff00001;
const WARM_SERVER: Endpoint = { address: '192.0.2.1', port: 1044 }; // RFC 5737 documentation addresses
const WARM_CLIENT: Endpoint = { address: '192.0.2.2', port: 1044 };
const WARM_DOWNSTREAM: Endpoint = { address: '192.0.2.3', port: 1044 };

function packet(message: Message, srcId: number, grtt: number): Uint8Array {
  return encodePacket({
    header: { version: UFTP_VER_NUM, func: 0, seq: 0, srcId, groupId: WARM_GROUP_ID, groupInst: 0, grtt: quantizeGrtt(grtt), gsize: 0, reserved: 0 },
    message,
  });
}

/**
 * One plain session's opening through a throwaway server or client proxy, so that V8 has run the decode, session
 * set-up, forwarding and encode paths (their inline caches and feedback) before the first real ANNOUNCE: the
 * ANNOUNCE forwarded, a client's REGISTER taken and, when the hold ends, sent upstream. Everything the machine
 * produces is dropped. Returns the number of datagrams it produced (2 when the rehearsal ran through).
 */
export function rehearseSession(
  mode: 'server' | 'client',
  uid: number,
  random: Random,
  now: number,
  make?: (downstream: Endpoint) => ProxyBase<ProxySession>,
): number {
  let produced = 0;
  const sink = {
    transmit: (): boolean => {
      produced++;
      return true;
    },
    effect: (): void => {},
  };
  // the client proxy's downstream is its -p port (1044 here)
  const machine = make ? make(mode === 'server' ? WARM_DOWNSTREAM : { address: WARM_DOWNSTREAM.address, port: 1044 })
    : mode === 'server' ? new ServerProxy({ uid, random, dest: WARM_DOWNSTREAM }) : new ClientProxy({ uid, random, destPort: 1044 });
  const announce = packet(
    { type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: 1300, timestamp: { sec: 1, usec: 0 }, publicMcast: '230.4.4.1', privateMcast: '230.5.5.1', extensions: [], clientIds: [] },
    0x0a000001,
    0.5,
  );
  const register = packet(
    { type: 'REGISTER', timestamp: { sec: 1, usec: 0 }, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] },
    0x0a000002,
    0,
  );
  drain(machine, now, sink);
  machine.handle(now, WARM_SERVER, announce);
  drain(machine, now, sink);
  machine.handle(now + 1, mode === 'server' ? WARM_DOWNSTREAM : WARM_CLIENT, register);
  drain(machine, now + 1, sink);
  // the client proxy's hold (one GRTT, as quantized) ends and the REGISTER goes up; the server proxy forwarded it
  // at once and its next deadline is the session's idle end
  const due = machine.pollTimeout();
  if (due !== undefined) {
    machine.handleTimeout(due);
    drain(machine, due, sink);
  }
  return produced;
}

export interface DataWarmOptions {
  readonly mode: 'server' | 'client';
  readonly uid: number;
  readonly random: Random;
  /** -B (the loopback sockets' buffers). */
  readonly bufferSize: number;
  /** Wall time allowed, milliseconds. */
  readonly budgetMs: number;
  /** The daemon's -x: the throwaway machine builds the log lines the daemon's would. */
  readonly logLevel: number;
  /**
   * The throwaway machine, made by the daemon's own constructor call (run.ts) with the sink as its downstream (the
   * client proxy: the sink's port as its -p): its options object then has the daemon's shape (V8 map), so that the
   * code optimized here is not thrown away at the first real datagram ("wrong map" deoptimizations, then the data
   * path compiled again during the first transfer). Default: a machine of the mode with the minimal options.
   */
  readonly machine?: (sink: Endpoint) => ProxyBase<ProxySession>;
  /** Bursts of WARM_BURST datagrams (default WARM_BURSTS); a short pass only shapes the objects (see run.ts). */
  readonly bursts?: number;
  /** Datagrams per burst (default WARM_BURST; every fourth burst is WARM_BIG_BURST all the same). */
  readonly burstSize?: number;
  /** Asked before each burst and each small group: true ends the warm-up (the daemon's own data has started). */
  readonly abort?: () => boolean;
}

export interface DataWarmReport {
  /** Datagrams sent to the throwaway proxy, and how many it forwarded to the sink. */
  readonly sent: number;
  readonly forwarded: number;
  readonly ms: number;
  /** Why it did not run or ended early, if so. */
  readonly stopped?: string;
}

let warmRuns = 0;
const QUIET_TURN = { begin: (): void => undefined, end: (): void => undefined };
const QUIET_EFFECTS = [(): undefined => undefined, (x: unknown): undefined => void x] as const;

/** Data datagrams per burst, bursts, and the small groups (a slower sender's receive turns) after each burst. */
const WARM_BURST = 512;
const WARM_BURSTS = 24;
/** Small groups (receive turns) after each burst. */
const WARM_GROUPS = 96;
const WARM_BIG_BURST = 1100;
const WARM_SMALL = 4;
// above 2^31, as half of all server IDs are (V8 then learns the 32-bit fields are not always small integers)
const WARM_SERVER_ID = 0xc0000201;
const SINK_ADDRESS = '127.0.0.2';
const WARM_CLIENT_ID = 0xc0000202;

/**
 * The forwarding data path run hot at start-up, so that V8 optimizes it now and not during the first transfer.
 * Measured with `perf` on both proxies during an encrypted Figure 1 session at `uftp -R -1`: 28% of their CPU
 * samples were V8's optimizing compiler threads, compiling the data path while the server sent (CPU that the
 * server and the decrypting clients, on the same cores, were waiting for). Here a throwaway machine of the
 * daemon's mode, on a throwaway event loop, with the daemon's own receive callback (forward.ts: same closure site),
 * forwards ~16,000 FILESEGs and ENCRYPTEDs of a plain session from a loopback sender to a loopback sink through
 * the same engine (GSO bursts arriving GRO-coalesced, and small groups). Everything stays on loopback (127.0.0.1, the sink on 127.0.0.2): the
 * client proxy's re-multicasts go to the sink (the synthetic ANNOUNCE names it as both multicast addresses), the server proxy's joins are not made. Native
 * engine only (node:dgram has no ring); bounded in time; any failure only ends it.
 */
export async function warmDataPath(o: DataWarmOptions): Promise<DataWarmReport> {
  warmRuns++;
  const t0 = performance.now();
  const elapsed = (): number => performance.now() - t0;
  const eps: UdpEndpoint[] = [];
  let loop: EventLoop<ProxyEffect> | undefined;
  let sent = 0;
  let forwarded = 0;
  const report = (stopped?: string): DataWarmReport => ({ sent, forwarded, ms: elapsed(), ...(stopped !== undefined ? { stopped } : {}) });
  try {
    const fw = newForwardState();
    const open = async (onBatch: (b: RecvBatch) => void, address = '127.0.0.1'): Promise<UdpEndpoint> => {
      const r = await UdpEndpoint.open({ family: 4, address, port: 0, bufferSize: o.bufferSize, multicastLoopback: false, recvInfo: false, onBatch });
      if (!r.ok) throw new Error(r.error);
      eps.push(r.value);
      return r.value;
    };
    // the sink on another loopback address: the server proxy tells its downstream from its server by address
    const sink = await open((b) => {
      forwarded += b.count;
    }, SINK_ADDRESS);
    if (sink.backend === 'dgram') return report('node:dgram backend');
    const recv = await open(batchForwarder(fw));
    const sender = await open(() => undefined);
    fw.ring = true;
    const sinkPort = sink.address().port;
    const recvPort = recv.address().port;
    const sinkDest: Endpoint = { address: SINK_ADDRESS, port: sinkPort };
    const machine = o.machine ? o.machine(sinkDest) : o.mode === 'server'
      ? new ServerProxy({ uid: o.uid, random: o.random, logLevel: o.logLevel, dest: sinkDest, ringViews: true })
      : new ClientProxy({ uid: o.uid, random: o.random, logLevel: o.logLevel, destPort: sinkPort, ringViews: true });
    // the options in the daemon's order and with its keys (run.ts): one V8 map for both loops' options
    loop = new EventLoop<ProxyEffect>({
      machine,
      sockets: [recv],
      sendBudget: 4096,
      // one of two functions, alternately, so that the loop's calls of these see more than one target before V8
      // optimizes them (a generic call, nothing inlined): the daemon's own, a third target, then costs no
      // deoptimization ("wrong call target") at its first join or log line
      onEffect: QUIET_EFFECTS[warmRuns & 1],
      onUnroutable: QUIET_EFFECTS[warmRuns & 1],
      onError: QUIET_EFFECTS[warmRuns & 1],
    });
    fw.loop = loop;
    fw.machine = machine;
    // a second receive-turn hook beside the loop's, from another function: the engine's calls of them see more than
    // one target (a generic call), so the daemon's server proxy, whose socket has the coalescer's hooks too, does
    // not throw this code away at its first turn ("wrong feedback cell")
    recv.onReceiveTurn(QUIET_TURN);
    loop.start();
    const grtt = 0.5;
    const announce = packet(
      // the client proxy re-multicasts to the public and private addresses at its -p port: here the sink (it does not
      // require a multicast address), so that its sends take the daemon's path, a UdpEndpoint of the loop, on loopback
      { type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: 1300, timestamp: { sec: 1, usec: 0 }, publicMcast: o.mode === 'client' ? SINK_ADDRESS : '230.4.4.1', privateMcast: o.mode === 'client' ? SINK_ADDRESS : '230.5.5.1', extensions: [], clientIds: [] },
      WARM_SERVER_ID,
      grtt,
    );
    const block = new Uint8Array(1300);
    const fileseg = (i: number): Uint8Array => packet({ type: 'FILESEG', fileId: 1, section: i >> 12, secBlock: i & 0xfff, extensions: [], data: block }, WARM_SERVER_ID, grtt);
    const encrypted = (i: number): Uint8Array => packet({ type: 'ENCRYPTED', ivCounter: BigInt(i), signature: new Uint8Array(0), payload: block }, WARM_SERVER_ID, grtt);
    const done = packet({ type: 'DONE', fileId: 1, section: 0, extensions: [], clientIds: [] }, WARM_SERVER_ID, grtt);
    // a client's answer, from the sink (the server proxy's downstream; for the client proxy a client)
    const status = packet({ type: 'STATUS', fileId: 1, section: 0, naks: new Uint8Array(8), extensions: [] }, WARM_CLIENT_ID, 0);
    const segs = [fileseg(0), fileseg(1), encrypted(0), encrypted(1)];
    const tick = (): Promise<void> => new Promise((res) => setTimeout(res, 1));
    const emit = (d: Uint8Array): void => {
      sender.send(d, 0, d.length, recvPort, '127.0.0.1');
      sent++;
    };
    // the runs of datagrams in a function of their own: its loop, not this long function's, is what gets hot
    // (V8 would otherwise compile all of warmDataPath: ~60 ms of compiler time, after the warm-up has ended)
    const emitRun = (d: Uint8Array, n: number): void => {
      for (let i = 0; i < n; i++) emit(d);
    };
    // small groups after a burst, each a receive turn of its own (setImmediate between): the loop's per-turn code
    // (drive) gets as hot as in a transfer. Steps of a small function, so that what runs hot is it and not this
    // long one (V8 would compile all of warmDataPath: ~60-70 ms of compiler time).
    const smallGroups = (): Promise<string | undefined> =>
      new Promise((resolve) => {
        let g = 0;
        const step = (): void => {
          if (o.abort?.() === true) return resolve("the daemon's data");
          for (let i = 0; i < WARM_SMALL; i++) emit(segs[(g + i) & 3]);
          if ((g & 7) === 0) {
            // the server's ANNOUNCE again once in a while: V8 allocates a function's feedback only after its first
            // calls, so the opening ANNOUNCE leaves that branch without feedback, and the code optimized here would
            // be thrown away ("insufficient type feedback") at the daemon's first real ANNOUNCE
            if (g === 8) emit(announce);
            emit(done);
            sink.send(status, 0, status.length, recvPort, '127.0.0.1');
            sink.flush();
          }
          sender.flush();
          if (++g < WARM_GROUPS) setImmediate(step);
          else resolve(undefined);
        };
        step();
      });
    emit(announce);
    sender.flush();
    for (let k = 0; k < 20 && forwarded === 0; k++) await tick();
    if (forwarded === 0) return report('the ANNOUNCE was not forwarded');
    for (let b = 0, bursts = o.bursts ?? WARM_BURSTS; b < bursts; b++) {
      if (elapsed() > o.budgetMs) return report('time budget');
      if (o.abort?.() === true) return report('the daemon\'s data');
      // a burst of one type (GSO out of the sender, GRO-coalesced into the proxy), then small groups of both
      // every fourth burst above the engine's 1,024 send slots: the send path that flushes a full staging runs too
      const d = segs[(b & 1) * 2];
      emitRun(d, (b & 3) === 3 ? WARM_BIG_BURST : o.burstSize ?? WARM_BURST);
      sender.flush();
      await tick();
      const stopped = await smallGroups();
      if (stopped !== undefined) return report(stopped);
      await tick();
    }
    // the last groups' datagrams reach the sink a turn or two later: the report counts them (at most ~50 ms more if
    // some were really lost)
    for (let k = 0; k < 50 && forwarded < sent; k++) await tick();
    return report();
  } catch (e) {
    return report((e as Error).message);
  } finally {
    loop?.stop();
    for (const ep of eps) await ep.close();
  }
}

/** What rewarmAfterFirstConfirm watches: the daemon's loop, aggregating machine and sockets, and its log. */
export interface RewarmWatch {
  readonly loop: { readonly sent: number };
  /** Registrations the servers confirmed so far (REG_CONF: AggregatingProxy's stats.confirmed). */
  confirmed(): number;
  /** The daemon's sockets: a confirmation is looked for at the end of their receive turns (no timer while idle). */
  readonly sockets: readonly { onReceiveTurn(h: TurnHooks): void }[];
  readonly log: { log(level: number, message: string): void };
}

/** Time from the first confirmation seen to the re-warm: the server's KEYINFO round is over by then. */
const REWARM_DELAY_MS = 200;
/** Datagrams forwarded before the first confirmation was seen above which a transfer has run already (the first
 *  session's opening forwards a handful: its ANNOUNCEs, the aggregated REGISTER). */
const REWARM_BEFORE = 256;
/** Datagrams forwarded during the delay that mean a transfer runs: too late (the transfer makes the code hot). */
const REWARM_BUSY = 64;
/** Datagrams the daemon forwards during the re-warm that end it (its data has started). */
const REWARM_ABORT = 64;

/**
 * The data path run hot once more after the first registration a server confirmed (a fresh aggregating proxy only:
 * the client proxy). The real session takes branches and makes objects the start-up warm-up's plain synthetic one
 * did not (its registrations held and aggregated, an encrypted session's key exchange, its session objects, joins,
 * log lines); V8 throws the start-up's optimized code away at each of them ("insufficient type feedback", "wrong
 * map"), and without this compiled the data path again during the first transfer (--trace-opt: 17-20 functions,
 * ~240-300 ms of compiler time in the client proxy while the server sent). Between the server's REG_CONF (with its
 * KEYINFO) and its first FILEINFO the session is quiet: uftp goes on announcing for robust (20) x ~5 GRTTs, about a
 * second at the 10 ms GRTT floor. The same warm-up run then, with the session's feedback recorded, compiles code
 * that stays valid for the transfer. The first confirmation is looked for at the end of each receive turn (a REG_CONF
 * arrives in one); runs once, REWARM_DELAY_MS after it, if the daemon is forwarding little; not at all if a
 * transfer ran before; ends at once if the daemon's data starts meanwhile (at most one burst of ~5 ms in its way).
 */
export function rewarmAfterFirstConfirm(w: RewarmWatch, opts: DataWarmOptions): void {
  const sent0 = w.loop.sent;
  let waiting = true;
  const end = (): void => {
    if (!waiting || w.confirmed() === 0) return;
    waiting = false;
    const seen = w.loop.sent;
    if (seen - sent0 >= REWARM_BEFORE) return;
    setTimeout(() => {
      if (w.loop.sent - seen >= REWARM_BUSY) return;
      const start = w.loop.sent;
      // shorter than the start-up's (about half the datagrams): the code it makes hot again has its feedback already
      void warmDataPath({ ...opts, bursts: 12, burstSize: 256, abort: () => w.loop.sent - start > REWARM_ABORT }).then((r) =>
        w.log.log(2, `First confirmed session: data path warm-up again, ${r.forwarded} of ${r.sent} datagrams forwarded on loopback in ${r.ms.toFixed(0)} ms${r.stopped !== undefined ? ` (ended: ${r.stopped})` : ''}`),
      );
    }, REWARM_DELAY_MS).unref();
  };
  for (const s of w.sockets) s.onReceiveTurn({ begin: () => undefined, end });
}
