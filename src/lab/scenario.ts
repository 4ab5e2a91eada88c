/**
 * One transfer through a figure with the real UFTP suite (or, later, our programs in some roles):
 * start the proxies and clients the figure calls for, let the server send a directory, check by SHA-256
 * what every client received. Used by `uftp-lab selftest` and `uftp-lab capture-fixtures`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Lab, treeHashes, type Proc, type LabOptions } from './lab.js';
import type { FigureName } from './topology.js';

export type KeyKind = 'ec' | 'rsa';

/** Multicast addresses of IPv6 scenarios (site-local scope, transient): uftp -M/-P, uftpd and proxies -M. */
export const IPV6_PUBLIC = 'ff15::4:4:1';
export const IPV6_PRIVATE = 'ff15::5:5:1';

/**
 * The interface options the real suite needs to work over IPv6 on a dual-stack lab host (found in the lab,
 * 2026-11-22): uftpd, server and response proxies `-I <own IPv6 address>` (by interface name they join
 * nothing; without -I they fail with "Error joining multicast group: Address already in use", as the
 * interface has a link-local and a global address); the client proxy `-O <own IPv6 address>` (otherwise it
 * binds 0.0.0.0:1044 only); uftp `-I <own IPv6 address>` (`-I eA` gives "IP version mismatch").
 */
export function ipv6InterfaceArgs(lab: Lab, host: string, role: 'uftp' | 'uftpd' | 'sproxy' | 'rproxy' | 'cproxy'): string[] {
  const a = lab.addrOf(host, undefined, 'ipv6');
  if (role === 'cproxy') return ['-O', a];
  if (role === 'uftp') return ['-M', IPV6_PUBLIC, '-P', IPV6_PRIVATE, '-I', a];
  return ['-M', IPV6_PUBLIC, '-I', a];
}

export interface ScenarioOptions {
  readonly figure: FigureName;
  /** Extra server (uftp) arguments for encryption, e.g. ['-Y','aes256-gcm','-h','sha256','-e','ecdh_ecdsa']; none = plain. */
  readonly crypto?: readonly string[];
  /** Key type every client and proxy is given (-k file); default ec. */
  readonly keys?: KeyKind;
  /** Directory holding (or receiving) the key files, <host>.pem; default <workDir>/keys/<ec|rsa>. */
  readonly keysDir?: string;
  /** Files to send: name -> size in bytes (content is random, or `fill` bytes). */
  readonly files: Readonly<Record<string, number>>;
  readonly fill?: number;
  /** Server rate -R in Kbps; default 20000. */
  readonly rateKbps?: number;
  readonly serverArgs?: readonly string[];
  /** Skip the proxies (direct multicast to the clients on the server's segment only). */
  readonly noProxies?: boolean;
  /** Client hosts to run (default: every client of the figure; with noProxies, those on the server's segment). */
  readonly clients?: readonly string[];
  /** Server key file name in keysDir (server.pem) passed as -k when crypto is set. */
  readonly serverKey?: boolean;
  /** Make the segments hubs (flood every frame) so one capture point sees all unicast too. */
  readonly hub?: boolean;
  /** Captures: started before anything else, stopped at the end. */
  readonly captures?: readonly { host: string; iface: string; file: string; filter?: readonly string[] }[];
  /** Closed group: -H @file with every client's UID and key fingerprint (needs keys), plus -c when crypto. */
  readonly clientAuth?: boolean;
  readonly lab?: LabOptions;
  /** Which uftpproxyd runs the proxies: the real one (default) or ours (dist/src/cli/uftpproxyd.js). */
  readonly proxy?: 'real' | 'ours';
  /** uftp's own bound (default 90 s). */
  readonly timeoutMs?: number;
  /**
   * Run the session over IPv6 in a dual-stack lab (the lab is built with ipv6: true): multicast
   * ff15::4:4:1 (public) and ff15::5:5:1 (private), every unicast destination (-s, -R, -H) an fd<octet>::
   * address, and the interface options of ipv6InterfaceArgs.
   */
  readonly ipv6?: boolean;
  /** Extra uftpd arguments per client host (e.g. ['-E'] to make one reject an unencrypted session). */
  readonly clientArgs?: Readonly<Record<string, readonly string[]>>;
  /** Clients expected to refuse the session: their copy must NOT be complete (others are checked as usual). */
  readonly rejecting?: readonly string[];
}

export interface ScenarioResult {
  readonly ok: boolean;
  readonly reason: string;
  readonly clients: number;
  readonly files: number;
  readonly bytes: number;
  /** From the server's start to its exit. */
  readonly seconds: number;
  /** The commands run, host: argv, in order (for READMEs and reports). */
  readonly commands: readonly string[];
  readonly workDir: string;
}

function writeFiles(dir: string, files: Readonly<Record<string, number>>, fill?: number): void {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const [name, size] of Object.entries(files)) {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, fill === undefined ? randomBytes(size) : Buffer.alloc(size, fill));
  }
}

/** Which response proxy a client uses in fig2/3/4: fig2 alternates, fig3/4 by network letter. */
function rproxyFor(lab: Lab, client: string, index: number): string | undefined {
  const rps = lab.hostsOf('rproxy');
  if (rps.length === 0) return undefined;
  if (lab.figure === 'fig2') return rps[index % rps.length];
  return rps.find((r) => r.slice(-1) === client.replace(/^client/, '').charAt(0)) ?? rps[0];
}

/** Runs a scenario in a lab that is already up. */
export async function runInLab(lab: Lab, o: ScenarioOptions): Promise<ScenarioResult> {
  const commands: string[] = [];
  const procs: Proc[] = [];
  const note = (p: Proc): Proc => { commands.push(`${p.host}: ${p.argv.join(' ')}`); procs.push(p); return p; };
  const keyKind: KeyKind = o.keys ?? 'ec';
  const keysDir = o.keysDir ?? path.join(lab.workDir, 'keys', keyKind);
  const spec = keyKind === 'ec' ? 'ec:prime256v1' : 'rsa:1024';
  const key = async (h: string): Promise<{ file: string; fingerprint: string }> => lab.makeKey(path.join(keysDir, `${h}.pem`), spec);
  const encrypted = (o.crypto?.length ?? 0) > 0;
  const proxy = (h: string, args: string[]): Promise<Proc> => (o.proxy === 'ours' ? lab.ourProxy(h, args) : lab.realProxy(h, args));
  const v6 = o.ipv6 === true;
  if (v6 && !lab.ipv6) throw new Error('ipv6 scenario in a lab built without ipv6: true');
  const fam = v6 ? 'ipv6' : 'ipv4';
  const ifArgs = (h: string, role: Parameters<typeof ipv6InterfaceArgs>[2]): string[] => (v6 ? ipv6InterfaceArgs(lab, h, role) : []);
  const src = path.join(lab.workDir, 'send', 'data');
  writeFiles(src, o.files, o.fill);
  const expected = treeHashes(src);
  const bytes = Object.values(o.files).reduce((a, b) => a + b, 0);
  const t = { start: 0, end: 0 };
  let reason = '';
  const serverNet = Object.keys(lab.host('server').addrs)[0] ?? '';
  const clients = o.clients ?? lab.hostsOf('client').filter((c) => !o.noProxies || serverNet in lab.host(c).addrs);
  try {
    if (o.hub) {
      for (const n of lab.def.nets) await lab.hubMode(n.name);
    }
    for (const c of o.captures ?? []) note(await lab.capture(c.host, c.iface, c.file, c.filter ?? ['udp']));
    if (!o.noProxies) {
      for (const r of lab.hostsOf('rproxy')) {
        note(await proxy(r, ['-r', '-k', (await key(r)).file, ...(keyKind === 'ec' ? ['-e', 'prime256v1'] : []), ...ifArgs(r, 'rproxy')]));
      }
    }
    for (const [i, c] of clients.entries()) {
      const rp = o.noProxies ? undefined : rproxyFor(lab, c, i);
      const args = ['-k', (await key(c)).file, ...ifArgs(c, 'uftpd'), ...(o.clientArgs?.[c] ?? [])];
      if (rp) args.push('-R', lab.addrOf(rp, undefined, fam));
      note(await lab.realUftpd(c, { args, timeoutMs: (o.timeoutMs ?? 90_000) + 30_000 }));
    }
    if (!o.noProxies) {
      const sproxies = lab.hostsOf('sproxy');
      for (const cp of lab.hostsOf('cproxy')) {
        const args = ['-c', '-k', (await key(cp)).file, ...ifArgs(cp, 'cproxy')];
        if (lab.figure === 'nat') {
          const sp = sproxies.find((s) => s.slice(-1) === cp.slice(-1)) ?? '';
          // The real uftpproxyd's -H takes host[:port] and so no IPv6 literal: the lab's hosts file has `<host>.v6`.
          args.push('-H', v6 ? `${sp}.v6` : lab.addrOf(sp), '-h', '1');
        }
        note(await proxy(cp, args));
      }
      for (const sp of sproxies) {
        const cp = `cproxy${sp.slice(-1)}`;
        const dest = lab.figure === 'nat' ? `fp=${(await key(cp)).fingerprint}` : lab.tunnelDest(cp, fam);
        note(await proxy(sp, ['-s', dest, '-k', (await key(sp)).file, ...ifArgs(sp, 'sproxy')]));
      }
      if (lab.figure === 'nat') {
        // The server proxy learns where the client proxy is only from its signed heartbeat.
        // The client proxy logs each HB_RESP: the server proxy answered, so it knows the NAT's address:port.
        for (const cp of lab.hostsOf('cproxy')) {
          const p = procs.find((x) => x.host === cp);
          await lab.waitFor(() => /Heartbeat authentication.* successful/.test(p?.log() ?? ''), 15_000, `a heartbeat answer at ${cp}`);
        }
      }
    }
    const args = ['-R', String(o.rateKbps ?? 20_000), ...ifArgs('server', 'uftp'), ...(o.crypto ?? []), ...(o.serverArgs ?? [])];
    if (encrypted && o.serverKey) args.push('-k', (await key('server')).file);
    if (o.clientAuth) {
      const list = path.join(lab.workDir, 'send', 'hosts.txt');
      const lines: string[] = [];
      for (const c of clients) lines.push(`${lab.uidOf(c)}|${(await key(c)).fingerprint}`);
      fs.writeFileSync(list, lines.join('\n') + '\n');
      commands.push(`# ${list} holds: ${lines.join('  ')}`);
      args.push('-H', `@${list}`);
      if (encrypted) args.push('-c');
    }
    t.start = Date.now();
    const server = note(lab.realUftp('server', [src], { args, timeoutMs: o.timeoutMs ?? 90_000 }));
    const code = await server.wait();
    t.end = Date.now();
    if (code !== 0) {
      const tail = server.log().trim().split('\n').slice(-2).join(' | ');
      reason = code === 124 ? `uftp timed out` : `uftp exit ${code}: ${tail}`;
    }
    // Clients may still be moving files into place after the server's last DONE_CONF.
    const rejecting = new Set(o.rejecting ?? []);
    const got = (c: string): boolean => sameTree(expected, treeHashes(path.join(lab.workDir, c, 'dest', 'data')));
    const bad = (): string[] => clients.filter((c) => !rejecting.has(c) && !got(c));
    if (!reason) {
      await lab.waitFor(() => bad().length === 0, 5000, 'files on the clients').catch(() => undefined);
      const b = bad();
      if (b.length > 0) reason = `files differ on ${b.join(', ')}`;
      const took = clients.filter((c) => rejecting.has(c) && got(c));
      if (took.length > 0) reason = `${took.join(', ')} received the files although expected to refuse the session`;
    }
  } catch (e) {
    reason = (e as Error).message;
    if (!t.end) t.end = Date.now();
  } finally {
    if (o.captures?.length) await new Promise((r) => setTimeout(r, 500)); // let the last datagrams reach the pcap
    for (const p of procs.reverse()) await p.kill(1500);
  }
  return {
    ok: reason === '', reason, clients: clients.length, files: expected.size, bytes,
    seconds: t.start ? (t.end - t.start) / 1000 : 0, commands, workDir: lab.workDir,
  };
}

function sameTree(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** Builds the figure, runs the scenario, tears everything down. */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const lab = await Lab.up(o.figure, { ...(o.lab ?? {}), ...(o.ipv6 ? { ipv6: true } : {}) });
  let r: ScenarioResult | undefined;
  try {
    r = await runInLab(lab, o);
    return r;
  } finally {
    // Keep the logs of a failed run for a look (the line says where); a passed run leaves nothing behind.
    await lab.down({ keepWorkDir: !r?.ok });
  }
}
