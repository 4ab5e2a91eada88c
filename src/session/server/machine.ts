/**
 * The uftp server as a pure machine (src/core/machine.ts): the Announce/Register phase, then for each file the
 * File Info phase and the Data Transfer phase (passes of FILESEGs, DONE, STATUS NAKs merged into a bitmap of the
 * blocks to resend, rewind), then the Completion/Confirmation phase (DONE file 0, COMPLETE, DONE_CONF).
 * No I/O: file data comes in through `read` effects and their results, log and status-file lines go out as effects,
 * the clock is the `now` argument (milliseconds since the Unix epoch: timestamps sent in ANNOUNCE and FILEINFO and
 * echoed by the clients are taken from it) and randomness is the driver's (group ID, private address).
 *
 * Timing follows protocol.txt 3.2 and the real uftp 4.10.2 (docs/protocol-notes.md "uftp (server)"): ANNOUNCE,
 * FILEINFO and DONE are repeated every 3 GRTT up to ROBUST times; an open group always sends ROBUST ANNOUNCEs;
 * REG_CONF goes out at the next tick after REGISTERs; a STATUS with NAKs after the end of a pass starts a 3 GRTT
 * rewind timer, at whose end a new pass sends exactly the NAKed blocks.
 */
import type { Endpoint, Machine, Transmit } from '../../core/machine.js';
import {
  AnnounceFlag, CcType, CompStat, FileType, MessageType, UFTP_HEADER_LEN, UFTP_VER_NUM, decodePacket, encodePacketInto,
  packetLength, encodeMessageBody, encodeMessageInto, type Extension, quantizeGroupSize, quantizeGrtt, type Message, type Packet, type Timestamp, type UftpHeader,
} from '../../wire/index.js';
import type { ClientHandshake, ServerSecurity } from './security.js';
import { TfmccSender, type TfmccOptions } from './tfmcc.js';
import { blockLength, fileLayout, sectionLength, sectionOf, sectionStart, type Layout } from './layout.js';

/** One entry of the file list, already walked and named by the driver. */
export interface ServerFile {
  /** The name sent in FILEINFO ('/'-separated, bytes). */
  readonly name: Uint8Array;
  /** Printable form of `name` for logs and status lines. */
  readonly displayName: string;
  /** FileType.REG, DIR, LINK, DELETE or FREESPACE. */
  readonly fileType: number;
  readonly size: number;
  /** Modification time, seconds since the epoch. */
  readonly mtime: number;
  /** Link target bytes (LINK), else empty. */
  readonly linkName: Uint8Array;
}

export interface ServerConfig {
  readonly uid: number;
  readonly groupId: number;
  /** Group instance (header byte 12): 0, or one more than the failed session's for a restart (-F). */
  readonly groupInst?: number;
  /** -f: report the clients that did not get every file (a `restart` effect) when the session ends. */
  readonly restartable?: boolean;
  readonly publicAddr: string;
  readonly privateAddr: string;
  readonly port: number;
  readonly blockSize: number;
  readonly robust: number;
  /** Seconds. */
  readonly grttInit: number;
  readonly grttMin: number;
  readonly grttMax: number;
  /** Bytes per second on the wire (IP and UDP headers included), or undefined for -R -1 (as fast as possible). */
  readonly rate: number | undefined;
  readonly maxPasses: number;
  /** -W: the most a file may take, in percent of its optimal time at `rate` (undefined: no limit). */
  readonly txWeight?: number;
  readonly quitOnError: boolean;
  /** -N: NAK percentage of a section above which a STATUS counts against the client. */
  readonly maxNakPct: number;
  /** -m: times a client may exceed -N before it is dropped. */
  readonly maxNakCount: number;
  /** Most receivers an open group accepts (a REGISTER flood with made-up IDs cannot grow memory past it). Default 50,000. */
  readonly maxReceivers?: number;
  /** -H: closed group membership; undefined = open group. */
  readonly hosts?: readonly number[];
  /** -j: the proxies allowed to register clients of a closed group (the man page: with -H, -j is needed for proxies). */
  readonly proxyList?: readonly number[];
  /** -z / -Z */
  readonly sync: boolean;
  readonly syncPreview: boolean;
  readonly ipv6: boolean;
  /** Unicast mode (-M a unicast address): everything goes to publicAddr; ANNOUNCE carries 0.0.0.0 / :: (real uftp). */
  readonly unicast?: boolean;
  readonly files: readonly ServerFile[];
  /** Overhead of a datagram below UDP (IP + UDP headers) counted by the pacer: 28 for IPv4, 48 for IPv6. */
  readonly ipOverhead: number;
  /** -C tfmcc: congestion control sets the rate (`rate` is then ignored). */
  readonly tfmcc?: TfmccOptions;
  /** -Y other than none: the server half of the key exchange and the group keys. */
  readonly security?: ServerSecurity;
}

export type ServerEffect =
  | { readonly type: 'read'; readonly file: number; readonly offset: number; readonly length: number }
  | { readonly type: 'log'; readonly level: number; readonly text: string }
  | { readonly type: 'status'; readonly line: string }
  | { readonly type: 'progress'; readonly file: number; readonly sentBytes: number; readonly doneReceivers: number; readonly receivers: number }
  /** -f: clients that did not receive every file, with the indexes of the files each did get. */
  | { readonly type: 'restart'; readonly failed: readonly { readonly id: number; readonly completed: readonly number[] }[] }
  | { readonly type: 'finished'; readonly exitCode: number };

export type ServerEffectResult =
  | { readonly type: 'read'; readonly file: number; readonly offset: number; readonly data: Uint8Array }
  | { readonly type: 'readError'; readonly file: number; readonly offset: number; readonly message: string };

/** Exit codes of uftp(1). */
export const UftpExit = {
  OK: 0, USAGE: 1, NETWORK: 2, KEYS: 3, LOG: 4, MEMORY: 5, INTERRUPTED: 6,
  NO_REGISTER: 7, NO_FILEINFO_ACK: 8, ALL_DROPPED: 9, NOTHING_RECEIVED: 10,
} as const;

type ReceiverState = 'active' | 'dropped' | 'aborted' | 'finished';
type FileState = 'pending' | 'receiving' | 'complete' | 'dropped';

interface FileResult {
  status: 'copy' | 'overwrite' | 'skipped' | 'rejected';
  seconds: number;
  /** @FREESPACE: the client's free bytes from the COMPLETE's EXT_FREESPACE_INFO. */
  freespace?: bigint;
}

interface Receiver {
  readonly id: number;
  addr: Endpoint;
  state: ReceiverState;
  /** Seconds; measured from echoed timestamps. */
  rtt: number;
  regConfDue: boolean;
  fileState: FileState;
  /** Answered the current round of DONE (STATUS or COMPLETE). */
  doneAnswered: boolean;
  nakStrikes: number;
  results: Map<number, FileResult>;
  totalBytes: number;
  totalSeconds: number;
  counts: { copy: number; overwrite: number; skip: number };
  hs: ClientHandshake;
}

type Phase = 'announce' | 'fileinfo' | 'data' | 'closing' | 'finished';

/** Data buffered from the file being sent: read-ahead chunks, by chunk index. */
const CHUNK_BLOCKS = 256;
const MAX_CHUNKS = 24;
const READ_AHEAD = 6;
/** Datagram buffers cycled through for FILESEGs: a buffer is reused only after this many later sends. */
const RING = 2048;
/** A FILESEG's bytes besides its data (function byte, fixed fields, the TFMCC extension). */
const SEG_ROOM = 16;
/** What sealing adds to a datagram at most: ENCRYPTED's 12 fixed bytes, a SHA-512 HMAC, a block of padding. */
const SEAL_ROOM = 12 + 64 + 16;
/** How far behind its schedule the pacer may fall before it stops catching up (ms). */
const MAX_CREDIT_MS = 4;
/** DONE_CONF / REG_CONF / FILEINFO / DONE carry at most this many client IDs each. */
const MAX_IDS = 300;

function timestampOf(nowMs: number): Timestamp {
  const sec = Math.floor(nowMs / 1000);
  return { sec: sec >>> 0, usec: Math.min(999_999, Math.floor((nowMs - sec * 1000) * 1000)) };
}

function msOf(t: Timestamp): number {
  return t.sec * 1000 + t.usec / 1000;
}

export function hexId(id: number): string {
  return '0x' + (id >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

function chunk<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out.length > 0 ? out : [[]];
}

export class ServerMachine implements Machine<ServerEffect, ServerEffectResult> {
  readonly cfg: ServerConfig;
  private readonly receivers = new Map<number, Receiver>();
  private readonly order: Receiver[] = [];
  private readonly effects: ServerEffect[] = [];
  private readonly controls: Transmit[] = [];
  private phase: Phase = 'announce';
  private seq = 0;
  private grtt: number;
  private grttSet = false;
  private grttByte: number;
  private gsizeByte = 0;
  /** Phase timer: next ANNOUNCE / FILEINFO / DONE round, or the end of a wait. */
  private deadline: number | undefined;
  private rounds = 0;
  private exitCode: number | undefined;
  private everGotFile = false;
  private everAckedFileinfo = false;
  /** Current file. */
  private fileIdx = -1;
  private layout: Layout = fileLayout(0, 1);
  private toSend = new Uint8Array(0);
  private naked = new Uint8Array(0);
  private nakedCount = 0;
  private cursor = 0;
  private sending = false;
  private pass = 0;
  private rewindAt: number | undefined;
  private doneRounds = 0;
  private nextDoneAt: number | undefined;
  private dataStart = 0;
  private sentBytes = 0;
  private readonly chunks = new Map<number, Uint8Array>();
  private readonly pendingReads = new Set<number>();
  private nextSendAt = 0;
  private readonly ring: Buffer[] = [];
  private ringPos = 0;
  private scratch: Buffer | undefined;
  private readonly segHeader: UftpHeader;
  private doneConfQueue: number[] = [];
  /** The server's IV counter (KEYINFO and every ENCRYPTED message), starting at 1. */
  private ivCounter = 0n;
  /** The time of the last poll, for "due now" deadlines. */
  private lastNow = 0;
  /** -W: when the current file must be done. */
  private fileDeadline: number | undefined;
  private readonly started: number;

  constructor(cfg: ServerConfig, now: number) {
    this.cfg = cfg;
    this.grtt = cfg.grttInit;
    this.grttByte = quantizeGrtt(this.grtt);
    this.started = now;
    this.segHeader = this.header(MessageType.FILESEG);
    this.tfmcc = cfg.tfmcc ? new TfmccSender(cfg.tfmcc) : undefined;
    if (cfg.hosts) {
      for (const id of cfg.hosts) this.hostsWanted.add(id >>> 0);
      // a closed group announces its size from the start (the real uftp: gsize 2 in the first ANNOUNCE of -H a,b)
      this.gsizeByte = quantizeGroupSize(this.hostsWanted.size);
      this.segHeader.gsize = this.gsizeByte;
    }
    this.log(2, `Using private multicast address ${cfg.privateAddr}  Group ID: ${(cfg.groupId >>> 0).toString(16).toUpperCase().padStart(8, '0')}`);
    this.log(2, 'Initializing group');
    this.deadline = now;
  }

  private readonly hostsWanted = new Set<number>();
  private fullLogged = false;
  private readonly tfmcc: TfmccSender | undefined;
  /** Level-4 (debug) lines are asked for: the driver's -x (formatting them costs). */
  enabled4 = false;
  /** Proxies (by ID) and the clients they registered. */
  private readonly proxies = new Map<number, Set<number>>();
  /** The handshake of each proxy that registered clients in an encrypted session. */
  private readonly proxyHs = new Map<number, ClientHandshake>();
  /** Clients that registered through a proxy. */
  private readonly behindProxy = new Set<number>();

  // ---- the machine contract ----

  handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    const p = decodePacket(bytes);
    if (!p.ok) {
      this.log(4, `Dropped datagram from ${from.address}: ${p.error.message}`);
      return;
    }
    const { header, message } = p.value;
    if (header.groupId !== this.cfg.groupId || header.srcId === this.cfg.uid) return;
    if (message.type === 'ENCRYPTED') {
      const sec = this.cfg.security;
      if (!sec) return;
      const r = this.receivers.get(header.srcId >>> 0);
      const opened = sec.open(bytes, (r?.hs ?? this.proxyHs.get(header.srcId >>> 0))?.clientKey);
      if (!opened.ok) {
        this.log(1, `Rejected ENCRYPTED message from ${hexId(header.srcId)}: ${opened.error}`);
        return;
      }
      this.onMessage(now, from, header, opened.value.message);
      return;
    }
    if (this.cfg.security && message.type !== 'REGISTER' && message.type !== 'CLIENT_KEY' && message.type !== 'ABORT') {
      this.log(1, `Rejected unencrypted ${message.type} from ${hexId(header.srcId)}`);
      return;
    }
    this.onMessage(now, from, header, message);
  }

  handleTimeout(now: number): void {
    if (this.phase === 'finished') return;
    if (this.deadline !== undefined && now >= this.deadline) {
      this.deadline = undefined;
      this.onPhaseTimer(now);
    }
    if (this.rewindAt !== undefined && now >= this.rewindAt && this.phase === 'data' && !this.sending) {
      this.rewindAt = undefined;
      this.log(3, 'Rewind timer tripped');
      this.startPass(now);
    }
    if (this.tfmcc && this.phase === 'data' && now >= this.tfmcc.nextRound) {
      const cc = this.tfmcc.tick(now, this.grtt, timestampOf(now));
      if (cc && this.enabled4) this.log(4, `TFMCC round ${cc.ccSeq}: rate ${Math.round(this.tfmcc.rate)} B/s, CLR ${this.tfmcc.limiting !== undefined ? hexId(this.tfmcc.limiting) : 'none'}; ${this.tfmcc.lastChange}`);
      if (cc) this.sendControl({ type: 'CONG_CTRL', ccSeq: cc.ccSeq, ccRate: cc.ccRate, timestamp: cc.timestamp, extensions: [], items: cc.items }, this.cfg.privateAddr);
    }
    if (this.fileDeadline !== undefined && now >= this.fileDeadline && this.phase === 'data') {
      this.fileDeadline = undefined;
      for (const r of this.order) {
        if (r.state === 'active' && r.fileState === 'receiving') {
          this.log(1, `Maximum transfer time exceeded, aborting ${hexId(r.id)}`);
          this.sendAbort(r.id, 'Maximum transfer time exceeded');
          this.dropReceiver(now, r, 'dropped');
        }
      }
      if (this.phase === 'data') this.fileDone(now);
      return;
    }
    if (this.nextDoneAt !== undefined && now >= this.nextDoneAt && this.phase === 'data' && !this.sending) {
      this.nextDoneAt = undefined;
      this.doneRound(now);
    }
  }

  pollTransmit(now: number): Transmit | undefined {
    this.lastNow = now;
    if (this.doneConfQueue.length > 0) {
      const ids = this.doneConfQueue.splice(0, MAX_IDS);
      this.sendControl({ type: 'DONE_CONF', extensions: [], clientIds: ids }, this.cfg.privateAddr);
    }
    const c = this.controls.shift();
    if (c) return c;
    if (this.phase !== 'data' || !this.sending) return undefined;
    if (this.paceRate() !== undefined) {
      if (now < this.nextSendAt) return undefined;
      if (this.nextSendAt < now - MAX_CREDIT_MS) this.nextSendAt = now - MAX_CREDIT_MS;
    }
    return this.nextSegment(now);
  }

  pollEffect(): ServerEffect | undefined {
    return this.effects.shift();
  }

  pollTimeout(): number | undefined {
    if (this.phase === 'finished') return undefined;
    let t = this.deadline;
    const min = (x: number | undefined): void => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    if (this.phase === 'data') {
      min(this.fileDeadline);
      if (this.tfmcc) min(this.tfmcc.nextRound);
      if (this.sending) {
        // unpaced: due at once whenever the next block is in memory (after a read the loop comes straight back)
        if (this.blockReady()) min(this.paceRate() !== undefined ? this.nextSendAt : this.lastNow);
      } else {
        min(this.rewindAt);
        min(this.nextDoneAt);
      }
    }
    return t;
  }

  handleEffectResult(r: ServerEffectResult): void {
    if (r.file !== this.fileIdx) return;
    const k = Math.floor(r.offset / (this.cfg.blockSize * CHUNK_BLOCKS));
    this.pendingReads.delete(k);
    if (r.type === 'readError') {
      this.log(0, `Error reading ${this.cfg.files[r.file].displayName}: ${r.message}`);
      this.abortFile(`Error reading file: ${r.message}`);
      return;
    }
    this.chunks.set(k, r.data);
  }

  /** The user interrupted the session (SIGINT/SIGTERM): ABORT everyone and finish with exit code 6. */
  interrupt(): void {
    if (this.phase === 'finished') return;
    this.sendAbort(0, 'Server quit, aborting all');
    this.finish(UftpExit.INTERRUPTED);
  }

  get finished(): boolean {
    return this.phase === 'finished';
  }

  get result(): number | undefined {
    return this.exitCode;
  }

  /** Current GRTT in seconds (for tests and logs). */
  get currentGrtt(): number {
    return this.grtt;
  }

  get passes(): number {
    return this.pass;
  }

  receiverIds(): number[] {
    return this.order.map((r) => r.id);
  }

  // ---- messages ----

  private onMessage(now: number, from: Endpoint, header: UftpHeader, m: Message): void {
    const ids = 'clientIds' in m && m.clientIds.length > 0 ? m.clientIds : [header.srcId];
    switch (m.type) {
      case 'REGISTER':
        if (m.clientIds.length > 0 && !m.clientIds.includes(header.srcId)) {
          // a proxy's aggregated REGISTER: remember who is behind it (its STATUS messages stand for them)
          let set = this.proxies.get(header.srcId >>> 0);
          if (!set && this.cfg.hosts && !(this.cfg.proxyList ?? []).includes(header.srcId >>> 0)) {
            this.log(1, `Proxy ${hexId(header.srcId)} not in proxy list, ignoring its REGISTER`);
            return;
          }
          if (!set) {
            if (this.proxies.size >= 1024) return;
            set = new Set();
            this.proxies.set(header.srcId >>> 0, set);
            this.log(2, `Received REGISTER from proxy ${hexId(header.srcId)}`);
          }
          for (const c of m.clientIds) set.add(c >>> 0);
          if (this.cfg.security && !this.proxyHs.has(header.srcId >>> 0)) {
            // the key exchange is with the proxy: one handshake for all the clients it registers
            const hs = this.early.get(header.srcId >>> 0)?.hs ?? { acked: false };
            this.early.delete(header.srcId >>> 0);
            const e = this.cfg.security.onRegister(hs, m.keyInfo, m.clientRandom);
            if (e) {
              this.log(1, `REGISTER from proxy ${hexId(header.srcId)}: ${e}`);
              return;
            }
            this.proxyHs.set(header.srcId >>> 0, hs);
          }
          const shared = this.proxyHs.get(header.srcId >>> 0);
          for (const id of m.clientIds) this.onRegister(now, from, id >>> 0, m.timestamp, m.keyInfo, m.clientRandom, shared ?? null);
          return;
        }
        for (const id of ids) this.onRegister(now, from, id >>> 0, m.timestamp, m.keyInfo, m.clientRandom);
        return;
      case 'CLIENT_KEY': {
        const sec = this.cfg.security;
        const id = header.srcId >>> 0;
        const hs = this.receivers.get(id)?.hs ?? this.proxyHs.get(id) ?? this.pendingKeys(id).hs;
        if (!sec) return;
        const e = sec.onClientKey(hs, id, m.publicKey, m.verifyData);
        if (e) this.log(1, `CLIENT_KEY from ${hexId(header.srcId)}: ${e}`);
        return;
      }
      case 'KEYINFO_ACK': {
        const sec = this.cfg.security;
        const id = header.srcId >>> 0;
        const proxyHs = this.proxyHs.get(id);
        const hs = this.receivers.get(id)?.hs ?? proxyHs;
        if (!sec || !hs || hs.acked) return;
        if (sec.checkVerifyData(this.cfg.groupId, hs, m.verifyData)) {
          // a proxy's handshake is shared by the clients behind it: they are confirmed with it
          hs.acked = true;
          this.log(2, `Received KEYINFO_ACK from ${proxyHs ? 'proxy' : 'client'} ${hexId(id)}`);
        } else {
          this.log(1, `Bad verify data in KEYINFO_ACK from ${hexId(id)}`);
        }
        return;
      }
      case 'FILEINFO_ACK':
        for (const id of ids) this.onFileInfoAck(now, id >>> 0, m.fileId, m.timestamp);
        return;
      case 'COMPLETE':
        for (const id of ids) this.onComplete(now, id >>> 0, m.fileId, m.status, m.extensions.find((e) => e.type === 'EXT_FREESPACE_INFO')?.freespace);
        return;
      case 'STATUS':
        this.ccFeedback(now, m.extensions);
        this.onStatus(now, header.srcId >>> 0, m.fileId, m.section, m.naks);
        return;
      case 'CC_ACK':
        this.ccFeedback(now, m.extensions);
        return;
      case 'ABORT': {
        const r = this.receivers.get(header.srcId >>> 0);
        if (!r || r.state !== 'active') return;
        this.log(1, `Transfer aborted by ${hexId(r.id)}: ${m.message}`);
        this.dropReceiver(now, r, 'aborted');
        return;
      }
      default:
        this.log(4, `Unexpected ${m.type} from ${from.address}`);
    }
  }

  /** A CLIENT_KEY may come before its REGISTER: its handshake state waits here. */
  private readonly early = new Map<number, { hs: ClientHandshake }>();

  private pendingKeys(id: number): { hs: ClientHandshake } {
    let e = this.early.get(id);
    if (!e) {
      if (this.early.size > 10_000) this.early.clear();
      e = { hs: { acked: false } };
      this.early.set(id, e);
    }
    return e;
  }

  /** `shared`: the handshake of the proxy the client registered through (null: a plain session through a proxy). */
  private onRegister(now: number, from: Endpoint, id: number, ts: Timestamp, keyInfo: Uint8Array, clientRandom: Uint8Array, shared?: ClientHandshake | null): void {
    let r = this.receivers.get(id);
    if (r) {
      // a repeated REGISTER: its REG_CONF was lost
      if (r.state === 'active') r.regConfDue = true;
      return;
    }
    if (this.phase !== 'announce') {
      this.log(2, `Received REGISTER from ${hexId(id)} after the registration phase, ignoring`);
      return;
    }
    if (this.order.length >= (this.cfg.maxReceivers ?? 50_000)) {
      if (!this.fullLogged) this.log(1, `Receiver limit of ${this.cfg.maxReceivers ?? 50_000} reached, ignoring further REGISTERs`);
      this.fullLogged = true;
      return;
    }
    if (this.cfg.hosts && !this.hostsWanted.has(id)) {
      this.log(1, `Host ${hexId(id)} not in host list`);
      this.sendAbort(id, 'Not in host list');
      return;
    }
    const hs: ClientHandshake = shared ?? this.early.get(id)?.hs ?? { acked: false };
    this.early.delete(id);
    if (this.cfg.security && shared === undefined) {
      const e = this.cfg.security.onRegister(hs, keyInfo, clientRandom);
      if (e) {
        this.log(1, `REGISTER from ${hexId(id)}: ${e}`);
        return;
      }
    }
    r = this.addReceiver(id, from, this.rttFrom(now, ts), hs, 'active');
    if (shared !== undefined) this.behindProxy.add(id);
    this.log(2, `Received REGISTER from client ${hexId(id)}`);
    this.log(5, `  rtt = ${r.rtt.toFixed(6)}`);
  }

  private addReceiver(id: number, addr: Endpoint, rtt: number, hs: ClientHandshake, state: ReceiverState): Receiver {
    const r: Receiver = {
      id, addr, state, rtt, regConfDue: state === 'active', fileState: state === 'active' ? 'pending' : 'dropped', doneAnswered: false,
      nakStrikes: 0, results: new Map(), totalBytes: 0, totalSeconds: 0, counts: { copy: 0, overwrite: 0, skip: 0 }, hs,
    };
    this.receivers.set(id, r);
    this.order.push(r);
    if (!this.cfg.hosts) this.gsizeByte = quantizeGroupSize(this.order.length);
    return r;
  }

  private onFileInfoAck(now: number, id: number, fileId: number, ts: Timestamp): void {
    const r = this.receivers.get(id);
    if (!r || r.state !== 'active' || fileId !== this.fileIdx + 1) return;
    r.rtt = this.rttFrom(now, ts);
    if (this.phase === 'fileinfo' && r.fileState === 'pending') {
      r.fileState = 'receiving';
      this.everAckedFileinfo = true;
      this.log(3, `Received FILEINFO_ACK from client ${hexId(id)}`);
      this.checkFileinfoDone(now);
    }
  }

  private onComplete(now: number, id: number, fileId: number, status: number, freespace?: bigint): void {
    const r = this.receivers.get(id);
    if (!r) return;
    if (fileId === 0) {
      if (this.phase === 'closing' || this.phase === 'finished') {
        if (r.state === 'active') {
          r.state = 'finished';
          this.log(2, `Got COMPLETE from client ${hexId(id)}`);
        }
        if (r.state === 'finished') this.doneConfQueue.push(id);
        if (this.phase === 'closing' && this.order.every((x) => x.state !== 'active')) this.finish(this.finalExit());
      }
      return;
    }
    if (r.state !== 'active' || fileId !== this.fileIdx + 1) return;
    if (r.fileState === 'complete') return;
    if (this.phase !== 'fileinfo' && this.phase !== 'data') return;
    this.everAckedFileinfo = true;
    const file = this.cfg.files[this.fileIdx];
    let seconds = this.phase === 'data' ? Math.max(0, (now - this.dataStart) / 1000) : 0;
    if (this.cfg.syncPreview && this.phase === 'fileinfo' && status !== CompStat.SKIPPED && status !== CompStat.REJECTED) {
      // -Z: nothing is sent; the time is what the file would take at the rate (the man page: "approximated")
      const rate = this.paceRate();
      const l = fileLayout(file.fileType === FileType.REG ? file.size : 0, this.cfg.blockSize);
      if (rate !== undefined) seconds = (l.size + l.blocks * (UFTP_HEADER_LEN + 8 + this.cfg.ipOverhead)) / rate;
    }
    const word = status === CompStat.SKIPPED ? 'skipped' : status === CompStat.OVERWRITE ? 'overwrite' : status === CompStat.REJECTED ? 'rejected' : 'copy';
    r.results.set(this.fileIdx, { status: word, seconds, ...(freespace !== undefined && file.fileType === FileType.FREESPACE ? { freespace } : {}) });
    r.fileState = 'complete';
    r.doneAnswered = true;
    if (word === 'copy' || word === 'overwrite') {
      this.everGotFile = true;
      r.totalBytes += file.size;
      r.totalSeconds += seconds;
      if (word === 'copy') r.counts.copy++;
      else r.counts.overwrite++;
    } else if (word === 'skipped') {
      // the client has the file: the real uftp exits 0, not 10, when every file was skipped in sync mode
      this.everGotFile = true;
      r.counts.skip++;
    }
    this.log(2, `Got COMPLETE from client ${hexId(id)}${word === 'copy' ? '' : ` (${word})`}`);
    if (this.phase === 'fileinfo') this.checkFileinfoDone(now);
    else this.checkFileDone(now);
  }

  private onStatus(now: number, id: number, fileId: number, section: number, naks: Uint8Array): void {
    // a STATUS from a proxy stands for the clients behind it (it carries no client list)
    const behind = this.proxies.get(id);
    const r = this.receivers.get(id);
    const rs = r ? [r] : behind ? [...behind].map((c) => this.receivers.get(c)).filter((x): x is Receiver => x !== undefined && x.state === 'active') : [];
    if (rs.length === 0 || (r && r.state !== 'active') || this.phase !== 'data' || fileId !== this.fileIdx + 1) return;
    const l = this.layout;
    if (section >= l.sections) return;
    for (const x of rs) x.doneAnswered = true;
    const start = sectionStart(l, section);
    const len = sectionLength(l, section);
    let count = 0;
    const inPassAhead = this.sending && section >= sectionOf(l, Math.min(this.cursor, l.blocks - 1));
    const target = inPassAhead ? this.toSend : this.naked;
    for (let i = 0; i < len; i++) {
      if ((naks[i >> 3] ?? 0) & (1 << (i & 7))) {
        count++;
        const b = start + i;
        if (inPassAhead && b < this.cursor) {
          this.markNaked(b);
        } else if (!(target[b >> 3] & (1 << (b & 7)))) {
          target[b >> 3] |= 1 << (b & 7);
          if (!inPassAhead) this.nakedCount++;
        }
      }
    }
    this.log(3, `Got ${count} NAKs for section ${section} from ${r ? 'client' : 'proxy'} ${hexId(id)}`);
    if (r && len > 0 && (count * 100) / len > this.cfg.maxNakPct) {
      r.nakStrikes++;
      if (r.nakStrikes >= this.cfg.maxNakCount) {
        this.log(1, `Too many NAKs from ${hexId(id)}, dropping`);
        this.sendAbort(id, 'Too many NAKs, dropping');
        this.dropReceiver(now, r, 'dropped');
        return;
      }
    }
    if (!this.sending && this.nakedCount > 0 && this.rewindAt === undefined && this.pass > 0) {
      this.log(3, 'Starting rewind timer');
      this.rewindAt = now + 3 * this.grtt * 1000;
    }
  }

  private ccFeedback(now: number, exts: readonly Extension[]): void {
    if (!this.tfmcc) return;
    for (const x of exts) {
      if (x.type !== 'EXT_TFMCC_ACK_INFO') continue;
      const r = this.receivers.get(x.clientId >>> 0);
      if (!r || r.state !== 'active') continue;
      this.tfmcc.feedback(now, x, x.timestamp.sec !== 0 || x.timestamp.usec !== 0 ? msOf(x.timestamp) : undefined);
    }
  }

  private markNaked(b: number): void {
    if (!(this.naked[b >> 3] & (1 << (b & 7)))) {
      this.naked[b >> 3] |= 1 << (b & 7);
      this.nakedCount++;
    }
  }

  // ---- phases ----

  private onPhaseTimer(now: number): void {
    switch (this.phase) {
      case 'announce':
        return this.announceRound(now);
      case 'fileinfo':
        return this.fileinfoRound(now);
      case 'closing':
        return this.closingRound(now);
      default:
        return;
    }
  }

  private announceRound(now: number): void {
    this.flushRegConf();
    this.updateGrtt();
    const missing = this.cfg.hosts ? this.cfg.hosts.filter((h) => !this.receivers.has(h >>> 0)) : [];
    const unconfirmed = this.cfg.security !== undefined && this.order.some((r) => r.state === 'active' && !r.hs.acked);
    if (this.rounds >= this.cfg.robust || (this.cfg.hosts !== undefined && missing.length === 0 && !unconfirmed)) {
      this.endAnnounce(now);
      return;
    }
    this.rounds++;
    this.log(3, `Sending ANNOUNCE ${this.rounds}`);
    for (const ids of chunk(missing, MAX_IDS)) {
      this.sendControl({
        type: 'ANNOUNCE', flags: (this.cfg.sync ? AnnounceFlag.SYNC_MODE : 0) | (this.cfg.syncPreview ? AnnounceFlag.SYNC_PREVIEW | AnnounceFlag.SYNC_MODE : 0),
        robust: this.cfg.robust, ccType: this.tfmcc ? CcType.TFMCC : CcType.NONE, blockSize: this.cfg.blockSize, timestamp: timestampOf(now),
        publicMcast: this.announcedAddr(this.cfg.publicAddr), privateMcast: this.announcedAddr(this.cfg.privateAddr),
        extensions: this.cfg.security ? [this.cfg.security.encInfo()] : [], clientIds: ids,
      }, this.cfg.publicAddr);
    }
    this.deadline = now + 3 * this.grtt * 1000;
  }

  private announcedAddr(a: string): string {
    return this.cfg.unicast ? (this.cfg.ipv6 ? '::' : '0.0.0.0') : a;
  }

  private flushRegConf(): void {
    const sec = this.cfg.security;
    if (sec) {
      // one KEYINFO entry per handshake: a client's own, or the proxy's for all the clients behind it
      const targets = new Map<ClientHandshake, number>();
      for (const r of this.order) {
        if (r.state !== 'active' || r.hs.acked || !sec.ready(this.cfg.groupId, r.hs) || targets.has(r.hs)) continue;
        let id = r.id;
        if (this.behindProxy.has(r.id)) for (const [pid, h] of this.proxyHs) if (h === r.hs) id = pid;
        targets.set(r.hs, id);
      }
      for (const part of chunk([...targets], 20)) {
        if (part.length === 0) continue;
        const ctr = ++this.ivCounter;
        const keys = [];
        for (const [hs, id] of part) {
          const e = sec.keyinfoEntry(this.cfg.uid, ctr, hs);
          if (e) keys.push({ clientId: id, encryptedGroupMaster: e });
        }
        this.log(3, 'Sending KEYINFO');
        this.sendControl({ type: 'KEYINFO', ivCounter: ctr, extensions: [], keys }, this.cfg.privateAddr);
      }
      // clients behind a proxy are confirmed with a REG_CONF once the proxy has the group key
      const conf = this.order.filter((r) => r.state === 'active' && r.regConfDue && r.hs.acked && this.behindProxy.has(r.id));
      for (const r of conf) r.regConfDue = false;
      for (const ids of chunk(conf.map((r) => r.id), MAX_IDS)) {
        if (ids.length === 0) continue;
        this.log(3, 'Sending REG_CONF');
        this.sendControl({ type: 'REG_CONF', extensions: [], clientIds: ids }, this.cfg.privateAddr);
      }
      return;
    }
    const due = this.order.filter((r) => r.regConfDue && r.state === 'active');
    if (due.length === 0) return;
    for (const r of due) r.regConfDue = false;
    for (const ids of chunk(due.map((r) => r.id), MAX_IDS)) {
      this.log(3, 'Sending REG_CONF');
      this.sendControl({ type: 'REG_CONF', extensions: [], clientIds: ids }, this.cfg.privateAddr);
    }
  }

  private endAnnounce(now: number): void {
    if (this.cfg.security) {
      for (const r of this.order) {
        if (!r.hs.acked && r.state === 'active') {
          this.log(1, `Client ${hexId(r.id)} did not complete the key exchange, dropping`);
          r.state = 'dropped';
        }
      }
    }
    if (this.cfg.hosts) {
      // a closed group reports every listed host, in the list's order; those that never registered are 'mute'
      for (const h of this.cfg.hosts) if (!this.receivers.has(h >>> 0)) this.addReceiver(h >>> 0, { address: '', port: 0 }, 0, { acked: false }, 'dropped');
      const at = new Map(this.cfg.hosts.map((h, i) => [h >>> 0, i]));
      this.order.sort((a, b) => (at.get(a.id) ?? 0) - (at.get(b.id) ?? 0));
    }
    if (this.cfg.quitOnError && this.order.some((r) => r.state !== 'active')) {
      // -q: a client that never answered ends the session before any file (the real uftp: every CONNECT failed, exit 7)
      for (const r of this.order) this.status(`CONNECT;failed;${hexId(r.id)}`);
      this.log(0, 'Not every client registered and -q is given, aborting');
      this.sendAbort(0, 'Not every client registered, aborting all');
      this.exitCode = UftpExit.NO_REGISTER;
      this.phase = 'finished';
      this.effects.push({ type: 'finished', exitCode: UftpExit.NO_REGISTER });
      return;
    }
    for (const r of this.order) this.status(`CONNECT;${r.state === 'active' ? 'success' : 'failed'};${hexId(r.id)}`);
    if (!this.order.some((r) => r.state === 'active')) {
      this.log(0, 'No clients responded to ANNOUNCE, exiting');
      this.finish(UftpExit.NO_REGISTER);
      return;
    }
    this.nextFile(now);
  }

  private nextFile(now: number): void {
    this.sending = false;
    this.rewindAt = undefined;
    this.nextDoneAt = undefined;
    this.chunks.clear();
    this.pendingReads.clear();
    this.fileIdx++;
    if (this.fileIdx >= this.cfg.files.length) {
      this.startClosing(now);
      return;
    }
    if (!this.order.some((r) => r.state === 'active')) {
      this.finish(UftpExit.ALL_DROPPED);
      return;
    }
    const f = this.cfg.files[this.fileIdx];
    this.layout = fileLayout(f.fileType === FileType.REG ? f.size : 0, this.cfg.blockSize);
    const l = this.layout;
    this.log(2, `----- ${f.displayName} -----`);
    this.log(2, `File ID: ${String(this.fileIdx + 1).padStart(4, '0')}  Name: ${f.displayName}`);
    if (f.fileType === FileType.REG) {
      this.log(2, `Bytes: ${f.size}  Blocks: ${l.blocks}  Sections: ${l.sections}`);
      this.log(3, `small section size: ${l.small}, big section size: ${l.bigCount > 0 ? l.small + 1 : l.small}, # big sections: ${l.bigCount}`);
    }
    for (const r of this.order) {
      if (r.state === 'active') r.fileState = 'pending';
      r.doneAnswered = false;
    }
    this.phase = 'fileinfo';
    this.rounds = 0;
    this.pass = 0;
    this.sentBytes = 0;
    this.toSend = new Uint8Array(Math.ceil(l.blocks / 8));
    this.naked = new Uint8Array(Math.ceil(l.blocks / 8));
    this.nakedCount = 0;
    this.dataStart = now;
    this.fileinfoRound(now);
  }

  private fileinfoRound(now: number): void {
    const pending = this.order.filter((r) => r.state === 'active' && r.fileState === 'pending');
    if (this.rounds >= this.cfg.robust) {
      for (const r of pending) {
        this.log(1, `Client ${hexId(r.id)} did not respond to FILEINFO, dropping`);
        this.dropReceiver(now, r, 'dropped');
      }
      if (this.phase === 'fileinfo') this.fileinfoDone(now);
      return;
    }
    this.rounds++;
    this.updateGrtt();
    const f = this.cfg.files[this.fileIdx];
    this.log(3, `Sending FILEINFO ${this.rounds}`);
    for (const ids of chunk(pending.map((r) => r.id), MAX_IDS)) {
      this.sendControl({
        type: 'FILEINFO', fileId: this.fileIdx + 1, fileType: f.fileType, fileSize: f.fileType === FileType.REG ? f.size : 0,
        fileTimestamp: f.fileType === FileType.LINK ? 0 : f.mtime, timestamp: timestampOf(now), name: f.name, linkName: f.linkName,
        extensions: [], clientIds: ids,
      }, this.cfg.privateAddr);
    }
    this.deadline = now + 3 * this.grtt * 1000;
  }

  private checkFileinfoDone(now: number): void {
    if (this.order.some((r) => r.state === 'active' && r.fileState === 'pending')) return;
    this.fileinfoDone(now);
  }

  private fileinfoDone(now: number): void {
    this.deadline = undefined;
    const receiving = this.order.filter((r) => r.state === 'active' && r.fileState === 'receiving');
    if (!this.order.some((r) => r.state === 'active')) {
      this.finish(this.everAckedFileinfo ? UftpExit.ALL_DROPPED : UftpExit.NO_FILEINFO_ACK);
      return;
    }
    if (receiving.length === 0) {
      this.fileDone(now);
      return;
    }
    this.updateGrtt();
    this.phase = 'data';
    this.dataStart = now;
    this.nextSendAt = now;
    this.toSend.fill(0xff);
    this.fileDeadline = undefined;
    if (this.cfg.txWeight !== undefined && this.cfg.rate !== undefined) {
      const l = this.layout;
      const optimal = ((l.size + l.blocks * (UFTP_HEADER_LEN + 8 + this.cfg.ipOverhead)) / this.cfg.rate) * 1000;
      this.fileDeadline = now + Math.max(optimal * (this.cfg.txWeight / 100), 1000 * this.grtt);
    }
    this.startPass(now, true);
  }

  private startPass(now: number, first = false): void {
    if (!first) {
      if (this.pass >= this.cfg.maxPasses) {
        for (const r of this.order) {
          if (r.state === 'active' && r.fileState === 'receiving') {
            this.log(1, `Maximum passes reached, aborting ${hexId(r.id)}`);
            this.sendAbort(r.id, 'Maximum passes reached');
            this.dropReceiver(now, r, 'dropped');
          }
        }
        if (this.phase === 'data') this.fileDone(now);
        return;
      }
      const t = this.toSend;
      this.toSend = this.naked;
      this.naked = t;
      this.naked.fill(0);
      this.nakedCount = 0;
    }
    this.pass++;
    this.log(2, `Starting pass ${this.pass}`);
    this.cursor = 0;
    this.sending = true;
    this.rewindAt = undefined;
    this.nextDoneAt = undefined;
    this.doneRounds = 0;
    this.skipToNext();
    if (this.cursor >= this.layout.blocks) this.endPass(now);
  }

  /** Advances the cursor to the next block whose bit is set in toSend (a byte at a time over runs of zeros). */
  private skipToNext(): void {
    const t = this.toSend;
    const n = this.layout.blocks;
    let b = this.cursor;
    while (b < n) {
      const byte = t[b >> 3];
      if (byte === 0) {
        b = (b | 7) + 1;
        continue;
      }
      if (byte & (1 << (b & 7))) break;
      b++;
    }
    this.cursor = Math.min(b, n);
  }

  private blockReady(): boolean {
    if (this.cursor >= this.layout.blocks) return true;
    const k = Math.floor(this.cursor / CHUNK_BLOCKS);
    return this.chunks.has(k);
  }

  private requestChunk(k: number): void {
    if (this.chunks.has(k) || this.pendingReads.has(k)) return;
    const per = this.cfg.blockSize * CHUNK_BLOCKS;
    const offset = k * per;
    if (offset >= this.layout.size) return;
    this.pendingReads.add(k);
    this.effects.push({ type: 'read', file: this.fileIdx, offset, length: Math.min(per, this.layout.size - offset) });
  }

  private nextSegment(now: number): Transmit | undefined {
    const l = this.layout;
    if (this.cursor >= l.blocks) {
      this.endPass(now);
      return this.controls.shift();
    }
    const b = this.cursor;
    const k = Math.floor(b / CHUNK_BLOCKS);
    const data = this.chunks.get(k);
    // read ahead: the next chunks of this pass
    for (let i = 0; i <= READ_AHEAD; i++) {
      const kk = k + i;
      if ((kk * CHUNK_BLOCKS) >= l.blocks) break;
      if (i > 0 && !this.chunkNeeded(kk)) continue;
      this.requestChunk(kk);
    }
    if (data === undefined) return undefined;
    if (this.chunks.size > MAX_CHUNKS) this.evict(k);
    const off = (b - k * CHUNK_BLOCKS) * this.cfg.blockSize;
    const len = blockLength(l, b);
    const section = sectionOf(l, b);
    const buf = this.nextBuffer();
    const h = this.segHeader;
    h.seq = this.seq;
    this.seq = (this.seq + 1) & 0xffff;
    h.grtt = this.grttByte;
    h.gsize = this.gsizeByte;
    const seg: Message = {
      type: 'FILESEG', fileId: this.fileIdx + 1, section, secBlock: b - sectionStart(l, section),
      extensions: this.tfmcc ? [{ type: 'EXT_TFMCC_DATA_INFO', ...this.tfmcc.dataInfo() }] : [], data: data.subarray(off, off + len),
    };
    let out: Uint8Array;
    if (this.cfg.security) {
      // the inner FILESEG into a scratch buffer the cipher reads at once, sealed into the ring's buffer
      h.func = MessageType.FILESEG;
      const inner = this.innerScratch();
      out = this.cfg.security.sealInto(h, inner.subarray(0, encodeMessageInto(seg, inner, 0)), ++this.ivCounter, buf);
    } else {
      out = buf.subarray(0, encodePacketInto({ header: h, message: seg }, buf));
    }
    const n = out.length;
    this.toSend[b >> 3] &= ~(1 << (b & 7));
    this.cursor = b + 1;
    this.skipToNext();
    this.sentBytes += len;
    if ((b & 1023) === 0) this.progress();
    const rate = this.paceRate();
    if (rate !== undefined) this.nextSendAt += ((n + this.cfg.ipOverhead) / rate) * 1000;
    return { to: { address: this.cfg.privateAddr, port: this.cfg.port }, data: out };
  }

  /** Bytes per second the pacer keeps to: TFMCC's current rate, -R, or undefined for as fast as possible. */
  private paceRate(): number | undefined {
    return this.tfmcc ? this.tfmcc.rate : this.cfg.rate;
  }

  /** Whether chunk k has a block still to send in this pass. */
  private chunkNeeded(k: number): boolean {
    const from = k * CHUNK_BLOCKS;
    const to = Math.min(this.layout.blocks, from + CHUNK_BLOCKS);
    for (let b = from; b < to; b += 8) {
      if (this.toSend[b >> 3] !== 0) return true;
    }
    return false;
  }

  private evict(current: number): void {
    for (const k of this.chunks.keys()) {
      if (k < current) this.chunks.delete(k);
      if (this.chunks.size <= MAX_CHUNKS) return;
    }
  }

  /** An encrypted FILESEG's plaintext, before it is sealed into a ring buffer (one per machine, used at once). */
  private innerScratch(): Buffer {
    if (this.scratch === undefined) this.scratch = Buffer.allocUnsafe(SEG_ROOM + this.cfg.blockSize);
    return this.scratch;
  }

  private nextBuffer(): Buffer {
    let b = this.ring[this.ringPos];
    if (b === undefined) {
      // encrypted: the ENCRYPTED fixed part, an HMAC of up to 64 bytes and CBC padding or a GCM tag besides
      b = Buffer.allocUnsafe(UFTP_HEADER_LEN + SEG_ROOM + this.cfg.blockSize + (this.cfg.security ? SEAL_ROOM : 0));
      this.ring[this.ringPos] = b;
    }
    this.ringPos = (this.ringPos + 1) % RING;
    return b;
  }

  private endPass(now: number): void {
    this.sending = false;
    this.progress();
    for (const r of this.order) r.doneAnswered = false;
    this.doneRounds = 0;
    this.doneRound(now);
    if (this.phase === 'data' && this.nakedCount > 0 && this.rewindAt === undefined) {
      this.log(3, 'Starting rewind timer');
      this.rewindAt = now + 3 * this.grtt * 1000;
    }
  }

  private progress(): void {
    let done = 0;
    for (const r of this.order) if (r.fileState === 'complete') done++;
    this.effects.push({ type: 'progress', file: this.fileIdx, sentBytes: this.sentBytes, doneReceivers: done, receivers: this.order.length });
  }

  private doneRound(now: number): void {
    const waiting = this.order.filter((r) => r.state === 'active' && r.fileState === 'receiving');
    if (waiting.length === 0) {
      this.fileDone(now);
      return;
    }
    if (this.doneRounds >= this.cfg.robust) {
      for (const r of waiting) {
        if (r.doneAnswered) continue;
        this.log(1, `Client ${hexId(r.id)} did not respond to DONE, dropping`);
        this.dropReceiver(now, r, 'dropped');
      }
      if (this.phase === 'data' && !this.order.some((r) => r.state === 'active' && r.fileState === 'receiving')) this.fileDone(now);
      else if (this.phase === 'data' && this.rewindAt === undefined) this.rewindAt = now;
      return;
    }
    this.doneRounds++;
    const section = Math.max(0, this.layout.sections - 1);
    this.log(3, `Sending DONE ${this.doneRounds}`);
    for (const ids of chunk(waiting.map((r) => r.id), MAX_IDS)) {
      this.sendControl({ type: 'DONE', fileId: this.fileIdx + 1, section, extensions: [], clientIds: ids }, this.cfg.privateAddr);
    }
    this.nextDoneAt = now + 3 * this.grtt * 1000;
  }

  private checkFileDone(now: number): void {
    if (this.phase !== 'data') return;
    if (this.order.some((r) => r.state === 'active' && r.fileState === 'receiving')) return;
    this.fileDone(now);
  }

  private abortFile(reason: string): void {
    for (const r of this.order) {
      if (r.state === 'active' && r.fileState === 'receiving') {
        r.fileState = 'dropped';
        this.log(1, `${hexId(r.id)}: ${reason}`);
      }
    }
    this.sending = false;
  }

  private fileDone(now: number): void {
    const f = this.cfg.files[this.fileIdx];
    this.fileDeadline = undefined;
    this.sending = false;
    this.rewindAt = undefined;
    this.nextDoneAt = undefined;
    this.phase = 'data';
    this.log(2, 'Transfer status:');
    let maxSecs = 0;
    for (const r of this.order) {
      const res = r.results.get(this.fileIdx);
      if (res) {
        maxSecs = Math.max(maxSecs, res.seconds);
        this.log(2, `Host: ${hexId(r.id)}       Status: ${res.status === 'copy' ? 'Completed' : res.status}   time: ${res.seconds.toFixed(3).padStart(7)} seconds`);
        if (res.freespace !== undefined) this.log(2, `  Free space on host: ${res.freespace} bytes`);
        const kb = Math.floor(f.size / 1024);
        const speed = res.seconds > 0 ? f.size / 1024 / res.seconds : 0;
        // the real uftp: "overwritten" (the man page says overwrite), and no speed for a rejected or skipped file
        // ("RESULT;0x0A5B0115;d/lnk;0KB;rejected;", "RESULT;0x0A5B0115;same;9KB;skipped;")
        const word = res.status === 'overwrite' ? 'overwritten' : res.status;
        const noSpeed = res.status === 'rejected' || res.status === 'skipped';
        this.status(`RESULT;${hexId(r.id)};${f.displayName};${kb}KB;${word};${noSpeed ? '' : `${speed.toFixed(2)}KB/s`}`);
      } else {
        this.log(2, `Host: ${hexId(r.id)}       Status: ${r.state === 'aborted' ? 'Aborted' : 'Lost connection'}`);
        // the real uftp: "RESULT;0x0A5D0199;f;0KB;mute;" for a listed host that never answered
        this.status(`RESULT;${hexId(r.id)};${f.displayName};${Math.floor(f.size / 1024)}KB;mute;`);
      }
    }
    this.log(2, `Total elapsed time: ${maxSecs.toFixed(3)} seconds`);
    this.nextFile(now);
  }

  private startClosing(now: number): void {
    this.phase = 'closing';
    this.rounds = 0;
    this.log(2, '-----------------------------');
    this.log(2, 'Finishing group');
    if (!this.order.some((r) => r.state === 'active')) {
      this.finish(this.finalExit());
      return;
    }
    this.closingRound(now);
  }

  private closingRound(now: number): void {
    const waiting = this.order.filter((r) => r.state === 'active');
    if (waiting.length === 0 || this.rounds >= this.cfg.robust) {
      for (const r of waiting) {
        this.log(1, `Client ${hexId(r.id)} did not confirm the end of the session`);
        r.state = 'dropped';
      }
      this.finish(this.finalExit());
      return;
    }
    this.rounds++;
    for (const ids of chunk(waiting.map((r) => r.id), MAX_IDS)) {
      this.sendControl({ type: 'DONE', fileId: 0, section: 0, extensions: [], clientIds: ids }, this.cfg.privateAddr);
    }
    this.deadline = now + 3 * this.grtt * 1000;
  }

  private finalExit(): number {
    if (this.exitCode !== undefined) return this.exitCode;
    if (this.cfg.quitOnError && this.order.some((r) => r.state === 'dropped' || r.state === 'aborted')) return UftpExit.ALL_DROPPED;
    if (this.cfg.files.length > 0 && !this.everGotFile) return UftpExit.NOTHING_RECEIVED;
    return UftpExit.OK;
  }

  private finish(code: number): void {
    if (this.phase === 'finished') return;
    this.phase = 'finished';
    this.sending = false;
    this.deadline = undefined;
    this.exitCode = code;
    if (this.order.length > 0 && code !== UftpExit.NO_REGISTER) {
      this.status('HSTATS;target;copy;overwrite;skip;totalMB;time;speedKB/s');
      for (const r of this.order) {
        const speed = r.totalSeconds > 0 ? r.totalBytes / 1024 / r.totalSeconds : 0;
        this.status(`STATS;${hexId(r.id)};${r.counts.copy};${r.counts.overwrite};${r.counts.skip};${Math.floor(r.totalBytes / 1048576)}MB;${r.totalSeconds.toFixed(3)};${speed.toFixed(2)}KB/s`);
      }
    }
    if (this.cfg.restartable && code !== UftpExit.INTERRUPTED) {
      const failed = this.order
        .filter((r) => this.cfg.files.some((_, i) => !this.gotFile(r, i)))
        .map((r) => ({ id: r.id, completed: this.cfg.files.map((_, i) => i).filter((i) => this.gotFile(r, i)) }));
      if (failed.length > 0) this.effects.push({ type: 'restart', failed });
    }
    this.log(2, code === UftpExit.OK ? 'Group complete' : `Session ended, exit code ${code}`);
    this.effects.push({ type: 'finished', exitCode: code });
  }

  /** Whether the client has the file: it completed it (copy, overwrite) or already had it (skipped). */
  private gotFile(r: Receiver, i: number): boolean {
    const res = r.results.get(i);
    return res !== undefined && res.status !== 'rejected';
  }

  private dropReceiver(now: number, r: Receiver, how: 'dropped' | 'aborted'): void {
    this.tfmcc?.forget(r.id);
    r.state = how;
    r.fileState = 'dropped';
    // nobody acknowledged a FILEINFO yet: 8, also with -q (the real uftp's code when a client aborts on the FILEINFO)
    const gone = this.phase === 'fileinfo' && !this.everAckedFileinfo ? UftpExit.NO_FILEINFO_ACK : UftpExit.ALL_DROPPED;
    if (this.cfg.quitOnError) {
      this.sendAbort(0, `Client ${hexId(r.id)} ${how}, aborting all`);
      this.finish(gone);
      return;
    }
    if (!this.order.some((x) => x.state === 'active')) {
      this.finish(gone);
      return;
    }
    if (this.phase === 'fileinfo') this.checkFileinfoDone(now);
    else if (this.phase === 'data' && !this.sending) this.checkFileDone(now);
    else if (this.phase === 'closing' && !this.order.some((x) => x.state === 'active')) this.finish(this.finalExit());
  }

  // ---- helpers ----

  private rttFrom(now: number, ts: Timestamp): number {
    const rtt = (now - msOf(ts)) / 1000;
    return Math.max(0.001, Number.isFinite(rtt) ? rtt : this.grtt);
  }

  /** GRTT = the largest client RTT, within [min, max]; after the first measurement never below 0.9 of the last. */
  private updateGrtt(): void {
    const active = this.order.filter((r) => r.state === 'active');
    if (active.length === 0) return;
    let g = Math.max(...active.map((r) => r.rtt));
    if (this.grttSet) g = Math.max(g, 0.9 * this.grtt);
    g = Math.min(this.cfg.grttMax, Math.max(this.cfg.grttMin, g));
    this.grtt = g;
    this.grttSet = true;
    this.grttByte = quantizeGrtt(g);
  }

  private header(func: number): UftpHeader {
    return { version: UFTP_VER_NUM, func, seq: 0, srcId: this.cfg.uid, groupId: this.cfg.groupId, groupInst: this.cfg.groupInst ?? 0, grtt: this.grttByte, gsize: this.gsizeByte, reserved: 0 };
  }

  private sendControl(message: Message, to: string): void {
    const header = this.header(MessageType[message.type]);
    header.seq = this.seq;
    this.seq = (this.seq + 1) & 0xffff;
    const p: Packet = { header, message };
    const sec = this.cfg.security;
    let out: Uint8Array | undefined;
    if (sec && message.type === 'ANNOUNCE') out = sec.encodeAnnounce(p);
    else if (sec && message.type !== 'KEYINFO' && message.type !== 'REG_CONF') out = sec.seal(header, encodeMessageBody(message), ++this.ivCounter);
    if (out === undefined) {
      out = new Uint8Array(packetLength(p));
      encodePacketInto(p, out);
    }
    this.controls.push({ to: { address: to, port: this.cfg.port }, data: out });
  }

  private sendAbort(host: number, text: string): void {
    this.sendControl({ type: 'ABORT', flags: 0, host, message: text, extensions: [] }, this.cfg.privateAddr);
  }

  private log(level: number, text: string): void {
    this.effects.push({ type: 'log', level, text });
  }

  private status(line: string): void {
    this.effects.push({ type: 'status', line });
  }
}
