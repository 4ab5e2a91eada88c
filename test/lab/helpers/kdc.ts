/**
 * A real MIT KDC (Debian krb5-kdc) for lab tests, inside a network namespace of its own.
 *
 * startKdc() creates a namespace `<prefix>k<random>` with only a loopback (or uses the caller's `netns`), a realm in a temporary directory
 * (kdc.conf, krb5.conf, database, stash), users (default alice/bob), the service principal `ktftp/<host>` with
 * its keytab, and starts krb5kdc listening on the namespace's 127.0.0.1:88 only, bounded by `timeout`.
 * The namespace gets /etc/netns/NAME/hosts (the service host and kdc.<domain> on 127.0.0.1) and resolv.conf
 * (nameserver 127.0.0.1), so names resolve without DNS. Processes that talk to the KDC must run in the
 * namespace: use `kdc.exec([...])` or `kdc.nsArgv([...])` and pass `kdc.env` (KRB5_CONFIG).
 *
 * stop() ends the KDC by pid (the `timeout` wrapper and krb5kdc itself), deletes the namespace (unless it was
 * the caller's), /etc/netns/NAME and the directory. Call it in `finally`/`after`.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive as alive } from '../../../src/lab/lab.js';

export interface KdcOptions {
  /** Namespace name prefix, e.g. `ub-`; the namespace is `<prefix>k<6 hex>`. */
  prefix: string;
  /** Run in this existing namespace instead of creating one (its lo must be up; its hosts are the caller's). */
  netns?: string;
  /** Realm name; default `KT<6 hex>.TEST`. */
  realm?: string;
  /** Host part of the service principal; default `ktftpd.<realm in lower case>`. */
  serviceHost?: string;
  /** Users to create: name -> password; default alice/alice-pw and bob/bob-pw. */
  users?: Record<string, string>;
  /** krb5.conf clockskew in seconds (default 300, MIT's). Small values make expiry tests fast. */
  clockskew?: number;
  /** Longest ticket life the KDC grants, seconds (default 3600). */
  maxLifeSeconds?: number;
  /**
   * Address the KDC listens on and krb5.conf points to (default 127.0.0.1). Give the address of an interface of
   * `netns` (e.g. a veth end) when clients in other namespaces must reach it.
   */
  listenAddress?: string;
  /** The KDC process ends by itself after this many seconds (default 600). */
  timeoutSeconds?: number;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

export interface Kdc {
  readonly realm: string;
  readonly nsName: string;
  readonly dir: string;
  readonly krb5ConfPath: string;
  readonly kdcConfPath: string;
  /** Host of the service principal (resolves to 127.0.0.1 in the namespace). */
  readonly serviceHost: string;
  /** `ktftp/<host>@<REALM>`. */
  readonly servicePrincipal: string;
  /** `ktftp@<host>`: the GSSAPI host-based form the client asks for. */
  readonly gssService: string;
  /** Keytab holding the keys of servicePrincipal. */
  readonly keytabPath: string;
  /** Environment for Kerberos programs: KRB5_CONFIG (and KRB5_KDC_PROFILE for kadmin.local). */
  readonly env: Readonly<Record<string, string>>;
  /** Where kinit(user) puts that user's tickets (a FILE: path without the prefix). */
  ccachePath(user: string): string;
  /** kinit inside the namespace with the user's password (or `password`); `lifetime` as kinit -l (e.g. "5s"). */
  kinit(user: string, opts?: { password?: string; lifetime?: string; ccache?: string }): Promise<ExecResult & { ccache: string }>;
  /** kadmin.local query on the realm's database, e.g. `addprinc -randkey ktftp/other.host`. */
  kadmin(query: string): Promise<ExecResult>;
  /** Adds ktftp/<host> (or any principal) with a random key and writes its keys to a new keytab; returns the keytab path. */
  addService(principal: string): Promise<string>;
  /** Runs argv inside the namespace with `env` merged over this KDC's env. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** argv prefixed with `ip netns exec NS`. */
  nsArgv(argv: string[]): string[];
  stop(): Promise<void>;
}

/** Runs a program, collects its output, kills it by pid after timeoutMs. Never throws for a non-zero exit. */
export function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      env: { ...process.env, ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      stderr += `\n[killed after ${opts.timeoutMs ?? 30_000} ms]`;
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a program that exits without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

async function must(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}


async function killPid(pid: number | undefined): Promise<void> {
  if (pid === undefined || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 40 && alive(pid); i++) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export async function startKdc(opts: KdcOptions): Promise<Kdc> {
  const hex = randomBytes(3).toString('hex');
  const realm = opts.realm ?? `KT${hex.toUpperCase()}.TEST`;
  const domain = realm.toLowerCase();
  const serviceHost = opts.serviceHost ?? `ktftpd.${domain}`;
  const ownNs = opts.netns === undefined;
  const nsName = opts.netns ?? `${opts.prefix}k${hex}`;
  const users = opts.users ?? { alice: 'alice-pw', bob: 'bob-pw' };
  const listen = opts.listenAddress ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), `${opts.prefix}kdc-`));
  const krb5ConfPath = join(dir, 'krb5.conf');
  const kdcConfPath = join(dir, 'kdc.conf');
  const keytabPath = join(dir, 'ktftpd.keytab');
  const env = { KRB5_CONFIG: krb5ConfPath, KRB5_KDC_PROFILE: kdcConfPath };
  const nsArgv = (argv: string[]): string[] => ['ip', 'netns', 'exec', nsName, ...argv];
  const exec = (argv: string[], o: ExecOptions = {}): Promise<ExecResult> => run(nsArgv(argv), { ...o, env: { ...env, ...(o.env ?? {}) } });

  let kdcPid: number | undefined; // the `timeout` wrapper (ip netns exec execs it in place)
  const kdcPidFile = join(dir, 'krb5kdc.pid');
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    let innerPid: number | undefined;
    try {
      const n = Number(readFileSync(kdcPidFile, 'utf8').trim());
      if (Number.isInteger(n) && n > 1) innerPid = n;
    } catch {
      /* KDC never wrote its pid */
    }
    await killPid(kdcPid);
    await killPid(innerPid);
    if (ownNs) {
      await run(['ip', 'netns', 'del', nsName]).catch(() => undefined);
      rmSync(`/etc/netns/${nsName}`, { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    if (ownNs) {
      await must(['ip', 'netns', 'add', nsName]);
      mkdirSync(`/etc/netns/${nsName}`, { recursive: true });
      writeFileSync(`/etc/netns/${nsName}/resolv.conf`, 'nameserver 127.0.0.1\n');
      writeFileSync(`/etc/netns/${nsName}/hosts`, `127.0.0.1 localhost\n127.0.0.1 ${serviceHost} kdc.${domain}\n::1 localhost\n`);
      await must(['ip', '-n', nsName, 'link', 'set', 'lo', 'up']);
    }
    writeFileSync(
      krb5ConfPath,
      [
        '[libdefaults]',
        ` default_realm = ${realm}`,
        ' dns_lookup_realm = false',
        ' dns_lookup_kdc = false',
        ' dns_canonicalize_hostname = false',
        ' rdns = false',
        ' udp_preference_limit = 1', // TCP: no UDP retransmission delays in the lab
        ` clockskew = ${opts.clockskew ?? 300}`,
        ` default_ccache_name = FILE:${join(dir, 'cc_default')}`,
        ` default_keytab_name = FILE:${keytabPath}`,
        '[realms]',
        ` ${realm} = {`,
        `  kdc = ${listen}:88`,
        ' }',
        '[domain_realm]',
        ` .${domain} = ${realm}`,
        ` ${domain} = ${realm}`,
        '',
      ].join('\n'),
    );
    const maxLife = opts.maxLifeSeconds ?? 3600;
    writeFileSync(
      kdcConfPath,
      [
        '[kdcdefaults]',
        ` kdc_listen = ${listen}:88`,
        ` kdc_tcp_listen = ${listen}:88`,
        '[realms]',
        ` ${realm} = {`,
        `  database_name = ${join(dir, 'principal')}`,
        `  key_stash_file = ${join(dir, 'stash')}`,
        `  acl_file = ${join(dir, 'kadm5.acl')}`,
        `  max_life = ${maxLife}s`,
        '  max_renewable_life = 0',
        '  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal',
        ' }',
        '[logging]',
        ` kdc = FILE:${join(dir, 'kdc.log')}`,
        ` default = FILE:${join(dir, 'kdc.log')}`,
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'kadm5.acl'), '');
    const master = randomBytes(12).toString('hex');
    await must(nsArgv(['kdb5_util', 'create', '-s', '-P', master, '-r', realm]), { env, timeoutMs: 30_000 });
    const kadmin = (query: string): Promise<ExecResult> => exec(['kadmin.local', '-r', realm, '-q', query], { timeoutMs: 30_000 });
    const kadminMust = async (query: string): Promise<void> => {
      const r = await kadmin(query);
      // kadmin.local exits 0 even when the query fails; its errors go to stderr.
      if (r.code !== 0 || /error|not found|Cannot|denied/i.test(r.stderr)) throw new Error(`kadmin.local "${query}": ${r.stderr.trim()}`);
    };
    for (const [user, pw] of Object.entries(users)) await kadminMust(`addprinc -pw ${pw} ${user}`);
    const servicePrincipal = `ktftp/${serviceHost}@${realm}`;
    await kadminMust(`addprinc -randkey ${servicePrincipal}`);
    await kadminMust(`ktadd -k ${keytabPath} ${servicePrincipal}`);

    const child = spawn(
      'ip',
      ['netns', 'exec', nsName, 'timeout', '-s', 'TERM', String(opts.timeoutSeconds ?? 600), 'krb5kdc', '-n', '-r', realm, '-P', kdcPidFile],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    kdcPid = child.pid;
    let kdcErr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (kdcErr += d));
    let exited = false;
    child.on('exit', () => (exited = true));
    // Ready when the log says so (a few ms); fail fast if it exits.
    const logPath = join(dir, 'kdc.log');
    for (let i = 0; ; i++) {
      if (existsSync(logPath) && readFileSync(logPath, 'utf8').includes('commencing operation')) break;
      if (exited) throw new Error(`krb5kdc exited at start: ${kdcErr.trim()} ${existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''}`);
      if (i > 200) throw new Error('krb5kdc not ready after 10 s');
      await sleep(50);
    }

    const ccachePath = (user: string): string => join(dir, `cc_${user.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
    return {
      realm,
      nsName,
      dir,
      krb5ConfPath,
      kdcConfPath,
      serviceHost,
      servicePrincipal,
      gssService: `ktftp@${serviceHost}`,
      keytabPath,
      env,
      ccachePath,
      async kinit(user, o = {}) {
        const ccache = o.ccache ?? ccachePath(user);
        const password = o.password ?? users[user] ?? 'no-such-password';
        const argv = ['kinit', '-c', `FILE:${ccache}`, ...(o.lifetime ? ['-l', o.lifetime] : []), user.includes('@') ? user : `${user}@${realm}`];
        const r = await exec(argv, { input: `${password}\n`, timeoutMs: 20_000 });
        return { ...r, ccache };
      },
      kadmin,
      async addService(principal) {
        const name = principal.includes('@') ? principal : `${principal}@${realm}`;
        const kt = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.keytab`);
        await kadminMust(`addprinc -randkey ${name}`);
        await kadminMust(`ktadd -k ${kt} ${name}`);
        return kt;
      },
      exec,
      nsArgv,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
