/**
 * One server-side transfer, from the request to the end, as a state machine with no I/O.
 *
 * A request carrying the `ktftp` option starts the secure handshake: the server answers with an OACK holding
 * its ephemeral X25519 value, its static public key and a signature over the request and the OACK; from then
 * on every packet is SEALED. The client's first sealed packet is AUTH (its key and signature, a Kerberos
 * AP-REQ, or nothing); only then is the tag looked up and the ACL checked, and the answer (DATA 1, ACK 0 or
 * ERROR) is sealed. A request without `ktftp` is plain TFTP, allowed only on tags whose ACL lists `anonymous`.
 *
 * It is the transfer's machine (src/core/machine.ts): handle(now, from, datagram), handleTimeout(now) and the
 * driver's effect results in; datagrams (pollTransmit), effects (pollEffect: krb5, open, read, write, commit,
 * command, prepare, done; machine.ts KtftpEffect) and the next deadline out. A datagram from anyone but the peer
 * gets ERROR 5 and changes nothing. The steps inside return the datagrams they send; `send` queues them.
 */
import type { KeyObject } from 'node:crypto';
import {
  agree,
  CLIENT_SIG_LABEL,
  deriveKeys,
  generateEphemeral,
  publicKeyFromDer,
  SERVER_SIG_LABEL,
  sessionCiphers,
  sha256,
  signWith,
  verifyWith,
  SealAhead,
  type Opener,
} from './crypto.js';
import { sameEndpoint, type ArmedReply, type Endpoint, type Machine } from '../core/machine.js';
import type { KtftpEffect, KtftpEffectResult } from './machine.js';
import { TransferOutbox } from './outbox.js';
import { ReadAheadSource, releaseOpened, WriteBehindSink, type FsResult, type Sink, type Source, type TagFs } from './fileops.js';
import { fromNetascii, toNetascii } from './netascii.js';
import { authorize, type Identity, type IdentTable, type TagTable } from './tags.js';
import { DataReceiver, DataSender, errorPacket, type Outcome, type TransferParams } from './transfer.js';
import { decode, encode, ErrCode, getOption, opcodeOf, Op, type Option, type Packet, type RequestOp } from './wire.js';

export interface ServerKey {
  readonly privateKey: KeyObject;
  /** DER SubjectPublicKeyInfo, as sent in the OACK `sk` option. */
  readonly publicDer: Buffer;
}

export type Krb5Verdict = { ok: true; principal: string } | { ok: false; error: string };

export interface ServerContext {
  readonly tags: TagTable;
  readonly idents: IdentTable;
  readonly fs: TagFs;
  readonly key: ServerKey | null;
  /** Fingerprint of a client's public key, as the identfile writes it; null if it has none. */
  fingerprintOf(pub: KeyObject): string | null;
  /** Whether AUTH with a Kerberos AP-REQ can be accepted (a keytab is configured). */
  readonly krb5: boolean;
  log(level: number, msg: string): void;
  readonly maxBlksize: number;
  readonly maxWindow: number;
  /** Defaults when the client sends no `timeout` option, ms. */
  readonly rexmt: number;
  readonly timeout: number;
}

/** Most bytes of file data a session holds for retransmission (windowsize x blksize). */
export const MAX_WINDOW_BYTES = 1024 * 1024;

type State = 'await-auth' | 'await-ack0' | 'krb5-pending' | 'open-pending' | 'command-pending' | 'sending' | 'receiving' | 'linger' | 'done';

/** A file for the driver to open (a TagFs without openRead/openWrite); the answer comes to openResult. */
export type OpenRequest = { readonly mode: 'read'; readonly path: string } | { readonly mode: 'write'; readonly path: string; readonly tsize: number | null };

/** The driver's answer to an OpenRequest. */
export type OpenResult = { readonly mode: 'read'; readonly result: FsResult<Source> } | { readonly mode: 'write'; readonly result: FsResult<Sink> };

export interface ServerOutput {
  readonly send: Buffer[];
}

export class ServerSession extends TransferOutbox implements Machine<KtftpEffect, KtftpEffectResult> {
  /** The peer as logs name it. */
  readonly peerName: string;
  private state: State = 'done';
  private secure = false;
  private sealer: SealAhead | null = null;
  private opener: Opener | null = null;
  private transcript: Buffer = Buffer.alloc(0);
  private oack: Buffer | null = null;
  private params: TransferParams;
  private tsize: number | null = null;
  private sender: DataSender | null = null;
  private receiver: DataReceiver | null = null;
  /** Last answer, resent on a duplicate AUTH or request and on timeout while lingering (push/delete). */
  private lastAnswer: Packet[] = [];
  private next: number | null = null;
  private started: number;
  private lastHeard: number;
  private identity: Identity = { kind: 'anonymous' };
  outcome: Outcome | null = null;
  readonly op: RequestOp;
  readonly tag: string;
  private mode = 'octet';

  private constructor(private readonly ctx: ServerContext, readonly peer: Endpoint, op: RequestOp, tag: string, now: number) {
    super();
    this.peerName = `${peer.address}:${peer.port}`;
    this.op = op;
    this.tag = tag;
    this.started = now;
    this.lastHeard = now;
    this.params = { blksize: 512, windowsize: 1, rexmt: ctx.rexmt, timeout: ctx.timeout };
  }

  /**
   * Starts a session from a request datagram (its first datagrams and effects queued); null when the datagram is
   * not a request (nothing is sent).
   */
  static fromRequest(ctx: ServerContext, now: number, peer: Endpoint, datagram: Uint8Array): { session: ServerSession } | { error: Buffer } | null {
    const d = decode(datagram);
    if (!d.ok) {
      const op = opcodeOf(datagram);
      if (op === Op.RRQ || op === Op.WRQ || op === Op.PUSH || op === Op.DELETE)
        return { error: encode(errorPacket(ErrCode.BADOP, `Illegal TFTP operation: ${d.error.message}`)) };
      return null;
    }
    const p = d.value;
    if (p.type !== 'REQUEST') return null; // a stray packet on the request port: ignore (RFC 1350 has no answer)
    const s = new ServerSession(ctx, { address: peer.address, port: peer.port }, p.op, p.tag, now);
    s.send(s.start(now, p.mode, p.options, Buffer.from(datagram)));
    return { session: s };
  }

  // ---- the machine (src/core/machine.ts) ----

  handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    if (!sameEndpoint(from, this.peer)) {
      this.tx.push({ to: { address: from.address, port: from.port }, data: ServerSession.strangerReply() });
      return;
    }
    this.send(this.step(now, bytes));
  }

  handleTimeout(now: number): void {
    this.send(this.onTimeout(now));
  }

  handleEffectResult(r: KtftpEffectResult, now: number): void {
    switch (r.kind) {
      case 'read':
        r.file.feed(r.result);
        return this.send(this.sendMore(now));
      case 'open':
        return this.send(this.openResult(now, r));
      case 'command':
        return this.send(this.commandResult(now, r.result));
      case 'write':
      case 'commit':
        if (r.kind === 'write') r.file.feedWrite(r.result);
        else r.file.feedCommit(r.result);
        return this.send(this.fileProgress(now));
      case 'krb5':
        return this.send(this.krb5Result(now, r.verdict));
    }
  }

  pollTimeout(): number | undefined {
    return this.deadline ?? undefined;
  }

  /**
   * The armed reply (machine.ts ArmedReply; docs/net-engine.md): in a plain lock-step get (windowsize 1), once
   * DATA N is out and DATA N+1 is read ahead, the answer to ACK N from the peer is exactly DATA N+1. Not for
   * sealed transfers (every packet is sealed anew), nor the last block (its ACK ends the transfer), nor while the
   * next block is not read yet.
   */
  pollArm(): ArmedReply | undefined {
    if (this.state !== 'sending' || this.secure || this.sender === null || this.params.windowsize !== 1) return undefined;
    const next = this.sender.peekNext();
    if (next.length !== 1) return undefined;
    const p = next[0];
    if (p.type !== 'DATA') return undefined;
    const c = this.armCache;
    if (c !== null && c.block === p.block && c.data === p.data) return c.arm;
    const reply = encode(p);
    const arm: ArmedReply = { from: this.peer, expect: encode({ type: 'ACK', block: (p.block - 1) & 0xffff }), reply };
    this.armCache = { block: p.block, data: p.data, reply, arm };
    return arm;
  }

  /** The last armed reply: out() answers with its very bytes (encoded once, and the driver compares by identity). */
  private armCache: { readonly block: number; readonly data: Uint8Array; readonly reply: Buffer; readonly arm: ArmedReply } | null = null;

  /** The get's file is a stream (a FIFO, a device) that has more data now. */
  poke(now: number): void {
    this.send(this.sendMore(now));
  }

  /** Queues what a step sends, then the effects its state asks for. */
  private send(out: readonly Buffer[]): void {
    this.emit(this.peer, out, this.deadline === null, this.readAhead, this.writeBehind, this.wantsPrepare);
  }

  /** A sealed transfer is running and nothing is sealed ahead: prepare() is worth calling when idle (machine.ts turns this into a prepare effect). */
  get wantsPrepare(): boolean {
    return this.sealer !== null && this.sealer.empty && (this.state === 'sending' || this.state === 'receiving');
  }

  /**
   * Seals the packets this session will most likely send next (the next window of DATA, or the next ACK) so
   * that answering the peer costs no sealing; call it when there is nothing else to do (after the sends).
   */
  prepare(): void {
    this.prepared();
    if (!this.wantsPrepare) return;
    const next = this.state === 'sending' ? (this.sender?.peekNext() ?? []) : (this.receiver?.peekNext() ?? []);
    if (next.length > 0) this.sealer!.prepare(next.map((p) => encode(p)));
  }

  get deadline(): number | null {
    return this.state === 'done' ? null : this.next;
  }

  get identityName(): string {
    return this.identity.kind === 'named' ? `${this.identity.name} (${this.identity.via})` : 'anonymous';
  }

  get isSecure(): boolean {
    return this.secure;
  }

  get bytes(): number {
    return this.sender?.bytes ?? this.receiver?.bytes ?? 0;
  }

  /** The answer to a packet from a port other than the peer's (RFC 1350: ERROR 5, transfer goes on). */
  static strangerReply(): Buffer {
    return encode(errorPacket(ErrCode.BADID, 'Unknown transfer ID'));
  }

  private finish(outcome: Outcome): void {
    if (this.outcome === null) this.outcome = outcome;
    this.state = 'done';
    this.next = null;
  }

  /** Encodes and, in a secure session, seals. */
  private out(packets: Packet[]): Buffer[] {
    const c = this.armCache;
    if (c !== null && packets.length === 1) {
      const p = packets[0];
      if (p.type === 'DATA' && p.block === c.block && p.data === c.data && this.sealer === null) return [c.reply];
    }
    return packets.map((p) => {
      const b = encode(p);
      return this.sealer !== null ? this.sealer.seal(b) : b;
    });
  }

  private fail(code: number, message: string): Buffer[] {
    this.ctx.log(2, `${this.peerName} ${this.op} ${this.tag}: refused: ${message}`);
    const send = this.out([errorPacket(code, message)]);
    this.finish({ ok: false, kind: 'tftp', code, message, remote: false });
    return send;
  }

  private negotiate(options: readonly Option[], accepted: Option[]): string | null {
    let blksize = 512;
    let windowsize = 1;
    let rexmt = this.ctx.rexmt;
    for (const [name, value] of options) {
      const n = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
      switch (name) {
        case 'blksize':
          if (!(n >= 8)) return `bad blksize "${value}"`;
          blksize = Math.min(n, this.ctx.maxBlksize);
          accepted.push(['blksize', String(blksize)]);
          break;
        case 'windowsize':
          if (!(n >= 1 && n <= 65535)) return `bad windowsize "${value}"`;
          windowsize = Math.min(n, this.ctx.maxWindow);
          accepted.push(['windowsize', String(windowsize)]);
          break;
        case 'timeout':
          if (!(n >= 1 && n <= 255)) return `bad timeout "${value}"`;
          rexmt = n * 1000;
          accepted.push(['timeout', String(n)]);
          break;
        case 'tsize':
          if (!(n >= 0)) return `bad tsize "${value}"`;
          this.tsize = this.op === 'WRQ' ? n : null;
          // The RRQ answer is filled in once the tag is known (plain mode only).
          accepted.push(['tsize', value]);
          break;
        default:
          break; // unknown options are ignored (RFC 2347)
      }
    }
    // A sender keeps one window in memory: bound it, whatever the client asks for.
    const maxWin = Math.max(1, Math.floor(MAX_WINDOW_BYTES / blksize));
    if (windowsize > maxWin) {
      windowsize = maxWin;
      const i = accepted.findIndex(([n]) => n === 'windowsize');
      if (i >= 0) accepted[i] = ['windowsize', String(windowsize)];
    }
    this.params = { blksize, windowsize, rexmt, timeout: Math.max(this.ctx.timeout, rexmt * 5) };
    return null;
  }

  private start(now: number, mode: string, options: readonly Option[], request: Buffer): Buffer[] {
    if (mode !== 'octet' && mode !== 'netascii') {
      this.finish({ ok: false, kind: 'tftp', code: ErrCode.BADOP, message: `mode ${mode}`, remote: false });
      return [encode(errorPacket(ErrCode.BADOP, `Illegal TFTP operation: mode "${mode}" is not supported`))];
    }
    this.mode = mode;
    if (getOption(options, 'ktftp') !== undefined) return this.startSecure(now, options, request);
    return this.startPlain(now, options);
  }

  // ---- plain RFC 1350 (anonymous tags only) ----

  private startPlain(now: number, options: readonly Option[]): Buffer[] {
    const d = authorize(this.ctx.tags, this.tag, { kind: 'anonymous' });
    if (!d.ok) return this.fail(ErrCode.ACCESS, d.message);
    const accepted: Option[] = [];
    const bad = this.negotiate(options, accepted);
    if (bad !== null) return this.fail(ErrCode.OPTION, `Option negotiation failed: ${bad}`);
    if (this.op === 'PUSH' || this.op === 'DELETE') return this.runCommand(now, d.path);
    if (this.op === 'RRQ') {
      return this.openRead(now, d.path, (at) => {
        const ts = accepted.findIndex(([n]) => n === 'tsize');
        if (ts >= 0) {
          const size = this.mode === 'octet' ? this.sourceSize : null;
          if (size === null) accepted.splice(ts, 1);
          else accepted[ts] = ['tsize', String(size)];
        }
        if (accepted.length === 0) {
          this.state = 'sending';
          return this.afterData(this.out(this.sender!.start(at)));
        }
        this.oack = encode({ type: 'OACK', options: accepted });
        this.state = 'await-ack0';
        this.next = at + this.params.rexmt;
        return [this.oack];
      });
    }
    return this.openWrite(now, d.path, () => {
      this.state = 'receiving';
      if (accepted.length === 0) {
        this.lastAnswer = [{ type: 'ACK', block: 0 }];
        return this.out(this.lastAnswer);
      }
      this.oack = encode({ type: 'OACK', options: accepted });
      return [this.oack];
    });
  }

  private sourceSize: number | null = null;

  /** The get's file when the driver reads it (ReadAheadSource: the machine turns its wants into read effects). */
  readAhead: ReadAheadSource | null = null;

  /** The file has more data (a read the driver did came back): sends the blocks of the window not sent yet. */
  private sendMore(now: number): Buffer[] {
    if (this.state !== 'sending' || this.sender === null) return [];
    return this.afterData(this.out(this.sender.poke(now)));
  }

  /** What the transfer does once its file is open. */
  private onOpen: ((now: number) => Buffer[]) | null = null;

  /** Opens the get's file (in the step, or through the driver), then goes on with `then`. */
  private openRead(now: number, path: string, then: (now: number) => Buffer[]): Buffer[] {
    const open = this.ctx.fs.openRead;
    if (open !== undefined) return this.opened(now, { mode: 'read', result: open.call(this.ctx.fs, path) }, then);
    return this.askOpen(now, { mode: 'read', path }, then);
  }

  /** Opens the put's file (in the step, or through the driver), then goes on with `then`. */
  private openWrite(now: number, path: string, then: (now: number) => Buffer[]): Buffer[] {
    const open = this.ctx.fs.openWrite;
    if (open !== undefined) return this.opened(now, { mode: 'write', result: open.call(this.ctx.fs, path, this.tsize) }, then);
    return this.askOpen(now, { mode: 'write', path, tsize: this.tsize }, then);
  }

  private askOpen(now: number, req: OpenRequest, then: (now: number) => Buffer[]): Buffer[] {
    this.fx.push({ kind: 'open', ...req });
    this.onOpen = then;
    this.state = 'open-pending';
    this.next = now + this.params.rexmt;
    return [];
  }

  /** The driver opened the file of the `open` effect (or failed to): the transfer starts, or the client gets the error. */
  private openResult(now: number, r: OpenResult): Buffer[] {
    const then = this.onOpen;
    if (this.state !== 'open-pending' || then === null) {
      releaseOpened(r.result); // the transfer ended meanwhile
      return [];
    }
    this.onOpen = null;
    return this.opened(now, r, then);
  }

  private opened(now: number, r: OpenResult, then: (now: number) => Buffer[]): Buffer[] {
    if (!r.result.ok) return this.fail(r.result.code, r.result.message);
    if (r.mode === 'read') {
      const src = r.result.value;
      if (src instanceof ReadAheadSource) this.readAhead = src;
      this.sourceSize = src.size;
      this.sender = new DataSender(this.mode === 'netascii' ? toNetascii(src) : src, this.params, now);
    } else {
      const sink = r.result.value;
      if (sink instanceof WriteBehindSink) this.writeBehind = sink;
      this.receiver = new DataReceiver(this.mode === 'netascii' ? fromNetascii(sink) : sink, this.params, now, this.writeBehind);
      this.next = this.receiver.deadline;
    }
    return then(now);
  }

  /** The put's file when the driver writes it (WriteBehindSink: the machine turns its wants into write effects). */
  writeBehind: WriteBehindSink | null = null;

  /** A write or the commit the driver did came back: the receiver answers (ERROR, or the last block's ACK). */
  private fileProgress(now: number): Buffer[] {
    if (this.receiver === null || (this.state !== 'receiving' && this.state !== 'linger')) return [];
    return this.afterData(this.out(this.receiver.fileProgress(now)));
  }

  private runCommand(now: number, path: string): Buffer[] {
    if (this.op === 'PUSH' && this.tag.endsWith('~')) {
      return this.fail(ErrCode.BADOP, `Illegal KTFTP operation: push of the holder "${this.tag}"`);
    }
    const fs = this.ctx.fs;
    const inStep = this.op === 'PUSH' ? fs.push : fs.remove;
    if (inStep === undefined) {
      // the driver renames or unlinks (a `command` effect) and answers with commandResult
      this.fx.push({ kind: 'command', op: this.op === 'PUSH' ? 'push' : 'delete', path });
      this.state = 'command-pending';
      this.next = now + this.params.rexmt;
      return [];
    }
    return this.commandDone(now, inStep.call(fs, path));
  }

  /** The driver did the push or delete of the `command` effect: ACK 0, or the error. */
  private commandResult(now: number, r: FsResult<void>): Buffer[] {
    if (this.state !== 'command-pending') return [];
    return this.commandDone(now, r);
  }

  private commandDone(now: number, r: FsResult<void>): Buffer[] {
    if (!r.ok) return this.fail(r.code, r.message);
    this.ctx.log(2, `${this.peerName} ${this.op} ${this.tag} by ${this.identityName}: done`);
    this.lastAnswer = [{ type: 'ACK', block: 0 }];
    // Linger to answer a repeated AUTH/request (the ACK may be lost) without doing the operation twice.
    this.state = 'linger';
    this.outcome = { ok: true, bytes: 0 };
    this.next = now + this.params.timeout;
    return this.out(this.lastAnswer);
  }

  // ---- secure KTFTP ----

  private startSecure(now: number, options: readonly Option[], request: Buffer): Buffer[] {
    const plainErr = (code: number, message: string): Buffer[] => {
      this.finish({ ok: false, kind: 'tftp', code, message, remote: false });
      return [encode(errorPacket(code, message))];
    };
    if (getOption(options, 'ktftp') !== '1') return plainErr(ErrCode.OPTION, 'Option negotiation failed: unsupported ktftp version');
    if (this.ctx.key === null) return plainErr(ErrCode.OPTION, 'Option negotiation failed: this server has no key');
    const kx = Buffer.from(getOption(options, 'kx') ?? '', 'base64');
    const eph = generateEphemeral();
    const shared = agree(eph, kx);
    if (shared === null) return plainErr(ErrCode.OPTION, 'Option negotiation failed: bad kx value');
    const auth = getOption(options, 'auth') ?? 'key';
    if (auth !== 'key' && auth !== 'krb5' && auth !== 'none') return plainErr(ErrCode.OPTION, `Option negotiation failed: auth "${auth}"`);
    const accepted: Option[] = [];
    const bad = this.negotiate(
      options.filter(([n]) => n !== 'tsize' || this.op === 'WRQ'),
      accepted,
    );
    if (bad !== null) return plainErr(ErrCode.OPTION, `Option negotiation failed: ${bad}`);
    accepted.push(['ktftp', '1'], ['kx', eph.publicRaw.toString('base64')], ['sk', this.ctx.key.publicDer.toString('base64')]);
    const prefix = encode({ type: 'OACK', options: accepted });
    const sig = signWith(this.ctx.key.privateKey, SERVER_SIG_LABEL, sha256(request, prefix));
    const oack = encode({ type: 'OACK', options: [...accepted, ['sig', sig.toString('base64')]] });
    this.transcript = sha256(request, oack);
    const { sealer: rawSealer, opener } = sessionCiphers(deriveKeys(shared, this.transcript), 'server');
    this.sealer = new SealAhead(rawSealer);
    this.opener = opener;
    this.secure = true;
    this.oack = oack;
    this.state = 'await-auth';
    this.next = now + this.params.rexmt;
    return [oack];
  }

  private onAuth(now: number, p: Extract<Packet, { type: 'AUTH' }>): Buffer[] {
    switch (p.method) {
      case 'none':
        this.identity = { kind: 'anonymous' };
        return this.authorized(now);
      case 'key': {
        const pub = publicKeyFromDer(p.credential);
        if (pub === null || !verifyWith(pub, CLIENT_SIG_LABEL, this.transcript, p.proof))
          return this.fail(ErrCode.ACCESS, 'Access violation: client signature does not verify');
        const fp = this.ctx.fingerprintOf(pub);
        const name = fp === null ? undefined : this.ctx.idents.byFingerprint.get(fp);
        if (name === undefined) return this.fail(ErrCode.NOUSER, `No such user: key ${fp ?? '?'} is not in the identity file`);
        this.identity = { kind: 'named', name, via: 'key' };
        return this.authorized(now);
      }
      case 'krb5':
        if (!this.ctx.krb5) return this.fail(ErrCode.NOUSER, 'No such user: this server does not accept Kerberos');
        this.fx.push({ kind: 'krb5', token: Buffer.from(p.credential) });
        this.state = 'krb5-pending';
        return [];
    }
  }

  /** The driver's verdict on the AP-REQ of the `krb5` effect. */
  private krb5Result(now: number, v: Krb5Verdict): Buffer[] {
    if (this.state !== 'krb5-pending') return [];
    if (!v.ok) return this.fail(ErrCode.ACCESS, `Access violation: Kerberos authentication failed: ${v.error}`);
    this.identity = { kind: 'named', name: v.principal, via: 'krb5' };
    return this.authorized(now);
  }

  private authorized(now: number): Buffer[] {
    const d = authorize(this.ctx.tags, this.tag, this.identity);
    if (!d.ok) return this.fail(d.code, d.message);
    this.ctx.log(3, `${this.peerName} ${this.op} ${this.tag} by ${this.identityName} -> ${d.path}`);
    switch (this.op) {
      case 'PUSH':
      case 'DELETE':
        return this.runCommand(now, d.path);
      case 'RRQ':
        return this.openRead(now, d.path, (at) => {
          this.state = 'sending';
          const first = this.sender!.start(at);
          this.next = this.sender!.deadline;
          return this.afterData(this.out(first));
        });
      case 'WRQ':
        return this.openWrite(now, d.path, () => {
          this.state = 'receiving';
          this.lastAnswer = [{ type: 'ACK', block: 0 }];
          return this.out(this.lastAnswer);
        });
    }
  }

  /** Checks the data machine's outcome after it produced packets. */
  private afterData(send: Buffer[]): Buffer[] {
    const m = this.sender ?? this.receiver;
    if (m === null) return send;
    if (m.outcome !== null) {
      if (m.outcome.ok) {
        this.ctx.log(2, `${this.peerName} ${this.op} ${this.tag} by ${this.identityName}: ${m.outcome.bytes} bytes done`);
        if (this.receiver !== null) {
          // Linger to re-acknowledge a retransmitted last block.
          this.outcome = m.outcome;
          this.state = 'linger';
          this.next = this.lastHeardLinger();
          return send;
        }
      } else if (m.outcome.kind !== 'tftp' || !m.outcome.remote) {
        this.ctx.log(1, `${this.peerName} ${this.op} ${this.tag}: ${m.outcome.message}`);
      }
      this.sender?.abort();
      this.finish(m.outcome);
      return send;
    }
    this.next = m.deadline;
    return send;
  }

  private lastHeardLinger(): number {
    return this.lastHeard + this.params.rexmt * 3;
  }

  /** A datagram from the peer's address and port. */
  private step(now: number, datagram: Uint8Array): Buffer[] {
    if (this.state === 'done') return [];
    let packet: Packet;
    if (this.secure) {
      if (opcodeOf(datagram) !== Op.SEALED) {
        // A duplicate of the request reaches the request port, not this one; anything plain here is noise.
        return [];
      }
      const o = this.opener!.open(datagram);
      if (!o.ok) {
        this.ctx.log(4, `${this.peerName}: dropped sealed packet (${o.reason})`);
        return [];
      }
      const d = decode(o.inner);
      if (!d.ok) return this.fail(ErrCode.BADOP, `Illegal KTFTP operation: ${d.error.message}`);
      packet = d.value;
    } else {
      const d = decode(datagram);
      if (!d.ok) return this.fail(ErrCode.BADOP, `Illegal TFTP operation: ${d.error.message}`);
      packet = d.value;
    }
    this.lastHeard = now;
    if (packet.type === 'ERROR') {
      this.ctx.log(2, `${this.peerName} ${this.op} ${this.tag}: client sent error ${packet.code}: ${packet.message}`);
      this.sender?.abort();
      this.receiver?.abort();
      this.finish({ ok: false, kind: 'tftp', code: packet.code, message: packet.message, remote: true });
      return [];
    }
    switch (this.state) {
      case 'await-auth':
        if (packet.type !== 'AUTH') return this.fail(ErrCode.BADOP, 'Illegal KTFTP operation: expected AUTH');
        return this.onAuth(now, packet);
      case 'krb5-pending':
      case 'open-pending':
        return [];
      case 'await-ack0':
        if (packet.type === 'ACK' && packet.block === 0) {
          this.state = 'sending';
          return this.afterData(this.out(this.sender!.start(now)));
        }
        return [];
      case 'sending':
        if (packet.type === 'AUTH') return this.afterData(this.out(this.sender!.resend(now)));
        if (packet.type !== 'ACK') return [];
        return this.afterData(this.out(this.sender!.onAck(now, packet.block)));
      case 'receiving':
        if (packet.type === 'AUTH') return this.out(this.lastAnswer.length > 0 ? this.lastAnswer : [{ type: 'ACK', block: 0 }]);
        if (packet.type !== 'DATA') return [];
        return this.afterData(this.out(this.receiver!.onData(now, packet.block, packet.data)));
      case 'linger':
        this.next = this.lastHeardLinger();
        if (this.receiver !== null && packet.type === 'DATA') return this.out(this.receiver.onData(now, packet.block, packet.data));
        if (packet.type === 'AUTH') return this.out(this.lastAnswer);
        return [];
      default:
        return [];
    }
  }

  private onTimeout(now: number): Buffer[] {
    if (this.next === null || now < this.next) return [];
    switch (this.state) {
      case 'await-auth':
      case 'await-ack0':
      case 'krb5-pending':
        if (now - this.started >= this.params.timeout) {
          this.finish({ ok: false, kind: 'timeout', message: 'Transfer timed out waiting for the client' });
          return [];
        }
        this.next = now + this.params.rexmt;
        return this.state === 'krb5-pending' ? [] : [this.oack!];
      case 'sending':
        return this.afterData(this.out(this.sender!.onTimeout(now)));
      case 'receiving': {
        const r = this.receiver!;
        const pk = r.onTimeout(now);
        // Before DATA 1, the answer to repeat is the OACK (plain WRQ with options) or ACK 0.
        if (pk.length === 1 && pk[0].type === 'ACK' && pk[0].block === 0 && !this.secure && this.oack !== null) return this.afterData([this.oack]);
        return this.afterData(this.out(pk));
      }
      case 'open-pending':
      case 'command-pending':
        // the driver always answers; a repeated AUTH or request meanwhile is answered once it has
        this.next = now + this.params.rexmt;
        return [];
      case 'linger':
        this.state = 'done';
        this.next = null;
        return [];
      default:
        return [];
    }
  }

  /** Stops the session now (server shutdown, an internal error): the partial put is removed. */
  abort(): void {
    this.sender?.abort();
    this.receiver?.abort();
    this.finish(this.outcome ?? { ok: false, kind: 'local', message: 'aborted' });
    this.send([]);
  }
}
