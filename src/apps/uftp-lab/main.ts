/**
 * uftp-lab: build the figures of uftpproxyd(1) in Linux network namespaces, run programs in them, rehearse a
 * deployment, tear it all down. See docs/lab.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  Lab, LabError, STATE_DIR, checkPrereqs, downPrefix, ensureRealSuite, listNamespaces, namespacePids, readState,
  validatePrefix, type LabOptions,
} from '../../lab/lab.js';
import { FIGURES, isFigure } from '../../lab/topology.js';
import { runSelftest, SELFTEST_CASES } from '../../lab/selftest.js';
import { captureFixtures, FIXTURES } from '../../lab/fixtures.js';

const DEFAULT_PREFIX = 'ulab';

const HELP = `usage: uftp-lab [--prefix P] COMMAND ...

Builds test hosts in Linux network namespaces (needs root) after the figures of uftpproxyd(1).

commands:
  up FIGURE [--loss PCT] [--rate KBIT] [--delay MS] [--octet N] [--ipv6]
                      build ${FIGURES.join('|')} (taking down a lab with the same prefix first)
                      and print its hosts and addresses
  down                stop every process of the lab and delete its namespaces (idempotent)
  status              list live labs (namespaces by prefix) and the processes in them
  run HOST CMD...     run CMD inside HOST's namespace and wait for it (bounded: --timeout S before HOST,
                      default 600)
  start HOST CMD...   start CMD in HOST's namespace in the background (bounded: --timeout S, default 3600),
                      output to a log file under the lab's work directory; down stops it
  impair [--loss PCT] [--rate KBIT] [HOST:NET]
                      change the live lab's impairments: on the WAN (router / fig2 bridge), or on one
                      link, the interface of HOST on network NET (e.g. router:B); 0 or absent removes
  hosts [FIGURE]      print the host/address table of a figure (default: the live lab's)
  selftest [--proxy ours] [CASE...]
                      run the real UFTP suite through every figure; one PASS/FAIL line per case;
                      --proxy ours runs our uftpproxyd (dist/src/cli/uftpproxyd.js) as every proxy
                      cases: ${SELFTEST_CASES.map((c) => c.name.replace(/ /g, '-')).join(' ')}
  capture-fixtures DIR [NAME...]
                      make small pcap fixtures with the real suite: ${FIXTURES.map((f) => f.name).join(' ')}

options:
  --prefix P          namespace prefix (default ${DEFAULT_PREFIX}): namespaces are P-<host>, P-sw<net>
  --loss PCT          random loss on the figure's WAN (router, or fig2's bridge), nftables numgen
  --rate KBIT         rate limit (tc tbf) on each router interface / bridge port
  --delay MS          fig1: one-way delay of the relays steering the tunnels (server proxies use -s 10.70.1.2
                      for cproxyB and -s 10.70.1.3 for cproxyC)
  --octet N           second octet of all addresses (default 70)
  --ipv6              dual stack: every host also gets fd<octet>:<net>::<host>/64 (10.70.2.21 ->
                      fd70:2::21), IPv6 routed by the router (unicast only); octet 0..99
  -h, --help          this help
`;

class UsageError extends Error {}

interface Parsed {
  prefix: string;
  timeoutS: number;
  opts: { loss?: number; rate?: number; delay?: number; octet?: number; ipv6?: boolean };
  proxy?: 'real' | 'ours';
  rest: string[];
}

function num(name: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${name}: expected a non-negative number, got "${v ?? ''}"`);
  return n;
}

function parse(argv: string[]): Parsed {
  const p: Parsed = { prefix: process.env.UFTP_LAB_PREFIX ?? DEFAULT_PREFIX, timeoutS: 600, opts: {}, rest: [] };
  let i = 0;
  let command: string | undefined;
  while (i < argv.length) {
    const a = argv[i] ?? '';
    if ((command === 'run' || command === 'start') && p.rest.length >= 1 && !a.startsWith('--')) {
      // run HOST CMD...: everything from CMD on belongs to the command.
      p.rest.push(...argv.slice(i));
      break;
    }
    if ((command === 'run' || command === 'start') && p.rest.length >= 1 && a === '--') { p.rest.push(...argv.slice(i + 1)); break; }
    switch (a) {
      case '-h': case '--help': p.rest = ['help']; return p;
      case '--prefix': p.prefix = argv[++i] ?? ''; break;
      case '--loss': p.opts.loss = num(a, argv[++i]); break;
      case '--rate': p.opts.rate = num(a, argv[++i]); break;
      case '--delay': p.opts.delay = num(a, argv[++i]); break;
      case '--octet': p.opts.octet = num(a, argv[++i]); break;
      case '--ipv6': p.opts.ipv6 = true; break;
      case '--timeout': p.timeoutS = num(a, argv[++i]); break;
      case '--proxy': {
        const v = argv[++i];
        if (v !== 'real' && v !== 'ours') throw new UsageError(`--proxy: expected real or ours, got "${v ?? ''}"`);
        p.proxy = v;
        break;
      }
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a} (see uftp-lab --help)`);
        if (command === undefined) command = a;
        p.rest.push(a);
    }
    i++;
  }
  try { validatePrefix(p.prefix); } catch (e) { throw new UsageError((e as Error).message); }
  return p;
}

function hostTable(lab: Lab): string {
  const lines = [`${lab.figure} (prefix ${lab.prefix}): ${lab.def.title}`];
  for (const h of lab.hostNames()) {
    const info = lab.host(h);
    const addrs = Object.entries(info.addrs).map(([n, a]) => `${info.ifaces[n]} ${a}${info.addrs6?.[n] ? ` ${info.addrs6[n]}` : ''}`).join(', ');
    lines.push(`  ${h.padEnd(9)} ${info.role.padEnd(7)} ${addrs}  (netns ${info.ns})`);
  }
  if (lab.options.delayMs) {
    for (const r of lab.def.relays ?? []) lines.push(`  relay     on router ${lab.tunnelDest(r.to)}:1044 -> ${r.to} ${lab.addrOf(r.to)}:1044, ${lab.options.delayMs} ms each way`);
  }
  return lines.join('\n');
}

async function needLab(): Promise<void> {
  const why = await checkPrereqs();
  if (why) throw new LabError(why);
}

async function status(prefix: string | undefined): Promise<number> {
  const all = await listNamespaces();
  // Labs: every prefix with a state file (any prefix), and namespaces named like the default prefix (leftovers).
  const prefixes = new Set<string>();
  let states: string[] = [];
  try { states = fs.readdirSync(STATE_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)); } catch { /* none */ }
  for (const st of states) if (!prefix || st === prefix) prefixes.add(st);
  for (const ns of all) {
    const m = /^([a-z][a-z0-9]{1,15})-/.exec(ns);
    if (m?.[1] && (prefix ? m[1] === prefix : m[1].startsWith('ulab'))) prefixes.add(m[1]);
  }
  if (prefixes.size === 0) { console.log(prefix ? `no lab with prefix ${prefix}` : 'no labs'); return 0; }
  for (const p of [...prefixes].sort()) {
    const st = readState(p);
    const nss = all.filter((n) => n.startsWith(`${p}-`));
    console.log(`lab ${p}: ${st ? `${st.figure}, up since ${st.created}, work dir ${st.workDir}` : '(no state file: leftover?)'}; ${nss.length} namespaces`);
    for (const ns of nss) {
      const pids = await namespacePids(ns);
      if (pids.length === 0) { console.log(`  ${ns}`); continue; }
      console.log(`  ${ns}`);
      for (const pid of pids) {
        let args = '?';
        try { args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '); } catch { /* exited */ }
        console.log(`    ${String(pid).padStart(7)} ${args}`);
      }
    }
  }
  return 0;
}

async function runIn(prefix: string, host: string | undefined, cmd: string[], timeoutS: number): Promise<number> {
  if (!host || cmd.length === 0) throw new UsageError('run: usage: uftp-lab run HOST CMD...');
  const lab = Lab.attach(prefix);
  if (!lab) throw new LabError(`no lab with prefix ${prefix} (start one with: uftp-lab up FIGURE)`);
  const ns = lab.nsOf(host);
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', ns, 'timeout', '-k', '3', `${Math.max(1, Math.ceil(timeoutS))}s`, ...cmd], { stdio: 'inherit' });
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
    child.on('error', (e) => { process.stderr.write(`uftp-lab: ${e.message}\n`); resolve(127); });
  });
}

async function main(argv: string[]): Promise<number> {
  const p = parse(argv);
  const [cmd, ...args] = p.rest;
  switch (cmd) {
    case undefined:
    case 'help':
      (cmd === undefined ? process.stderr : process.stdout).write(HELP);
      return cmd === undefined ? 2 : 0;
    case 'up': {
      const fig = args[0];
      if (!fig || !isFigure(fig)) throw new UsageError(`up: expected a figure: ${FIGURES.join(', ')}${fig ? ` (got "${fig}")` : ''}`);
      if (args.length > 1) throw new UsageError(`up: unexpected argument "${args[1]}"`);
      await needLab();
      const o: LabOptions = {
        prefix: p.prefix, lossPct: p.opts.loss, rateKbit: p.opts.rate, delayMs: p.opts.delay, octet: p.opts.octet,
        ...(p.opts.ipv6 ? { ipv6: true } : {}),
      };
      const lab = await Lab.up(fig, o);
      lab.release();
      console.log(hostTable(lab));
      const imp = [p.opts.loss ? `loss ${p.opts.loss}%` : '', p.opts.rate ? `rate ${p.opts.rate} kbit/s` : ''].filter(Boolean);
      if (imp.length) console.log(`  impairments on the WAN: ${imp.join(', ')}`);
      console.log(`run programs with: uftp-lab${p.prefix === DEFAULT_PREFIX ? '' : ` --prefix ${p.prefix}`} run HOST CMD...; take it down with: uftp-lab${p.prefix === DEFAULT_PREFIX ? '' : ` --prefix ${p.prefix}`} down`);
      return 0;
    }
    case 'down': {
      if (args.length) throw new UsageError(`down: unexpected argument "${args[0]}"`);
      await needLab();
      const gone = await downPrefix(p.prefix);
      console.log(gone.length ? `removed ${gone.length} namespaces of lab ${p.prefix}` : `no lab with prefix ${p.prefix}: nothing to do`);
      return 0;
    }
    case 'status':
      await needLab();
      return status(argv.includes('--prefix') ? p.prefix : undefined);
    case 'run':
      await needLab();
      return runIn(p.prefix, args[0], args.slice(1), p.timeoutS);
    case 'start': {
      await needLab();
      const [host, ...cmdv] = args;
      if (!host || cmdv.length === 0) throw new UsageError('start: usage: uftp-lab start HOST CMD...');
      const lab = Lab.attach(p.prefix);
      if (!lab) throw new LabError(`no lab with prefix ${p.prefix} (start one with: uftp-lab up FIGURE)`);
      const proc = lab.spawn(host, cmdv, { timeoutMs: (argv.includes('--timeout') ? p.timeoutS : 3600) * 1000 });
      lab.release();
      await new Promise((r) => setTimeout(r, 300));
      if (proc.exitCode !== null && proc.exitCode !== 0) {
        throw new LabError(`${cmdv[0]} in ${host} exited ${proc.exitCode}: ${proc.log().trim().split('\n').slice(-2).join(' | ')}`);
      }
      console.log(`started ${cmdv[0]} in ${host}: pid ${proc.pid}, log ${proc.logFile}`);
      return 0;
    }
    case 'impair': {
      await needLab();
      const lab = Lab.attach(p.prefix);
      if (!lab) throw new LabError(`no lab with prefix ${p.prefix} (start one with: uftp-lab up FIGURE)`);
      const imp = { lossPct: p.opts.loss ?? 0, rateKbit: p.opts.rate ?? 0 };
      const what = `loss ${imp.lossPct}%, rate ${imp.rateKbit ? `${imp.rateKbit} kbit/s` : 'unlimited'}`;
      if (args.length > 1) throw new UsageError(`impair: unexpected argument "${args[1]}"`);
      if (args[0]) {
        const m = /^([A-Za-z0-9]+):([A-Za-z0-9]+)$/.exec(args[0]);
        if (!m?.[1] || !m[2]) throw new UsageError(`impair: expected HOST:NET, got "${args[0]}"`);
        await lab.impairLink(m[1], m[2], imp);
        console.log(`${m[1]} interface e${m[2]}: ${what}`);
      } else {
        await lab.setImpairment(imp);
        console.log(`WAN of ${lab.figure}: ${what}`);
      }
      return 0;
    }
    case 'hosts': {
      const fig = args[0] ?? readState(p.prefix)?.figure;
      if (!fig || !isFigure(fig)) throw new UsageError(`hosts: expected a figure: ${FIGURES.join(', ')}`);
      const st = readState(p.prefix);
      const lab = (st && st.figure === fig ? Lab.attach(p.prefix) : null) ?? Lab.describe(fig, { prefix: p.prefix, octet: p.opts.octet, ipv6: p.opts.ipv6 });
      console.log(hostTable(lab));
      return 0;
    }
    case 'selftest': {
      await needLab();
      await ensureRealSuite();
      const results = await runSelftest({ only: args, proxy: p.proxy, log: (l) => console.log(l) });
      return results.length > 0 && results.every((r) => r.ok) ? 0 : 1;
    }
    case 'capture-fixtures': {
      const dir = args[0];
      if (!dir) throw new UsageError('capture-fixtures: expected an output directory');
      await needLab();
      await ensureRealSuite();
      const ok = await captureFixtures(path.resolve(dir), args.slice(1), (l) => console.log(l));
      return ok ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "${cmd}" (see uftp-lab --help)`);
  }
}

// Output piped into `head` and closed early is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof LabError) {
      process.stderr.write(`uftp-lab: ${e.message}\n`);
      process.exit(e instanceof UsageError ? 2 : 1);
    }
    throw e;
  },
);
