/**
 * uftpd cost and retransmissions (a benchmark, not a test): Figure 2 of the lab, the real uftp sending one file at
 * `-R -1` (as fast as it can) to OUR uftpd (client1) and the real uftpd (client2) in the same session on one
 * segment.
 *
 *   npx tsc -p . && sudo node dist/bench/uftpd-side-by-side.js [--size-mb 64] [--runs 3] [--rate -1] [--node-args '--cpu-prof --cpu-prof-dir=DIR'] [--log-dir DIR] [--warm-mb N] [--pin] [--loss PCT [--loss-in]] [--our-args '-x 3'] [--status-trace]
 *     [--crypto KEYTYPE]
 *
 * --pin: the sender (the real uftp, spinning at -R -1) and the captures on CPU 0, both receivers on CPU 1 (taskset,
 * all threads): closer to the field, where each receiver has a host of its own, and still one session shared
 * fairly by the two receivers. Without it everything shares both CPUs (the headline form).
 *
 * --crypto KEYTYPE: the session encrypted (`-Y KEYTYPE -h sha256`, RSA key exchange, generated keys).
 *
 * Per run and per client: the blocks it NAKed (sum of the set bits of the STATUS messages it sent, decoded from a
 * capture of the client's link), the UDP datagrams that reached its namespace (rx packets of its interface) and
 * those its socket dropped (RcvbufErrors), the CPU seconds of its process (user+system from /proc) and the CPU per
 * datagram received. Files are checked by SHA-256. Prints a Markdown table for docs/benchmarks.md ("uftpd").
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Lab } from '../src/lab/lab.js';
import { readUdpDatagrams } from '../src/pcap/index.js';
import { decodePacket } from '../src/wire/packet.js';
import { ourUftpd } from '../test/lab/helpers/uftpd.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const sizeMb = arg('size-mb', 64);
const runs = arg('runs', 3);
const rate = arg('rate', -1);
// --node-args 'A B': options for the node running our uftpd (--cpu-prof --cpu-prof-dir=DIR, --trace-gc);
// --log-dir DIR: our uftpd's log (and node's output) kept there
const strArg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const nodeArgs = strArg('node-args')?.split(' ').filter(Boolean);
// --warm-mb N: both daemons first receive a session of N MiB (not counted): V8 has optimized our data path by then
const warmMb = arg('warm-mb', 0);
const logDir = strArg('log-dir');
const pin = args.includes('--pin');
// --loss PCT: random loss on both clients' links (both directions, the lab's nftables rule), the same for both:
// the passes after the first then carry blocks scattered over the file
const lossPct = arg('loss', 0);
// --loss-in: that loss on what the clients receive only (their STATUS all reach the server and the captures)
const lossIn = args.includes('--loss-in');
// --status-trace: every STATUS of both captures (time from the client's first, section, blocks NAKed) to stderr
const statusTrace = args.includes('--status-trace');
const cryptoArgs = strArg('crypto') !== undefined ? ['-Y', strArg('crypto') ?? '', '-h', 'sha256'] : [];
const CLK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Pins a process (all its threads; threads it starts later inherit it) to one CPU. */
function pinTo(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** CPU seconds of a process (all its threads): user + system, and system alone. */
function cpuOf(pid: number): { all: number; sys: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { all: (Number(f[11]) + Number(f[12])) / CLK, sys: Number(f[12]) / CLK };
}

/** CPU seconds (user, system) per thread name of a process (the main thread, V8's compiler and GC helpers, libuv's pool). */
function threadsOf(pid: number): Map<string, { user: number; sys: number }> {
  const out = new Map<string, { user: number; sys: number }>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = Number(t) === pid ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const was = out.get(name) ?? { user: 0, sys: 0 };
      out.set(name, { user: was.user + Number(f[11]) / CLK, sys: was.sys + Number(f[12]) / CLK });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** The receiving daemon's pid in a host's namespace: node running uftpd.js, or the C uftpd. */
function daemonPid(lab: Lab, host: string): number {
  const pids = execFileSync('ip', ['netns', 'pids', lab.nsOf(host)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if ((comm === 'node' && cmd.includes('uftpd.js')) || comm === 'uftpd') return pid;
    } catch {
      // gone
    }
  }
  throw new Error(`no uftpd in ${host}`);
}

function nsCounter(lab: Lab, host: string): { rx: number; drops: number } {
  const rx = Number(execFileSync('ip', ['netns', 'exec', lab.nsOf(host), 'cat', '/sys/class/net/eS/statistics/rx_packets'], { encoding: 'utf8' }).trim());
  const t = execFileSync('ip', ['netns', 'exec', lab.nsOf(host), 'cat', '/proc/net/snmp'], { encoding: 'utf8' });
  const lines = t.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0].split(/\s+/);
  const vals = lines[1].split(/\s+/);
  return { rx, drops: Number(vals[names.indexOf('RcvbufErrors')] ?? 0) };
}

/** Blocks NAKed in the STATUS messages of a capture (plain sessions). */
async function nakedBlocks(file: string): Promise<{ statuses: number; naks: number }> {
  let statuses = 0;
  let naks = 0;
  let t0: bigint | undefined;
  for await (const r of readUdpDatagrams(fs.createReadStream(file), { port: 1044 })) {
    if (!r.ok || r.value.kind !== 'datagram') continue;
    const p = decodePacket(r.value.datagram.payload);
    if (!p.ok || p.value.message.type !== 'STATUS') continue;
    statuses++;
    let bits = 0;
    for (const b of p.value.message.naks) for (let x = b; x; x &= x - 1) bits++;
    naks += bits;
    if (statusTrace) {
      const t = r.value.timeNs;
      if (t0 === undefined) t0 = t;
      process.stderr.write(`  ${path.basename(file)} +${(Number(t - t0) / 1e6).toFixed(1)} ms: STATUS file ${p.value.message.fileId} section ${p.value.message.section}: ${bits} NAKed\n`);
    }
  }
  return { statuses, naks };
}

interface Side { naks: number; statuses: number; rx: number; drops: number; cpu: number; sys: number; ok: boolean }

async function once(lab: Lab, src: string, want: string, run: number): Promise<{ ours: Side; real: Side; seconds: number }> {
  // --our-args 'A B': more options for our uftpd (e.g. '-x 3' for its per-STATUS log lines; later ones win)
  const ourArgs = ['-x', '1', '-B', '4194304', ...(strArg('our-args')?.split(' ').filter(Boolean) ?? [])];
  const ours = await ourUftpd(lab, 'client1', { dest: path.join(lab.workDir, `ours${run}`), args: ourArgs, timeoutMs: 600_000, nodeArgs, ...(logDir !== undefined ? { logFile: path.resolve(logDir, `ours-${run}.log`) } : {}) });
  const real = await lab.realUftpd('client2', { dest: path.join(lab.workDir, `real${run}`), args: ['-x', '1', '-B', '4194304'], timeoutMs: 600_000 });
  if (warmMb > 0) {
    const w = lab.realUftp('server', [path.join(lab.workDir, 'warm.bin')], { args: ['-R', String(rate), '-x', '1', '-B', '4194304', ...cryptoArgs], timeoutMs: 600_000 });
    if ((await w.wait()) !== 0) process.stderr.write('warm-up session failed\n');
  }
  if (lossPct > 0 && run === 0) {
    for (const h of ['client1', 'client2']) {
      await lab.impairLink(h, 'S', { lossPct });
      if (lossIn) execFileSync('ip', ['netns', 'exec', lab.nsOf(h), 'nft', 'delete', 'chain', 'inet', 'lablink_S', 'outlink']);
    }
  }
  const caps = await Promise.all(['client1', 'client2'].map((h) => lab.capture(h, 'eS', path.join(lab.workDir, `${h}-${run}.pcap`), ['udp', 'and', 'src', 'host', lab.addrOf(h)])));
  const pids = { ours: daemonPid(lab, 'client1'), real: daemonPid(lab, 'client2') };
  if (pin) {
    pinTo(pids.ours, 1);
    pinTo(pids.real, 1);
  }
  const c0 = { ours: cpuOf(pids.ours), real: cpuOf(pids.real) };
  const n0 = { ours: nsCounter(lab, 'client1'), real: nsCounter(lab, 'client2') };
  const th0 = threadsOf(pids.ours);
  const t0 = Date.now();
  const s = lab.realUftp('server', [src], { args: ['-R', String(rate), '-x', '1', '-B', '4194304', ...cryptoArgs], timeoutMs: 600_000 });
  const code = await s.wait();
  const seconds = (Date.now() - t0) / 1000;
  const c1 = { ours: cpuOf(pids.ours), real: cpuOf(pids.real) };
  const n1 = { ours: nsCounter(lab, 'client1'), real: nsCounter(lab, 'client2') };
  const th1 = threadsOf(pids.ours);
  process.stderr.write(`run ${run + 1}: our uftpd's CPU by thread (user+system): ${[...th1].map(([k, v]) => `${k} ${(v.user - (th0.get(k)?.user ?? 0)).toFixed(2)}+${(v.sys - (th0.get(k)?.sys ?? 0)).toFixed(2)}`).join(', ')}\n`);
  await new Promise((r) => setTimeout(r, 300));
  for (const c of caps) await c.kill();
  await ours.kill();
  await real.kill();
  const sha = (f: string): string => (fs.existsSync(f) ? createHash('sha256').update(fs.readFileSync(f)).digest('hex') : '');
  const side = async (who: 'ours' | 'real', host: string, dest: string): Promise<Side> => {
    const n = await nakedBlocks(path.join(lab.workDir, `${host}-${run}.pcap`));
    return { ...n, rx: n1[who].rx - n0[who].rx, drops: n1[who].drops - n0[who].drops, cpu: c1[who].all - c0[who].all, sys: c1[who].sys - c0[who].sys, ok: sha(path.join(dest, 'big.bin')) === want };
  };
  if (code !== 0) process.stderr.write(`uftp exited ${code}\n`);
  return { ours: await side('ours', 'client1', ours.dest), real: await side('real', 'client2', real.dest), seconds };
}

async function main(): Promise<void> {
  // children (the sender, the captures) inherit the bench's CPU 0; the receivers are moved to CPU 1 once started
  if (pin) pinTo(process.pid, 0);
  const lab = await Lab.up('fig2', { prefix: `ufb${randomBytes(3).toString('hex')}`, octet: 86 });
  try {
    const src = path.join(lab.workDir, 'big.bin');
    fs.writeFileSync(src, randomBytes(sizeMb * 1048576));
    const want = createHash('sha256').update(fs.readFileSync(src)).digest('hex');
    if (warmMb > 0) fs.writeFileSync(path.join(lab.workDir, 'warm.bin'), randomBytes(warmMb * 1048576));
    const rows: string[] = [];
    const all: { ours: Side; real: Side }[] = [];
    for (let r = 0; r < runs; r++) {
      const x = await once(lab, src, want, r);
      all.push(x);
      const line = (who: string, v: Side): string =>
        `| ${r + 1} | ${who} | ${x.seconds.toFixed(1)} | ${v.ok ? 'yes' : 'NO'} | ${v.naks} | ${v.statuses} | ${v.rx} | ${v.drops} | ${v.cpu.toFixed(2)} | ${v.sys.toFixed(2)} | ${((v.cpu / Math.max(1, v.rx)) * 1e6).toFixed(1)} |`;
      rows.push(line('ours', x.ours), line('real uftpd', x.real));
      process.stderr.write(`run ${r + 1}: ${x.seconds.toFixed(1)} s; ours naks ${x.ours.naks} cpu ${x.ours.cpu.toFixed(2)} s; real naks ${x.real.naks} cpu ${x.real.cpu.toFixed(2)} s\n`);
    }
    process.stdout.write(`${sizeMb} MiB, uftp -R ${rate}, ${runs} runs${warmMb > 0 ? `, after a ${warmMb} MiB warm-up session` : ''}${pin ? ', sender on CPU 0, receivers on CPU 1' : ''}${lossPct > 0 ? `, ${lossPct}% loss on both clients' links${lossIn ? ' (inbound only)' : ''}` : ''}${nodeArgs ? `, node ${nodeArgs.join(' ')}` : ''}\n\n`);
    process.stdout.write('| run | client | session s | SHA-256 ok | blocks NAKed | STATUS sent | datagrams in | socket drops | CPU s | of which system | CPU us/datagram |\n');
    process.stdout.write('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n');
    process.stdout.write(rows.join('\n') + '\n');
    const med = (xs: number[]): number => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
    const sum = (who: 'ours' | 'real'): string => {
      const v = all.map((x) => x[who]);
      const d = v.map((y) => y.drops);
      const n = v.map((y) => y.naks);
      return `${who}: drops ${med(d)} (${Math.min(...d)}-${Math.max(...d)}), NAKed ${med(n)} (${Math.min(...n)}-${Math.max(...n)}), CPU us/datagram ${med(v.map((y) => (y.cpu / Math.max(1, y.rx)) * 1e6)).toFixed(1)}`;
    };
    process.stdout.write(`\nmedians of ${runs} runs: ${sum('ours')}; ${sum('real')}\n`);
  } finally {
    await lab.down();
  }
}

void main();
