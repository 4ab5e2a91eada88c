/**
 * The ktftpd driver: sockets, the real clock and the tag/identity tables around the KTFTP machines (machine.ts),
 * each run by the one event loop (src/daemon/loop.ts). One socket takes requests (KtftpListener); every transfer
 * gets its own socket (its TID, RFC 1350) and its own loop around its ServerSession. The sockets are src/net's
 * UdpEndpoint (the batched native engine, or node:dgram where it does not load): a window of DATA handed to the
 * loop in one turn leaves in one sendmmsg / GSO call.
 */
import { isIPv6 } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { EventLoop } from '../daemon/loop.js';
import { UdpEndpoint } from '../net/udp.js';
import { fingerprint } from '../crypto/pubkey.js';
import { publicKeyDer } from './crypto.js';
import { commandAsync, commitAtomic, driverTagFs, openReadAsync, openWriteAsync, readAt, releaseOpened, writeAt, type TagFs, type WriteBehindSink } from './fileops.js';
import { KtftpListener, type KtftpEffect, type KtftpEffectResult, type ListenerEffect } from './machine.js';
import type { Krb5Verdict, ServerContext, ServerKey, ServerSession } from './server-session.js';
import { loadIdentTable, loadTagTable, type IdentTable, type TagTable } from './tags.js';

export interface ServerConfig {
  readonly address: string;
  readonly port: number;
  readonly tagfile: string;
  readonly identfile: string;
  readonly key: { privateKey: KeyObject; publicKey: KeyObject } | null;
  /** Accepts a Kerberos AP-REQ; null when no keytab is configured. */
  readonly krb5Accept: ((token: Buffer) => Promise<Krb5Verdict>) | null;
  readonly log: (level: number, msg: string) => void;
  readonly maxSessions?: number;
  readonly maxBlksize?: number;
  readonly maxWindow?: number;
  readonly fs?: TagFs;
}

interface Live {
  readonly transfer: ServerSession;
  sock?: UdpEndpoint;
  loop?: EventLoop<KtftpEffect, KtftpEffectResult>;
}

/** Socket buffers of a transfer (a window of 256 blocks of 64 KiB does not fit, but a window of 1408-byte ones does). */
export const TRANSFER_BUFFER = 4 * 1024 * 1024;

export class KtftpServer {
  private sock: UdpEndpoint | null = null;
  private tags: TagTable;
  private idents: IdentTable;
  private readonly live = new Set<Live>();
  private readonly serverKey: ServerKey | null;
  private readonly listener: KtftpListener;
  private requests: EventLoop<ListenerEffect> | null = null;
  private closed = false;
  /** File effects on the thread pool (close() waits for them: no temporary file is left behind on shutdown). */
  private readonly running = new Set<Promise<unknown>>();

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
    return p;
  }

  private constructor(private readonly cfg: ServerConfig, tags: TagTable, idents: IdentTable) {
    this.tags = tags;
    this.idents = idents;
    this.serverKey = cfg.key === null ? null : { privateKey: cfg.key.privateKey, publicDer: publicKeyDer(cfg.key.publicKey) };
    this.listener = new KtftpListener({ context: () => this.context(), maxSessions: cfg.maxSessions ?? 256, log: cfg.log });
  }

  /** Loads the tables (errors name file and line) and binds the request socket. */
  static async start(cfg: ServerConfig): Promise<{ ok: true; server: KtftpServer } | { ok: false; error: string; kind: 'config' | 'network' }> {
    const t = loadTagTable(cfg.tagfile);
    if (!t.ok) return { ok: false, error: t.error, kind: 'config' };
    const i = loadIdentTable(cfg.identfile);
    if (!i.ok) return { ok: false, error: i.error, kind: 'config' };
    const s = new KtftpServer(cfg, t.value, i.value);
    const family = isIPv6(cfg.address) ? 6 : 4;
    // the loop exists once the socket does; nothing arrives before (the socket is not read until open resolves)
    const link: { loop?: EventLoop<ListenerEffect> } = {};
    const opened = await UdpEndpoint.open({
      family,
      address: cfg.address,
      port: cfg.port,
      onMessage: (msg, rinfo) => {
        if (!s.closed) link.loop?.datagram(rinfo, msg);
      },
      onError: (e) => cfg.log(1, `request socket: ${e.message}`),
    });
    if (!opened.ok) return { ok: false, error: `Error binding socket ${cfg.address}:${cfg.port}: ${opened.error.replace(/^Error binding socket for listener: /, '')}`, kind: 'network' };
    const sock = opened.value;
    for (const w of sock.warnings) cfg.log(2, w);
    const loop = new EventLoop<ListenerEffect>({
      machine: s.listener,
      sockets: [sock],
      onEffect: (e) => s.begin(e.transfer),
      onError: (e) => cfg.log(0, `internal error on request: ${(e as Error).stack ?? String(e)}`),
    });
    link.loop = loop;
    s.sock = sock;
    s.requests = loop;
    loop.start();
    cfg.log(2, `ktftpd listening on ${cfg.address}:${sock.address().port}, ${t.value.entries.size} tag(s), ${i.value.byFingerprint.size} key identit(y/ies)`);
    return { ok: true, server: s };
  }

  get port(): number {
    return this.sock?.address().port ?? 0;
  }

  get activeSessions(): number {
    return this.live.size;
  }

  /** SIGHUP: re-reads both tables; on any error the old tables stay in force. */
  reload(): { ok: true } | { ok: false; error: string } {
    const t = loadTagTable(this.cfg.tagfile);
    if (!t.ok) {
      this.cfg.log(0, `reload failed, old tables kept: ${t.error}`);
      return { ok: false, error: t.error };
    }
    const i = loadIdentTable(this.cfg.identfile);
    if (!i.ok) {
      this.cfg.log(0, `reload failed, old tables kept: ${i.error}`);
      return { ok: false, error: i.error };
    }
    this.tags = t.value;
    this.idents = i.value;
    this.cfg.log(2, `reloaded: ${t.value.entries.size} tag(s), ${i.value.byFingerprint.size} key identit(y/ies)`);
    return { ok: true };
  }

  private context(): ServerContext {
    return {
      tags: this.tags,
      idents: this.idents,
      fs: this.cfg.fs ?? driverTagFs,
      key: this.serverKey,
      fingerprintOf: (pub) => {
        const f = fingerprint(pub);
        return f.ok ? f.value : null;
      },
      krb5: this.cfg.krb5Accept !== null,
      log: this.cfg.log,
      maxBlksize: this.cfg.maxBlksize ?? 65464,
      maxWindow: this.cfg.maxWindow ?? 256,
      rexmt: 1000,
      timeout: 10000,
    };
  }

  /** A new transfer: its own socket, its own loop. */
  private begin(t: ServerSession): void {
    const peer = `${t.peer.address}:${t.peer.port}`;
    const family = isIPv6(t.peer.address) ? 6 : 4;
    const l: Live = { transfer: t };
    this.live.add(l);
    const wildcard = this.cfg.address === '::' || this.cfg.address === '0.0.0.0';
    void UdpEndpoint.open({
      family,
      port: 0,
      address: wildcard ? undefined : this.cfg.address,
      bufferSize: TRANSFER_BUFFER,
      // nobody reads a datagram's destination, interface or TOS here: two control messages fewer per datagram
      recvInfo: false,
      onMessage: (m, ri) => l.loop?.datagram(ri, m),
      onError: (e) => {
        this.cfg.log(1, `${peer}: socket error: ${e.message}`);
        this.end(l);
      },
    }).then((opened) => {
      if (!opened.ok) {
        this.cfg.log(1, `${peer}: ${opened.error}`);
        t.abort();
        this.end(l);
        return;
      }
      const sock = opened.value;
      l.sock = sock;
      if (!this.live.has(l)) {
        void sock.close();
        return;
      }
      for (const w of sock.warnings) this.cfg.log(2, w);
      this.cfg.log(3, `${peer}: ${t.op} ${t.tag} (${t.isSecure ? 'ktftp' : 'plain tftp'}) on port ${sock.address().port}`);
      const loop = new EventLoop<KtftpEffect, KtftpEffectResult>({
        machine: t,
        sockets: [sock],
        onEffect: (e) => this.effect(l, e),
        // a bug must not take the server down: end this transfer (a partial put is removed) and log it
        onError: (e) => {
          this.cfg.log(0, `${peer}: internal error: ${(e as Error).stack ?? String(e)}`);
          t.abort();
          this.end(l);
        },
      });
      l.loop = loop;
      loop.start();
    });
  }

  private effect(l: Live, e: KtftpEffect): Promise<KtftpEffectResult> | void {
    switch (e.kind) {
      case 'krb5': {
        const accept = this.cfg.krb5Accept;
        if (accept === null) return;
        return accept(e.token)
          .catch((err: unknown): Krb5Verdict => ({ ok: false, error: (err as Error).message }))
          .then((verdict) => ({ kind: 'krb5' as const, verdict }));
      }
      case 'open': {
        // open / create on the thread pool; a transfer that ended meanwhile gets nothing (its loop stopped): the
        // file is let go here
        const late = (): boolean => !this.live.has(l) || l.loop === undefined || l.loop.isStopped;
        if (e.mode === 'read') {
          return this.track(openReadAsync(e.path)).then((result) => {
            if (late()) releaseOpened(result);
            // a stream (a FIFO, a device) says when it has more: the transfer sends what its window allows
            else if (result.ok) {
              result.value.onReadable?.(() => {
                if (late()) return;
                l.transfer.poke(l.loop!.now);
                l.loop!.kick();
              });
            }
            return { kind: 'open' as const, mode: 'read' as const, result };
          });
        }
        return this.track(openWriteAsync(e.path, e.tsize)).then((result) => {
          if (late()) releaseOpened(result);
          return { kind: 'open' as const, mode: 'write' as const, result };
        });
      }
      case 'read':
        // pread on libuv's thread pool, while the transfer goes on with what it has
        return this.track(readAt(e.file, e.position, e.length)).then((result) => ({ kind: 'read' as const, file: e.file, result }));
      case 'write':
        // pwrite on the thread pool (one at a time per put), while the transfer goes on
        return this.track(writeAt(e.file, e.position, e.bytes)).then((result) => ({ kind: 'write' as const, file: e.file, result }));
      case 'commit':
        return this.track(commitAtomic(e.file)).then((result) => ({ kind: 'commit' as const, file: e.file, result }));
      case 'command':
        return this.track(commandAsync(e.op, e.path)).then((result) => ({ kind: 'command' as const, result }));
      case 'prepare':
        // sealing ahead runs once this turn's sends have gone out (setImmediate runs after them)
        setImmediate(() => {
          if (!this.live.has(l)) return;
          try {
            l.transfer.prepare();
          } catch (err) {
            l.loop?.stop();
            this.cfg.log(0, `${l.transfer.peerName}: internal error: ${(err as Error).stack ?? String(err)}`);
            l.transfer.abort();
            this.end(l);
          }
        });
        return;
      case 'done': {
        const o = e.outcome;
        if (o !== null && !o.ok && o.kind === 'timeout') this.cfg.log(1, `${l.transfer.peerName} ${l.transfer.op} ${l.transfer.tag}: ${o.message}`);
        this.end(l);
        return;
      }
    }
  }

  private end(l: Live): void {
    if (!this.live.delete(l)) return;
    this.listener.ended(l.transfer.peer);
    // the loop sends what the transfer queued with its end in this same turn: close after that
    setImmediate(() => {
      l.loop?.stop();
      const sock = l.sock;
      if (sock === undefined) return;
      if (!sock.isClosed) this.cfg.log(3, `${l.transfer.peerName}: ${engineLine(sock)}`);
      void sock.close();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.requests?.stop();
    const puts: WriteBehindSink[] = [];
    for (const l of [...this.live]) {
      l.transfer.abort();
      const put = l.transfer.writeBehind;
      if (put !== null) puts.push(put);
      this.end(l);
    }
    const s = this.sock;
    this.sock = null;
    if (s) await s.close();
    // what is on the thread pool finishes first; then the aborted puts' temporary files are gone
    await Promise.allSettled([...this.running]);
    await Promise.all(puts.map((p) => p.whenClean()));
  }
}

/** What a transfer's socket did, for -x 3: datagrams against the system calls they took (batching at work). */
export function engineLine(sock: UdpEndpoint): string {
  const st = sock.stats();
  const calls = sock.backend === 'native' ? `${st.sendmmsgCalls} sendmmsg + ${st.gsoCalls} GSO send call(s)` : 'one send each';
  return `${sock.backend} engine: sent ${st.sent} datagram(s) in ${calls}; received ${st.received} in ${st.recvCalls} receive call(s)${st.blocked > 0 ? `; waited for the kernel ${st.blocked} time(s)` : ''}`;
}
