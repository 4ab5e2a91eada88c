/**
 * The ktftpd driver: UDP sockets, the real clock and the tag/identity tables around ServerSession.
 * One socket takes requests; every transfer gets its own socket (its TID, RFC 1350), so a packet from any
 * other address or port than the client's is a stranger and gets ERROR 5.
 */
import * as dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { fingerprint } from '../crypto/pubkey.js';
import { publicKeyDer } from './crypto.js';
import { realTagFs, type TagFs } from './fileops.js';
import { ServerSession, type Krb5Verdict, type ServerContext, type ServerKey } from './server-session.js';
import { loadIdentTable, loadTagTable, type IdentTable, type TagTable } from './tags.js';
import { literalLookup } from '../core/address.js';
import { encode, ErrCode } from './wire.js';
import type { KeyObject } from 'node:crypto';

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
  session: ServerSession;
  sock: dgram.Socket;
  timer: NodeJS.Timeout | null;
  /** When `timer` fires; kept when the deadline only moves later (it re-arms itself then). */
  timerAt: number;
  peerAddr: string;
  peerPort: number;
  /** A setImmediate to seal ahead is queued. */
  preparing: boolean;
}


function now(): number {
  return performance.now();
}

export class KtftpServer {
  private sock: dgram.Socket | null = null;
  private tags: TagTable;
  private idents: IdentTable;
  private readonly live = new Set<Live>();
  private readonly serverKey: ServerKey | null;
  private closed = false;

  private constructor(private readonly cfg: ServerConfig, tags: TagTable, idents: IdentTable) {
    this.tags = tags;
    this.idents = idents;
    this.serverKey = cfg.key === null ? null : { privateKey: cfg.key.privateKey, publicDer: publicKeyDer(cfg.key.publicKey) };
  }

  /** Loads the tables (errors name file and line) and binds the request socket. */
  static async start(cfg: ServerConfig): Promise<{ ok: true; server: KtftpServer } | { ok: false; error: string; kind: 'config' | 'network' }> {
    const t = loadTagTable(cfg.tagfile);
    if (!t.ok) return { ok: false, error: t.error, kind: 'config' };
    const i = loadIdentTable(cfg.identfile);
    if (!i.ok) return { ok: false, error: i.error, kind: 'config' };
    const s = new KtftpServer(cfg, t.value, i.value);
    const sock = dgram.createSocket({ type: isIPv6(cfg.address) ? 'udp6' : 'udp4', reuseAddr: false });
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(cfg.port, cfg.address, () => {
          sock.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      sock.close();
      return { ok: false, error: `Error binding socket ${cfg.address}:${cfg.port}: ${(e as Error).message}`, kind: 'network' };
    }
    sock.on('error', (e) => cfg.log(1, `request socket: ${e.message}`));
    sock.on('message', (msg, rinfo) => s.onRequest(msg, rinfo));
    s.sock = sock;
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
      fs: this.cfg.fs ?? realTagFs,
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

  private onRequest(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    for (const l of this.live) if (l.peerAddr === rinfo.address && l.peerPort === rinfo.port) return; // duplicate request
    const peer = `${rinfo.address}:${rinfo.port}`;
    const max = this.cfg.maxSessions ?? 256;
    let r: ReturnType<typeof ServerSession.fromRequest>;
    try {
      r = ServerSession.fromRequest(this.context(), now(), peer, msg);
    } catch (e) {
      this.cfg.log(0, `${peer}: internal error on request: ${(e as Error).stack ?? String(e)}`);
      return;
    }
    if (r === null) return;
    if ('error' in r) {
      this.sock?.send(r.error, rinfo.port, rinfo.address);
      return;
    }
    if (this.live.size >= max) {
      r.session.abort();
      this.sock?.send(encode({ type: 'ERROR', code: ErrCode.UNDEF, message: 'Server busy, try again' }), rinfo.port, rinfo.address);
      return;
    }
    const sock = dgram.createSocket({ type: rinfo.family === 'IPv6' ? 'udp6' : 'udp4', lookup: literalLookup });
    const l: Live = { session: r.session, sock, timer: null, timerAt: 0, peerAddr: rinfo.address, peerPort: rinfo.port, preparing: false };
    this.live.add(l);
    const first = r.send;
    sock.on('error', (e) => {
      this.cfg.log(1, `${peer}: socket error: ${e.message}`);
      this.end(l);
    });
    sock.bind(0, this.cfg.address === '::' || this.cfg.address === '0.0.0.0' ? undefined : this.cfg.address, () => {
      try {
        sock.setSendBufferSize(4 * 1024 * 1024);
        sock.setRecvBufferSize(4 * 1024 * 1024);
      } catch {
        /* limited by the system; fine */
      }
      this.cfg.log(3, `${peer}: ${r.session.op} ${r.session.tag} (${r.session.isSecure ? 'ktftp' : 'plain tftp'}) on port ${sock.address().port}`);
      this.emit(l, first);
      this.after(l);
    });
    sock.on('message', (m, ri) => {
      if (ri.address !== l.peerAddr || ri.port !== l.peerPort) {
        sock.send(ServerSession.strangerReply(), ri.port, ri.address);
        return;
      }
      this.step(l, () => l.session.handle(now(), m));
    });
  }

  private step(l: Live, f: () => Buffer[]): void {
    let out: Buffer[];
    try {
      out = f();
    } catch (e) {
      // A bug must not take the server down: end this transfer (a partial put is removed) and log it.
      this.cfg.log(0, `${l.session.peer}: internal error: ${(e as Error).stack ?? String(e)}`);
      l.session.abort();
      this.end(l);
      return;
    }
    this.emit(l, out);
    this.after(l);
    this.prepareSoon(l);
  }

  /**
   * Seals the likely next packets once this turn's sends have gone out (setImmediate runs after them), while
   * the client works on what it got: the answer to its next packet then costs no sealing.
   */
  private prepareSoon(l: Live): void {
    if (l.preparing || !l.session.wantsPrepare) return;
    l.preparing = true;
    setImmediate(() => {
      l.preparing = false;
      if (!this.live.has(l)) return;
      try {
        l.session.prepare();
      } catch (e) {
        this.cfg.log(0, `${l.session.peer}: internal error: ${(e as Error).stack ?? String(e)}`);
        l.session.abort();
        this.end(l);
      }
    });
  }

  private emit(l: Live, out: Buffer[]): void {
    for (const d of out) l.sock.send(d, l.peerPort, l.peerAddr);
  }

  private after(l: Live): void {
    const s = l.session;
    const token = s.pendingKrb5;
    if (token !== null && this.cfg.krb5Accept !== null) {
      s.pendingKrb5 = null;
      this.cfg
        .krb5Accept(token)
        .catch((e: unknown): Krb5Verdict => ({ ok: false, error: (e as Error).message }))
        .then((v) => {
          if (this.live.has(l)) this.step(l, () => s.krb5Result(now(), v));
        });
    }
    const d = s.deadline;
    if (d === null) {
      if (l.timer !== null) clearTimeout(l.timer);
      l.timer = null;
      this.end(l);
      return;
    }
    // A timer that fires before the deadline is harmless (handleTimeout does nothing early, then re-arms),
    // so the common case (deadline moved later) keeps the armed timer instead of re-creating one per packet.
    if (l.timer !== null && l.timerAt <= d) return;
    if (l.timer !== null) clearTimeout(l.timer);
    l.timerAt = d;
    l.timer = setTimeout(() => {
      l.timer = null;
      this.step(l, () => s.handleTimeout(now()));
    }, Math.max(0, d - now()) + 1);
  }

  private end(l: Live): void {
    if (!this.live.delete(l)) return;
    if (l.timer !== null) clearTimeout(l.timer);
    const o = l.session.outcome;
    if (o !== null && !o.ok) {
      if (o.kind === 'timeout') this.cfg.log(1, `${l.session.peer} ${l.session.op} ${l.session.tag}: ${o.message}`);
    }
    // Let queued sends go out before closing.
    setImmediate(() => {
      try {
        l.sock.close();
      } catch {
        /* already closed */
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of [...this.live]) {
      l.session.abort();
      this.end(l);
    }
    const s = this.sock;
    this.sock = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
