/**
 * The ktftp client driver: one UDP socket, the real clock, and the server-key pin (-F or known_hosts)
 * around ClientSession.
 */
import * as dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { fingerprint } from '../crypto/pubkey.js';
import { ClientSession, type ClientRequest } from './client-session.js';
import { literalLookup } from '../core/address.js';
import type { Outcome } from './transfer.js';
import { encode, ErrCode } from './wire.js';

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
    const session = new ClientSession(r);
    const outcome: Outcome = { ok: false, kind: 'local', message: `${r.host}: unknown host (${(e as NodeJS.ErrnoException).code ?? 'lookup failed'})` };
    r.sink?.abort();
    r.source?.close();
    return { outcome, session, elapsedMs: 0 };
  }
  const session = new ClientSession(r);
  // Every send goes to an address already resolved above: no lookup per packet (see literalLookup).
  const sock = dgram.createSocket({ type: addr.family === 6 ? 'udp6' : 'udp4', lookup: literalLookup });
  const t0 = performance.now();
  return new Promise<ClientResult>((resolve) => {
    let serverPort = r.port;
    let timer: NodeJS.Timeout | null = null;
    let timerAt = 0;
    let finished = false;
    let preparing = false;
    /** Seals the likely next packet after this turn's sends went out (see ClientSession.prepare). */
    const prepareSoon = (): void => {
      if (preparing || !session.wantsPrepare) return;
      preparing = true;
      setImmediate(() => {
        preparing = false;
        if (finished) return;
        try {
          session.prepare();
        } catch (e) {
          send(session.cancel(`internal error: ${(e as Error).message}`));
          after();
        }
      });
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (timer !== null) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      setImmediate(() => {
        sock.close();
        resolve({ outcome: session.outcome!, session, elapsedMs: performance.now() - t0 });
      });
    };
    const send = (out: Buffer[]): void => {
      for (const d of out) sock.send(d, serverPort, addr.address);
    };
    const after = (): void => {
      if (session.outcome !== null) return finish();
      const d = session.deadline;
      if (d === null) return finish();
      // An early timer is harmless (handleTimeout does nothing before the deadline, then re-arms).
      if (timer !== null && timerAt <= d) return;
      if (timer !== null) clearTimeout(timer);
      timerAt = d;
      timer = setTimeout(() => {
        timer = null;
        let out: Buffer[];
        try {
          out = session.handleTimeout(performance.now());
        } catch (e) {
          out = session.cancel(`internal error: ${(e as Error).message}`);
        }
        send(out);
        after();
      }, Math.max(0, d - performance.now()) + 1);
    };
    const onAbort = (): void => {
      send(session.cancel('Interrupted'));
      after();
    };
    signal?.addEventListener('abort', onAbort);
    r.source?.onReadable?.(() => {
      if (finished) return;
      send(session.poke(performance.now()));
      after();
    });
    sock.on('error', (e) => {
      session.cancel(`socket: ${e.message}`);
      finish();
    });
    sock.on('message', (m, ri) => {
      if (ri.address !== addr.address) return;
      if (session.locked && ri.port !== serverPort) {
        sock.send(encode({ type: 'ERROR', code: ErrCode.BADID, message: 'Unknown transfer ID' }), ri.port, ri.address);
        return;
      }
      let out: Buffer[];
      const wasLocked = session.locked;
      try {
        out = session.handle(performance.now(), m);
      } catch (e) {
        out = session.cancel(`internal error: ${(e as Error).message}`);
      }
      if (!wasLocked && session.locked) serverPort = ri.port;
      send(out);
      after();
      prepareSoon();
    });
    sock.bind(0, () => {
      try {
        sock.setRecvBufferSize(4 * 1024 * 1024);
        sock.setSendBufferSize(4 * 1024 * 1024);
      } catch {
        /* system limit */
      }
      send(session.start(performance.now()));
      after();
    });
  });
}
