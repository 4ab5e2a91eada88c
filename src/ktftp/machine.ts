/**
 * KTFTP on the one machine contract (src/core/machine.ts), so ktftpd and ktftp run on the one event loop
 * (src/daemon/loop.ts) and the simulations on the one simulated network (test/sim/network.ts).
 *
 *  - `KtftpListener` (here): the request port. A request becomes a transfer (effect `transfer`: the driver gives
 *    it its own socket, its TID, RFC 1350) or an ERROR answered from the request port.
 *  - `ServerSession` (server-session.ts): one server transfer, the machine of its own socket.
 *  - `ClientSession` (client-session.ts): one client operation.
 *  A transfer's datagram from anyone but its peer gets ERROR 5 and changes nothing. This file holds the effects
 *  both transfer machines ask for and the answers they take.
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
import { endpointText, type Endpoint, type Machine } from '../core/machine.js';
import { ServerSession, type Krb5Verdict, type OpenRequest, type OpenResult, type ServerContext } from './server-session.js';
import { Outbox } from './outbox.js';
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
      this.tx.push({ to: { address: from.address, port: from.port }, data: r.error });
      return;
    }
    if (this.live.size >= this.cfg.maxSessions) {
      r.session.abort();
      this.tx.push({ to: { address: from.address, port: from.port }, data: encode({ type: 'ERROR', code: ErrCode.UNDEF, message: 'Server busy, try again' }) });
      return;
    }
    this.live.add(peer);
    this.fx.push({ kind: 'transfer', transfer: r.session });
  }

  handleTimeout(): void {}


  pollTimeout(): undefined {
    return undefined;
  }
}
