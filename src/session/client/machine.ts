/**
 * uftpd's protocol: the client side of UFTP 4 as a pure machine (src/core/machine.ts). No I/O: datagrams in,
 * datagrams, effects (file operations, joins, log and status lines) and one deadline out.
 *
 * A session (protocol.txt 1, 3.2, 5.1), as the real uftpd 4.10.2 runs it (black-box, docs/protocol-notes.md
 * "uftpd (client)"):
 *   ANNOUNCE -> REGISTER (at once; again every 4 GRTT until REG_CONF/KEYINFO, given up after 4 ROBUST GRTT)
 *   [encrypted: CLIENT_KEY with the REGISTER when asked; KEYINFO -> KEYINFO_ACK]   REG_CONF
 *   FILEINFO -> FILEINFO_ACK (regular file) or COMPLETE (directory, link, delete, free space, rejected, skipped)
 *   FILESEG...  a new section starts a 1-GRTT timer, then STATUS for every earlier section with NAKs
 *   DONE -> COMPLETE when every block is in, else STATUS per section with NAKs up to the DONE's section
 *   DONE (file 0) -> COMPLETE (file 0), again every 4 GRTT until DONE_CONF or ROBUST GRTT (at least 1 s)
 *   nothing from the server for ROBUST GRTT (at least 1 s) while files move: the session is dropped
 *   ABORT from the server (to us or to all) ends the session; ours tells the server why we stopped.
 *
 * Bounds against a hostile network: at most `maxSessions` sessions (an ANNOUNCE flood cannot grow memory past
 * that), GRTT-based timers clamped to [1 s, 10 min], blocks checked against the file's layout, names checked by
 * src/files/paths.ts before any effect is asked for, and every dropped datagram counted by reason.
 */
import { endpointText, type Arrival, type Endpoint, type Machine, type Transmit } from '../../core/machine.js';
import { TimerHeap } from '../../core/timers.js';
import { placeName } from '../../files/paths.js';
import {
  AbortFlag, AnnounceFlag, CompStat, FileInfoAckFlag, FileType, MessageType, UFTP_VER_NUM,
} from '../../wire/constants.js';
import type { Extension } from '../../wire/extensions.js';
import type { UftpHeader } from '../../wire/header.js';
import { bytesText, type Timestamp } from '../../wire/fields.js';
import { DatagramReader, decodePacket, encodeMessageBody, encodePacket, type Message } from '../../wire/packet.js';
import { FileSegReader } from '../../wire/fileseg.js';
import { unquantizeGrtt } from '../../wire/quantize.js';
import type { Announce } from '../../wire/announce.js';
import type { FileInfo } from '../../wire/fileinfo.js';
import { isSsm } from '../../core/address.js';
import type { ClientEffect, ClientEffectResult, RestartFile, ResultWord, SessionRef } from './effects.js';
import { layout, Reception, sectionSize, type BufferPool } from './file.js';
import { TfmccReceiver } from './tfmcc.js';
import { quantizeRate } from '../../wire/quantize.js';
import { CcType } from '../../wire/constants.js';
import type { ClientKeyex, KeyexFactory, ProxyKeyInfo } from './keyex.js';
import { buildHbReq, readHbResp, type HeartbeatKey } from '../proxy/heartbeat.js';
import { blobFingerprint, blobToPublicKey } from '../../crypto/pubkey.js';
import { verifySignature } from '../../crypto/sign.js';
import { hashSuite } from '../../crypto/suites.js';
import { signedNonceBytes } from '../../wire/heartbeat.js';
import { HbAuth, HashType } from '../../wire/constants.js';

export interface ServerListEntry {
  readonly id: number;
  readonly address: string;
  readonly fingerprint?: string;
}

export interface ClientConfig {
  /** -U: our unique ID. */
  readonly uid: number;
  /** -I: IDs that count as ours when a closed group lists its members (the interfaces' IPv4 addresses). */
  readonly memberIds?: readonly number[];
  /** -D: absolute destination directories (the first gets relative names). */
  readonly destDirs: readonly string[];
  /** -T in use (absolute names are refused). */
  readonly tempDir?: boolean;
  /** -E: refuse sessions without encryption. */
  readonly encryptedOnly?: boolean;
  /** -S: the servers we accept, by ID and source address (and key fingerprint). */
  readonly serverList?: readonly ServerListEntry[];
  /** -c: bytes of data held before a write. Default 1 MiB. */
  readonly cacheSize?: number;
  /** -R: where responses go (a response proxy) instead of the ANNOUNCE's source. */
  readonly responseProxy?: Endpoint;
  /** -R proxy/fingerprint: the proxy's key must have this fingerprint. */
  readonly responseProxyFingerprint?: string;
  /** -H / -h: heartbeats to these proxies every `intervalMs`, answered challenges signed with `key` (the first -k). */
  readonly heartbeat?: { readonly servers: readonly Endpoint[]; readonly intervalMs: number; readonly key?: HeartbeatKey };
  /** Key exchange for encrypted sessions; without it encrypted ANNOUNCEs are refused. */
  readonly keyex?: KeyexFactory;
  /** Wall clock in microseconds since the epoch (for echoed timestamps): injected. */
  readonly wallMicros: (now: number) => number;
  /** Sessions at once. Default 1000. */
  readonly maxSessions?: number;
  /** Reused write-cache buffers (the driver's disk layer gives them back when written). */
  readonly pool?: BufferPool;
  /** -x: at 5 every dropped datagram is logged. Default 2. */
  readonly logLevel?: number;
}

/** register: REGISTER sent, waiting for REG_CONF or KEYINFO; transfer: files; closing: COMPLETE for the session sent. */
type Phase = 'register' | 'transfer' | 'closing';

type FileState =
  | 'opening' | 'receiving' | 'finishing' | 'finished' | 'answered' | 'failed';

interface CurrentFile {
  readonly id: number;
  readonly name: string;
  readonly info: FileInfo;
  state: FileState;
  req: number;
  rx?: Reception;
  /** Highest section seen in a FILESEG of this pass, and the first section not yet reported in this pass. */
  maxSection: number;
  nakFrom: number;
  /** A DONE came and no new block since: the next new block starts a pass (the server rewound to what was NAKed). */
  afterDone: boolean;
  /** DONEs again without a new block in between (the server still waits for a STATUS). */
  quietDones: number;
  statusAt?: number;
  /** The answer given (FILEINFO_ACK or COMPLETE status) for repeats of FILEINFO / DONE. */
  answer?: { kind: 'ack' } | { kind: 'complete'; status: number; ext?: Extension[] };
  /** COMPLETE is owed once the finish/operation result comes back (a DONE came first). */
  completeOwed: boolean;
  /** Result word once decided (RESULT line). */
  word?: ResultWord;
  /** Write effects asked for (the -c cache makes them fewer and larger). */
  writes: number;
  /** A restarted session found part of this file from a failed one (FILEINFO_ACK PARTIAL). */
  partial?: boolean;
}

interface Session {
  readonly ref: SessionRef;
  readonly groupInst: number;
  readonly replyTo: Endpoint;
  readonly privateAddr: string;
  readonly ssmSource?: string;
  phase: Phase;
  grttMs: number;
  readonly robust: number;
  readonly blockSize: number;
  readonly flags: number;
  seq: number;
  /** Last server timestamp and when (machine ms) it arrived: REGISTER / FILEINFO_ACK echo it, aged. */
  ts: Timestamp;
  tsAt: number;
  lastRx: number;
  /** Register phase: next REGISTER and when we give up. */
  retryAt?: number;
  giveUpAt?: number;
  file?: CurrentFile;
  /** Answers for files already done (a late DONE or FILEINFO for them is answered again). */
  readonly done: Map<number, { status: number; ext?: Extension[] }>;
  readonly enc?: ClientKeyex;
  /** Files completed in this session (what a restart may skip, -T). */
  readonly completed: { name: string; size: number }[];
  /** TFMCC (ANNOUNCE cc type 2): our receiver state, and the last CONG_CTRL timestamp we echo. */
  readonly cc?: TfmccReceiver;
  ccTs: Timestamp;
  ccTsAt: number;
}

/** Datagrams dropped, by reason (for logs, tests and the fuzz test). */
export type DropReason =
  | 'malformed' | 'not-server' | 'unknown-session' | 'wrong-server' | 'not-listed' | 'server-list' | 'plain-refused'
  | 'session-limit' | 'crypto' | 'replay' | 'unexpected' | 'bad-block' | 'duplicate';

const MIN_TIMER_MS = 1000;
/** Timer keys of the global jobs: KEY_REQ every 5 s until the response proxy's key came (man uftpd), heartbeats. */
const KEY_REQ_TIMER = -1;
const HEARTBEAT_TIMER = -2;
const KEY_REQ_INTERVAL_MS = 5000;
const MAX_TIMER_MS = 600_000;
const DEFAULT_CACHE = 1048576;

function clampMs(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(MIN_TIMER_MS, ms));
}

export function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** The real uftpd's log prefix: `[GROUPID/II:FFFF]` (file 0 prints as `0`). */
export function logTag(groupId: number, inst: number, fileId: number): string {
  const f = fileId === 0 ? '0' : fileId.toString(16).toUpperCase().padStart(4, '0');
  return `[${hex8(groupId)}/${inst.toString(16).toUpperCase().padStart(2, '0')}:${f}]`;
}

export class ClientMachine implements Machine<ClientEffect, ClientEffectResult> {
  private readonly sessions = new Map<number, Session>();
  /** Session deadlines, keyed by group ID (as the session table). */
  private readonly timers = new TimerHeap<number>();
  private readonly tx: Transmit[] = [];
  private readonly fx: ClientEffect[] = [];
  /** The data path's readers: filled per datagram instead of a view and a Result each. */
  private readonly dgram = new DatagramReader();
  private readonly seg = new FileSegReader();
  private readonly pending = new Map<number, { s: Session; fileId: number }>();
  /** Joined private groups with the number of sessions using each. */
  private readonly joins = new Map<string, number>();
  private nextSid = 1;
  private nextReq = 1;
  private readonly cacheSize: number;
  private readonly maxSessions: number;
  readonly drops = new Map<DropReason, number>();
  /** -R: the response proxy's key once a PROXY_KEY checked out, and its ID. */
  proxyKey: (ProxyKeyInfo & { readonly id: number }) | undefined;
  /** The time of the call being handled (for echoes computed deep inside). */
  private lastNow = 0;
  private readonly logDrops: boolean;
  /** Where the datagram being handled came from (for the drop log at -x 5). */
  private lastFrom = '';

  private readonly cfg: ClientConfig;

  constructor(cfg: ClientConfig) {
    // every machine's configuration in one object shape, whoever built it and how (a literal, a spread): the data
    // path reads it per datagram, and V8's code for that path (optimized by uftpd's start-up warm-up on a throwaway
    // machine) stays valid for the daemon's machine
    const all: { [K in keyof Required<ClientConfig>]: ClientConfig[K] } = {
      uid: cfg.uid, memberIds: cfg.memberIds, destDirs: cfg.destDirs, tempDir: cfg.tempDir, encryptedOnly: cfg.encryptedOnly,
      serverList: cfg.serverList, cacheSize: cfg.cacheSize, responseProxy: cfg.responseProxy,
      responseProxyFingerprint: cfg.responseProxyFingerprint, heartbeat: cfg.heartbeat, keyex: cfg.keyex,
      wallMicros: cfg.wallMicros, maxSessions: cfg.maxSessions, pool: cfg.pool, logLevel: cfg.logLevel,
    };
    this.cfg = all;
    this.cacheSize = cfg.cacheSize ?? DEFAULT_CACHE;
    this.maxSessions = cfg.maxSessions ?? 1000;
    this.logDrops = (cfg.logLevel ?? 2) >= 5;
    // global jobs share the timer heap with the sessions (whose keys are 32-bit group IDs, never negative)
    if (cfg.responseProxy) this.timers.set(KEY_REQ_TIMER, 0);
    if (cfg.heartbeat && cfg.heartbeat.servers.length > 0) this.timers.set(HEARTBEAT_TIMER, 0);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  // ---- the machine contract ----

  handle(now: number, from: Endpoint, bytes: Uint8Array, _arrival?: Arrival): void {
    this.lastNow = now;
    if (this.logDrops) this.lastFrom = endpointText(from);
    // one reader for every datagram (no object per datagram): its fields hold until the next handle()
    const h = this.dgram;
    if (!h.read(bytes)) return this.drop('malformed');
    const func = h.func;
    if (func === MessageType.ENCRYPTED) return this.encrypted(now, h.groupId, bytes);
    if (func === MessageType.PROXY_KEY) return this.proxyKeyMsg(from, bytes);
    if (func === MessageType.HB_RESP) return this.hbResp(from, bytes);
    if (func === MessageType.FILESEG) {
      // the data path: the fixed fields read into one reused reader, nothing decoded past them, the block a subarray
      const s = this.sessions.get(h.groupId);
      if (s === undefined) return this.drop('unknown-session');
      if (h.srcId !== s.ref.serverId || h.groupInst !== s.groupInst) return this.drop('wrong-server');
      if (s.enc) return this.drop('plain-refused');
      const v = this.seg;
      if (!v.read(bytes)) return this.drop('malformed');
      s.lastRx = now;
      if (s.cc) {
        s.cc.onSeq(now, h.seq, bytes.length, ((_arrival?.tos ?? 0) & 3) === 3);
        if (v.extEnd > v.extStart) {
          const p = decodePacket(bytes);
          if (p.ok && p.value.message.type === 'FILESEG') this.dataInfo(now, s, p.value.message.extensions);
        }
      }
      return this.fileSeg(now, s, v.fileId, v.section, v.secBlock, v.block(bytes));
    }
    const p = decodePacket(bytes);
    if (!p.ok) return this.drop('malformed');
    const { header, message } = p.value;
    if (message.type === 'ANNOUNCE') return this.announce(now, from, header, message, bytes);
    const s = this.sessions.get(header.groupId);
    if (s === undefined) return this.drop('unknown-session');
    const fromProxy = message.type === 'KEYINFO' && this.proxyKey !== undefined && header.srcId === this.proxyKey.id;
    if ((header.srcId !== s.ref.serverId && !fromProxy) || header.groupInst !== s.groupInst) return this.drop('wrong-server');
    // in an encrypted session only the key exchange and an ABORT travel in the clear
    if (s.enc && message.type !== 'KEYINFO' && message.type !== 'REG_CONF' && message.type !== 'ABORT') return this.drop('plain-refused');
    s.cc?.onSeq(now, header.seq, bytes.length, ((_arrival?.tos ?? 0) & 3) === 3);
    this.dispatch(now, s, header, message);
  }

  handleTimeout(now: number): void {
    this.lastNow = now;
    for (;;) {
      const groupId = this.timers.popExpired(now);
      if (groupId === undefined) break;
      if (groupId === KEY_REQ_TIMER) {
        this.sendKeyReq(now);
        continue;
      }
      if (groupId === HEARTBEAT_TIMER) {
        this.sendHeartbeats(now);
        continue;
      }
      const s = this.sessions.get(groupId);
      if (s) this.timeout(now, s);
    }
  }

  pollTransmit(_now: number): Transmit | undefined {
    return this.tx.shift();
  }

  pollEffect(): ClientEffect | undefined {
    return this.fx.shift();
  }

  pollTimeout(): number | undefined {
    return this.timers.earliest();
  }

  handleEffectResult(r: ClientEffectResult): void {
    const p = this.pending.get(r.req);
    if (p === undefined) return;
    const { s, fileId } = p;
    const f = s.file;
    if (!this.sessions.has(s.ref.groupId) || this.sessions.get(s.ref.groupId) !== s || f === undefined || f.id !== fileId || f.req !== r.req) {
      this.pending.delete(r.req);
      return;
    }
    if (!r.ok) {
      this.pending.delete(r.req);
      return this.fileFailed(s, f, r.error, r.disk === true);
    }
    switch (f.state) {
      case 'opening': {
        if (f.info.fileType === FileType.REG) {
          if (r.status === CompStat.SKIPPED || (s.flags & AnnounceFlag.SYNC_PREVIEW) !== 0) {
            this.pending.delete(r.req);
            return this.answerComplete(s, f, r.status, r.status === CompStat.SKIPPED ? 'skipped' : r.status === CompStat.OVERWRITE ? 'overwritten' : 'copied');
          }
          f.word = r.status === CompStat.OVERWRITE ? 'overwritten' : 'copied';
          if (r.restart?.complete === true) {
            // a restarted session: this file was complete in the failed one (protocol.txt 5.2.14)
            this.pending.delete(r.req);
            this.log(s, f.id, 2, `${f.name} was received completely before: COMPLETE`);
            return this.answerComplete(s, f, CompStat.NORMAL, 'copied');
          }
          if (r.restart?.complete === false && f.rx?.loadSections(r.restart.sections)) {
            f.partial = true;
            this.log(s, f.id, 2, `${f.name}: ${f.rx.received} of ${f.rx.l.blocks} blocks from the failed session`);
          }
          f.answer = { kind: 'ack' };
          f.state = 'receiving';
          this.log(s, f.id, 4, `${r.status === CompStat.OVERWRITE ? 'Overwriting' : 'Receiving'} ${f.name}`);
          this.sendFileInfoAck(s, f);
          if (f.rx?.complete) this.finish(s, f); // an empty file
          return;
        }
        // directory, link, delete, free space: one operation, then COMPLETE
        this.pending.delete(r.req);
        const ext: Extension[] = r.free !== undefined ? [{ type: 'EXT_FREESPACE_INFO', freespace: r.free }] : [];
        if (r.free !== undefined) this.log(s, f.id, 3, `Free space: ${r.free}`);
        return this.answerComplete(s, f, r.status, r.status === CompStat.OVERWRITE ? 'overwritten' : 'copied', ext);
      }
      case 'finishing': {
        this.pending.delete(r.req);
        f.state = 'finished';
        this.log(s, f.id, 2, 'File transfer complete');
        if (f.completeOwed) this.answerComplete(s, f, f.word === 'overwritten' ? CompStat.OVERWRITE : CompStat.NORMAL, f.word ?? 'copied');
        return;
      }
      default:
        this.pending.delete(r.req);
    }
  }

  // ---- helpers ----

  private drop(reason: DropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    // at -x 5 every dropped datagram is logged (the level is checked here: a flood costs no log effect below it)
    if (this.logDrops) this.fx.push({ type: 'log', level: 5, text: `Dropped datagram from ${this.lastFrom}: ${reason}` });
  }

  private log(s: Session | undefined, fileId: number, level: number, text: string): void {
    this.fx.push({ type: 'log', level, text: s ? `${logTag(s.ref.groupId, s.groupInst, fileId)}: ${text}` : text });
  }

  private header(s: Session): UftpHeader {
    return { version: UFTP_VER_NUM, func: 0, seq: s.seq++ & 0xffff, srcId: this.cfg.uid, groupId: s.ref.groupId, groupInst: s.groupInst, grtt: 0, gsize: 0, reserved: 0 };
  }

  /** Sends a message to the server (sealed once the group key is known, except the key exchange). */
  private send(s: Session, m: Message): void {
    const h = this.header(s);
    let data: Uint8Array | undefined;
    if (s.enc?.hasGroupKey && m.type !== 'REGISTER' && m.type !== 'CLIENT_KEY') {
      data = s.enc.seal(h, encodeMessageBody(m));
      if (data === undefined) return this.log(s, s.file?.id ?? 0, 1, `Cannot seal ${m.type}`);
    } else {
      data = encodePacket({ header: h, message: m });
    }
    this.tx.push({ to: s.replyTo, data });
  }

  private echo(s: Session, now: number): Timestamp {
    const us = s.ts.usec + Math.max(0, Math.round((now - s.tsAt) * 1000));
    return { sec: (s.ts.sec + Math.floor(us / 1e6)) >>> 0, usec: us % 1e6 };
  }

  private noteServer(now: number, s: Session, h: UftpHeader): void {
    s.lastRx = now;
    const g = unquantizeGrtt(h.grtt) * 1000;
    if (Number.isFinite(g) && g > 0) s.grttMs = g;
  }

  private arm(s: Session): void {
    const c: number[] = [];
    if (s.retryAt !== undefined) c.push(s.retryAt);
    if (s.giveUpAt !== undefined) c.push(s.giveUpAt);
    if (s.file?.statusAt !== undefined) c.push(s.file.statusAt);
    if (s.phase === 'transfer') c.push(s.lastRx + clampMs(s.robust * s.grttMs));
    if (c.length === 0) this.timers.delete(s.ref.groupId);
    else this.timers.set(s.ref.groupId, Math.min(...c));
  }

  private join(group: string, source?: string): void {
    const k = `${source ?? '*'}|${group}`;
    const n = this.joins.get(k) ?? 0;
    this.joins.set(k, n + 1);
    if (n === 0) this.fx.push({ type: 'join', group, source });
  }

  private leave(group: string, source?: string): void {
    const k = `${source ?? '*'}|${group}`;
    const n = this.joins.get(k) ?? 0;
    if (n <= 1) {
      this.joins.delete(k);
      if (n === 1) this.fx.push({ type: 'leave', group, source });
    } else this.joins.set(k, n - 1);
  }

  private endSession(s: Session, ok: boolean): void {
    if (this.sessions.get(s.ref.groupId) !== s) return;
    const f = s.file;
    const restart = !ok && this.cfg.tempDir === true;
    const files: RestartFile[] = restart ? s.completed.map((c) => ({ name: c.name, size: c.size, blockSize: s.blockSize, complete: true })) : [];
    if (f && (f.state === 'receiving' || f.state === 'opening' || f.state === 'finishing') && f.info.fileType === FileType.REG && f.req !== 0) {
      if (restart && f.rx && f.state === 'receiving') {
        // -T: what came of this file stays for a restart of the session (its cached blocks written first)
        f.rx.close(this.writes);
        this.pushWrites(f);
        files.push({ name: f.name, size: f.info.fileSize, blockSize: s.blockSize, complete: false, sections: f.rx.exportSections() });
        this.fx.push({ type: 'discard', req: f.req, keep: true });
      } else this.fx.push({ type: 'discard', req: f.req });
    }
    if (f) this.pending.delete(f.req);
    if (restart && files.length > 0) this.fx.push({ type: 'save-restart', session: s.ref, files });
    this.sessions.delete(s.ref.groupId);
    this.timers.delete(s.ref.groupId);
    this.leave(s.privateAddr, s.ssmSource);
    this.fx.push({ type: 'session-end', session: s.ref, ok });
  }

  /** The daemon is stopping (SIGTERM): every session ends as failed (with -T its state is saved for a restart). */
  shutdown(): void {
    for (const s of [...this.sessions.values()]) {
      this.log(s, s.file?.id ?? 0, 2, 'Shutting down: session interrupted');
      this.endSession(s, false);
    }
  }

  /** Tells the server we stop, and stops. */
  private abort(s: Session, text: string): void {
    this.log(s, s.file?.id ?? 0, 1, `Aborting: ${text}`);
    this.send(s, { type: 'ABORT', flags: 0, host: 0, message: text, extensions: [] });
    this.endSession(s, false);
  }

  // ---- -R: the response proxy's key; -H: heartbeats ----

  private own(m: Message, seq: number): Uint8Array {
    return encodePacket({ header: { version: UFTP_VER_NUM, func: 0, seq: seq & 0xffff, srcId: this.cfg.uid, groupId: 0, groupInst: 0, grtt: 0, gsize: 0, reserved: 0 }, message: m });
  }

  private sendKeyReq(now: number): void {
    const to = this.cfg.responseProxy;
    if (!to || this.proxyKey) return;
    this.tx.push({ to, data: this.own({ type: 'KEY_REQ', extensions: [] }, 0) });
    this.fx.push({ type: 'log', level: 3, text: `Sent KEY_REQ to ${to.address}:${to.port}` });
    this.timers.set(KEY_REQ_TIMER, now + KEY_REQ_INTERVAL_MS);
  }

  /** PROXY_KEY from our response proxy: the nonce signed (SHA-1) by the key it carries, of the pinned fingerprint. */
  private proxyKeyMsg(from: Endpoint, bytes: Uint8Array): void {
    const rp = this.cfg.responseProxy;
    if (!rp || from.address !== rp.address) return this.drop('unexpected');
    const p = decodePacket(bytes);
    if (!p.ok || p.value.message.type !== 'PROXY_KEY') return this.drop('malformed');
    const m = p.value.message;
    const fp = blobFingerprint(m.publicKey);
    if (this.cfg.responseProxyFingerprint !== undefined && fp !== this.cfg.responseProxyFingerprint) {
      this.fx.push({ type: 'log', level: 1, text: `PROXY_KEY from ${from.address}: key fingerprint ${fp} is not the one given with -R` });
      return this.drop('crypto');
    }
    const pub = blobToPublicKey(m.publicKey);
    const sha1 = hashSuite(HashType.SHA1);
    if (!pub.ok || !sha1.ok || !verifySignature(pub.value, sha1.value, signedNonceBytes(m.nonce), m.signedNonce)) {
      this.fx.push({ type: 'log', level: 1, text: `PROXY_KEY from ${from.address}: signature does not verify` });
      return this.drop('crypto');
    }
    let dh: ProxyKeyInfo['dh'];
    if (m.dhKey) {
      const d = blobToPublicKey(m.dhKey);
      if (!d.ok) return this.drop('crypto');
      dh = { blob: m.dhKey, key: d.value };
    }
    if (!this.proxyKey) this.fx.push({ type: 'log', level: 2, text: `Received PROXY_KEY from ${from.address} (fingerprint ${fp})` });
    this.proxyKey = { id: p.value.header.srcId, blob: m.publicKey, key: pub.value, dh };
    this.timers.delete(KEY_REQ_TIMER);
  }

  private sendHeartbeats(now: number): void {
    const hb = this.cfg.heartbeat;
    if (!hb) return;
    for (const to of hb.servers) {
      this.tx.push({ to, data: buildHbReq(this.cfg.uid, 0) });
      this.fx.push({ type: 'log', level: 4, text: `Sent HB_REQ to ${to.address}:${to.port}` });
    }
    this.timers.set(HEARTBEAT_TIMER, now + hb.intervalMs);
  }

  private hbResp(from: Endpoint, bytes: Uint8Array): void {
    const hb = this.cfg.heartbeat;
    const to = hb?.servers.find((x) => x.address === from.address && x.port === from.port);
    if (!hb || !to) return this.drop('unexpected');
    const r = readHbResp(bytes);
    if (!r.ok) return this.drop('malformed');
    if (r.value.auth === HbAuth.CHALLENGE) {
      if (!hb.key) {
        this.fx.push({ type: 'log', level: 1, text: `Heartbeat authentication required by ${from.address}, but there is no key` });
        return;
      }
      this.tx.push({ to, data: buildHbReq(this.cfg.uid, r.value.nonce, hb.key) });
      this.fx.push({ type: 'log', level: 3, text: `Heartbeat authentication required by ${from.address}: signed HB_REQ sent` });
    } else if (r.value.auth === HbAuth.OK) {
      this.fx.push({ type: 'log', level: 4, text: `Received HB_RESP from ${from.address}` });
    } else {
      this.fx.push({ type: 'log', level: 1, text: `Heartbeat authentication failed at ${from.address}` });
    }
  }

  // ---- ANNOUNCE ----

  private announce(now: number, from: Endpoint, h: UftpHeader, m: Announce, bytes: Uint8Array): void {
    const existing = this.sessions.get(h.groupId);
    if (existing) {
      if (existing.ref.serverId !== h.srcId) return this.drop('wrong-server');
      if (h.groupInst === existing.groupInst) {
        this.noteServer(now, existing, h);
        existing.ts = m.timestamp;
        existing.tsAt = now;
        if (existing.phase === 'register') this.sendRegister(now, existing);
        return;
      }
      if (((h.groupInst - existing.groupInst) & 0xff) >= 128) return this.drop('wrong-server');
      this.log(existing, 0, 2, `New instance ${h.groupInst} of this session: restarting`);
      this.endSession(existing, false);
    }
    const tag = logTag(h.groupId, h.groupInst, 0);
    const enc = m.extensions.find((x) => x.type === 'EXT_ENC_INFO');
    const v6 = (m.flags & AnnounceFlag.IPV6) !== 0;
    if (this.cfg.serverList) {
      const e = this.cfg.serverList.find((x) => x.id === h.srcId && x.address === from.address);
      if (!e) {
        this.fx.push({ type: 'log', level: 2, text: `${tag}: Name ${hex8(h.srcId)} at ${from.address} not in server list` });
        return this.drop('server-list');
      }
      if (!isSsm(m.privateMcast)) {
        this.fx.push({ type: 'log', level: 1, text: `${tag}: Private address ${m.privateMcast} is not a source-specific multicast address` });
        return this.drop('server-list');
      }
      if (e.fingerprint !== undefined) {
        const fp = enc && this.cfg.keyex ? this.cfg.keyex.fingerprint(enc.publicKey) : undefined;
        if (fp === undefined || fp.toUpperCase() !== e.fingerprint.toUpperCase()) {
          this.fx.push({ type: 'log', level: 1, text: `${tag}: Server key fingerprint ${fp ?? '(none)'} does not match the server list` });
          return this.drop('server-list');
        }
      }
    }
    if (m.clientIds.length > 0) {
      const mine = [this.cfg.uid, ...(this.cfg.memberIds ?? [])];
      if (!m.clientIds.some((id) => mine.includes(id))) {
        this.fx.push({ type: 'log', level: 3, text: `${tag}: Name not in host list` });
        return this.drop('not-listed');
      }
    }
    if (this.sessions.size >= this.maxSessions) {
      this.fx.push({ type: 'log', level: 1, text: `${tag}: Too many sessions (${this.maxSessions}); ANNOUNCE from ${from.address} ignored` });
      return this.drop('session-limit');
    }
    const ref: SessionRef = { sid: this.nextSid++, groupId: h.groupId, serverId: h.srcId };
    const replyTo = this.cfg.responseProxy ?? from;
    const base = {
      ref, groupInst: h.groupInst, replyTo, privateAddr: m.privateMcast,
      ssmSource: this.cfg.serverList ? from.address : undefined,
      phase: 'register' as Phase, grttMs: Math.max(1, unquantizeGrtt(h.grtt) * 1000), robust: Math.max(1, m.robust),
      blockSize: m.blockSize, flags: m.flags, seq: 0, ts: m.timestamp, tsAt: now, lastRx: now,
      done: new Map<number, { status: number; ext?: Extension[] }>(),
      ccTs: m.timestamp, ccTsAt: now, completed: [] as { name: string; size: number }[],
    };
    if (enc === undefined) {
      if (this.cfg.encryptedOnly) {
        const tmp: Session = { ...base };
        this.abort(tmp, 'No unencrypted transfers allowed');
        return this.drop('plain-refused');
      }
    }
    let keyex: ClientKeyex | undefined;
    if (enc !== undefined) {
      if (!this.cfg.keyex) {
        this.fx.push({ type: 'log', level: 1, text: `${tag}: Encrypted session refused: no keys` });
        return this.drop('crypto');
      }
      if (this.cfg.responseProxy && !this.proxyKey) {
        this.fx.push({ type: 'log', level: 1, text: `${tag}: Encrypted session refused: no key from the response proxy yet` });
        return this.drop('crypto');
      }
      const k = this.cfg.keyex.create(h, m, bytes, this.proxyKey);
      if (!k.ok) {
        const tmp: Session = { ...base };
        this.abort(tmp, k.error);
        return this.drop('crypto');
      }
      keyex = k.value;
    }
    if (m.blockSize < 1 || (v6 && !m.privateMcast.includes(':'))) return this.drop('malformed');
    const cc = m.ccType === CcType.TFMCC ? new TfmccReceiver(base.grttMs, Math.max(1, m.blockSize)) : undefined;
    const s: Session = { ...base, retryAt: undefined, giveUpAt: undefined, file: undefined, enc: keyex, cc };
    this.sessions.set(h.groupId, s);
    this.log(s, 0, 2, `Received request from ${hex8(h.srcId)} at ${from.address}`);
    this.log(s, 0, 2, `Using private multicast address ${m.privateMcast}`);
    this.log(s, 0, 3, `grtt = ${(s.grttMs / 1000).toFixed(6)}`);
    this.join(m.privateMcast, s.ssmSource);
    this.fx.push({ type: 'connect', session: ref, from });
    s.giveUpAt = now + clampMs(4 * s.robust * s.grttMs);
    this.sendRegister(now, s);
  }

  private sendRegister(now: number, s: Session): void {
    const rf = s.enc?.registerFields ?? { clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0) };
    this.send(s, { type: 'REGISTER', timestamp: this.echo(s, now), clientRandom: rf.clientRandom, keyInfo: rf.keyInfo, extensions: [], clientIds: [] });
    const ck = s.enc?.clientKey();
    if (ck) this.send(s, ck);
    this.log(s, 0, 2, 'REGISTER sent');
    s.retryAt = now + 4 * s.grttMs;
    this.arm(s);
  }

  // ---- everything after the ANNOUNCE ----

  private encrypted(now: number, groupId: number, bytes: Uint8Array): void {
    const s = this.sessions.get(groupId);
    if (s === undefined) return this.drop('unknown-session');
    if (!s.enc?.hasGroupKey) return this.drop('crypto');
    const o = s.enc.open(bytes);
    if (!o.ok) {
      this.log(s, s.file?.id ?? 0, 3, `Rejecting message: ${o.error}`);
      return this.drop(o.error.startsWith('replayed') ? 'replay' : 'crypto');
    }
    const h = o.value.header;
    if (h.srcId !== s.ref.serverId || h.groupInst !== s.groupInst) return this.drop('wrong-server');
    const m = o.value.message;
    s.cc?.onSeq(now, h.seq, bytes.length, false);
    if (m.type === 'FILESEG') {
      s.lastRx = now;
      if (s.cc && m.extensions.length > 0) this.dataInfo(now, s, m.extensions);
      return this.fileSeg(now, s, m.fileId, m.section, m.secBlock, m.data);
    }
    this.dispatch(now, s, h, m);
  }

  private dispatch(now: number, s: Session, h: UftpHeader, m: Message): void {
    const listed = (ids: readonly number[]): boolean => ids.length === 0 || ids.includes(this.cfg.uid);
    switch (m.type) {
      case 'REG_CONF':
        this.noteServer(now, s, h);
        if (!listed(m.clientIds) || m.clientIds.length === 0) return;
        if (s.phase === 'register') {
          if (s.enc && !s.enc.hasGroupKey) return this.drop('unexpected');
          s.phase = 'transfer';
          s.retryAt = undefined;
          s.giveUpAt = undefined;
          this.log(s, 0, 2, 'Registration confirmed');
          this.arm(s);
        }
        return;
      case 'KEYINFO': {
        this.noteServer(now, s, h);
        if (!s.enc) return this.drop('unexpected');
        const r = s.enc.onKeyInfo(h, m, this.cfg.uid);
        if (r === undefined) return; // no entry for us
        if (!r.ok) {
          this.log(s, 0, 1, `KEYINFO: ${r.error}`);
          return this.drop('crypto');
        }
        this.send(s, { type: 'KEYINFO_ACK', verifyData: r.value, extensions: [] });
        if (s.phase === 'register') {
          s.phase = 'transfer';
          s.retryAt = undefined;
          s.giveUpAt = undefined;
          this.log(s, 0, 2, 'Registration confirmed');
        }
        this.log(s, 0, 3, 'KEYINFO_ACK sent');
        this.arm(s);
        return;
      }
      case 'FILEINFO':
        this.noteServer(now, s, h);
        s.ts = m.timestamp;
        s.tsAt = now;
        if (!listed(m.clientIds)) return;
        return this.fileInfo(s, m);
      case 'FILESEG':
        s.lastRx = now;
        return this.fileSeg(now, s, m.fileId, m.section, m.secBlock, m.data);
      case 'DONE':
        this.noteServer(now, s, h);
        if (!listed(m.clientIds)) return;
        return this.done(now, s, m.fileId, m.section, m.clientIds.length > 0);
      case 'DONE_CONF':
        this.noteServer(now, s, h);
        if (s.phase !== 'closing' || !m.clientIds.includes(this.cfg.uid)) return;
        this.log(s, 0, 2, 'Group file transfer confirmed');
        return this.endSession(s, true);
      case 'ABORT':
        this.noteServer(now, s, h);
        if (m.host !== 0 && m.host !== this.cfg.uid) return;
        if (m.host === 0 && (m.flags & AbortFlag.CURRENT_FILE) !== 0 && (s.file === undefined || s.file.state === 'answered')) return;
        this.log(s, s.file?.id ?? 0, 1, `Transfer aborted by server: ${m.message}`);
        return this.endSession(s, false);
      case 'CONG_CTRL':
        s.lastRx = now;
        if (!s.cc) return;
        s.ccTs = m.timestamp;
        s.ccTsAt = now;
        if (s.cc.onCongCtrl(m, this.cfg.uid)) this.sendCcAck(now, s);
        return;
      default:
        return this.drop('unexpected');
    }
  }

  private fileInfo(s: Session, m: FileInfo): void {
    if (s.phase === 'register') {
      // the REG_CONF was lost but the server has us: the FILEINFO lists us
      if (s.enc && !s.enc.hasGroupKey) return this.drop('unexpected');
      s.phase = 'transfer';
      s.retryAt = undefined;
      s.giveUpAt = undefined;
    }
    if (s.phase !== 'transfer') return this.drop('unexpected');
    const cur = s.file;
    if (cur && cur.id === m.fileId) {
      // a repeat: answer again
      if (cur.answer?.kind === 'ack') this.sendFileInfoAck(s, cur);
      else if (cur.answer?.kind === 'complete') this.sendComplete(s, cur.id, cur.answer.status, cur.answer.ext);
      return;
    }
    const old = s.done.get(m.fileId);
    if (old) return this.sendComplete(s, m.fileId, old.status, old.ext);
    if (m.fileId === 0) return this.drop('unexpected');
    if (cur && cur.state !== 'answered' && cur.state !== 'failed') {
      this.log(s, cur.id, 2, `File ${cur.name} not finished when the server moved on; dropped`);
      if (cur.info.fileType === FileType.REG && (cur.state === 'receiving' || cur.state === 'opening')) this.fx.push({ type: 'discard', req: cur.req });
      this.pending.delete(cur.req);
    }
    const name = bytesText(m.name);
    // every field present from the start: one object shape for every file (V8 keeps the data path's code for it)
    const f: CurrentFile = {
      id: m.fileId, name, info: m, state: 'opening', req: 0, rx: undefined, maxSection: 0, nakFrom: 0, afterDone: false, quietDones: 0, statusAt: undefined, answer: undefined,
      completeOwed: false, word: undefined, writes: 0, partial: false,
    };
    s.file = f;
    const sref = s.ref;
    if (m.fileType === FileType.FREESPACE) {
      f.req = this.request(s, f);
      this.fx.push({ type: 'freespace', req: f.req, session: sref });
      return;
    }
    const placed = placeName(m.name, this.cfg.destDirs, this.cfg.tempDir === true);
    if (m.fileType === FileType.REG) {
      this.log(s, f.id, 2, `Name of file to receive: ${name}`);
    }
    if (!placed.ok) {
      this.log(s, f.id, 1, `Rejecting ${JSON.stringify(name)}: ${placed.error}`);
      return this.answerComplete(s, f, CompStat.REJECTED, 'rejected');
    }
    switch (m.fileType) {
      case FileType.REG: {
        const l = layout(m.fileSize, s.blockSize);
        if (l === undefined) {
          this.log(s, f.id, 1, `Rejecting ${name}: ${m.fileSize} bytes do not fit in 65536 sections of ${s.blockSize}-byte blocks`);
          return this.answerComplete(s, f, CompStat.REJECTED, 'rejected');
        }
        this.log(s, f.id, 2, `Bytes: ${m.fileSize}, Blocks: ${l.blocks}, Sections: ${l.sections}`);
        f.rx = new Reception(l, this.cacheSize, this.cfg.pool);
        f.req = this.request(s, f);
        const sync = (s.flags & (AnnounceFlag.SYNC_MODE | AnnounceFlag.SYNC_PREVIEW)) !== 0;
        this.fx.push({
          type: 'open', req: f.req, session: sref, fileId: f.id, name, placed: placed.value, size: m.fileSize, mtime: m.fileTimestamp,
          sync, preview: (s.flags & AnnounceFlag.SYNC_PREVIEW) !== 0,
        });
        return;
      }
      case FileType.DIR:
        f.req = this.request(s, f);
        this.fx.push({ type: 'mkdir', req: f.req, session: sref, placed: placed.value, mtime: m.fileTimestamp });
        return;
      case FileType.LINK: {
        const target = bytesText(m.linkName);
        if (m.linkName.length === 0) return this.answerComplete(s, f, CompStat.REJECTED, 'rejected');
        f.req = this.request(s, f);
        this.fx.push({ type: 'symlink', req: f.req, session: sref, placed: placed.value, target });
        return;
      }
      case FileType.DELETE:
        f.req = this.request(s, f);
        this.fx.push({ type: 'delete', req: f.req, session: sref, placed: placed.value });
        return;
      default:
        this.log(s, f.id, 1, `Unknown file type ${m.fileType}`);
        return this.answerComplete(s, f, CompStat.REJECTED, 'rejected');
    }
  }

  private request(s: Session, f: CurrentFile): number {
    const req = this.nextReq++;
    this.pending.set(req, { s, fileId: f.id });
    return req;
  }

  /** The EXT_TFMCC_ACK_INFO we report: our rate, flags, the server's round, its CONG_CTRL timestamp echoed and aged. */
  private ackInfo(s: Session, now: number): Extension {
    const cc = s.cc as TfmccReceiver;
    const us = s.ccTs.usec + Math.max(0, Math.round((now - s.ccTsAt) * 1000));
    return {
      type: 'EXT_TFMCC_ACK_INFO', flags: cc.flags(), ccSeq: cc.ccSeq & 0xffff, ccRate: quantizeRate(cc.rate()), clientId: this.cfg.uid,
      timestamp: { sec: (s.ccTs.sec + Math.floor(us / 1e6)) >>> 0, usec: us % 1e6 },
    };
  }

  private sendCcAck(now: number, s: Session): void {
    this.send(s, { type: 'CC_ACK', extensions: [this.ackInfo(s, now)] });
  }

  private dataInfo(now: number, s: Session, exts: readonly Extension[]): void {
    for (const x of exts) {
      if (x.type === 'EXT_TFMCC_DATA_INFO' && s.cc?.onDataInfo(x.ccSeq, x.ccRate)) this.sendCcAck(now, s);
    }
  }

  private sendFileInfoAck(s: Session, f: CurrentFile): void {
    this.send(s, { type: 'FILEINFO_ACK', fileId: f.id, flags: f.partial ? FileInfoAckFlag.PARTIAL : 0, timestamp: this.echo(s, s.tsAt), extensions: [], clientIds: [] });
    this.log(s, f.id, 2, 'FILEINFO_ACK sent');
  }

  private sendComplete(s: Session, fileId: number, status: number, ext?: Extension[]): void {
    this.send(s, { type: 'COMPLETE', fileId, status, extensions: ext ?? [], clientIds: [] });
    this.log(s, fileId, 2, 'COMPLETE sent');
  }

  /** The file is settled: COMPLETE with its status, the RESULT line, and remember the answer. */
  private answerComplete(s: Session, f: CurrentFile, status: number, word: ResultWord, ext?: Extension[]): void {
    if (f.info.fileType === FileType.REG && status !== CompStat.REJECTED && status !== CompStat.SKIPPED) s.completed.push({ name: f.name, size: f.info.fileSize });
    f.state = 'answered';
    f.statusAt = undefined;
    f.answer = { kind: 'complete', status, ext };
    s.done.set(f.id, { status, ext });
    this.fx.push({ type: 'result', session: s.ref, name: f.name, size: f.info.fileType === FileType.REG ? f.info.fileSize : 0, word });
    this.sendComplete(s, f.id, status, ext);
    this.arm(s);
  }

  private fileFailed(s: Session, f: CurrentFile, error: string, disk: boolean): void {
    this.log(s, f.id, 1, `${f.name}: ${error}`);
    if (disk && f.state !== 'opening') {
      // a write error in the middle of a file: the file is lost for this session; the server is told
      f.state = 'failed';
      this.fx.push({ type: 'discard', req: f.req });
      this.abort(s, `Error writing ${f.name}: ${error}`);
      return;
    }
    if (f.info.fileType === FileType.REG && f.state !== 'opening') this.fx.push({ type: 'discard', req: f.req });
    this.answerComplete(s, f, CompStat.REJECTED, 'rejected');
  }

  private writes: { offset: number; data: Uint8Array }[] = [];

  private fileSeg(now: number, s: Session, fileId: number, section: number, secBlock: number, data: Uint8Array): void {
    const f = s.file;
    if (f === undefined || f.id !== fileId || f.rx === undefined) return this.drop('unexpected');
    if (f.state !== 'receiving') return this.drop('duplicate');
    const w = this.writes;
    const r = f.rx.add(section, secBlock, data, w);
    if (r === 'bad') return this.drop('bad-block');
    if (r === 'dup') return this.drop('duplicate');
    this.pushWrites(f);
    if (f.afterDone) {
      // the first block of a new pass: its sections are reported anew, as the real uftpd does (its section timer
      // reports the sections a pass has left behind, its answer to the pass's DONE the rest)
      f.afterDone = false;
      f.quietDones = 0;
      f.maxSection = section;
      f.nakFrom = 0;
    } else if (section > f.maxSection) {
      f.maxSection = section;
      if (f.statusAt === undefined) {
        f.statusAt = now + s.grttMs;
        this.arm(s);
      }
    }
    // the idle deadline moves with every block but is not re-armed here: when the armed timer fires, timeout()
    // finds the session alive and arms it again (one heap operation per timer period, not per datagram)
    if (f.rx.complete) this.finish(s, f);
  }

  private pushWrites(f: CurrentFile): void {
    const w = this.writes;
    // most blocks only fill the cache: nothing to push, and no store to the array's length (a runtime call in V8)
    if (w.length === 0) return;
    for (const x of w) this.fx.push({ type: 'write', req: f.req, offset: x.offset, data: x.data });
    f.writes += w.length;
    w.length = 0;
  }

  private finish(s: Session, f: CurrentFile): void {
    if (f.rx === undefined || f.state !== 'receiving') return;
    const w = this.writes;
    f.rx.close(w);
    this.pushWrites(f);
    f.state = 'finishing';
    f.statusAt = undefined;
    this.log(s, f.id, 4, `${f.info.fileSize} bytes written in ${f.writes} writes`);
    this.pending.set(f.req, { s, fileId: f.id });
    this.fx.push({ type: 'finish', req: f.req, mtime: f.info.fileTimestamp });
  }

  private statusUpTo(s: Session, f: CurrentFile, last: number): void {
    if (f.rx === undefined) return;
    const w = this.writes;
    f.rx.flush(w);
    this.pushWrites(f);
    const end = Math.min(last, f.rx.l.sections - 1);
    for (let sec = f.nakFrom; sec <= end; sec++) {
      if (f.rx.missing(sec) === 0) continue;
      this.send(s, { type: 'STATUS', fileId: f.id, section: sec, extensions: s.cc ? [this.ackInfo(s, this.lastNow)] : [], naks: f.rx.naks(sec) });
      this.log(s, f.id, 3, `Sent STATUS for section ${sec}: ${f.rx.missing(sec)} of ${sectionSize(f.rx.l, sec)} blocks missing`);
    }
  }

  /** `named`: the DONE lists us (the server repeats a DONE for the clients it has no answer from). */
  private done(now: number, s: Session, fileId: number, section: number, named: boolean): void {
    if (fileId === 0) {
      if (s.phase !== 'transfer' && s.phase !== 'closing') return this.drop('unexpected');
      const f = s.file;
      if (f && f.state !== 'answered' && f.state !== 'failed') {
        // the server ends the session while we still work on a file: that file is not ours
        this.log(s, f.id, 2, `Session ended before ${f.name} was complete`);
        if (f.info.fileType === FileType.REG) this.fx.push({ type: 'discard', req: f.req });
        this.pending.delete(f.req);
        f.state = 'failed';
      }
      if (s.phase === 'transfer') {
        this.log(s, 0, 2, 'Got DONE message for group');
        this.log(s, 0, 2, 'Group complete');
        s.phase = 'closing';
        s.giveUpAt = now + clampMs(s.robust * s.grttMs);
      }
      this.sendComplete(s, 0, CompStat.NORMAL);
      s.retryAt = now + 4 * s.grttMs;
      this.arm(s);
      return;
    }
    const f = s.file;
    if (f === undefined || f.id !== fileId) {
      const old = s.done.get(fileId);
      if (old) this.sendComplete(s, fileId, old.status, old.ext);
      return;
    }
    this.log(s, f.id, 2, `Got DONE message for section ${section}`);
    switch (f.state) {
      case 'answered':
        if (f.answer?.kind === 'complete') this.sendComplete(s, f.id, f.answer.status, f.answer.ext);
        return;
      case 'finished':
        return this.answerComplete(s, f, f.word === 'overwritten' ? CompStat.OVERWRITE : CompStat.NORMAL, f.word ?? 'copied');
      case 'finishing':
        f.completeOwed = true;
        return;
      case 'receiving':
        if (f.rx?.complete) {
          f.completeOwed = true;
          return this.finish(s, f);
        }
        // the DONE that ends a pass is answered for the sections the section timer has not reported in that pass,
        // and the DONEs the server sends again to everyone (empty list) not at all, as the real uftpd 4.10.2 does
        // (black-box: each section's NAKs once per pass; docs/protocol-notes.md). A NAK sent twice is not free: the
        // server records a STATUS for a section it has passed (protocol.txt 3.2), also in its next pass. A DONE
        // again that names us (the server has no answer from us: a STATUS lost), and every third one without a
        // block in between, is answered for every section up to its own.
        if (f.afterDone && (named || ++f.quietDones % 3 === 0)) f.nakFrom = 0;
        this.statusUpTo(s, f, section);
        f.nakFrom = section + 1;
        f.afterDone = true;
        return;
      default:
        return;
    }
  }

  private timeout(now: number, s: Session): void {
    const f = s.file;
    if (f?.statusAt !== undefined && f.statusAt <= now) {
      f.statusAt = undefined;
      if (f.state === 'receiving') {
        this.statusUpTo(s, f, f.maxSection - 1);
        f.nakFrom = f.maxSection;
      }
    }
    if (s.phase === 'register') {
      if (s.giveUpAt !== undefined && now >= s.giveUpAt) {
        this.log(s, 0, 1, 'Registration timed out');
        return this.endSession(s, false);
      }
      if (s.retryAt !== undefined && now >= s.retryAt) this.sendRegister(now, s);
      return this.arm(s);
    }
    if (s.phase === 'closing') {
      if (s.giveUpAt !== undefined && now >= s.giveUpAt) {
        this.log(s, 0, 2, 'No DONE_CONF; session complete');
        return this.endSession(s, true);
      }
      if (s.retryAt !== undefined && now >= s.retryAt) {
        this.sendComplete(s, 0, CompStat.NORMAL);
        s.retryAt = now + 4 * s.grttMs;
      }
      return this.arm(s);
    }
    if (now >= s.lastRx + clampMs(s.robust * s.grttMs)) {
      this.log(s, f?.id ?? 0, 1, 'Transfer timed out');
      return this.endSession(s, false);
    }
    this.arm(s);
  }
}
