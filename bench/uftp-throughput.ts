/**
 * uftp goodput on one lab segment (a benchmark, not a test): Figure 2's segment with the server and three receivers
 * (client1, client2 and the rproxy1 host, no proxy running), one file (default 256 MiB), `-R -1`, medians of
 * alternating runs (every row once, then again), optionally with loss on each receiver's link.
 *
 *   npx tsc -p . && sudo node dist/bench/uftp-throughput.js [--mb 256] [--runs 3] [--loss 0,5] [--rows real-real,ours-real,ours-ours] [--udpcast]
 *     [--crypto aes128-gcm]
 *
 * Rows: real uftp -> 3 real uftpd, our uftp -> 3 real uftpd, our uftp -> 3 of our uftpd (`ours+tfmcc-real`: our uftp
 * with -C tfmcc instead of -R -1; `ours+nodecipher-...`: our programs with UFTP_NATIVE_CIPHER=0, every datagram
 * through node:crypto as before the addon's packet ciphers). `--crypto KEYTYPE`: every uftp with `-Y KEYTYPE -h
 * sha256` (RSA key exchange, each program with its own generated key); with --udpcast also
 * udp-sender -> 3 udp-receiver (Debian udpcast, when installed) as a second reference. Goodput = file size / the
 * slowest receiver's transfer time, as the server's own -S STATS lines report it (data phase: first FILESEG to last
 * COMPLETE), so announce timing does not count; the wall time of the whole run is printed beside it.
 * Prints a Markdown table for docs/benchmarks.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Lab, type Proc } from '../src/lab/lab.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? dflt) : dflt;
};
const mb = Number(opt('mb', '256'));
const runs = Number(opt('runs', '3'));
const losses = opt('loss', '0').split(',').map(Number);
const rowNames = opt('rows', 'real-real,ours-real,ours-ours').split(',');
const udpcast = args.includes('--udpcast') && spawnSync('which', ['udp-sender']).status === 0;
const cryptoArgs = opt('crypto', '') === '' ? [] : ['-Y', opt('crypto', ''), '-h', 'sha256'];
const RECEIVERS = ['client1', 'client2', 'rproxy1'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Sample {
  goodput: number;
  wall: number;
  passes: number;
}

async function startReceivers(lab: Lab, ours: boolean, env: NodeJS.ProcessEnv): Promise<(Proc & { dest: string })[]> {
  return Promise.all(RECEIVERS.map(async (h) => {
    if (!ours) return lab.realUftpd(h, { args: ['-x', '1'] });
    const dest = path.join(lab.workDir, h, 'ours');
    fs.rmSync(dest, { recursive: true, force: true });
    fs.mkdirSync(dest, { recursive: true });
    const p = lab.ours(h, 'uftpd', ['-d', '-q', '-x', '1', '-D', dest, '-U', lab.uidOf(h)], { timeoutMs: 600_000, env });
    await lab.waitUdp(h, 1044, 15_000);
    return Object.assign(p, { dest });
  }));
}

async function uftpRun(lab: Lab, src: string, row: string): Promise<Sample> {
  // 'ours+tfmcc-real': our uftp with -C tfmcc instead of -R -1
  const [serverSpec, client] = row.split('-');
  const [server, mode] = serverSpec.split('+');
  const env = mode === 'nodecipher' ? { ...process.env, UFTP_NATIVE_CIPHER: '0' } : process.env;
  const ds = await startReceivers(lab, client === 'ours', env);
  const st = path.join(lab.workDir, `st-${row}`);
  fs.rmSync(st, { force: true });
  const a = [...(mode === 'tfmcc' ? ['-C', 'tfmcc'] : ['-R', '-1']), ...cryptoArgs, '-x', '2', '-s', '10', '-r', '0.05', '-S', st];
  const t0 = Date.now();
  const p = server === 'ours'
    ? lab.ours('server', 'uftp', ['-U', lab.uidOf('server'), ...a, 'big'], { cwd: src, timeoutMs: 600_000, env })
    : lab.realUftp('server', ['big'], { cwd: src, args: a, timeoutMs: 600_000 });
  const code = await p.wait();
  const wall = (Date.now() - t0) / 1000;
  await Promise.all(ds.map((d) => d.kill()));
  if (code !== 0) throw new Error(`${row}: exit ${code}: ${p.log().slice(-600)}`);
  for (const d of ds) {
    if (fs.statSync(path.join(d.dest, 'big')).size !== mb * 1048576) throw new Error(`${row}: ${d.host} got a short file`);
  }
  const times = fs.readFileSync(st, 'utf8').split('\n').filter((l) => l.startsWith('STATS;')).map((l) => Number(l.split(';')[6]));
  const passes = (p.log().match(/Starting pass/g) ?? []).length;
  return { goodput: (mb * 1048576) / Math.max(...times) / 1e6, wall, passes };
}

async function udpcastRun(lab: Lab, src: string): Promise<Sample> {
  // the lab's addresses have no broadcast address: the rendezvous goes to a multicast group instead
  const rdv = ['--mcast-rdv-address', '239.7.7.7'];
  const rs = RECEIVERS.map((h) => lab.spawn(h, ['udp-receiver', '--nokbd', '--interface', 'eS', ...rdv, '--file', path.join(lab.workDir, h, 'udpcast.out')], { timeoutMs: 600_000 }));
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = Date.now();
  const s = lab.spawn('server', ['udp-sender', '--nokbd', '--interface', 'eS', ...rdv, '--min-receivers', String(RECEIVERS.length), '--file', path.join(src, 'big')], { timeoutMs: 600_000 });
  const code = await s.wait();
  const wall = (Date.now() - t0) / 1000;
  const rcodes = await Promise.all(rs.map((r) => r.wait()));
  if (code !== 0 || rcodes.some((c) => c !== 0)) throw new Error(`udpcast: exit ${code}/${rcodes.join(',')}: ${s.log().slice(-400)}`);
  for (const h of RECEIVERS) {
    if (fs.statSync(path.join(lab.workDir, h, 'udpcast.out')).size !== mb * 1048576) throw new Error(`udpcast: ${h} got a short file`);
  }
  return { goodput: (mb * 1048576) / wall / 1e6, wall, passes: 0 };
}

async function main(): Promise<void> {
  const lab = await Lab.up('fig2', { prefix: `ubn${randomBytes(2).toString('hex')}`, octet: 95 });
  try {
    const src = path.join(lab.workDir, 'src');
    fs.mkdirSync(src, { recursive: true });
    const fd = fs.openSync(path.join(src, 'big'), 'w');
    const chunk = randomBytes(1 << 20);
    for (let i = 0; i < mb; i++) fs.writeSync(fd, chunk);
    fs.closeSync(fd);
    for (const h of RECEIVERS) fs.mkdirSync(path.join(lab.workDir, h), { recursive: true });
    const rows = [...rowNames, ...(udpcast ? ['udpcast'] : [])];
    const out: string[] = [];
    for (const loss of losses) {
      for (const h of RECEIVERS) await lab.impairLink(h, 'S', { lossPct: loss });
      const samples = new Map<string, Sample[]>(rows.map((r) => [r, []]));
      for (let i = 0; i < runs; i++) {
        for (const row of rows) {
          let s: Sample;
          if (row === 'udpcast' && loss > 0) continue; // udpcast thrashes under random loss (27% re-transmits, minutes per run)
          try {
            s = row === 'udpcast' ? await udpcastRun(lab, src) : await uftpRun(lab, src, row);
          } catch (e) {
            // a failed run (udpcast gives receivers up under loss) is reported, not fatal
            process.stderr.write(`loss ${loss}% run ${i + 1} ${row}: FAILED ${(e as Error).message.split('\n')[0]}\n`);
            continue;
          }
          samples.get(row)?.push(s);
          process.stderr.write(`loss ${loss}% run ${i + 1} ${row}: ${s.goodput.toFixed(1)} MB/s, ${s.passes} passes, wall ${s.wall.toFixed(1)} s\n`);
        }
      }
      const base = median((samples.get('real-real') ?? []).map((s) => s.goodput));
      for (const row of rows) {
        const ss = samples.get(row) ?? [];
        const g = ss.map((s) => s.goodput);
        if (g.length === 0) {
          out.push(`| ${row} | ${loss}% | failed in every run | - | - | - | - |`);
          continue;
        }
        const m = median(g);
        out.push(`| ${row} | ${loss}% | ${m.toFixed(1)} | ${Math.min(...g).toFixed(1)}-${Math.max(...g).toFixed(1)} | ` +
          `${median(ss.map((s) => s.passes))} | ${median(ss.map((s) => s.wall)).toFixed(1)} | ${base > 0 ? (m / base).toFixed(2) + 'x' : '-'} |`);
      }
    }
    process.stdout.write(`${mb} MiB, 3 receivers, -R -1${cryptoArgs.length ? ` ${cryptoArgs.join(' ')}` : ''}, median of ${runs} alternating runs\n\n`);
    process.stdout.write('| sender -> receivers | loss per receiver link | goodput MB/s (median) | range | passes | wall s | vs real-real |\n| --- | --- | --- | --- | --- | --- | --- |\n');
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await lab.down();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
