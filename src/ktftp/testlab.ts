/**
 * Lab scaffolding for the KTFTP lab tests and benchmark: a network namespace of our own (loopback only),
 * a temporary directory with keys, tag and identity files, ktftpd started inside the namespace, and a way to
 * run ktftp, tftp-hpa, curl and tcpdump there. Everything is bounded by `timeout` and removed by destroy().
 * Needs root (ip netns).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKey, writeKeyFile } from '../crypto/keyfile.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/*.js, whether this file runs compiled (dist/src/ktftp) or through tsx (src/ktftp). */
export const BIN_DIR = here.includes(`${join('dist', 'src')}`) ? resolve(here, '../cli') : resolve(here, '../../dist/src/cli');
export const KTFTP_JS = join(BIN_DIR, 'ktftp.js');
export const KTFTPD_JS = join(BIN_DIR, 'ktftpd.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  input?: Buffer | string;
  env?: Record<string, string>;
  timeoutSec?: number;
  cwd?: string;
}

export function runIn(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((res) => {
    const p = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdin.on('error', () => undefined);
    if (opts.input !== undefined) p.stdin.end(opts.input);
    else p.stdin.end();
    p.on('close', (code, signal) => res({ code, signal, stdout: Buffer.concat(out), stderr: err }));
  });
}

export interface Identity {
  readonly keyPath: string;
  readonly fingerprint: string;
}

export interface ServerHandle {
  readonly proc: ChildProcess;
  /** The ktftpd process itself (proc is the `timeout` wrapper, which must not get SIGHUP). */
  readonly pid: number;
  readonly port: number;
  stderr(): string;
  stop(): Promise<void>;
}

export class KtftpLab {
  readonly ids: Record<string, Identity> = {};
  private servers: ServerHandle[] = [];

  private constructor(
    readonly ns: string,
    readonly dir: string,
    readonly serverKey: Identity,
    private readonly ownNs: boolean,
  ) {}

  /** A new namespace `<prefix><6 hex>` with loopback up (or an existing one), a directory, a server key and users. */
  static async create(opts: { prefix?: string; netns?: string; users?: string[] } = {}): Promise<KtftpLab> {
    const ns = opts.netns ?? `${opts.prefix ?? 'uk-'}${randomBytes(3).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 'uk-ktftp-'));
    if (opts.netns === undefined) {
      await mustRun(['ip', 'netns', 'add', ns]);
      mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\n');
      // "machine" names the server as in the seed's recipe (ip netns exec binds this over /etc/hosts).
      writeFileSync(`/etc/netns/${ns}/hosts`, '127.0.0.1 localhost machine\n::1 localhost ip6-localhost\n');
      await mustRun(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const mk = (name: string): Identity => {
      const k = generateKey('ec:prime256v1');
      if (!k.ok) throw new Error(k.error);
      const keyPath = join(dir, `${name}.pem`);
      const w = writeKeyFile(keyPath, k.value);
      if (!w.ok) throw new Error(w.error);
      return { keyPath, fingerprint: k.value.fingerprint };
    };
    const lab = new KtftpLab(ns, dir, mk('server'), opts.netns === undefined);
    for (const u of opts.users ?? ['alice', 'bob', 'carol']) lab.ids[u] = mk(u);
    return lab;
  }

  path(...p: string[]): string {
    return join(this.dir, ...p);
  }

  /** argv run inside the namespace, bounded by `timeout`. */
  nsArgv(argv: string[], timeoutSec = 60): string[] {
    return ['ip', 'netns', 'exec', this.ns, 'timeout', '-k', '2', String(timeoutSec), ...argv];
  }

  run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return runIn(this.nsArgv(argv, opts.timeoutSec ?? 60), opts);
  }

  /** ktftp with the server pinned by -F (unless `pin: false`) and -p port. */
  ktftp(port: number, args: string[], opts: RunOptions & { pin?: boolean } = {}): Promise<RunResult> {
    const pin = opts.pin === false ? [] : ['-F', this.serverKey.fingerprint];
    return this.run(['node', KTFTP_JS, '-p', String(port), ...pin, ...args], { env: { HOME: this.dir, ...opts.env }, ...opts, timeoutSec: opts.timeoutSec ?? 60 });
  }

  /** Starts ktftpd -d (`bin`: another build's ktftpd.js) inside the namespace and waits for "listening". */
  async startServer(args: string[], opts: { port?: number; env?: Record<string, string>; timeoutSec?: number; bin?: string } = {}): Promise<ServerHandle> {
    const port = opts.port ?? 6900 + Math.floor(Math.random() * 1000);
    const argv = this.nsArgv(['node', opts.bin ?? KTFTPD_JS, '-d', '-p', String(port), '-a', '127.0.0.1', '-k', this.serverKey.keyPath, ...args], opts.timeoutSec ?? 300);
    const proc = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`ktftpd did not start: ${err}`)), 15000);
      const check = (): void => {
        if (err.includes('listening on')) {
          clearTimeout(t);
          proc.stderr!.off('data', check);
          res();
        }
      };
      proc.stderr!.on('data', check);
      proc.on('exit', (c) => {
        clearTimeout(t);
        rej(new Error(`ktftpd exited ${c}: ${err}`));
      });
    }).catch((e: unknown) => {
      // proc is the `timeout` wrapper: SIGTERM is forwarded to ktftpd (SIGKILL would orphan it).
      const m = /ktftpd starting, pid (\d+)/.exec(err);
      if (m) {
        try {
          process.kill(Number(m[1]), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      proc.kill('SIGTERM');
      throw e;
    });
    const pidMatch = /ktftpd starting, pid (\d+)/.exec(err);
    const h: ServerHandle = {
      proc,
      pid: pidMatch ? Number(pidMatch[1]) : -1,
      port,
      stderr: () => err,
      stop: async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const gone = new Promise<void>((r) => proc.once('exit', () => r()));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      },
    };
    this.servers.push(h);
    return h;
  }

  async destroy(): Promise<void> {
    for (const s of this.servers) await s.stop().catch(() => undefined);
    if (this.ownNs) {
      await runIn(['ip', 'netns', 'del', this.ns]);
      rmSync(`/etc/netns/${this.ns}`, { recursive: true, force: true });
    }
    await runIn(['umount', '-l', join(this.dir, 'small')]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function mustRun(argv: string[]): Promise<void> {
  const r = await runIn(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.stderr}`);
}
