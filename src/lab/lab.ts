/**
 * The lab: test hosts in Linux network namespaces joined by veth pairs and bridges, after the figures of
 * uftpproxyd(1). Used as a library by tests (`Lab.up`, `withLab`) and by people through `uftp-lab`.
 *
 * Rules it keeps:
 * - every namespace is named `<prefix>-<host>` (hosts) or `<prefix>-sw<net>` (a segment's bridge), so
 *   parallel runs and leftovers never collide, and `downPrefix(prefix)` finds everything;
 * - each namespace gets /etc/netns/<ns>/resolv.conf with `nameserver 127.0.0.1`: no lookup leaves;
 * - interfaces are created inside namespaces; addresses are 10.<octet>.<subnet>.<host> inside them only;
 * - no program is started in the root namespace: Lab.spawn runs `ip netns exec NS timeout -k 3 S argv`,
 *   detached in its own process group, stopped by pid (the group), bounded by `timeout`;
 * - down() kills every process left in the lab's namespaces and deletes the namespaces and their files.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIGURE_DEFS, type FigureDef, type FigureName, type Role, addr6Of, subnet6Of, subnetOf, ula6Group } from './topology.js';
import { LabError, must, run, sleep, type RunResult } from './sh.js';

export { LabError } from './sh.js';
export type { FigureName } from './topology.js';

export const STATE_DIR = '/run/uftp-lab';
export const DEFAULT_OCTET = 70;

export interface Impairment {
  /** Random loss in percent (0..100, resolution 0.1) on the figure's WAN: every packet entering the router
   * (fig1, fig3, fig4, nat), or every frame the only segment's bridge forwards (fig2). nftables numgen. */
  readonly lossPct?: number;
  /** Rate limit in kbit/s on every router interface (or bridge port, fig2), each direction. tc tbf. */
  readonly rateKbit?: number;
}

export interface LabOptions extends Impairment {
  /** Namespace name prefix; default `ulab` + 6 random hex digits. */
  readonly prefix?: string;
  /** Second octet of every address; default 70. */
  readonly octet?: number;
  /** fig1 only: one-way delay of the delay relays (router addresses A.2 -> cproxyB, A.3 -> cproxyC). */
  readonly delayMs?: number;
  /** Where logs, destinations and captures go; default /tmp/uftp-lab/<prefix>. */
  readonly workDir?: string;
  /** Keep the work directory (logs, received files) on down; default: it is removed. */
  readonly keepWorkDir?: boolean;
  /** Bound on each relay's lifetime, seconds (default 3600). */
  readonly relaySeconds?: number;
  /**
   * Dual stack: every host also gets fd<octet>:<subnet>::<host>/64 on each segment (10.70.2.21 ->
   * fd70:2::21), IPv6 on in the hosts' namespaces with DAD off (addresses usable at once), default routes
   * via the router's ::1, forwarding on the router (unicast only: IPv6 multicast crosses it only where the
   * figure copies multicast, fig3/fig4). Needs an octet 0..99. Default: IPv4 only, IPv6 off.
   */
  readonly ipv6?: boolean;
}

/** Address family for lab.addrOf and friends. */
export type Family = 'ipv4' | 'ipv6';

export interface HostInfo {
  readonly name: string;
  readonly role: Role;
  readonly ns: string;
  /** Segment name -> address. */
  readonly addrs: Readonly<Record<string, string>>;
  /** Segment name -> interface name inside the host's namespace (`e<net>`). */
  readonly ifaces: Readonly<Record<string, string>>;
  /** Segment name -> IPv6 address (fd70:<subnet>::<host>), only in a dual-stack lab (`ipv6: true`). */
  readonly addrs6?: Readonly<Record<string, string>>;
}

export interface SpawnOptions {
  /** Hard bound: the process is killed after this (default 120 s). */
  readonly timeoutMs?: number;
  /** stdout and stderr go here (appended); default <workDir>/logs/<host>-<argv0>-<n>.log. */
  readonly logFile?: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface Proc {
  readonly pid: number;
  readonly host: string;
  readonly argv: readonly string[];
  readonly logFile: string;
  /** Exit code once exited (124 = killed by its time bound), else null. */
  readonly exitCode: number | null;
  /** Resolves with the exit code (128+signal when killed by a signal). */
  wait(): Promise<number>;
  /** SIGTERM to the process group, SIGKILL after graceMs; resolves with the exit code. */
  kill(graceMs?: number): Promise<number>;
  /** The log so far. */
  log(): string;
}

export interface UftpdOptions extends SpawnOptions {
  /** Destination directory; default <workDir>/<host>/dest (created, emptied). */
  readonly dest?: string;
  /** Extra arguments, e.g. ['-R', '10.70.1.11'] or ['-k', key]. */
  readonly args?: readonly string[];
  /** Wait until UDP port 1044 (or `port`) is bound before resolving; default true. */
  readonly waitReady?: boolean;
  readonly port?: number;
}

export interface UftpdProc extends Proc {
  readonly dest: string;
}

/** Where this module's package lives (works from src/ under tsx and from dist/). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const name = (JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name;
        if (name === 'uftp-ts') return dir;
      } catch { /* keep looking */ }
    }
    dir = path.dirname(dir);
  }
  throw new LabError('cannot find the uftp-ts package root');
}

/** argv prefix to run one of this package's TypeScript/JavaScript modules with node (tsx loader kept). */
export function nodeModuleArgv(moduleRelFromLab: string): string[] {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  const file = path.join(path.dirname(here), moduleRelFromLab.replace(/\.js$/, ext));
  const keep: string[] = [];
  const ea = process.execArgv;
  for (let i = 0; i < ea.length; i++) {
    const a = ea[i] ?? '';
    if ((a === '--import' || a === '--require' || a === '--loader' || a === '-r') && ea[i + 1] !== undefined) {
      keep.push(a, ea[i + 1] ?? ''); i++;
    } else if (/^--(import|require|loader)=/.test(a)) keep.push(a);
  }
  return [process.execPath, ...keep, file];
}

/** Path of one of our compiled CLIs (dist/src/cli/NAME.js). Run `npx tsc -p .` first. */
export function ourBin(name: string): string {
  return path.join(packageRoot(), 'dist', 'src', 'cli', `${name}.js`);
}

/** Null when the lab can run here, else one line saying why not. */
export async function checkPrereqs(): Promise<string | null> {
  if (process.platform !== 'linux') return 'needs Linux network namespaces; this is ' + process.platform;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'needs root to create network namespaces (run it as root, e.g. with sudo)';
  }
  for (const c of ['ip', 'nft', 'tc', 'timeout']) {
    const r = await run(['sh', '-c', `command -v ${c}`], { timeoutMs: 5000 });
    if (r.code !== 0) return `needs the command "${c}" (Debian packages iproute2, nftables, coreutils)`;
  }
  const probe = `ulabprobe${randomBytes(3).toString('hex')}`;
  const r = await run(['ip', 'netns', 'add', probe]);
  if (r.code !== 0) return `cannot create a network namespace: ${r.stderr.trim() || 'ip netns add failed'}`;
  await run(['ip', 'netns', 'del', probe]);
  return null;
}

/** Installs the real UFTP suite (Debian package uftp) when missing; needs root. No service is started. */
export async function ensureRealSuite(): Promise<void> {
  const have = await run(['sh', '-c', 'command -v uftp && command -v uftpd && command -v uftpproxyd && command -v uftp_keymgt']);
  if (have.code === 0) return;
  const policy = '/usr/sbin/policy-rc.d';
  const made = !fs.existsSync(policy);
  if (made) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = 'DEBIAN_FRONTEND=noninteractive';
    let r = await run(['sh', '-c', `${env} apt-get install -y -qq --no-install-recommends uftp`], { timeoutMs: 300_000 });
    if (r.code !== 0) {
      await run(['apt-get', 'update', '-qq'], { timeoutMs: 300_000 });
      r = await run(['sh', '-c', `${env} apt-get install -y -qq --no-install-recommends uftp`], { timeoutMs: 300_000 });
    }
    if (r.code !== 0) throw new LabError(`cannot install the Debian package uftp: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  } finally {
    if (made) fs.rmSync(policy, { force: true });
  }
}

/** Names of all network namespaces. */
export async function listNamespaces(): Promise<string[]> {
  const out = await must(['ip', 'netns', 'list']);
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '');
}

/** Pids of the processes inside a namespace. */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await run(['ip', 'netns', 'pids', ns]);
  return r.stdout.split('\n').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* gone */ }
}

/**
 * Removes every namespace named `<prefix>-*`, the processes in them, their /etc/netns files, the state file.
 * Idempotent: a second call finds nothing and succeeds. Returns the namespaces it removed.
 */
export async function downPrefix(prefix: string, o: { keepWorkDir?: boolean } = {}): Promise<string[]> {
  validatePrefix(prefix);
  const workDir = readState(prefix)?.workDir ?? path.join('/tmp/uftp-lab', prefix);
  const mine = (n: string): boolean => n.startsWith(`${prefix}-`);
  const nss = (await listNamespaces()).filter(mine);
  const pids = new Set<number>();
  for (const ns of nss) for (const p of await namespacePids(ns)) pids.add(p);
  for (const p of pids) killPid(p, 'SIGTERM');
  for (let i = 0; i < 20 && [...pids].some(pidAlive); i++) await sleep(100);
  for (const p of pids) if (pidAlive(p)) killPid(p, 'SIGKILL');
  for (let i = 0; i < 20 && [...pids].some(pidAlive); i++) await sleep(50);
  for (const ns of nss) await run(['ip', 'netns', 'del', ns]);
  if (fs.existsSync('/etc/netns')) {
    for (const d of fs.readdirSync('/etc/netns')) if (mine(d)) fs.rmSync(path.join('/etc/netns', d), { recursive: true, force: true });
  }
  fs.rmSync(path.join(STATE_DIR, `${prefix}.json`), { force: true });
  if (!o.keepWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
  return nss;
}

/** True while a process with this pid exists (signal 0 probes without signalling). */
export function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

export function validatePrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9]{1,15}$/.test(prefix)) {
    throw new LabError(`bad prefix "${prefix}": 2-16 lowercase letters/digits, starting with a letter`);
  }
}

export interface LabState {
  readonly prefix: string;
  readonly figure: FigureName;
  readonly octet: number;
  readonly workDir: string;
  readonly created: string;
  readonly options: LabOptions;
}

/** Reads the state file `uftp-lab up` wrote for a prefix, or null. */
export function readState(prefix: string): LabState | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(STATE_DIR, `${prefix}.json`), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

const liveLabs = new Set<Lab>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test process is interrupted: tear down synchronously.
  const syncDown = (): void => {
    for (const lab of liveLabs) {
      try {
        execFileSync('sh', ['-c', `for n in $(ip netns list | awk '{print $1}' | grep '^${lab.prefix}-'); do ` +
          `for p in $(ip netns pids $n); do kill -9 $p; done; ip netns del $n; rm -rf /etc/netns/$n; done; ` +
          `rm -f ${STATE_DIR}/${lab.prefix}.json`], { timeout: 10_000, stdio: 'ignore' });
      } catch { /* best effort */ }
    }
    liveLabs.clear();
  };
  process.on('exit', syncDown);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { syncDown(); process.exit(130); });
  }
}

let procCounter = 0;

export class Lab {
  readonly prefix: string;
  readonly figure: FigureName;
  readonly def: FigureDef;
  readonly octet: number;
  readonly workDir: string;
  readonly options: LabOptions;
  private readonly procs = new Set<Proc>();
  private readonly children = new Map<number, ChildProcess>();
  private impairment: Impairment = {};
  private closed = false;

  private constructor(figure: FigureName, opts: LabOptions, prefix: string) {
    this.figure = figure;
    this.def = FIGURE_DEFS[figure];
    this.prefix = prefix;
    this.octet = opts.octet ?? DEFAULT_OCTET;
    this.workDir = opts.workDir ?? path.join('/tmp/uftp-lab', prefix);
    this.options = opts;
  }

  /** Builds a figure. An existing lab with the same prefix is taken down first (up is idempotent). */
  static async up(figure: FigureName, opts: LabOptions = {}): Promise<Lab> {
    if (!(figure in FIGURE_DEFS)) throw new LabError(`unknown figure "${figure}" (fig1, fig2, fig3, fig4, nat)`);
    const why = await checkPrereqs();
    if (why) throw new LabError(why);
    const prefix = opts.prefix ?? `ulab${randomBytes(3).toString('hex')}`;
    validatePrefix(prefix);
    const octet = opts.octet ?? DEFAULT_OCTET;
    if (!Number.isInteger(octet) || octet < 0 || octet > 255) throw new LabError(`bad octet ${octet}`);
    if (opts.delayMs && !FIGURE_DEFS[figure].relays) throw new LabError(`delayMs: ${figure} has no relayed tunnel (only fig1)`);
    if (opts.ipv6) {
      try { ula6Group(octet); } catch (e) { throw new LabError((e as Error).message); }
    }
    await downPrefix(prefix);
    const lab = new Lab(figure, opts, prefix);
    installExitHook();
    liveLabs.add(lab);
    try {
      await lab.build();
    } catch (e) {
      await lab.down();
      throw e;
    }
    return lab;
  }

  /** A Lab object for naming and addresses only (nothing is built): host tables, docs. */
  static describe(figure: FigureName, opts: LabOptions = {}): Lab {
    if (opts.ipv6) {
      try { ula6Group(opts.octet ?? DEFAULT_OCTET); } catch (e) { throw new LabError((e as Error).message); }
    }
    return new Lab(figure, opts, opts.prefix ?? 'ulab');
  }

  /** Re-attaches to a lab `uftp-lab up` built (CLI `run`, `status`). */
  static attach(prefix: string): Lab | null {
    const st = readState(prefix);
    if (!st) return null;
    return new Lab(st.figure, { ...st.options, workDir: st.workDir, octet: st.octet }, prefix);
  }

  // ---- naming and addresses ----

  nsOf(host: string): string {
    this.hostDef(host);
    return `${this.prefix}-${host}`;
  }

  private switchNs(net: string): string {
    return `${this.prefix}-sw${net}`;
  }

  private hostDef(host: string): FigureDef['hosts'][number] {
    const h = this.def.hosts.find((x) => x.name === host);
    if (!h) throw new LabError(`${this.figure} has no host "${host}" (hosts: ${this.hostNames().join(', ')})`);
    return h;
  }

  hostNames(): string[] {
    return this.def.hosts.map((h) => h.name);
  }

  host(name: string): HostInfo {
    const h = this.hostDef(name);
    const addrs: Record<string, string> = {};
    const ifaces: Record<string, string> = {};
    const addrs6: Record<string, string> = {};
    for (const [net, n] of Object.entries(h.addrs)) {
      addrs[net] = `${subnetOf(this.octet, this.def, net)}.${n}`;
      ifaces[net] = `e${net}`;
      if (this.ipv6) addrs6[net] = addr6Of(this.octet, this.def, net, n);
    }
    return { name, role: h.role, ns: this.nsOf(name), addrs, ifaces, ...(this.ipv6 ? { addrs6 } : {}) };
  }

  /** True when the lab is dual stack (`ipv6: true`). */
  get ipv6(): boolean {
    return this.options.ipv6 === true;
  }

  /**
   * The host's address on a segment (default: its first segment), IPv4 by default; `'ipv6'` gives its
   * fd<octet>:<subnet>::<host> address (dual-stack labs only).
   */
  addrOf(host: string, net?: string, family: Family = 'ipv4'): string {
    const info = this.host(host);
    const n = net ?? Object.keys(info.addrs)[0] ?? '';
    if (family === 'ipv6' && !this.ipv6) throw new LabError(`${this.figure} lab ${this.prefix} has no IPv6 (build it with ipv6: true / --ipv6)`);
    const a = family === 'ipv6' ? info.addrs6?.[n] : info.addrs[n];
    if (a === undefined) throw new LabError(`${host} has no address on network ${n}`);
    return a;
  }

  /** The /64 (IPv6) or /24 (IPv4) of a segment: `fd70:2::/64`, `10.70.2.0/24`. */
  subnetOf(net: string, family: Family = 'ipv4'): string {
    if (!this.def.nets.some((n) => n.name === net)) throw new LabError(`${this.figure} has no network ${net}`);
    return family === 'ipv6' ? `${subnet6Of(this.octet, this.def, net)}/64` : `${subnetOf(this.octet, this.def, net)}.0/24`;
  }

  /** UFTP unique ID for a host: its (first) IPv4 address as 0xAABBCCDD, the suite's own default. */
  uidOf(host: string, net?: string): string {
    return '0x' + this.addrOf(host, net).split('.').map((x) => Number(x).toString(16).padStart(2, '0')).join('').toUpperCase();
  }

  /** Hosts of a role, in figure order. */
  hostsOf(role: Role): string[] {
    return this.def.hosts.filter((h) => h.role === role).map((h) => h.name);
  }

  /** Address a server proxy should use as `-s` dest for a client proxy: the delay relay's when delayMs is set. */
  tunnelDest(cproxy: string, family: Family = 'ipv4'): string {
    const relay = this.def.relays?.find((r) => r.to === cproxy);
    if (this.options.delayMs && relay) {
      if (family === 'ipv6') throw new LabError('the delay relays are IPv4 only (no IPv6 tunnel with delayMs)');
      return `${subnetOf(this.octet, this.def, relay.listenNet)}.${relay.listen}`;
    }
    return this.addrOf(cproxy, undefined, family);
  }

  // ---- building ----

  private async build(): Promise<void> {
    fs.rmSync(path.join(this.workDir, 'logs'), { recursive: true, force: true });
    fs.mkdirSync(path.join(this.workDir, 'logs'), { recursive: true });
    const nss = [...this.def.nets.map((n) => this.switchNs(n.name)), ...this.def.hosts.map((h) => this.nsOf(h.name))];
    for (const ns of nss) {
      await must(['ip', 'netns', 'add', ns]);
      fs.mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      fs.writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\n');
      fs.writeFileSync(`/etc/netns/${ns}/hosts`, this.hostsFile());
    }
    await Promise.all(nss.map(async (ns) => {
      await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      // IPv6 stays off in the switches (bridges forward frames of any protocol) and, unless dual stack, everywhere.
      const v6 = this.ipv6 && !ns.startsWith(`${this.prefix}-sw`);
      await this.sysctl(ns, v6
        ? ['net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0',
          'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0',
          'net.ipv6.conf.all.accept_ra=0', 'net.ipv6.conf.default.accept_ra=0',
          'net.ipv6.conf.default.autoconf=0', 'net.ipv6.conf.default.router_solicitations=0']
        : ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }));
    await Promise.all(this.def.nets.map(async (n) => {
      const sw = this.switchNs(n.name);
      await must(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0', 'stp_state', '0']);
      await must(['ip', '-n', sw, 'link', 'set', 'br0', 'up']);
    }));
    await Promise.all(this.def.hosts.map(async (h) => {
      const ns = this.nsOf(h.name);
      const info = this.host(h.name);
      const fwd = h.role === 'router' || h.role === 'nat';
      await this.sysctl(ns, [
        `net.ipv4.ip_forward=${fwd ? 1 : 0}`, 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
        ...(this.ipv6 ? [`net.ipv6.conf.all.forwarding=${fwd ? 1 : 0}`] : []),
      ]);
      for (const net of Object.keys(h.addrs)) {
        const ifc = `e${net}`;
        const port = `p-${h.name}`.slice(0, 15);
        const sw = this.switchNs(net);
        await must(['ip', 'link', 'add', ifc, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', sw]);
        await must(['ip', '-n', sw, 'link', 'set', port, 'master', 'br0']);
        await must(['ip', '-n', sw, 'link', 'set', port, 'up']);
        await must(['ip', '-n', ns, 'addr', 'add', `${info.addrs[net]}/24`, 'dev', ifc]);
        if (this.ipv6) await must(['ip', '-n', ns, '-6', 'addr', 'add', `${info.addrs6?.[net] ?? ''}/64`, 'dev', ifc, 'nodad']);
        await must(['ip', '-n', ns, 'link', 'set', ifc, 'up']);
      }
      if (h.gw) {
        await must(['ip', '-n', ns, 'route', 'add', 'default', 'via', `${subnetOf(this.octet, this.def, h.gw.net)}.${h.gw.host}`]);
        if (this.ipv6) await must(['ip', '-n', ns, '-6', 'route', 'add', 'default', 'via', addr6Of(this.octet, this.def, h.gw.net, h.gw.host)]);
      }
      const first = Object.keys(h.addrs)[0];
      if (first) await must(['ip', '-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', `e${first}`]);
    }));
    for (const r of this.def.routes ?? []) {
      await must(['ip', '-n', this.nsOf(r.host), 'route', 'add', `${subnetOf(this.octet, this.def, r.net)}.0/24`,
        'via', `${subnetOf(this.octet, this.def, r.viaNet)}.${r.via}`]);
      if (this.ipv6) {
        await must(['ip', '-n', this.nsOf(r.host), '-6', 'route', 'add', `${subnet6Of(this.octet, this.def, r.net)}/64`,
          'via', addr6Of(this.octet, this.def, r.viaNet, r.via)]);
      }
    }
    if (this.ipv6) await this.waitIpv6Ready();
    await this.buildRouterRules();
    this.impairment = {};
    await this.setImpairment({ lossPct: this.options.lossPct, rateKbit: this.options.rateKbit });
    if (this.options.delayMs) await this.startDelayRelays(this.options.delayMs);
    fs.mkdirSync(STATE_DIR, { recursive: true });
    const state: LabState = {
      prefix: this.prefix, figure: this.figure, octet: this.octet, workDir: this.workDir,
      created: new Date().toISOString(), options: { ...this.options, prefix: this.prefix },
    };
    fs.writeFileSync(path.join(STATE_DIR, `${this.prefix}.json`), JSON.stringify(state, null, 2) + '\n');
  }

  /**
   * /etc/hosts of every namespace (ip netns exec bind-mounts /etc/netns/<ns>/hosts): each lab host by name
   * (its first IPv4 address) and, dual stack, `<host>.v6` (its first IPv6 address), for programs that take
   * a name but no IPv6 literal (the real uftpproxyd -H).
   */
  hostsFile(): string {
    const lines = ['127.0.0.1 localhost'];
    if (this.ipv6) lines.push('::1 localhost ip6-localhost ip6-loopback');
    for (const h of this.hostNames()) {
      lines.push(`${this.addrOf(h)} ${h}`);
      if (this.ipv6) lines.push(`${this.addrOf(h, undefined, 'ipv6')} ${h}.v6`);
    }
    return lines.join('\n') + '\n';
  }

  /** Resolves once no IPv6 address in any host is tentative (with DAD off that is at once; bounded 5 s). */
  private async waitIpv6Ready(): Promise<void> {
    await this.waitFor(async () => {
      for (const h of this.def.hosts) {
        const r = await run(['ip', '-n', this.nsOf(h.name), '-6', 'addr', 'show', 'tentative']);
        if (r.stdout.trim() !== '') return false;
      }
      return true;
    }, 5000, 'IPv6 addresses to leave the tentative state');
  }

  /** Sets net.* sysctls inside a namespace (through /proc/sys, which shows the writer's own namespace). */
  private async sysctl(ns: string, kvs: string[]): Promise<void> {
    const script = kvs.map((kv) => {
      const [k, v] = kv.split('=');
      if (!k || v === undefined || !/^[a-z0-9_.]+$/.test(k) || !/^[0-9]+$/.test(v)) throw new LabError(`bad sysctl ${kv}`);
      return `echo ${v} > /proc/sys/${k.replace(/\./g, '/')}`;
    }).join(' && ');
    await must(['ip', 'netns', 'exec', ns, 'sh', '-c', script]);
  }

  /** Loads an nftables ruleset (nft -f syntax) into a host's namespace. */
  async nft(host: string, rules: string): Promise<void> {
    await must(['ip', 'netns', 'exec', this.nsOf(host), 'nft', '-f', '-'], { input: rules });
  }

  private async buildRouterRules(): Promise<void> {
    for (const h of this.def.hosts) {
      if (h.role === 'router' && this.def.mcastForward.length > 0) {
        // Multicast forwarding without a routing daemon: copy each multicast frame arriving on one segment
        // out of the listed others (TTL untouched). Segments not listed never see each other's multicast.
        let rules = 'table netdev labmcast {\n';
        for (const f of this.def.mcastForward) {
          rules += `  chain in_${f.from} {\n    type filter hook ingress device "e${f.from}" priority 0; policy accept;\n`;
          for (const t of f.to) rules += `    ip daddr 224.0.0.0/4 dup to "e${t}"\n`;
          // IPv6: only multicast of scope site or wider (ff05, ff08, ff0e, and their transient ff1x), never the
          // link-local scope the neighbour discovery of each segment uses.
          if (this.ipv6) {
            for (const t of f.to) rules += `    ip6 daddr { ff05::/16, ff08::/16, ff0e::/16, ff15::/16, ff18::/16, ff1e::/16 } dup to "e${t}"\n`;
          }
          rules += '  }\n';
        }
        rules += '}\n';
        await this.nft(h.name, rules);
      }
      if (h.role === 'nat') {
        const out = Object.keys(h.addrs).find((n) => n === 'W') ?? '';
        await this.nft(h.name, [
          `table ${this.ipv6 ? 'inet' : 'ip'} labnat {`,
          '  chain postnat { type nat hook postrouting priority srcnat; policy accept;',
          `    oifname "e${out}" masquerade; }`,
          '}',
          'table inet labfw {',
          '  chain bfwd { type filter hook forward priority filter; policy accept;',
          '    ct state established,related accept',
          `    iifname "e${out}" counter drop; }`,
          '  chain input4 { type filter hook input priority filter; policy accept;',
          '    ct state established,related accept',
          // IPv6 neighbour discovery is ICMPv6 (ARP is not IP): without it the router cannot reach the gateway.
          ...(this.ipv6 ? ['    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept'] : []),
          `    iifname "e${out}" counter drop; }`,
          '}',
        ].join('\n') + '\n');
      }
    }
  }

  /** Makes a segment's bridge flood every frame (a hub), so a capture on any port sees all the unicast too. */
  async hubMode(net: string): Promise<void> {
    if (!this.def.nets.some((n) => n.name === net)) throw new LabError(`${this.figure} has no network ${net}`);
    await must(['ip', '-n', this.switchNs(net), 'link', 'set', 'br0', 'type', 'bridge', 'ageing_time', '0']);
  }

  /** Counters of the NAT gateway's drop rules (packets dropped as unsolicited inbound). */
  async natDropped(): Promise<number> {
    const gw = this.hostsOf('nat')[0];
    if (!gw) throw new LabError(`${this.figure} has no NAT gateway`);
    const out = await must(['ip', 'netns', 'exec', this.nsOf(gw), 'nft', 'list', 'table', 'inet', 'labfw']);
    let n = 0;
    for (const m of out.matchAll(/counter packets (\d+)/g)) n += Number(m[1]);
    return n;
  }

  /**
   * Sets (replaces) loss and rate on the figure's WAN. lossPct 0/undefined and rateKbit 0/undefined remove them.
   * Loss: nftables `numgen random mod 1000 < N drop` early in prerouting of the router (all packets entering
   * it from any interface), or in the bridge's forward hook for fig2. Rate: tc tbf on each router interface
   * (each bridge port for fig2).
   */
  async setImpairment(imp: Impairment): Promise<void> {
    const loss = imp.lossPct ?? 0;
    const rate = imp.rateKbit ?? 0;
    if (loss < 0 || loss > 100) throw new LabError(`lossPct ${loss}: expected 0..100`);
    if (rate < 0) throw new LabError(`rateKbit ${rate}: expected >= 0`);
    const permille = Math.round(loss * 10);
    const wan = this.def.wan;
    let ns: string;
    let devs: string[];
    let family: string;
    let rule: string;
    if (wan.kind === 'router') {
      ns = this.nsOf(wan.host);
      devs = Object.keys(this.hostDef(wan.host).addrs).map((n) => `e${n}`);
      family = 'inet';
      rule = `  chain prert { type filter hook prerouting priority -300; policy accept;\n` +
        `    iifname != "lo" numgen random mod 1000 < ${permille} counter drop; }\n`;
    } else {
      ns = this.switchNs(wan.net);
      devs = this.def.hosts.filter((h) => wan.net in h.addrs).map((h) => `p-${h.name}`.slice(0, 15));
      family = 'bridge';
      rule = `  chain bfwd { type filter hook forward priority -300; policy accept;\n` +
        `    ether type { ip, ip6 } numgen random mod 1000 < ${permille} counter drop; }\n`;
    }
    await run(['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', family, 'labloss']);
    if (permille > 0) {
      await must(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: `table ${family} labloss {\n${rule}}\n` });
    }
    for (const d of devs) {
      await run(['tc', '-n', ns, 'qdisc', 'del', 'dev', d, 'root']);
      if (rate > 0) {
        const burst = Math.max(4000, Math.round((rate * 1000) / 8 / 50)); // 20 ms worth, at least a few frames
        await must(['tc', '-n', ns, 'qdisc', 'add', 'dev', d, 'root', 'tbf', 'rate', `${rate}kbit`,
          'burst', String(burst), 'latency', '200ms']);
      }
    }
    this.impairment = { lossPct: loss, rateKbit: rate };
  }

  get currentImpairment(): Impairment {
    return this.impairment;
  }

  /**
   * Impairs one link: the interface of `host` on segment `net` (e.g. router, B: the link to network B).
   * Loss (nftables numgen) applies to each packet entering and to each packet leaving that interface;
   * rate (tc tbf) to what leaves it. Replaces what was set on that link before; zeros remove it.
   */
  async impairLink(host: string, net: string, imp: Impairment): Promise<void> {
    const h = this.hostDef(host);
    if (!(net in h.addrs)) throw new LabError(`${host} has no interface on network ${net} (it has ${Object.keys(h.addrs).join(', ')})`);
    const loss = imp.lossPct ?? 0;
    const rate = imp.rateKbit ?? 0;
    if (loss < 0 || loss > 100) throw new LabError(`lossPct ${loss}: expected 0..100`);
    if (rate < 0) throw new LabError(`rateKbit ${rate}: expected >= 0`);
    const ns = this.nsOf(host);
    const dev = `e${net}`;
    const table = `lablink_${net}`;
    const permille = Math.round(loss * 10);
    await run(['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', table]);
    if (permille > 0) {
      await this.nft(host, [
        `table inet ${table} {`,
        '  chain inlink { type filter hook prerouting priority -300; policy accept;',
        `    iifname "${dev}" numgen random mod 1000 < ${permille} counter drop; }`,
        '  chain outlink { type filter hook postrouting priority 300; policy accept;',
        `    oifname "${dev}" numgen random mod 1000 < ${permille} counter drop; }`,
        '}',
      ].join('\n') + '\n');
    }
    await run(['tc', '-n', ns, 'qdisc', 'del', 'dev', dev, 'root']);
    if (rate > 0) {
      const burst = Math.max(4000, Math.round((rate * 1000) / 8 / 50));
      await must(['tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${rate}kbit`, 'burst', String(burst), 'latency', '200ms']);
    }
  }

  /**
   * Starts a delay relay in a host's namespace (normally the router): datagrams to listen are forwarded to
   * `to` after delayMs, answers come back the same way. Adds `listen`'s address to the host when missing.
   */
  async startRelay(host: string, o: { listen: string; listenPort?: number; to: string; toPort?: number; delayMs: number; lossPct?: number; bind?: string; timeoutMs?: number }): Promise<Proc> {
    const ns = this.nsOf(host);
    const have = await must(['ip', '-n', ns, '-o', '-4', 'addr', 'show']);
    if (!have.includes(` ${o.listen}/`)) {
      const net = this.def.nets.find((n) => o.listen.startsWith(`${subnetOf(this.octet, this.def, n.name)}.`));
      if (!net) throw new LabError(`relay address ${o.listen} is on no segment of ${this.figure}`);
      await must(['ip', '-n', ns, 'addr', 'add', `${o.listen}/24`, 'dev', `e${net.name}`]);
    }
    const lp = o.listenPort ?? 1044;
    const argv = [...nodeModuleArgv('./delay-relay.js'), '--listen', `${o.listen}:${lp}`, '--to', `${o.to}:${o.toPort ?? 1044}`,
      '--delay', String(o.delayMs), '--loss', String(o.lossPct ?? 0),
      '--max-seconds', String(Math.ceil((o.timeoutMs ?? (this.options.relaySeconds ?? 3600) * 1000) / 1000))];
    if (o.bind) argv.push('--bind', o.bind);
    const p = this.spawn(host, argv, { timeoutMs: (o.timeoutMs ?? (this.options.relaySeconds ?? 3600) * 1000) + 5000, logFile: path.join(this.workDir, 'logs', `${host}-relay-${o.listen}.log`) });
    await this.waitFor(() => p.log().includes('ready') || p.exitCode !== null, 10_000, `delay relay on ${host}`);
    if (p.exitCode !== null) throw new LabError(`delay relay on ${host} exited: ${p.log().trim()}`);
    return p;
  }

  private async startDelayRelays(delayMs: number): Promise<void> {
    const router = this.hostsOf('router')[0];
    if (!router) return;
    for (const r of this.def.relays ?? []) {
      const listen = `${subnetOf(this.octet, this.def, r.listenNet)}.${r.listen}`;
      await this.startRelay(router, { listen, to: this.addrOf(r.to), delayMs });
    }
  }

  // ---- processes ----

  /**
   * Starts argv inside the host's namespace, bounded by timeoutMs, output to a log file.
   * The process leads its own process group; kill() signals the group.
   */
  spawn(host: string, argv: readonly string[], opts: SpawnOptions = {}): Proc {
    if (this.closed) throw new LabError('lab is down');
    if (argv.length === 0) throw new LabError('spawn: empty argv');
    const ns = this.nsOf(host);
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const base = path.basename(argv[0] === process.execPath ? (argv.find((a) => /\.(js|ts)$/.test(a)) ?? 'node') : argv[0] ?? 'x')
      .replace(/\.(js|ts)$/, '');
    const logFile = opts.logFile ?? path.join(this.workDir, 'logs', `${host}-${base}-${++procCounter}.log`);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const fd = fs.openSync(logFile, 'a');
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    let child: ChildProcess;
    try {
      child = spawn('ip', ['netns', 'exec', ns, 'timeout', '-k', '3', `${secs}s`, ...argv], {
        detached: true, stdio: ['ignore', fd, fd], cwd: opts.cwd, env: opts.env ?? process.env,
      });
    } finally {
      fs.closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new LabError(`cannot start ${argv[0]} in ${host}`);
    let exitCode: number | null = null;
    const done = new Promise<number>((resolve) => {
      child.on('exit', (code, signal) => {
        exitCode = code ?? (signal ? 128 + (signalNumber(signal)) : 1);
        this.procs.delete(proc);
        this.children.delete(pid);
        resolve(exitCode);
      });
      child.on('error', () => { exitCode = 127; this.procs.delete(proc); resolve(127); });
    });
    this.children.set(pid, child);
    const proc: Proc = {
      pid, host, argv: [...argv], logFile,
      get exitCode() { return exitCode; },
      wait: () => done,
      kill: async (graceMs = 2000) => {
        if (exitCode !== null) return exitCode;
        killPid(-pid, 'SIGTERM');
        const t = setTimeout(() => killPid(-pid, 'SIGKILL'), graceMs);
        const c = await done;
        clearTimeout(t);
        return c;
      },
      log: () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } },
    };
    this.procs.add(proc);
    return proc;
  }

  /** Runs argv in the host's namespace to completion (bounded), capturing output. */
  exec(host: string, argv: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    return run(['ip', 'netns', 'exec', this.nsOf(host), 'timeout', '-k', '2', `${secs}s`, ...argv], { timeoutMs: timeoutMs + 5000, input: opts.input });
  }

  /** Lets this Node process exit while the lab's processes keep running (the CLI's `up`); `down` stops them. */
  release(): void {
    for (const c of this.children.values()) c.unref();
    liveLabs.delete(this); // not torn down when this process exits
  }

  /** Processes this Lab object started that are still running. */
  running(): Proc[] {
    return [...this.procs];
  }

  async waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await cond()) return;
      await sleep(50);
    }
    throw new LabError(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  /** Resolves once something in the host's namespace has UDP port `port` bound. */
  async waitUdp(host: string, port = 1044, timeoutMs = 10_000): Promise<void> {
    await this.waitFor(async () => {
      const r = await run(['ip', 'netns', 'exec', this.nsOf(host), 'ss', '-Hlun']);
      return r.stdout.split('\n').some((l) => new RegExp(`:${port}\\s`).test(l));
    }, timeoutMs, `UDP port ${port} on ${host}`);
  }

  /**
   * Starts the lab's UDP probe (src/lab/udp-probe.ts: recv, send, echo, ping) in a host. For recv and echo it
   * resolves once the socket is bound. Read a recv/ping report with probeReport(proc) after it exits.
   */
  async probe(host: string, mode: 'recv' | 'send' | 'echo' | 'ping', args: readonly string[], timeoutMs = 30_000): Promise<Proc> {
    const p = this.spawn(host, [...nodeModuleArgv('./udp-probe.js'), mode, ...args], { timeoutMs });
    if (mode === 'recv' || mode === 'echo') {
      await this.waitFor(() => p.log().includes('ready') || p.exitCode !== null, 10_000, `udp-probe ${mode} on ${host}`);
      if (p.exitCode !== null) throw new LabError(`udp-probe ${mode} on ${host} exited: ${p.log().trim()}`);
    }
    return p;
  }

  // ---- the real UFTP suite ----

  /** Starts the real uftpd (foreground, -d) in a host, receiving into a fresh destination directory. */
  async realUftpd(host: string, o: UftpdOptions = {}): Promise<UftpdProc> {
    const dest = o.dest ?? path.join(this.workDir, host, 'dest');
    fs.rmSync(dest, { recursive: true, force: true });
    fs.mkdirSync(dest, { recursive: true });
    const argv = ['uftpd', '-d', '-q', '-D', dest, '-U', this.uidOf(host), ...(o.args ?? [])];
    const p = this.spawn(host, argv, { ...o, logFile: o.logFile ?? path.join(this.workDir, 'logs', `${host}-uftpd.log`) });
    if (o.waitReady ?? true) await this.waitReady(p, host, o.port ?? 1044);
    return Object.assign(p, { dest });
  }

  /** Starts the real uftpproxyd (foreground, -d) in a host with the given mode options (e.g. ['-c']). */
  async realProxy(host: string, args: readonly string[], o: SpawnOptions & { waitReady?: boolean; port?: number } = {}): Promise<Proc> {
    const argv = ['uftpproxyd', '-d', '-U', this.uidOf(host), ...args];
    const p = this.spawn(host, argv, { ...o, logFile: o.logFile ?? path.join(this.workDir, 'logs', `${host}-uftpproxyd.log`) });
    if (o.waitReady ?? true) await this.waitReady(p, host, o.port ?? 1044);
    return p;
  }

  /** Starts the real uftp server sending `files` (resolve with .wait(): 0 = at least one client got a file). */
  realUftp(host: string, files: readonly string[], o: SpawnOptions & { args?: readonly string[] } = {}): Proc {
    const argv = ['uftp', '-U', this.uidOf(host), ...(o.args ?? []), ...files];
    return this.spawn(host, argv, { ...o, logFile: o.logFile ?? path.join(this.workDir, 'logs', `${host}-uftp.log`) });
  }

  /** Starts our uftpproxyd (dist/src/cli/uftpproxyd.js, foreground -d) like realProxy, same options. */
  async ourProxy(host: string, args: readonly string[], o: SpawnOptions & { waitReady?: boolean; port?: number } = {}): Promise<Proc> {
    const p = this.ours(host, 'uftpproxyd', ['-d', '-U', this.uidOf(host), ...args],
      { ...o, logFile: o.logFile ?? path.join(this.workDir, 'logs', `${host}-our-uftpproxyd.log`) });
    if (o.waitReady ?? true) await this.waitReady(p, host, o.port ?? 1044);
    return p;
  }

  /** Starts one of our compiled CLIs (dist/src/cli/NAME.js) in a host. */
  ours(host: string, bin: string, args: readonly string[], o: SpawnOptions = {}): Proc {
    return this.spawn(host, [process.execPath, ourBin(bin), ...args], o);
  }

  private async waitReady(p: Proc, host: string, port: number): Promise<void> {
    try {
      await this.waitFor(async () => {
        if (p.exitCode !== null) return true;
        const r = await run(['ip', 'netns', 'exec', this.nsOf(host), 'ss', '-Hlun']);
        return r.stdout.split('\n').some((l) => new RegExp(`:${port}\\s`).test(l));
      }, 10_000, `${p.argv[0]} on ${host} to bind UDP ${port}`);
    } catch (e) {
      await p.kill();
      throw e;
    }
    if (p.exitCode !== null) {
      throw new LabError(`${p.argv[0]} on ${host} exited ${p.exitCode}: ${p.log().trim().split('\n').slice(-3).join(' | ')}`);
    }
  }

  /** tcpdump on an interface of a host into a pcap file; resolves once it is capturing. Stop with kill(). */
  async capture(host: string, iface: string, file: string, filter: readonly string[] = ['udp'], timeoutMs = 300_000): Promise<Proc> {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const p = this.spawn(host, ['tcpdump', '-Z', 'root', '-U', '--immediate-mode', '-n', '-s', '0', '-i', iface, '-w', path.resolve(file), ...filter],
      { timeoutMs, logFile: path.join(this.workDir, 'logs', `${host}-tcpdump-${iface}-${path.basename(file)}.log`) });
    await this.waitFor(() => p.log().includes('listening on') || p.exitCode !== null, 10_000, `tcpdump on ${host} ${iface}`);
    if (p.exitCode !== null) throw new LabError(`tcpdump on ${host} ${iface} exited: ${p.log().trim()}`);
    return p;
  }

  /**
   * Creates a key with the real uftp_keymgt (run inside a lab host, never in the root namespace) and returns
   * its file and fingerprint. spec: `ec:prime256v1`, `rsa:1024`... An existing file is reused.
   */
  async makeKey(file: string, spec = 'ec:prime256v1'): Promise<{ file: string; fingerprint: string }> {
    const host = this.hostNames()[0] ?? '';
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const argv = fs.existsSync(file) ? ['uftp_keymgt', path.resolve(file)] : ['uftp_keymgt', '-g', spec, path.resolve(file)];
    const r = await this.exec(host, argv, { timeoutMs: 30_000 });
    const m = /fingerprint:\s*([0-9A-F:]+)/i.exec(r.stdout + r.stderr);
    if (r.code !== 0 || !m?.[1]) throw new LabError(`uftp_keymgt ${argv.slice(1).join(' ')}: ${(r.stderr || r.stdout).trim()}`);
    return { file: path.resolve(file), fingerprint: m[1] };
  }

  /**
   * The logs of everything this lab ran so far: file name -> content. With `copyTo`, also copies them there
   * (e.g. a CI artifact directory) before a down removes the work directory.
   */
  collectLogs(copyTo?: string): Record<string, string> {
    const dir = path.join(this.workDir, 'logs');
    const out: Record<string, string> = {};
    if (!fs.existsSync(dir)) return out;
    if (copyTo) fs.mkdirSync(copyTo, { recursive: true });
    for (const f of fs.readdirSync(dir).sort()) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      out[f] = text;
      if (copyTo) fs.writeFileSync(path.join(copyTo, f), text);
    }
    return out;
  }

  // ---- files ----

  /** SHA-256 (hex) of a file the host wrote (namespaces share the file system). */
  sha256(_host: string, file: string): string {
    return sha256File(file);
  }

  // ---- teardown ----

  /** Stops every process, deletes every namespace and file of this lab. Idempotent. */
  async down(o: { keepWorkDir?: boolean } = {}): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.kill(1000)));
    await downPrefix(this.prefix, { keepWorkDir: o.keepWorkDir ?? this.options.keepWorkDir });
    liveLabs.delete(this);
    this.closed = true;
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  const map: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return map[sig] ?? 0;
}

/** The JSON report a udp-probe recv/ping printed (last JSON line of its log). */
export function probeReport<T>(p: Proc): T {
  const line = p.log().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new LabError(`udp-probe on ${p.host} printed no report: ${p.log().trim()}`);
  return JSON.parse(line) as T;
}

export function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Relative path -> SHA-256 of every regular file under dir. */
export function treeHashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else if (e.isFile()) out.set(r, sha256File(p));
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out;
}

/**
 * Builds a lab, runs fn, and always tears it down (also when fn throws or times out). When fn throws, the
 * work directory with the logs is kept and the error message says where.
 */
export async function withLab<T>(figure: FigureName, opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.up(figure, opts);
  let failed = false;
  try {
    return await fn(lab);
  } catch (e) {
    failed = true;
    if (e instanceof Error) e.message += ` (lab logs kept in ${lab.workDir}/logs)`;
    throw e;
  } finally {
    await lab.down({ keepWorkDir: failed || opts.keepWorkDir });
  }
}
