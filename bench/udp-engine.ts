/**
 * The UDP engine's cost per datagram (a benchmark, not a test): datagrams per CPU-second sent and received by
 * the native engine (native/udp), by node:dgram, and by a plain C sendto/recvfrom loop (bench/udp-loop.c, built
 * here with cc), across a veth pair between two network namespaces of our own.
 *
 *   npm run bench -- udp        or   npx tsc -p . && sudo npx tsx bench/udp-engine.ts [--count 200000] [--size 1300] [--runs 3]
 *
 * Send rows: the contender sends --count datagrams of --size bytes to one address as fast as the socket takes them
 * (waiting on EAGAIN), a C recvfrom loop receives. Receive rows: a C sendto loop sends, the contender receives
 * (the last two rows: the native engine's GSO sender sends, as our uftp would).
 * CPU is user+system of the contender's process over the run (getrusage / process.cpuUsage, from the first
 * datagram; Node's start-up is not counted). Medians of --runs runs, rows alternating. Prints a Markdown table.
 * Note: the receiving side's kernel work (veth, IP, UDP demux, socket queueing) runs in softirq on the sending
 * CPU and is charged to the sender, the same for every contender.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const count = arg('count', 200000);
const size = arg('size', 1300);
const runs = arg('runs', 3);

// bench/ (run with tsx) or dist/bench/ (run compiled): the repository root either way
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, path.basename(path.dirname(here)) === 'dist' ? '../..' : '..');
const peer = path.join(root, 'dist/bench/peers/udp-peer.js');
if (!fs.existsSync(peer)) throw new Error(`${peer} missing: run npx tsc -p . first`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'udp-bench-'));
const cloop = path.join(work, 'udp-loop');
execFileSync(process.env.CC ?? 'cc', ['-O2', '-o', cloop, path.join(root, 'bench/udp-loop.c')], { stdio: 'inherit' });

const sfx = randomBytes(3).toString('hex');
const A = `ub-a${sfx}`;
const B = `ub-b${sfx}`;
const ip = (...a: string[]): void => void execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });
function down(): void {
  for (const ns of [A, B]) {
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      ip('netns', 'del', ns);
    } catch {
      // not there
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
process.on('exit', down);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));

for (const ns of [A, B]) {
  ip('netns', 'add', ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
}
ip('link', 'add', 'ua', 'netns', A, 'type', 'veth', 'peer', 'name', 'ub', 'netns', B);
ip('-n', A, 'addr', 'add', '10.75.0.1/24', 'dev', 'ua');
ip('-n', B, 'addr', 'add', '10.75.0.2/24', 'dev', 'ub');
ip('-n', A, 'link', 'set', 'ua', 'up');
ip('-n', B, 'link', 'set', 'ub', 'up');
for (const ns of [A, B]) execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.core.rmem_max=4194304', 'net.core.wmem_max=4194304']);
await new Promise((r) => setTimeout(r, 500));

interface Out {
  count: number;
  cpu: number;
}
type Cmd = string[];
const nodeCmd = (o: object): Cmd => [process.execPath, peer, JSON.stringify(o)];

/** Starts the receiver in B, waits for ready, runs the sender in A; returns both results. */
async function run(recv: Cmd, send: Cmd): Promise<{ rx: Out; tx: Out }> {
  const p = spawn('ip', ['netns', 'exec', B, 'timeout', '120', ...recv], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 200 && !out.includes('"ready"'); i++) await new Promise((r) => setTimeout(r, 25));
  const txText = execFileSync('ip', ['netns', 'exec', A, 'timeout', '120', ...send], { encoding: 'utf8' });
  await new Promise((r) => p.on('exit', r));
  const last = (t: string): Out => JSON.parse(t.trim().split('\n').pop() ?? '{}') as Out;
  return { rx: last(out), tx: last(txText) };
}

const PORT = 5200;
const cRecv: Cmd = [cloop, 'recv', String(PORT), '500'];
const cSend: Cmd = [cloop, 'send', '10.75.0.2', String(PORT), String(count), String(size)];
// the Node peers use a udp6 socket (IPv4 as v4-mapped), as the daemons do
const nativeGsoSend = nodeCmd({ mode: 'send', backend: 'native', dst: '10.75.0.2', port: PORT, count, size, gso: true });
const rows: { name: string; side: 'send' | 'recv'; cmd: Cmd; peer?: Cmd }[] = [
  { name: 'C sendto loop', side: 'send', cmd: cSend },
  { name: 'native engine (sendmmsg + GSO)', side: 'send', cmd: nodeCmd({ mode: 'send', backend: 'native', dst: '10.75.0.2', port: PORT, count, size, gso: true }) },
  { name: 'native engine (sendmmsg, GSO off)', side: 'send', cmd: nodeCmd({ mode: 'send', backend: 'native', dst: '10.75.0.2', port: PORT, count, size, gso: false }) },
  { name: 'node:dgram', side: 'send', cmd: nodeCmd({ mode: 'send', backend: 'dgram', dst: '10.75.0.2', port: PORT, count, size }) },
  { name: 'C recvfrom loop', side: 'recv', cmd: cRecv },
  { name: 'native engine, onBatch (recvmmsg, PKTINFO + TOS)', side: 'recv', cmd: nodeCmd({ mode: 'recv', backend: 'native', port: PORT, idleMs: 500, api: 'batch' }) },
  // what uftpd and the server proxy run: after a small turn of a stream, sleep until more have arrived (src/daemon/coalesce.ts)
  { name: 'native engine, onBatch, receive coalescing (as uftpd and the server proxy)', side: 'recv', cmd: nodeCmd({ mode: 'recv', backend: 'native', port: PORT, idleMs: 500, api: 'batch', coalesce: true }) },
  { name: 'native engine, onBatch (recvmmsg, recvInfo off)', side: 'recv', cmd: nodeCmd({ mode: 'recv', backend: 'native', port: PORT, idleMs: 500, api: 'batch', recvInfo: false }) },
  { name: 'native engine, onMessage (a copy each)', side: 'recv', cmd: nodeCmd({ mode: 'recv', backend: 'native', port: PORT, idleMs: 500, api: 'message' }) },
  { name: 'node:dgram, onMessage', side: 'recv', cmd: nodeCmd({ mode: 'recv', backend: 'dgram', port: PORT, idleMs: 500, api: 'message' }) },
  // our sender to our receiver: GSO packets cross the veth whole and arrive coalesced (UDP GRO), split by the engine
  { name: 'native engine, onBatch, from the native GSO sender (GRO)', side: 'recv', peer: nativeGsoSend, cmd: nodeCmd({ mode: 'recv', backend: 'native', port: PORT, idleMs: 500, api: 'batch' }) },
  { name: 'C recvfrom loop, from the native GSO sender', side: 'recv', peer: nativeGsoSend, cmd: cRecv },
];

const results = new Map<string, { rate: number; count: number; cpu: number }[]>();
for (let r = 0; r < runs; r++) {
  for (const row of rows) {
    const { rx, tx } = row.side === 'send' ? await run(row.peer ?? cRecv, row.cmd) : await run(row.cmd, row.peer ?? cSend);
    const me = row.side === 'send' ? tx : rx;
    const v = { rate: me.count / me.cpu, count: me.count, cpu: me.cpu };
    if (!results.has(row.name)) results.set(row.name, []);
    results.get(row.name)?.push(v);
    process.stderr.write(`run ${r + 1} ${row.side} ${row.name}: ${me.count} datagrams, ${me.cpu.toFixed(3)} s CPU, ` +
      `${Math.round(v.rate)}/CPU-s (peer: ${row.side === 'send' ? rx.count : tx.count})\n`);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(`${count} datagrams of ${size} bytes per run, ${runs} runs, medians (range); veth between two namespaces; ${os.cpus().length} CPUs, Linux ${os.release()}, Node ${process.version}`);
console.log();
console.log('| side | contender | datagrams per CPU-second | µs CPU per datagram | datagrams counted |');
console.log('| --- | --- | ---: | ---: | ---: |');
for (const row of rows) {
  const v = results.get(row.name) ?? [];
  const rates = v.map((x) => x.rate);
  const m = median(rates);
  console.log(`| ${row.side} | ${row.name} | ${fmt(m)} (${fmt(Math.min(...rates))}-${fmt(Math.max(...rates))}) | ${(1e6 / m).toFixed(2)} | ${fmt(median(v.map((x) => x.count)))} |`);
}
