/**
 * KTFTP on the one machine contract (src/core/machine.ts), so ktftpd and ktftp run on the one event loop
 * (src/daemon/loop.ts) and the simulations on the one simulated network (test/sim/network.ts).
 *
 *  - `KtftpListener`: the request port. A request becomes a transfer (effect `transfer`: the driver gives it its
 *    own socket, its TID, RFC 1350) or an ERROR answered from the request port.
 *  - a server transfer is the ServerSession machine itself (server-session.ts), on its own socket;
 *  - `ClientTransfer`: one client operation, around the protocol steps of ClientSession (client-session.ts,
 *    which return the datagrams each step sends). A datagram from anyone but the peer gets ERROR 5 and changes
 *    nothing.
 *
 * Effects: `krb5` (the driver checks an AP-REQ and answers with handleEffectResult), `prepare` (the machine can
 * seal its likely next packets: the driver calls prepare() once its sends have gone out, as the peer is busy),
 * `open` (the file of a get or put, when the TagFs cannot open in the step: the driver opens it and answers with
 * the Source or Sink, or the error the client gets; nothing is sent before), `read` (a get's file data, when the
 * file is a ReadAheadSource: the driver reads ahead asynchronously and answers with the bytes), `write` and
 * `commit` (a put's file, when it is a WriteBehindSink: the driver writes the gathered blocks and commits at the
 * end; the commit's result decides the last ACK or the ERROR), `command` (push or delete, when the TagFs has no
 * push/remove), `done` (the transfer is over: the driver closes its socket). fileops.ts has the driver's side.
 */
import { endpointText, type Endpoint, type Machine, type Transmit } from '../core/machine.js';
import type { ClientSession } from './client-session.js';
import { ServerSession, type Krb5Verdict, type OpenRequest, type OpenResult, type ServerContext } from './server-session.js';
import type { Outcome } from './transfer.js';
import { encode, ErrCode } from './wire.js';
import type { FsResult, ReadAheadSource, ReadResult, WriteBehindSink, WriteResult } from './fileops.js';

export type KtftpEffect =
  | { readonly kind: 'krb5'; readonly token: Buffer }
  | { readonly kind: 'prepare' }
  /** Open the get's file or create the put's temporary file (fileops.ts openReadAsync/openWriteAsync); answer with `open`. */
  | ({ readonly kind: 'open' } & OpenRequest)
  /** Read `length` bytes at `position` of the get's file (`file.fd`) and answer with a `read` result. */
  | { readonly kind: 'read'; readonly file: ReadAheadSource; readonly position: number; readonly length: number }
  /** Write `bytes` at `position` of the put's temporary file (`file.fd`) and answer with a `write` result. */
  | { readonly kind: 'write'; readonly file: WriteBehindSink; readonly position: number; readonly bytes: Buffer }
  /** Every byte is written: commit the put (fileops.ts commitAtomic) and answer with a `commit` result. */
  | { readonly kind: 'commit'; readonly file: WriteBehindSink }
  /** Push (rename to path~) or delete (unlink) `path` (fileops.ts commandAsync) and answer with a `command` result. */
  | { readonly kind: 'command'; readonly op: 'push' | 'delete'; readonly path: string }
  | { readonly kind: 'done'; readonly outcome: Outcome | null };

export type KtftpEffectResult =
  | { readonly kind: 'krb5'; readonly verdict: Krb5Verdict }
  | ({ readonly kind: 'open' } & OpenResult)
  | { readonly kind: 'read'; readonly file: ReadAheadSource; readonly result: ReadResult }
  | { readonly kind: 'write' | 'commit'; readonly file: WriteBehindSink; readonly result: WriteResult }
  | { readonly kind: 'command'; readonly result: FsResult<void> };

/** A queue of datagrams to one or more peers and of effects: what both transfer machines share. */
abstract class Outbox<E> {
  private readonly tx: Transmit[] = [];
  private readonly fx: E[] = [];

  protected queue(to: Endpoint, out: readonly Buffer[]): void {
    for (const data of out) this.tx.push({ to, data });
  }

  protected effect(e: E): void {
    this.fx.push(e);
  }

  pollTransmit(): Transmit | undefined {
    return this.tx.shift();
  }

  pollEffect(): E | undefined {
    return this.fx.shift();
  }
}

/** The read, write and commit effects a transfer's file asks for now (none while one of each is in flight). */
function fileEffects(src: ReadAheadSource | null, sink: WriteBehindSink | null, out: (e: KtftpEffect) => void): void {
  const want = src?.want();
  if (src && want) out({ kind: 'read', file: src, ...want });
  const w = sink?.want();
  if (sink && w) out(w.kind === 'write' ? { kind: 'write', file: sink, position: w.position, bytes: w.bytes } : { kind: 'commit', file: sink });
}

export type ListenerEffect = { readonly kind: 'transfer'; readonly transfer: ServerSession };

export interface ListenerConfig {
  /** The tables and settings for the next request (they change on reload). */
  readonly context: () => ServerContext;
  /** Transfers running at once at most; more are answered "Server busy". */
  readonly maxSessions: number;
  readonly log: (level: number, msg: string) => void;
}

/** The request port: requests in; ERRORs out; transfers handed to the driver. */
export class KtftpListener extends Outbox<ListenerEffect> implements Machine<ListenerEffect> {
  /** Peers with a running transfer (a repeated request from one is a duplicate, not a new transfer). */
  private readonly live = new Set<string>();

  constructor(private readonly cfg: ListenerConfig) {
    super();
  }

  get activeSessions(): number {
    return this.live.size;
  }

  /** The driver closed a transfer. */
  ended(peer: Endpoint): void {
    this.live.delete(endpointText(peer));
  }

  handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    const peer = endpointText(from);
    if (this.live.has(peer)) return; // duplicate request
    let r: ReturnType<typeof ServerSession.fromRequest>;
    try {
      r = ServerSession.fromRequest(this.cfg.context(), now, from, bytes);
    } catch (e) {
      // a bug in one request must not stop the request port
      this.cfg.log(0, `${from.address}:${from.port}: internal error on request: ${(e as Error).stack ?? String(e)}`);
      return;
    }
    if (r === null) return;
    if ('error' in r) {
      this.queue(from, [r.error]);
      return;
    }
    if (this.live.size >= this.cfg.maxSessions) {
      r.session.abort();
      this.queue(from, [encode({ type: 'ERROR', code: ErrCode.UNDEF, message: 'Server busy, try again' })]);
      return;
    }
    this.live.add(peer);
    this.effect({ kind: 'transfer', transfer: r.session });
  }

  handleTimeout(): void {}

  pollTimeout(): undefined {
    return undefined;
  }
}

/**
 * One client operation. Requests go to the server's request port; the first answer's port is the transfer's
 * (its TID): from then on, a datagram from any other port gets ERROR 5, and from another address is ignored.
 */
export class ClientTransfer extends Outbox<KtftpEffect> implements Machine<KtftpEffect, KtftpEffectResult> {
  private server: Endpoint;
  private ended = false;
  private prepareAsked = false;

  constructor(
    readonly session: ClientSession,
    requestPort: Endpoint,
  ) {
    super();
    this.server = requestPort;
  }

  /** Sends the request. */
  start(now: number): void {
    this.queue(this.server, this.session.start(now));
    this.after();
  }

  handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    if (from.address !== this.server.address) return;
    if (this.session.locked && from.port !== this.server.port) {
      this.queue(from, [encode({ type: 'ERROR', code: ErrCode.BADID, message: 'Unknown transfer ID' })]);
      return;
    }
    const wasLocked = this.session.locked;
    const out = this.session.handle(now, bytes);
    if (!wasLocked && this.session.locked) this.server = { address: this.server.address, port: from.port };
    this.queue(this.server, out);
    this.after();
  }

  handleTimeout(now: number): void {
    this.queue(this.server, this.session.handleTimeout(now));
    this.after();
  }

  pollTimeout(): number | undefined {
    return this.session.outcome === null ? (this.session.deadline ?? undefined) : undefined;
  }

  /** The driver's answer to a file effect of the local file (a put's reads, a get's writes and commit). */
  handleEffectResult(r: KtftpEffectResult, now: number): void {
    if (r.kind === 'read') {
      r.file.feed(r.result);
      this.queue(this.server, this.session.poke(now));
    } else if (r.kind === 'write' || r.kind === 'commit') {
      if (r.kind === 'write') r.file.feedWrite(r.result);
      else r.file.feedCommit(r.result);
      this.queue(this.server, this.session.fileProgress(now));
    }
    this.after();
  }

  /** The local source has more data (a pipe). */
  poke(now: number): void {
    this.queue(this.server, this.session.poke(now));
    this.after();
  }

  /** Stops the operation (the server is told; a partial local file is removed). */
  cancel(message: string): void {
    this.queue(this.server, this.session.cancel(message));
    this.after();
  }

  prepare(): void {
    this.prepareAsked = false;
    this.session.prepare();
  }

  private after(): void {
    if (this.ended) return;
    if (this.session.outcome !== null || this.session.deadline === null) {
      this.ended = true;
      this.effect({ kind: 'done', outcome: this.session.outcome });
      return;
    }
    fileEffects(this.session.readAhead, this.session.writeBehind, (e) => this.effect(e));
    if (!this.prepareAsked && this.session.wantsPrepare) {
      this.prepareAsked = true;
      this.effect({ kind: 'prepare' });
    }
  }
}
