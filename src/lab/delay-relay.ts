/**
 * A small user-space UDP relay that adds a one-way delay (and optional random loss) to a unicast path.
 * The kernel here has no netem, so the lab steers a tunnel through this relay, run inside the router's
 * namespace: the upstream side sends to LISTEN (e.g. a server proxy with `-s <relay address>`), the relay
 * forwards each datagram after DELAY ms to TARGET from a socket of its own (one per upstream peer, like a
 * NAT), and datagrams TARGET sends back to that socket are delayed the same way and sent to the peer from
 * LISTEN. RTT through the relay = 2 x DELAY plus the path's own.
 *
 * Run: node delay-relay.js --listen ADDR:PORT --to ADDR:PORT [--bind ADDR] [--delay MS] [--loss PCT]
 *      [--max-seconds S]
 */
import dgram from 'node:dgram';
import { pathToFileURL } from 'node:url';

export interface RelayOptions {
  readonly listenAddr: string;
  readonly listenPort: number;
  readonly toAddr: string;
  readonly toPort: number;
  /** Local address for the downstream sockets; default any. */
  readonly bindAddr?: string;
  readonly delayMs: number;
  /** Percent of datagrams dropped in each direction, 0..100. */
  readonly lossPct?: number;
}

export interface RelayStats {
  forwarded: number;
  returned: number;
  dropped: number;
}

export interface Relay {
  readonly stats: RelayStats;
  close(): Promise<void>;
}

function later(ms: number, fn: () => void): void {
  if (ms <= 0) fn();
  else setTimeout(fn, ms);
}

export async function startRelay(o: RelayOptions): Promise<Relay> {
  const loss = (o.lossPct ?? 0) / 100;
  const stats: RelayStats = { forwarded: 0, returned: 0, dropped: 0 };
  const front = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  const peers = new Map<string, dgram.Socket>();
  await new Promise<void>((res, rej) => {
    front.once('error', rej);
    front.bind(o.listenPort, o.listenAddr, () => { front.off('error', rej); res(); });
  });
  front.on('error', () => undefined);

  const backFor = (addr: string, port: number): dgram.Socket => {
    const key = `${addr}:${port}`;
    let s = peers.get(key);
    if (s) return s;
    s = dgram.createSocket('udp4');
    s.on('error', () => undefined);
    s.on('message', (msg) => {
      if (loss > 0 && Math.random() < loss) { stats.dropped++; return; }
      later(o.delayMs, () => { stats.returned++; front.send(msg, port, addr); });
    });
    s.bind(0, o.bindAddr);
    peers.set(key, s);
    return s;
  };

  front.on('message', (msg, rinfo) => {
    const back = backFor(rinfo.address, rinfo.port);
    if (loss > 0 && Math.random() < loss) { stats.dropped++; return; }
    later(o.delayMs, () => { stats.forwarded++; back.send(msg, o.toPort, o.toAddr); });
  });

  return {
    stats,
    close: async () => {
      for (const s of peers.values()) s.close();
      await new Promise<void>((r) => front.close(() => r()));
    },
  };
}

function parseHostPort(s: string, what: string): [string, number] {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${what}: expected ADDR:PORT, got "${s}"`);
  return [s.slice(0, i), port];
}

async function main(argv: string[]): Promise<number> {
  const opt = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i] ?? '';
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) { process.stderr.write(`delay-relay: bad argument "${k}"\n`); return 1; }
    opt.set(k.slice(2), v);
  }
  try {
    const [la, lp] = parseHostPort(opt.get('listen') ?? '', '--listen');
    const [ta, tp] = parseHostPort(opt.get('to') ?? '', '--to');
    const delayMs = Number(opt.get('delay') ?? '0');
    const lossPct = Number(opt.get('loss') ?? '0');
    const maxS = Number(opt.get('max-seconds') ?? '3600');
    const relay = await startRelay({ listenAddr: la, listenPort: lp, toAddr: ta, toPort: tp, bindAddr: opt.get('bind'), delayMs, lossPct });
    process.stderr.write(`delay-relay: ${la}:${lp} -> ${ta}:${tp} delay ${delayMs} ms loss ${lossPct}% ready\n`);
    const stop = (): void => {
      process.stderr.write(`delay-relay: forwarded ${relay.stats.forwarded} returned ${relay.stats.returned} dropped ${relay.stats.dropped}\n`);
      void relay.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    setTimeout(stop, maxS * 1000).unref();
    return -1;
  } catch (e) {
    process.stderr.write(`delay-relay: ${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main(process.argv.slice(2)).then((code) => { if (code >= 0) process.exit(code); });
}
