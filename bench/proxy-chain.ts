/**
 * uftpproxyd throughput and cost (a benchmark, not a test): Figure 1 of the lab, the real uftp server sending one
 * file through a server proxy and a client proxy to two real uftpd, with our proxies and with the real ones.
 *
 *   npx tsc -p . && sudo npx tsx bench/proxy-chain.ts [--size-mb 64] [--rate 400000] [--runs 3]
 *
 * --rate is uftp's -R (Kbit/s). For each chain it reports the wall time of the transfer, the throughput, the
 * CPU seconds (user+system) each proxy process used, and its peak RSS. Prints a Markdown table for
 * docs/benchmarks.md. Files are checked by SHA-256 after each run. The progress line of each run (stderr) also
 * gives each proxy's user/system split and the UDP receive-buffer drops (/proc/net/snmp RcvbufErrors) in the
 * namespaces of both proxies and both clients.
 *
 * Every proxy, ours and the C uftpproxyd, runs with -B 4194304 (as the clients and the server do; net.core.rmem_max
 * is 4 MiB here). Until 2026-11-30 the C proxies ran with their default -B (262144) while ours had 4 MiB: they then
 * dropped 10,000-50,000 datagrams per session and needed 5-14 passes, which made the C pair ~15% slower than with
 * the same buffer (docs/benchmarks.md, "Figure 1 with the same -B for both pairs"). --real-default-buffer runs
 * that old setup again, for comparisons with the figures measured in it; --real-args "ARGS" adds C proxy options.
 *
 * Before/after: --before DIR adds the chains "before" (our proxies as built in DIR, e.g. a worktree of an older
 * commit: `git worktree add /tmp/before 328c0c3`, its node_modules linked, `npx tsc -p .` there) and "ours-dgram"
 * (today's proxies on the node:dgram backend, UFTP_UDP_BACKEND=dgram), all in the same lab and the same run.
 *
 * Diagnostics: --only TEXT (chains whose name contains TEXT), --cpu-prof DIR (our proxies run under
 * node --cpu-prof), --keep (keep the lab's logs), --server-log N (the uftp server's -x), --pcap DIR (tcpdump of
 * every UFTP message but FILESEG in the server's and both proxies' namespaces, one file per run and host, for
 * timing the announce, DONE / STATUS and completion rounds: `tshark -r F -Y uftp4`).
 *
 * Environment: --ours-env K=V[,K=V...] runs our proxies with these variables (e.g. UFTP_UDP_GUARD=0); --also-env
 * K=V[,K=V...] keeps our chains as they are and adds, in the same run, the chains "ours[K=V]" with them, so that
 * a variable's effect is measured beside the default (alternating within each run; select with --only "ours[").
 * --also-args "ARGS" gives those added chains extra uftpproxyd options (e.g. "-N 5").
 * --bound adds the chains "no server proxy -> no client proxy": no proxy processes, the router's kernel copies the
 * server's multicast from network A to B (nft dup). Not an upper bound: measured slower than through our pair, the
 * uftpd then waking once per datagram (docs/benchmarks.md, "Figure 1 with the same -B for both pairs").
 * --ours-sched "POLICY PRIO" runs `chrt POLICY -p PRIO PID` on our proxies' main threads (with --also-env, only on
 * the added chains): "-b 0" measured SCHED_BATCH (docs/benchmarks.md; not kept).
 * --real-default-buffer / --real-args: see above.
 *
 * Besides the chain table (medians), a second table gives each run: the server's own transfer time (its log's
 * "Total elapsed time", from the first FILESEG to the last COMPLETE, at --server-log 2 or more), its passes, the CPU
 * of the uftp server and of the two uftpd (they share the 2 cores with the proxies), and the datagrams our proxies
 * had to copy out of the receive ring (their closing log line).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cpus } from 'node:os';
import { Lab, ourBin, type Proc } from '../src/lab/lab.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const sizeMb = arg('size-mb', 64);
const rate = arg('rate', 400000);
const runs = arg('runs', 3);
/** --only TEXT: run only the chains whose name contains TEXT (e.g. "ours server proxy -> ours"); A|B: either. */
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
/** --cpu-prof DIR: our proxies write V8 CPU profiles there (on exit). */
const profAt = args.indexOf('--cpu-prof');
/** --node-flags "FLAGS": node / V8 flags for our proxies (e.g. "--trace-opt --trace-deopt"; their output goes to the logs). */
const nodeFlagsAt = args.indexOf('--node-flags');
const nodeFlags = nodeFlagsAt >= 0 ? (args[nodeFlagsAt + 1] ?? '').split(' ').filter(Boolean) : [];
const profDir = profAt >= 0 ? path.resolve(args[profAt + 1]) : undefined;
/** --keep: keep the lab's work directory (logs of every program) and print where it is. */
const keep = args.includes('--keep');
/** --server-log N: the uftp server's -x (default 1). */
const serverLog = arg('server-log', 1);
/** --proxy-log N: our proxies' -x (default 2; 4 logs each client response with its time). */
const proxyLog = arg('proxy-log', 2);
/** --pcap DIR: capture the control messages (not FILESEG: udp[9] is the UFTP message type) at these hosts. */
const pcapAt = args.indexOf('--pcap');
const pcapDir = pcapAt >= 0 ? path.resolve(args[pcapAt + 1]) : undefined;
const PCAP_HOSTS = ['server', 'sproxyB', 'cproxyB'];
/** --drop-trace: when (seconds after the server started) the uftpd clients' and the proxies' namespaces counted
 * receive-buffer drops, sampled every 5 ms through /proc/PID/net/snmp of a process in each namespace. */
const dropTrace = args.includes('--drop-trace');
let runNo = 0;
/** --ours-sched "ARGS": chrt ARGS -p PID on our proxies' main threads (an experiment; e.g. "-b 0"); with --also-env
 * only on the added chains, so that the default is measured beside it. */
const oursSchedAt = args.indexOf('--ours-sched');
const oursSched = oursSchedAt >= 0 ? args[oursSchedAt + 1] : undefined;

type Kind = 'ours' | 'real' | 'before' | 'ours-dgram' | 'ours-lazy' | 'ours-env' | 'kernel';
/** K=V,K=V -> an environment. */
const envArg = (name: string): Record<string, string> | undefined => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const env: Record<string, string> = {};
  for (const kv of (args[i + 1] ?? '').split(',').filter(Boolean)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--${name}: ${kv} is not K=V`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
};
/** --ours-env: the environment of every one of our proxies; --also-env: of the added "ours[...]" chains only. */
const oursEnv = envArg('ours-env');
const alsoEnv = envArg('also-env');
/** --also-args "ARGS": extra uftpproxyd options for the added "ours[...]" chains (with or without --also-env). */
const alsoArgsAt = args.indexOf('--also-args');
const alsoArgs = alsoArgsAt >= 0 ? (args[alsoArgsAt + 1] ?? '').split(' ').filter(Boolean) : [];
const alsoName = alsoEnv || alsoArgs.length ? `ours[${[...Object.entries(alsoEnv ?? {}).map(([k, v]) => `${k}=${v}`), ...alsoArgs].join(',')}]` : '';
const kindName = (k: Kind): string => (k === 'ours-env' ? alsoName : k === 'kernel' ? 'no' : k);
/** --bound: adds the chains "no server proxy -> no client proxy": no proxy process at all, the router's kernel copies
 * network A's multicast to B (nft dup, as fig3's router does) and routes the clients' responses; the same server,
 * clients, options and payload, alternating with the others (see the header: not an upper bound). */
const bound = args.includes('--bound');
const BOUND_RULES = 'table netdev benchbound {\n  chain in_A {\n    type filter hook ingress device "eA" priority 0; policy accept;\n' +
  '    ip daddr 224.0.0.0/4 dup to "eB"\n  }\n}\n';
/** Every proxy's -B, ours and the C ones alike: a comparison with equal options. */
const PROXY_BUFFER = '4194304';
/** --real-default-buffer: the C proxies without -B (their default, 262144), ours still at PROXY_BUFFER: the setup
 * of every Figure 1 figure in docs/benchmarks.md before 2026-11-30 (session 6), for comparisons with them. */
const realDefaultBuffer = args.includes('--real-default-buffer');
/** --real-args "ARGS": extra options for the C uftpproxyd in every chain that runs it. */
const realArgsAt = args.indexOf('--real-args');
const realArgs = [...(realDefaultBuffer ? [] : ['-B', PROXY_BUFFER]), ...(realArgsAt >= 0 ? (args[realArgsAt + 1] ?? '').split(' ').filter(Boolean) : [])];
/** --lazy: adds the chains "ours-lazy" (our proxies with V8's lazy compilation, UFTPPROXYD_LAZY=1), same run. */
const lazy = args.includes('--lazy');
/** --before DIR: a built tree of an older commit whose uftpproxyd runs as the "before" chains. */
const beforeAt = args.indexOf('--before');
const beforeDir = beforeAt >= 0 ? path.resolve(args[beforeAt + 1]) : undefined;
interface Row {
  chain: string;
  seconds: number;
  mbps: number;
  cpu: { sp: number; cp: number };
  rssMb: { sp: number; cp: number };
  ok: boolean;
  /** Datagrams the uftp server sent (its namespace's UDP OutDatagrams; the C uftp sends one per sendto): what
   * each proxy forwarded, give or take the few responses and the datagrams lost on the way. */
  serverDatagrams: number;
  /** Receive-buffer drops in the proxies' namespaces: the server proxy forwarded serverDatagrams - sp, the client
   * proxy that less cp (as near as the counters say: a GRO-coalesced packet dropped counts once). */
  drops: { sp: number; cp: number };
  /** user/system split of the proxies' CPU, for the progress line. */
  split: string;
  /** Receive-buffer drops at the two uftpd clients together. */
  clientDrops: number;
  /** The server's rtt for the first REGISTER (ms; --server-log 3), its passes and its transfer time (s, its log's
   * "Total elapsed time"; --server-log 2), when its log says. */
  rttMs?: number;
  passes?: number;
  transferS?: number;
  /** CPU seconds of the uftp server (sampled while it runs: a few ms short at most) and of both uftpd. */
  cpuServer: number;
  cpuClients: number;
  /** Seconds the uftp server and the two uftpd (together) waited for a CPU while runnable. */
  waitServer: number;
  waitClients: number;
  /** Datagrams our proxies copied out of the receive ring (their closing line), sp / cp; undefined for C. */
  copied: { sp?: number; cp?: number };
  /** CPU seconds the hypervisor took from this VM's CPUs during the run (/proc/stat "steal", all CPUs). */
  steal: number;
}

/** Seconds of steal time so far, all CPUs together (/proc/stat, first line, 8th value). */
function stealSeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  return Number(f[8] ?? 0) / CLK;
}

/** The program a `timeout` wrapper (src/lab's spawn) runs: its child. */
function childOf(pid: number): number | undefined {
  try {
    const c = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return c[0];
  } catch {
    return undefined;
  }
}

/** Seconds a process's threads spent runnable but waiting for a CPU (/proc/PID/task/TID/schedstat, 2nd field;
 * the uftp server sends its data from a thread of its own). */
function waitOrZero(pid: number | undefined): number {
  if (pid === undefined) return 0;
  let ns = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // thread gone
      }
    }
  } catch {
    return 0;
  }
  return ns / 1e9;
}

function cpuOrZero(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return cpuSeconds(pid);
  } catch {
    return 0;
  }
}

const CLK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The proxy process (node or uftpproxyd) in a namespace: its pid. */
function proxyPid(lab: Lab, host: string): number {
  const pids = execFileSync('ip', ['netns', 'pids', lab.nsOf(host)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if ((comm === 'node' && cmd.includes('uftpproxyd.js')) || comm === 'uftpproxyd') return pid;
    } catch {
      // gone
    }
  }
  throw new Error(`no proxy process in ${host}`);
}

function cpuSeconds(pid: number): number {
  const t = cpuSplit(pid);
  return t.user + t.sys;
}

/** User and system CPU seconds of a process so far. */
function cpuSplit(pid: number): { user: number; sys: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / CLK, sys: Number(f[12]) / CLK };
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** UDP datagrams the kernel dropped for a full receive buffer in a host's namespace so far (/proc/net/snmp). */
function rcvbufErrors(lab: Lab, host: string): number {
  return udpCounter(lab, host, 'RcvbufErrors');
}

/** A counter of the Udp: lines of /proc/net/snmp in a host's namespace. */
function udpCounter(lab: Lab, host: string, name: string): number {
  const t = execFileSync('ip', ['netns', 'exec', lab.nsOf(host), 'cat', '/proc/net/snmp'], { encoding: 'utf8' });
  const lines = t.split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) return 0;
  const names = lines[0].split(/\s+/);
  const vals = lines[1].split(/\s+/);
  return Number(vals[names.indexOf(name)] ?? 0);
}

const DROP_HOSTS = ['sproxyB', 'cproxyB', 'clientB1', 'clientB2'];

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function start(lab: Lab, kind: Kind, host: string, a: string[]): Promise<Proc> {
  if (kind === 'real') return lab.realProxy(host, ['-x', '1', ...realArgs, ...a]);
  const argv = ['-d', '-x', String(proxyLog), '-U', lab.uidOf(host), '-B', PROXY_BUFFER, ...(kind === 'ours-env' ? alsoArgs : []), ...a];
  const bin = kind === 'before' && beforeDir ? path.join(beforeDir, 'dist', 'src', 'cli', 'uftpproxyd.js') : ourBin('uftpproxyd');
  const base = oursEnv ? { ...process.env, ...oursEnv } : undefined;
  const env = kind === 'ours-dgram' ? { ...process.env, ...oursEnv, UFTP_UDP_BACKEND: 'dgram' } : kind === 'ours-lazy' ? { ...process.env, ...oursEnv, UFTPPROXYD_LAZY: '1' }
    : kind === 'ours-env' ? { ...process.env, ...oursEnv, ...alsoEnv } : base;
  const p = kind !== 'ours' || env !== undefined || nodeFlags.length > 0
    ? lab.spawn(host, [process.execPath, ...nodeFlags, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), bin, ...argv], { timeoutMs: 600_000, env })
    : profDir
    ? lab.spawn(host, [process.execPath, '--cpu-prof', `--cpu-prof-dir=${profDir}`, ourBin('uftpproxyd'), ...argv], { timeoutMs: 600_000, env })
    : lab.ours(host, 'uftpproxyd', argv, { timeoutMs: 600_000 });
  await lab.waitFor(() => p.exitCode !== null || p.log().includes('Listening on port'), 15_000, `uftpproxyd on ${host}`);
  if (p.exitCode !== null) throw new Error(`uftpproxyd on ${host} exited ${p.exitCode}: ${p.log().trim().split('\n').slice(-3).join(' | ')}`);
  return p;
}

async function one(lab: Lab, sp: Kind, cp: Kind, file: string, want: string, enc: boolean): Promise<Row> {
  const key = async (w: string): Promise<string[]> => (enc ? ['-k', (await lab.makeKey(path.join(lab.workDir, 'keys', `${w}.pem`), 'rsa:1024')).file] : []);
  const b1 = await lab.realUftpd('clientB1', { args: ['-B', '4194304', ...(await key('clientB1'))] });
  const b2 = await lab.realUftpd('clientB2', { args: ['-B', '4194304', ...(await key('clientB2'))] });
  const none = sp === 'kernel';
  const cpP = none ? undefined : await start(lab, cp, 'cproxyB', ['-c', ...(await key('cproxyB'))]);
  const spP = none ? undefined : await start(lab, sp, 'sproxyB', ['-s', lab.tunnelDest('cproxyB')]);
  if (none) await lab.nft('router', BOUND_RULES);
  // the proxy processes (none with --bound)
  const pids = none ? undefined : { sp: proxyPid(lab, 'sproxyB'), cp: proxyPid(lab, 'cproxyB') };
  // --ours-sched POLICY: an experiment, our proxies' main threads under `chrt POLICY` (e.g. "-b 0": SCHED_BATCH)
  if (oursSched && pids && (sp !== 'real' || cp !== 'real')) {
    for (const [k, pid] of [['sp', pids.sp], ['cp', pids.cp]] as const) {
      if ((k === 'sp' ? sp : cp) === (alsoEnv ? 'ours-env' : 'ours')) {
        const [policy, prio] = oursSched.split(' ');
        execFileSync('chrt', [policy, '-p', prio ?? '0', String(pid)]);
      }
    }
  }
  const tag = `${++runNo}-${enc ? 'enc' : 'plain'}-${sp}-${cp}`;
  const clientPids = [childOf(b1.pid), childOf(b2.pid)];
  const cpuClients0 = clientPids.reduce<number>((a, p) => a + cpuOrZero(p), 0);
  const waitClients0 = clientPids.reduce<number>((a, p) => a + waitOrZero(p), 0);
  const caps = pcapDir ? await Promise.all(PCAP_HOSTS.map((h) => lab.capture(h, 'any', path.join(pcapDir, `${tag}-${h}.pcap`), ['udp', 'and', 'udp[9]', '!=', '9']))) : [];
  const cpu0 = pids && { sp: cpuSplit(pids.sp), cp: cpuSplit(pids.cp) };
  const drops0 = DROP_HOSTS.map((h) => rcvbufErrors(lab, h));
  const out0 = udpCounter(lab, 'server', 'OutDatagrams');
  const steal0 = stealSeconds();
  const t0 = process.hrtime.bigint();
  const encArgs = enc ? ['-Y', 'aes256-gcm', '-h', 'sha256', '-e', 'rsa', ...(await key('server'))] : [];
  const server = lab.realUftp('server', [file], { args: ['-R', String(rate), '-B', '4194304', '-x', String(serverLog), ...encArgs], timeoutMs: 600_000 });
  // the server's CPU, sampled while it runs (its last 10 ms may be missed)
  let cpuServer = 0;
  let waitServer = 0;
  let serverPid: number | undefined;
  // --drop-trace: [host, ms after the start, drops so far]
  const tracePids: [string, number | undefined][] = dropTrace ? [['sproxyB', pids?.sp], ['cproxyB', pids?.cp], ['clientB1', clientPids[0]], ['clientB2', clientPids[1]]] : [];
  const trace: Map<string, [number, number][]> = new Map(tracePids.map(([h]) => [h, []]));
  const sampler = setInterval(() => {
    for (const [h, pid] of tracePids) {
      if (pid === undefined) continue;
      try {
        const t = fs.readFileSync(`/proc/${pid}/net/snmp`, 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
        const v = Number(t[1]?.split(/\s+/)[t[0]?.split(/\s+/).indexOf('RcvbufErrors') ?? -1] ?? 0);
        const l = trace.get(h);
        if (l && (l.length === 0 || l[l.length - 1][1] !== v)) l.push([Number(process.hrtime.bigint() - t0) / 1e6, v]);
      } catch {
        // gone
      }
    }
    serverPid ??= childOf(server.pid);
    const c = cpuOrZero(serverPid);
    if (c > cpuServer) cpuServer = c;
    const w = waitOrZero(serverPid);
    if (w > waitServer) waitServer = w;
  }, dropTrace ? 5 : 10);
  const code = await server.wait();
  clearInterval(sampler);
  if (dropTrace) {
    for (const [h, l] of trace) {
      if (l.length < 2) continue;
      const base = l[0][1];
      process.stderr.write(`  drops at ${h} (s after the server started: total): ${l.slice(1).map(([ms, v]) => `${(ms / 1000).toFixed(3)}: ${v - base}`).join(', ')}\n`);
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // at -x 3 the server logs the round-trip times it measures (REGISTER, FILEINFO_ACK) and its passes
  const whole = server.log();
  const slog = whole.slice(Math.max(0, whole.lastIndexOf('UFTP version'))); // the log file is shared by the runs
  const rtts = [...slog.matchAll(/^\s*rtt = ([\d.]+)/gm)].map((m) => `${(Number(m[1]) * 1000).toFixed(1)}`);
  const passes = (slog.match(/^Starting pass/gm) ?? []).length;
  const elapsed = /^Total elapsed time: ([\d.]+) seconds/m.exec(slog);
  const timing = rtts.length ? `; server rtt ms ${rtts.join(', ')}, ${passes} passes` : '';
  const clientDrops = DROP_HOSTS.slice(2).reduce<number>((a, h, i) => a + rcvbufErrors(lab, h) - (drops0[i + 2] ?? 0), 0);
  const cpuClients = clientPids.reduce<number>((a, p) => a + cpuOrZero(p), 0) - cpuClients0;
  const row: Row = {
    chain: `${enc ? 'RSA+AES-256-GCM: ' : 'plain: '}${kindName(sp)} server proxy -> ${kindName(cp)} client proxy`,
    clientDrops,
    rttMs: rtts.length ? Number(rtts[0]) : undefined,
    passes: passes || undefined,
    transferS: elapsed ? Number(elapsed[1]) : undefined,
    cpuServer,
    cpuClients,
    waitServer,
    waitClients: clientPids.reduce<number>((a, p) => a + waitOrZero(p), 0) - waitClients0,
    copied: {},
    steal: stealSeconds() - steal0,
    seconds,
    serverDatagrams: udpCounter(lab, 'server', 'OutDatagrams') - out0,
    drops: { sp: rcvbufErrors(lab, 'sproxyB') - drops0[0], cp: rcvbufErrors(lab, 'cproxyB') - drops0[1] },
    mbps: (sizeMb * 8 * 1.048576) / seconds,
    cpu: pids && cpu0 ? { sp: cpuSeconds(pids.sp) - cpu0.sp.user - cpu0.sp.sys, cp: cpuSeconds(pids.cp) - cpu0.cp.user - cpu0.cp.sys } : { sp: 0, cp: 0 },
    split: (pids && cpu0 ? (['sp', 'cp'] as const).map((k) => {
      const c = cpuSplit(pids[k]);
      const c0 = cpu0[k];
      return `${k} user ${(c.user - c0.user).toFixed(2)} sys ${(c.sys - c0.sys).toFixed(2)}`;
    }).join(', ') : 'no proxies') + '; receive-buffer drops ' + DROP_HOSTS.map((h, i) => `${h} ${rcvbufErrors(lab, h) - drops0[i]}`).join(', ') + timing,
    rssMb: pids ? { sp: peakRssMb(pids.sp), cp: peakRssMb(pids.cp) } : { sp: 0, cp: 0 },
    ok: code === 0 && [b1, b2].every((b) => fs.existsSync(path.join(b.dest, path.basename(file))) && sha(path.join(b.dest, path.basename(file))) === want),
  };
  for (const p of [spP, cpP, b1, b2, ...caps]) await p?.kill();
  // The next run starts with empty client directories: a uftpd that truncates the file this run left (its pages
  // still dirty) makes ext4 write them back during the next run's transfer (kworker samples in its first ~200 ms),
  // CPU taken from whichever chain runs next. Unlinked, the dirty pages are simply dropped.
  for (const b of [b1, b2]) fs.rmSync(path.join(b.dest, path.basename(file)), { force: true });
  if (none) await lab.nft('router', 'delete table netdev benchbound\n');
  // our proxies' closing line (-x 2): "Forwarded N datagrams; M copied out of the receive ring ..."
  const copiedOf = (p: Proc): number | undefined => {
    const m = /Forwarded \d+ datagrams; (\d+) copied/.exec(p.log());
    return m ? Number(m[1]) : undefined;
  };
  if (spP && sp !== 'real') row.copied.sp = copiedOf(spP);
  if (cpP && cp !== 'real') row.copied.cp = copiedOf(cpP);
  return row;
}

async function main(): Promise<void> {
  const lab = await Lab.up('fig1', { prefix: `upb${randomBytes(3).toString('hex')}`, octet: 73, keepWorkDir: keep });
  if (keep) process.stderr.write(`work directory: ${lab.workDir}\n`);
  const rows: Row[] = [];
  try {
    const file = path.join(lab.workDir, 'payload.bin');
    fs.writeFileSync(file, randomBytes(sizeMb * 1024 * 1024));
    const want = sha(file);
    for (let r = 0; r < runs; r++) {
      const chains: [Kind, Kind, boolean][] = [['real', 'real', false], ['ours', 'ours', false], ['ours', 'real', false], ['real', 'ours', false], ['real', 'real', true], ['ours', 'ours', true]];
      if (bound) chains.push(['kernel', 'kernel', false], ['kernel', 'kernel', true]);
      if (lazy) chains.push(['ours-lazy', 'ours-lazy', false], ['ours-lazy', 'ours-lazy', true]);
      if (alsoEnv || alsoArgs.length) chains.push(['ours-env', 'ours-env', false], ['ours-env', 'ours-env', true]);
      if (beforeDir) chains.push(['before', 'before', false], ['ours-dgram', 'ours-dgram', false], ['before', 'before', true], ['ours-dgram', 'ours-dgram', true]);
      for (const [sp, cp, enc] of chains) {
        const name = `${enc ? 'RSA+AES-256-GCM: ' : 'plain: '}${kindName(sp)} server proxy -> ${kindName(cp)} client proxy`;
        if (only !== undefined && !only.split('|').some((o) => name.includes(o))) continue;
        const row = await one(lab, sp, cp, file, want, enc);
        rows.push(row);
        process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${row.chain}: ${row.seconds.toFixed(2)} s ${row.ok ? 'ok' : 'FAILED'} (${row.split}; server sent ${row.serverDatagrams} datagrams)\n`);
      }
    }
  } finally {
    await lab.down();
  }
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Figure 1 lab (veth, no impairment), ${sizeMb} MiB file, uftp -R ${rate} Kbit/s, 2 clients behind the client proxy; ${cpus().length} x ${cpuModel}.\n`);
  // One row per chain: medians over the runs (the chains alternate within each run), with the time range.
  const median = (xs: number[]): number => {
    const v = [...xs].sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  console.log(`Medians of ${runs} run(s) per chain, chains alternating within each run; ${oursEnv ? `our proxies with ${JSON.stringify(oursEnv)}; ` : ''}load ${loadAvg()}.\n`);
  console.log('| chain | time (s), median [min-max] | Mbit/s | CPU s sp / cp | CPU µs per forwarded datagram, sp / cp | server rtt, first REGISTER (ms) | passes | datagrams the server sent | drops at sproxyB / cproxyB | drops at clientB1 + B2 | SHA-256 |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  const range = (xs: number[]): string => `${Math.min(...xs).toLocaleString('en-US')}-${Math.max(...xs).toLocaleString('en-US')}`;
  const chains = [...new Set(rows.map((r) => r.chain))];
  for (const chain of chains) {
    const rs = rows.filter((r) => r.chain === chain);
    const t = rs.map((r) => r.seconds);
    const f = (k: (r: Row) => number, d: number): string => median(rs.map(k)).toFixed(d);
    const short = chain.replace(/ server proxy -> /, ' -> ').replace(/ client proxy$/, '');
    console.log(`| ${short} | ${median(t).toFixed(2)} [${Math.min(...t).toFixed(2)}-${Math.max(...t).toFixed(2)}] | ${f((r) => r.mbps, 0)} | ${f((r) => r.cpu.sp, 2)} / ${f((r) => r.cpu.cp, 2)} | ` +
      `${f((r) => (r.cpu.sp / (r.serverDatagrams - r.drops.sp)) * 1e6, 1)} / ${f((r) => (r.cpu.cp / (r.serverDatagrams - r.drops.sp - r.drops.cp)) * 1e6, 1)} | ` +
      `${rs.map((r) => r.rttMs?.toFixed(1) ?? '?').join(', ')} | ${rs.map((r) => r.passes ?? '?').join(', ')} | ${range(rs.map((r) => r.serverDatagrams))} | ` +
      `${range(rs.map((r) => r.drops.sp))} / ${range(rs.map((r) => r.drops.cp))} | ${range(rs.map((r) => r.clientDrops))} | ${rs.every((r) => r.ok) ? 'match' : 'FAIL'} |`);
  }
  const med = (c: string): number => median(rows.filter((r) => r.chain === c).map((r) => r.seconds));
  for (const enc of ['plain: ', 'RSA+AES-256-GCM: ']) {
    const c = chains.find((x) => x.startsWith(enc) && x.includes('real server proxy -> real'));
    if (c === undefined) continue;
    for (const o of chains.filter((x) => x.startsWith(enc) && x !== c)) {
      // the session's transfer alone (the server's "Total elapsed time", first FILESEG to last COMPLETE), without
      // the announce phase that is the same through any proxies (--server-log 2 or more)
      const tr = (x: string): number => median(rows.filter((r) => r.chain === x && r.transferS !== undefined).map((r) => r.transferS ?? 0));
      const transfer = rows.some((r) => r.transferS !== undefined) ? `; the transfer alone: ${(tr(c) / tr(o)).toFixed(3)}x (${tr(o).toFixed(3)} s against ${tr(c).toFixed(3)} s)` : '';
      process.stdout.write(`\nGoodput ${o.replace(/ client proxy$/, '')} against ${c.replace(/ client proxy$/, '')}: ${(med(c) / med(o)).toFixed(3)}x${transfer}`);
    }
  }
  console.log('\n\nPer run (in order): session s, the server\'s transfer s (its "Total elapsed time"), passes, CPU s of the uftp server and of both uftpd together, the seconds each waited runnable for a CPU (schedstat), datagrams our proxies copied out of the ring (sp / cp), and the CPU seconds the hypervisor stole from the VM\'s CPUs during the run (/proc/stat steal):\n');
  console.log('| run | chain | session (s) | transfer (s) | passes | CPU s server | CPU s uftpd B1 + B2 | waited for a CPU, s: server / uftpd B1 + B2 | copied sp / cp | stolen (s) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  rows.forEach((r, i) => console.log(`| ${i + 1} | ${r.chain.replace(/ server proxy -> /, ' -> ').replace(/ client proxy$/, '')} | ${r.seconds.toFixed(2)} | ${r.transferS?.toFixed(3) ?? '?'} | ${r.passes ?? '?'} | ${r.cpuServer.toFixed(2)} | ${r.cpuClients.toFixed(2)} | ${r.waitServer.toFixed(3)} / ${r.waitClients.toFixed(3)} | ${r.copied.sp ?? '-'} / ${r.copied.cp ?? '-'} | ${r.steal.toFixed(2)} |`));
}

function loadAvg(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
