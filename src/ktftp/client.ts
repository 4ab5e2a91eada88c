/**
 * The ktftp client driver: one UDP socket (src/net's UdpEndpoint), the real clock, and the server-key pin (-F or
 * known_hosts) around a ClientSession (client-session.ts: the operation's machine), run by the one event loop
 * (src/daemon/loop.ts). The local file's reads, writes and commit are the machine's effects, done here on the
 * thread pool (fileops.ts); the operation's result is given once none of them is still running.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { fingerprint } from '../crypto/pubkey.js';
import { ClientSession, type ClientRequest } from './client-session.js';
import { EventLoop } from '../daemon/loop.js';
import { UdpEndpoint } from '../net/udp.js';
import type { KtftpEffect, KtftpEffectResult } from './machine.js';
import { commitAtomic, readAt, writeAt } from './fileops.js';
import { TRANSFER_BUFFER } from './server.js';
import type { Outcome } from './transfer.js';

export function defaultKnownHosts(): string {
  return join(process.env.HOME ?? homedir(), '.ktftp', 'known_hosts');
}

/** `host|fingerprint` lines; blank lines and # comments ignored. Returns the fingerprints listed for host. */
export function knownHostFingerprints(file: string, host: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const [h, fp] = t.split('|');
    if (fp !== undefined && h.trim() === host) out.push(fp.trim().toUpperCase());
  }
  return out;
}

/**
 * The pin check: the server's key must have the fingerprint given with -F, or one listed for the host in the
 * known-hosts file. Anything else is refused, naming the fingerprint the server presented.
 */
export function pinCheck(host: string, pinned: string | undefined, knownHosts: string): (pub: KeyObject) => string | null {
  return (pub) => {
    const f = fingerprint(pub);
    if (!f.ok) return `server key: ${f.error}`;
    const fp = f.value;
    if (pinned !== undefined) {
      return pinned.trim().toUpperCase() === fp ? null : `server key ${fp} does not match the pinned fingerprint ${pinned.toUpperCase()}`;
    }
    const known = knownHostFingerprints(knownHosts, host);
    if (known.length === 0) return `server key ${fp} for ${host} is unknown: pin it with -F or add "${host}|${fp}" to ${knownHosts}`;
    return known.includes(fp) ? null : `server key ${fp} for ${host} does not match ${knownHosts}: possible impostor, refused`;
  };
}

export interface ClientRun extends Omit<ClientRequest, 'verifyServer'> {
  readonly host: string;
  readonly port: number;
  readonly verifyServer: ClientRequest['verifyServer'];
}

export interface ClientResult {
  readonly outcome: Outcome;
  readonly session: ClientSession;
  readonly elapsedMs: number;
}

/** Runs one operation to its end. `signal` cancels it (the server is told, a partial local file removed). */
export async function runClient(r: ClientRun, signal?: AbortSignal): Promise<ClientResult> {
  let addr: { address: string; family: number };
  try {
    addr = await lookup(r.host);
  } catch (e) {
    const session = new ClientSession(r, { address: r.host, port: r.port });
    const outcome: Outcome = { ok: false, kind: 'local', message: `${r.host}: unknown host (${(e as NodeJS.ErrnoException).code ?? 'lookup failed'})` };
    r.sink?.abort();
    r.source?.close();
    return { outcome, session, elapsedMs: 0 };
  }
  const family = addr.family === 6 ? 6 : 4;
  const session = new ClientSession(r, { address: addr.address, port: r.port });
  const link: { loop?: EventLoop<KtftpEffect, KtftpEffectResult>; fail?: (e: Error) => void } = {};
  // sends go to the address resolved above: no lookup per packet
  const opened = await UdpEndpoint.open({
    family,
    port: 0,
    bufferSize: TRANSFER_BUFFER,
    recvInfo: false,
    onMessage: (m, ri) => link.loop?.datagram(ri, m),
    onError: (e) => link.fail?.(e),
  });
  if (!opened.ok) {
    session.cancel(`socket: ${opened.error}`);
    r.sink?.abort();
    r.source?.close();
    return { outcome: session.outcome!, session, elapsedMs: 0 };
  }
  const sock = opened.value;
  const t0 = performance.now();
  /** File effects on the thread pool: the result waits for them (no write lands after the program moved on). */
  const running = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    running.add(p);
    void p.finally(() => running.delete(p));
    return p;
  };
  return new Promise<ClientResult>((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      // what the transfer queued with its end goes out in this turn: close after that
      setImmediate(() => {
        loop.stop();
        const elapsedMs = performance.now() - t0;
        void Promise.allSettled([...running])
          .then(() => sock.close())
          .then(() => resolve({ outcome: session.outcome!, session, elapsedMs }));
      });
    };
    const loop = new EventLoop<KtftpEffect, KtftpEffectResult>({
      machine: session,
      sockets: [sock],
      onEffect: (e) => {
        if (e.kind === 'done') return finish();
        if (e.kind === 'read') return track(readAt(e.file, e.position, e.length)).then((result) => ({ kind: 'read' as const, file: e.file, result }));
        if (e.kind === 'write') return track(writeAt(e.file, e.position, e.bytes)).then((result) => ({ kind: 'write' as const, file: e.file, result }));
        if (e.kind === 'commit') return track(commitAtomic(e.file)).then((result) => ({ kind: 'commit' as const, file: e.file, result }));
        if (e.kind === 'prepare') {
          // seals the likely next packet after this turn's sends went out (see ClientSession.prepare)
          setImmediate(() => {
            if (finished) return;
            try {
              session.prepare();
            } catch (err) {
              session.cancel(`internal error: ${(err as Error).message}`);
              loop.kick();
            }
          });
        }
      },
      onError: (e) => {
        session.cancel(`internal error: ${(e as Error).message}`);
        finish();
      },
    });
    link.loop = loop;
    link.fail = (e) => {
      session.cancel(`socket: ${e.message}`);
      finish();
    };
    const onAbort = (): void => {
      session.cancel('Interrupted');
      loop.kick();
    };
    signal?.addEventListener('abort', onAbort);
    r.source?.onReadable?.(() => {
      if (finished) return;
      session.poke(performance.now());
      loop.kick();
    });
    session.start(performance.now());
    loop.start();
  });
}
