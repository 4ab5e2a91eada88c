/**
 * One client-side KTFTP operation (get, put, push, delete) as a state machine with no I/O.
 *
 *   request (RRQ|WRQ|PUSH|DELETE + options ktftp, kx, auth)  ->  OACK (kx, sk, sig)  ->  SEALED AUTH
 *   then sealed DATA/ACK/ERROR. The server's static key must pass `verifyServer` (the pin) and its signature
 *   over request and OACK must verify, or the operation fails as a local error before anything is sealed.
 *
 * It is the operation's machine (src/core/machine.ts): start(now), handle(now, from, datagram), handleTimeout(now)
 * and the driver's answers to its file effects in; datagrams, effects (read, write, commit, prepare, done) and the
 * next deadline out. Requests go to the server's request port; the first answer's port is the transfer's (its
 * TID): from then on, a datagram from any other port gets ERROR 5, and from another address is ignored.
 */
import type { KeyObject } from 'node:crypto';
import {
  agree,
  CLIENT_SIG_LABEL,
  deriveKeys,
  generateEphemeral,
  publicKeyDer,
  publicKeyFromDer,
  SERVER_SIG_LABEL,
  sessionCiphers,
  sha256,
  signWith,
  verifyWith,
  SealAhead,
  type Opener,
} from './crypto.js';
import type { Endpoint, Machine } from '../core/machine.js';
import { ReadAheadSource, WriteBehindSink, type Sink, type Source } from './fileops.js';
import type { KtftpEffect, KtftpEffectResult } from './machine.js';
import { TransferOutbox } from './outbox.js';
import { fromNetascii, toNetascii } from './netascii.js';
import { DataReceiver, DataSender, errorPacket, type Outcome, type TransferParams } from './transfer.js';
import { decode, encode, ErrCode, getOption, opcodeOf, Op, type Option, type Packet, type RequestOp } from './wire.js';

export type ClientAuth =
  | { readonly method: 'key'; readonly privateKey: KeyObject; readonly publicKey: KeyObject }
  | { readonly method: 'krb5'; readonly token: Buffer }
  | { readonly method: 'none' };

export interface ClientRequest {
  readonly op: RequestOp;
  readonly tag: string;
  readonly mode: 'octet' | 'netascii';
  readonly blksize: number;
  readonly windowsize: number;
  /** ms */
  readonly rexmt: number;
  /** ms without progress before giving up */
  readonly timeout: number;
  readonly auth: ClientAuth;
  /** Returns null when the server's key is the pinned one, else the reason to refuse it. */
  verifyServer(publicKey: KeyObject): string | null;
  /** For a put. */
  readonly source?: Source;
  /** For a get. */
  readonly sink?: Sink;
  /** Size of a put when known, sent as tsize. */
  readonly tsize?: number | null;
  trace?(dir: 'sent' | 'received', p: Packet | string): void;
}

type State = 'await-oack' | 'await-first' | 'sending' | 'receiving' | 'done';

export class ClientSession extends TransferOutbox implements Machine<KtftpEffect, KtftpEffectResult> {
  /** The request port, then the transfer's port once the first answer came. */
  private server: Endpoint;
  private state: State = 'await-oack';
  private request: Buffer = Buffer.alloc(0);
  private eph = generateEphemeral();
  private sealer: SealAhead | null = null;
  private opener: Opener | null = null;
  private authPacket: Packet | null = null;
  private params: TransferParams;
  private sender: DataSender | null = null;
  private receiver: DataReceiver | null = null;
  private next: number | null = null;
  private lastProgress = 0;
  outcome: Outcome | null = null;
  /** Negotiated values, for `status` and verbose output. */
  negotiated: { blksize: number; windowsize: number } = { blksize: 512, windowsize: 1 };
  /** The server's public key once it verified (for known_hosts learning / messages). */
  serverKey: KeyObject | null = null;
  /** A put's local file when the driver reads it (machine.ts turns its wants into read effects). */
  readonly readAhead: ReadAheadSource | null;
  /** A get's local file or standard output when the driver writes it (write and commit effects). */
  readonly writeBehind: WriteBehindSink | null;

  constructor(
    private readonly r: ClientRequest,
    /** The server's request port. */
    requestPort: Endpoint,
  ) {
    super();
    this.server = { address: requestPort.address, port: requestPort.port };
    this.params = { blksize: r.blksize, windowsize: r.windowsize, rexmt: r.rexmt, timeout: r.timeout };
    this.readAhead = r.source instanceof ReadAheadSource ? r.source : null;
    this.writeBehind = r.sink instanceof WriteBehindSink ? r.sink : null;
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

  get bytes(): number {
    return this.sender?.bytes ?? this.receiver?.bytes ?? 0;
  }

  // ---- the machine (src/core/machine.ts) ----

  /** Sends the request. */
  start(now: number): void {
    this.send(this.request0(now));
  }

  handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    if (from.address !== this.server.address) return;
    if (this.locked && from.port !== this.server.port) {
      this.tx.push({ to: { address: from.address, port: from.port }, data: encode(errorPacket(ErrCode.BADID, 'Unknown transfer ID')) });
      return;
    }
    const wasLocked = this.locked;
    const out = this.step(now, bytes);
    if (!wasLocked && this.locked) this.server = { address: this.server.address, port: from.port };
    this.send(out);
  }

  handleTimeout(now: number): void {
    this.send(this.onTimeout(now));
  }

  /** The driver's answer to a file effect of the local file (a put's reads, a get's writes and commit). */
  handleEffectResult(r: KtftpEffectResult, now: number): void {
    if (r.kind === 'read') {
      r.file.feed(r.result);
      this.send(this.sendMore(now));
    } else if (r.kind === 'write' || r.kind === 'commit') {
      if (r.kind === 'write') r.file.feedWrite(r.result);
      else r.file.feedCommit(r.result);
      this.send(this.fileProgress(now));
    }
  }

  pollTimeout(): number | undefined {
    return this.outcome === null ? (this.deadline ?? undefined) : undefined;
  }

  /** The local source has more data (a pipe). */
  poke(now: number): void {
    this.send(this.sendMore(now));
  }

  /** Gives up now (interrupt, a socket error): tells the server, removes a partial local file. */
  cancel(message: string): void {
    this.send(this.cancelStep(message));
  }

  /** Queues what a step sends, then the effects its state asks for. */
  private send(out: readonly Buffer[]): void {
    this.emit(this.server, out, this.outcome !== null || this.deadline === null, this.readAhead, this.writeBehind, this.wantsPrepare);
  }

  private request0(now: number): Buffer[] {
    const r = this.r;
    const options: Option[] = [
      ['blksize', String(r.blksize)],
      ['windowsize', String(r.windowsize)],
      ['timeout', String(Math.min(255, Math.max(1, Math.round(r.rexmt / 1000))))],
    ];
    if (r.op === 'WRQ' && r.tsize !== undefined && r.tsize !== null) options.push(['tsize', String(r.tsize)]);
    options.push(['ktftp', '1'], ['kx', this.eph.publicRaw.toString('base64')], ['auth', r.auth.method]);
    const req: Packet = { type: 'REQUEST', op: r.op, tag: r.tag, mode: r.mode, options };
    this.request = encode(req);
    r.trace?.('sent', req);
    this.lastProgress = now;
    this.next = now + r.rexmt;
    return [this.request];
  }

  private finish(o: Outcome): void {
    if (this.outcome === null) this.outcome = o;
    this.state = 'done';
    this.next = null;
    this.sender?.abort();
    if (!o.ok) this.receiver?.abort();
    if (!o.ok && this.receiver === null) this.r.sink?.abort();
    if (this.sender === null) this.r.source?.close();
  }

  private localError(message: string): Buffer[] {
    this.finish({ ok: false, kind: 'local', message });
    return [];
  }

  private out(packets: Packet[]): Buffer[] {
    return packets.map((p) => {
      this.r.trace?.('sent', p);
      const b = encode(p);
      return this.sealer !== null ? this.sealer.seal(b) : b;
    });
  }

  private step(now: number, datagram: Uint8Array): Buffer[] {
    if (this.state === 'done') return [];
    if (this.state === 'await-oack') return this.onFirstAnswer(now, datagram);
    if (opcodeOf(datagram) !== Op.SEALED) {
      this.r.trace?.('received', 'plain packet ignored in a sealed session');
      return [];
    }
    const o = this.opener!.open(datagram);
    if (!o.ok) {
      this.r.trace?.('received', `sealed packet dropped (${o.reason})`);
      return [];
    }
    const d = decode(o.inner);
    if (!d.ok) return this.localError(`bad packet from server: ${d.error.message}`);
    const p = d.value;
    this.r.trace?.('received', p);
    if (p.type === 'ERROR') {
      this.finish({ ok: false, kind: 'tftp', code: p.code, message: p.message, remote: true });
      return [];
    }
    switch (this.state) {
      case 'await-first':
        if (this.r.op === 'RRQ' && p.type === 'DATA') {
          this.state = 'receiving';
          const sink = this.r.mode === 'netascii' ? fromNetascii(this.r.sink!) : this.r.sink!;
          this.receiver = new DataReceiver(sink, this.params, now, this.writeBehind);
          return this.afterData(this.out(this.receiver.onData(now, p.block, p.data)));
        }
        if (p.type === 'ACK' && p.block === 0) {
          if (this.r.op === 'PUSH' || this.r.op === 'DELETE') {
            this.finish({ ok: true, bytes: 0 });
            return [];
          }
          if (this.r.op === 'WRQ') {
            this.state = 'sending';
            const src = this.r.mode === 'netascii' ? toNetascii(this.r.source!) : this.r.source!;
            this.sender = new DataSender(src, this.params, now);
            return this.afterData(this.out(this.sender.start(now)));
          }
        }
        return [];
      case 'sending':
        if (p.type !== 'ACK') return [];
        return this.afterData(this.out(this.sender!.onAck(now, p.block)));
      case 'receiving':
        if (p.type !== 'DATA') return [];
        return this.afterData(this.out(this.receiver!.onData(now, p.block, p.data)));
      default:
        return [];
    }
  }

  private afterData(send: Buffer[]): Buffer[] {
    const m = this.sender ?? this.receiver;
    if (m === null) return send;
    if (m.outcome !== null) this.finish(m.outcome);
    else this.next = m.deadline;
    return send;
  }

  private onFirstAnswer(now: number, datagram: Uint8Array): Buffer[] {
    const d = decode(datagram);
    if (!d.ok) return this.localError(`bad answer from server: ${d.error.message}`);
    const p = d.value;
    this.r.trace?.('received', p);
    if (p.type === 'ERROR') {
      // Before keys exist errors are plain (and unauthenticated).
      this.finish({ ok: false, kind: 'tftp', code: p.code, message: p.message, remote: true });
      return [];
    }
    if (p.type !== 'OACK' || getOption(p.options, 'ktftp') !== '1') {
      return this.localError('server does not speak KTFTP (it answered with plain TFTP)');
    }
    const last = p.options[p.options.length - 1];
    if (last[0] !== 'sig') return this.localError('server OACK: signature is not the last option');
    const sig = Buffer.from(last[1], 'base64');
    const prefixLen = datagram.length - (4 + last[1].length + 1);
    const prefix = datagram.subarray(0, prefixLen);
    const skDer = Buffer.from(getOption(p.options, 'sk') ?? '', 'base64');
    const sk = publicKeyFromDer(skDer);
    if (sk === null) return this.localError('server OACK: no usable server key');
    const pin = this.r.verifyServer(sk);
    if (pin !== null) return this.localError(pin);
    if (!verifyWith(sk, SERVER_SIG_LABEL, sha256(this.request, prefix), sig)) return this.localError('server signature does not verify');
    const shared = agree(this.eph, Buffer.from(getOption(p.options, 'kx') ?? '', 'base64'));
    if (shared === null) return this.localError('server OACK: bad kx value');
    this.serverKey = sk;
    const transcript = sha256(this.request, datagram);
    const { sealer: rawSealer, opener } = sessionCiphers(deriveKeys(shared, transcript), 'client');
    this.sealer = new SealAhead(rawSealer);
    this.opener = opener;
    // Adopt the negotiated sizes; a server may lower but never raise them.
    const bs = Number(getOption(p.options, 'blksize') ?? '512');
    const ws = Number(getOption(p.options, 'windowsize') ?? '1');
    if (!(bs >= 8 && bs <= this.r.blksize) || !(ws >= 1 && ws <= this.r.windowsize)) {
      const m = `server chose blksize ${bs} / windowsize ${ws} outside what was offered`;
      const send = this.out([errorPacket(ErrCode.OPTION, m)]);
      this.localError(m);
      return send;
    }
    this.params = { ...this.params, blksize: bs, windowsize: ws };
    this.negotiated = { blksize: bs, windowsize: ws };
    const a = this.r.auth;
    this.authPacket =
      a.method === 'key'
        ? { type: 'AUTH', method: 'key', credential: publicKeyDer(a.publicKey), proof: signWith(a.privateKey, CLIENT_SIG_LABEL, transcript) }
        : a.method === 'krb5'
          ? { type: 'AUTH', method: 'krb5', credential: a.token, proof: Buffer.alloc(0) }
          : { type: 'AUTH', method: 'none', credential: Buffer.alloc(0), proof: Buffer.alloc(0) };
    this.state = 'await-first';
    this.lastProgress = now;
    this.next = now + this.r.rexmt;
    return this.out([this.authPacket]);
  }

  private onTimeout(now: number): Buffer[] {
    if (this.next === null || now < this.next) return [];
    switch (this.state) {
      case 'await-oack':
      case 'await-first':
        if (now - this.lastProgress >= this.r.timeout) {
          this.finish({ ok: false, kind: 'timeout', message: 'Transfer timed out' });
          return [];
        }
        this.next = now + this.r.rexmt;
        if (this.state === 'await-oack') {
          this.r.trace?.('sent', 'request (again)');
          return [this.request];
        }
        return this.out([this.authPacket!]);
      case 'sending':
        return this.afterData(this.out(this.sender!.onTimeout(now)));
      case 'receiving':
        return this.afterData(this.out(this.receiver!.onTimeout(now)));
      default:
        return [];
    }
  }

  /** The put's source has more data (a pipe, a read that came back): sends what the window allows. */
  private sendMore(now: number): Buffer[] {
    if (this.state !== 'sending' || this.sender === null) return [];
    return this.afterData(this.out(this.sender.poke(now)));
  }

  /** A write or the commit the driver did came back: the receiver answers (the ACK it held, or the last one). */
  private fileProgress(now: number): Buffer[] {
    if (this.state !== 'receiving' || this.receiver === null) return [];
    return this.afterData(this.out(this.receiver.fileProgress(now)));
  }

  private cancelStep(message: string): Buffer[] {
    if (this.state === 'done') return [];
    const send = this.sealer !== null ? this.out([errorPacket(ErrCode.UNDEF, message)]) : [];
    this.localError(message);
    return send;
  }

  /** True once the first answer came: later datagrams must come from the same server port. */
  get locked(): boolean {
    return this.state !== 'await-oack';
  }
}

/**
 * The ktftp exit code for an outcome: 0 success, 255 (-1) local error, 1..8 the server's TFTP error code + 1
 * (EUNDEF..ENOUSER), 9 ETIMEOUT. TFTP code 8 (option negotiation refused) has no exit code of its own in the
 * table and is reported as 5 (EBADOP).
 */
export function exitCodeFor(o: Outcome): number {
  if (o.ok) return 0;
  switch (o.kind) {
    case 'local':
      return 255;
    case 'timeout':
      return 9;
    case 'tftp':
      if (!o.remote) return 255;
      if (o.code >= 0 && o.code <= 7) return o.code + 1;
      return 5;
  }
}

export const EXIT_NAMES: Record<number, string> = {
  0: 'success',
  1: 'EUNDEF',
  2: 'ENOTFOUND',
  3: 'EACCESS',
  4: 'ENOSPACE',
  5: 'EBADOP',
  6: 'EBADID',
  7: 'EEXISTS',
  8: 'ENOUSER',
  9: 'ETIMEOUT',
  255: 'local error',
};
