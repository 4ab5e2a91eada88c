/**
 * A tiny UDP tool the lab's own tests run inside namespaces (never in the root namespace):
 *   recv  --port P [--group G] [--bind A] --ms N          count datagrams for N ms; prints JSON
 *   (IPv6 with --family 6 or when --to/--group/--bind is an IPv6 address)
 *   send  --to A --port P --count N [--size B] [--gap-us U] [--ttl T]
 *   echo  --port P [--bind A] --ms N                       send every datagram back to its source
 *   ping  --to A --port P --count N [--gap-ms G] --ms N    RTTs of sequenced echoes; prints JSON
 * Every mode stops by itself after --ms (default 10000).
 */
import dgram from 'node:dgram';
import { pathToFileURL } from 'node:url';

export interface RecvReport { count: number; bytes: number; firstMs: number; lastMs: number; sources: string[] }
export interface PingReport { sent: number; rtts: number[] }

function args(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i] ?? '';
    if (k.startsWith('--')) { m.set(k.slice(2), argv[i + 1] ?? ''); i++; }
  }
  return m;
}

function sleepUs(us: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, Math.round(us / 1000))));
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  const a = args(process.argv.slice(3));
  const port = Number(a.get('port') ?? '0');
  const ms = Number(a.get('ms') ?? '10000');
  // IPv6 when asked (--family 6) or when an address given is IPv6.
  const v6 = a.get('family') === '6' || ['to', 'group', 'bind'].some((k) => (a.get(k) ?? '').includes(':'));
  const s = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true });
  s.on('error', (e) => { process.stderr.write(`udp-probe: ${e.message}\n`); process.exit(1); });
  const stopAfter = (fn: () => void): void => { setTimeout(() => { fn(); s.close(); process.exit(0); }, ms); };

  if (mode === 'recv') {
    const r: RecvReport = { count: 0, bytes: 0, firstMs: 0, lastMs: 0, sources: [] };
    const t0 = performance.now();
    s.on('message', (msg, ri) => {
      const now = performance.now() - t0;
      if (r.count === 0) r.firstMs = now;
      r.lastMs = now; r.count++; r.bytes += msg.length;
      const src = `${ri.address}:${ri.port}`;
      if (!r.sources.includes(src)) r.sources.push(src);
    });
    s.bind(port, a.get('bind'), () => {
      const g = a.get('group');
      if (g) s.addMembership(g);
      process.stderr.write('ready\n');
    });
    stopAfter(() => process.stdout.write(JSON.stringify(r) + '\n'));
  } else if (mode === 'echo') {
    s.on('message', (msg, ri) => s.send(msg, ri.port, ri.address));
    s.bind(port, a.get('bind'), () => process.stderr.write('ready\n'));
    stopAfter(() => undefined);
  } else if (mode === 'send') {
    const to = a.get('to') ?? '';
    const count = Number(a.get('count') ?? '1');
    const size = Number(a.get('size') ?? '100');
    const gapUs = Number(a.get('gap-us') ?? '1000');
    await new Promise<void>((r) => s.bind(0, () => r()));
    if (a.get('ttl')) s.setMulticastTTL(Number(a.get('ttl')));
    const buf = Buffer.alloc(size, 0x55);
    // Send in small bursts so the pacing holds without a timer per datagram.
    const burst = Math.max(1, Math.round(2000 / Math.max(1, gapUs)));
    for (let i = 0; i < count; i += burst) {
      for (let j = i; j < Math.min(count, i + burst); j++) {
        buf.writeUInt32BE(j, 0);
        await new Promise<void>((r) => s.send(buf, port, to, () => r()));
      }
      await sleepUs(gapUs * burst);
    }
    s.close();
    process.exit(0);
  } else if (mode === 'ping') {
    const to = a.get('to') ?? '';
    const count = Number(a.get('count') ?? '10');
    const gapMs = Number(a.get('gap-ms') ?? '100');
    const sentAt = new Map<number, number>();
    const rep: PingReport = { sent: 0, rtts: [] };
    s.on('message', (msg) => {
      const seq = msg.readUInt32BE(0);
      const t = sentAt.get(seq);
      if (t !== undefined) { rep.rtts.push(performance.now() - t); sentAt.delete(seq); }
    });
    await new Promise<void>((r) => s.bind(0, () => r()));
    stopAfter(() => process.stdout.write(JSON.stringify(rep) + '\n'));
    for (let i = 0; i < count; i++) {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(i, 0);
      sentAt.set(i, performance.now());
      s.send(b, port, to);
      rep.sent++;
      await new Promise((r) => setTimeout(r, gapMs));
    }
  } else {
    process.stderr.write('udp-probe: mode must be recv, send, echo or ping\n');
    process.exit(2);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
