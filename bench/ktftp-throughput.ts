/**
 * KTFTP throughput on loopback (a benchmark, not a test): a get of one file (default 1 GiB) inside a network
 * namespace of our own, ours against tftp-hpa's in.tftpd with the same block and window sizes.
 *
 *   npx tsc -p . && sudo npx tsx bench/ktftp-throughput.ts [--size-mb 1024] [--runs 3] [--prefix uk-] [--only TEXT]
 *
 * Rows: ktftp -> ktftpd (sealed), curl -> ktftpd (plain, anonymous tag), curl -> in.tftpd (tftp-hpa), for
 * blksize 1408 and 8192 at windowsize 1 (tftp-hpa 5.2 has no windowsize option, so lock-step is the only
 * like-for-like comparison), and ktftp -> ktftpd at larger windows. Output is sent to a byte counter, not
 * to disk. The runs are interleaved (every row once, then again), so load from other jobs on a shared machine
 * spreads over all rows. Prints a Markdown table (median time of the runs) for docs/benchmarks.md.
 *
 * --before DIR adds rows for ktftp -> ktftpd as built in DIR (an older commit's worktree, built there), served by
 * a second ktftpd from DIR in the same namespace and interleaved with today's rows (curl lock-step and ktftp at
 * windowsize 1 and 64): before and after in one run.
 *
 * --spin-us N adds curl lock-step rows served by one more ktftpd started with UFTP_UDP_SPIN_US=N (the engine's
 * receive spin, docs/net-engine.md; 0 = off, the default is 50). Every row also gets the CPU time the server used (its process and children,
 * `perf stat -e task-clock -p PID`, where perf is installed): in.tftpd forks a child per transfer and lets it be
 * reaped without accounting, so /proc cannot tell.
 *
 * --arm-ab adds curl lock-step rows served by one more ktftpd started with UFTP_UDP_ARM=0 (no armed reply,
 * docs/net-engine.md "Armed reply"): with and without it in one run.
 */
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { KTFTP_JS, KtftpLab, runIn } from '../src/ktftp/testlab.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const sizeMb = arg('size-mb', 1024);
const runs = arg('runs', 3);
const prefixAt = args.indexOf('--prefix');
/** Namespace name prefix (a random suffix is added). */
const prefix = prefixAt >= 0 ? (args[prefixAt + 1] ?? 'uk-') : 'uk-';
const beforeAt = args.indexOf('--before');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
const beforeCli = beforeAt >= 0 ? join(args[beforeAt + 1], 'dist', 'src', 'cli') : undefined;
const spinUs = args.includes('--spin-us') ? arg('spin-us', 0) : undefined;
const armAb = args.includes('--arm-ab');
const perf = spawnSync('perf', ['--version']).status === 0;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Row {
  what: string;
  blksize: number;
  windowsize: number;
  seconds: number[];
  /** CPU seconds of the server per run (empty without perf). */
  cpu: number[];
  bytes: number;
}

/** Counts the CPU time of `pid` (and of the children it forks meanwhile) until the returned function is called. */
async function cpuOf(pid: number): Promise<() => Promise<number | undefined>> {
  if (!perf || pid <= 0) return () => Promise.resolve(undefined);
  const p: ChildProcess = spawn('perf', ['stat', '-x,', '-e', 'task-clock', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise((r) => setTimeout(r, 150)); // attached
  return async () => {
    const closed = new Promise((r) => p.once('close', r));
    p.kill('SIGINT');
    await closed;
    const line = err.split('\n').find((l) => l.includes('task-clock'));
    const ms = line ? Number(line.split(',')[0]) : NaN;
    return Number.isFinite(ms) ? ms / 1000 : undefined;
  };
}

async function timed(lab: KtftpLab, shell: string): Promise<{ seconds: number; out: string }> {
  const argv = lab.nsArgv(['sh', '-c', shell], 1800);
  const t0 = performance.now();
  const r = await new Promise<{ code: number | null; out: string; err: string }>((res) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => res({ code, out, err }));
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`${shell}: exit ${r.code}: ${r.err.slice(-500)}`);
  return { seconds, out: r.out.trim() };
}

async function main(): Promise<void> {
  const lab = await KtftpLab.create({ prefix, users: ['alice'] });
  const rows: Row[] = [];
  let hpa: ReturnType<typeof spawn> | null = null;
  try {
    const dir = lab.path('srv');
    mkdirSync(dir);
    const file = `${dir}/big.bin`;
    const mk = await runIn(['dd', 'if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${sizeMb}`, 'status=none']);
    if (mk.code !== 0) throw new Error(mk.stderr);
    const bytes = sizeMb * 1024 * 1024;
    writeFileSync(lab.path('tags'), `big|${file}|alice,anonymous\n`);
    writeFileSync(lab.path('idents'), `alice|${lab.ids.alice.fingerprint}\n`);
    const srv = await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '2'], { timeoutSec: 7200 });
    const hpaPort = srv.port + 1;
    // tftp-hpa serves the same directory (chrooted, as root since the lab directory is private): a hard link names the file as the tag.
    await runIn(['ln', file, `${dir}/big`]);
    const hargv = lab.nsArgv(['in.tftpd', '-L', '-4', '-u', 'root', '-a', `:${hpaPort}`, '-s', dir], 7200);
    hpa = spawn(hargv[0], hargv.slice(1), { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    // in.tftpd itself is the child of the `timeout` that `ip netns exec` runs
    const hpaPid = Number(spawnSync('pgrep', ['-P', String(hpa.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0] || -1);
    const spin = spinUs !== undefined ? await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '2'], { timeoutSec: 7200, port: srv.port + 3, env: { UFTP_UDP_SPIN_US: String(spinUs) } }) : undefined;
    const noArm = armAb ? await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '2'], { timeoutSec: 7200, port: srv.port + 4, env: { UFTP_UDP_ARM: '0' } }) : undefined;
    const old = beforeCli ? await lab.startServer(['-T', lab.path('tags'), '-A', lab.path('idents'), '-x', '2'], { timeoutSec: 7200, port: srv.port + 2, bin: join(beforeCli, 'ktftpd.js') }) : undefined;
    const ktftp = (b: number, w: number, js = KTFTP_JS, port = srv.port) =>
      `node ${js} -p ${port} -F ${lab.serverKey.fingerprint} -k ${lab.ids.alice.keyPath} -b ${b} -w ${w} get 127.0.0.1:big - | wc -c`;
    const curl = (port: number, b: number) => `curl -sS --tftp-blksize ${b} -o /dev/null -w '%{size_download}' tftp://127.0.0.1:${port}/big`;
    const plan: { what: string; b: number; w: number; cmd: string; pid: number }[] = [];
    for (const b of [1408, 8192]) {
      plan.push({ what: 'ktftp -> ktftpd (sealed, key auth)', b, w: 1, cmd: ktftp(b, 1), pid: srv.pid });
      plan.push({ what: 'curl -> ktftpd (plain, anonymous tag)', b, w: 1, cmd: curl(srv.port, b), pid: srv.pid });
      if (spin) plan.push({ what: `curl -> ktftpd (plain, anonymous tag, ${spinUs === 0 ? 'spin off' : `spin ${spinUs} µs`})`, b, w: 1, cmd: curl(spin.port, b), pid: spin.pid });
      if (noArm) plan.push({ what: 'curl -> ktftpd (plain, anonymous tag, arm off)', b, w: 1, cmd: curl(noArm.port, b), pid: noArm.pid });
      plan.push({ what: 'curl -> in.tftpd (tftp-hpa 5.2)', b, w: 1, cmd: curl(hpaPort, b), pid: hpaPid });
      for (const w of [16, 64]) plan.push({ what: 'ktftp -> ktftpd (sealed, key auth)', b, w, cmd: ktftp(b, w), pid: srv.pid });
      if (old && beforeCli) {
        plan.push({ what: 'before: curl -> ktftpd (plain, anonymous tag)', b, w: 1, cmd: curl(old.port, b), pid: old.pid });
        for (const w of [1, 64]) plan.push({ what: 'before: ktftp -> ktftpd (sealed, key auth)', b, w, cmd: ktftp(b, w, join(beforeCli, 'ktftp.js'), old.port), pid: old.pid });
      }
    }
    // --only TEXT: just the rows whose description contains TEXT (e.g. `--only curl` for the lock-step comparison)
    if (only !== undefined) plan.splice(0, plan.length, ...plan.filter((p) => p.what.includes(only)));
    for (const p of plan) rows.push({ what: p.what, blksize: p.b, windowsize: p.w, seconds: [], cpu: [], bytes });
    for (let i = 0; i < runs; i++) {
      for (let j = 0; j < plan.length; j++) {
        const p = plan[j];
        const stop = await cpuOf(p.pid);
        const r = await timed(lab, p.cmd);
        const cpu = await stop();
        if (Number(r.out) !== bytes) throw new Error(`${p.cmd}: got ${r.out} bytes, expected ${bytes}`);
        rows[j].seconds.push(r.seconds);
        if (cpu !== undefined) rows[j].cpu.push(cpu);
        const c = cpu === undefined ? '' : `, server CPU ${cpu.toFixed(2)} s`;
        process.stderr.write(`run ${i + 1}: ${p.what} b=${p.b} w=${p.w}: ${r.seconds.toFixed(1)} s, ${(bytes / r.seconds / 1e6).toFixed(1)} MB/s${c}\n`);
      }
    }
  } finally {
    hpa?.kill('SIGTERM');
    await lab.destroy();
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Get of ${sizeMb} MiB on loopback in a network namespace, ${cpus().length} cores (${cpu}), Node ${process.version}, ${runs} run(s) each; median time (min-max MB/s in brackets), MB = 10^6 bytes.\n`);
  console.log('| client -> server | blksize | windowsize | seconds | MB/s | server CPU s | server CPU µs per block |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const med = median(r.seconds);
    const rate = (s: number) => (r.bytes / s / 1e6).toFixed(1);
    const spread = r.seconds.length > 1 ? ` (${rate(Math.max(...r.seconds))}-${rate(Math.min(...r.seconds))})` : '';
    const cpu = r.cpu.length > 0 ? median(r.cpu) : undefined;
    const blocks = Math.floor(r.bytes / r.blksize) + 1;
    const c = cpu === undefined ? '| | |' : `| ${cpu.toFixed(2)} | ${((cpu / blocks) * 1e6).toFixed(1)} |`;
    console.log(`| ${r.what} | ${r.blksize} | ${r.windowsize} | ${med.toFixed(1)} | ${rate(med)}${spread} ${c}`);
  }
  // lock-step against in.tftpd, run by run (the same run's pair) and by medians
  const hpaRows = rows.filter((r) => r.what.startsWith('curl -> in.tftpd'));
  for (const h of hpaRows) {
    for (const r of rows.filter((x) => x.what.startsWith('curl -> ktftpd') && x.blksize === h.blksize)) {
      const pairs = r.seconds.map((s, i) => (h.seconds[i] / s).toFixed(2)).join(', ');
      console.log(`\n${r.what} / in.tftpd at ${r.blksize}: ${(median(h.seconds) / median(r.seconds)).toFixed(2)} by medians; per run ${pairs}`);
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
