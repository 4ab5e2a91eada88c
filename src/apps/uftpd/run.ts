/**
 * uftpd's driver: command line -> daemon -> log -> keys -> sockets -> the client machine (src/session/client) on
 * the event loop (src/daemon/loop.ts), its file effects carried out by src/files/disk.ts. Everything here is I/O.
 *
 * Exit values (man uftpd): 1 bad option, 2 network set-up, 3 keys, 4 log file, 6 SIGINT/SIGTERM. Without -d the
 * process detaches once start-up succeeded (start-up errors are reported first) and the launching process exits 0.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { lookup, lookupService } from 'node:dns/promises';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import { ExitCode, StartupError } from '../../daemon/exitcodes.js';
import { runDaemon, type Daemon } from '../../daemon/daemon.js';
import { ReceiveCoalescer, coalesceFromEnv, coalesceSummary, coalesceTurns } from '../../daemon/coalesce.js';
import { collectGarbage } from '../../daemon/gc.js';
import type { Logger } from '../../daemon/log.js';
import { EventLoop } from '../../daemon/loop.js';
import { describeKey, generateKey, readKeyFile, writeKeyFile, type LoadedKey } from '../../crypto/keyfile.js';
import { defaultUid, resolveInterfaces, type ResolvedInterface } from '../../net/interfaces.js';
import { UdpEndpoint } from '../../net/udp.js';
import type { Endpoint } from '../../core/machine.js';
import { Disk } from '../../files/disk.js';
import { ClientMachine, hex8, type ClientConfig, type ServerListEntry } from '../../session/client/machine.js';
import type { ClientEffect, ClientEffectResult } from '../../session/client/effects.js';
import { keyexFactory } from '../../session/client/keyex.js';
import { BufferPool } from '../../session/client/file.js';
import { parseUftpdArgs, PROG, type UftpdArgs } from './options.js';
import { ReceivePath, type ClientLoop } from './receive.js';
import { warmUp } from './warmup.js';

export const VERSION_LINE = 'uftpd (uftp-ts) compatible with UFTP 4.10';

/** Wall time of the start-up warm-up of the receive path (warmup.ts). */
const WARM_UP_MS = 500;

function usageError(message: string): never {
  process.stderr.write(message + '\n');
  process.exit(ExitCode.USAGE);
}

const FP = /^([0-9a-fA-F]{2}:){19}[0-9a-fA-F]{2}$/;

/** -S file: `ID|IP[|fingerprint]` per line, `#` comments (man uftpd). */
export function parseServerListText(text: string): { ok: true; value: ServerListEntry[] } | { ok: false; error: string } {
  const out: ServerListEntry[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const l = raw.replace(/#.*/, '').trim();
    if (l === '') continue;
    const parts = l.split('|').map((p) => p.trim());
    if (parts.length < 2 || parts.length > 3) return { ok: false, error: `line ${i + 1}: expected ID|IP[|fingerprint]` };
    const id = /^(0x)?[0-9a-fA-F]{1,8}$/.test(parts[0]) ? parseInt(parts[0], 16) : NaN;
    if (!Number.isInteger(id) || id === 0 || id === 0xffffffff) return { ok: false, error: `line ${i + 1}: '${parts[0]}' is not a server ID (0xnnnnnnnn)` };
    if (isIP(parts[1]) === 0) return { ok: false, error: `line ${i + 1}: '${parts[1]}' is not an IP address` };
    const fp = parts[2];
    if (fp !== undefined && fp !== '' && !FP.test(fp)) return { ok: false, error: `line ${i + 1}: '${fp}' is not a key fingerprint` };
    out.push({ id, address: parts[1], fingerprint: fp ? fp.toUpperCase() : undefined });
  }
  return { ok: true, value: out };
}

/** -k / -K as the manual says; without either, a 512-bit RSA key that is not kept. Errors are StartupError(3). */
function loadKeys(a: UftpdArgs, log: Logger): LoadedKey[] {
  const fail = (m: string): never => {
    throw new StartupError(ExitCode.KEYS, `${PROG}: ${m}`);
  };
  const keys: LoadedKey[] = [];
  if (a.newKeys.length > 0) {
    a.newKeys.forEach((spec, i) => {
      const file = a.keyFiles[i];
      if (file !== undefined && fs.existsSync(file)) fail(`-k: key file ${file} already exists; not overwritten`);
      const k = generateKey(spec);
      if (!k.ok) return fail(`-K: ${k.error}`);
      if (file !== undefined) {
        const w = writeKeyFile(file, k.value);
        if (!w.ok) fail(`-k: ${file}: ${w.error}`);
      }
      keys.push(k.value);
      log.log(1, `Generated ${describeKey(file ?? 'key', k.value)}${file === undefined ? ' (not persisted)' : ''}`);
    });
    return keys;
  }
  for (const f of a.keyFiles) {
    const k = readKeyFile(f);
    if (!k.ok) return fail(`-k: ${f}: ${k.error}`);
    keys.push(k.value);
    log.log(1, `Loaded ${k.value.kind === 'RSA' ? `${k.value.bits} bit RSA` : `ECDSA ${k.value.curve}`} key with fingerprint ${k.value.fingerprint}`);
  }
  if (keys.length > 0) return keys;
  const k = generateKey({ kind: 'RSA', bits: 512 });
  if (!k.ok) return fail(`key generation failed: ${k.error}`);
  log.log(1, `Loaded 512 bit RSA key with fingerprint ${k.value.fingerprint}`);
  return [k.value];
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** The status file's time: yyyy/mm/dd-hh:mm:ss, local time. */
export function statusTime(d: Date): string {
  return `${d.getFullYear()}/${pad2(d.getMonth() + 1)}/${pad2(d.getDate())}-${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

export async function runUftpd(argv: readonly string[]): Promise<void> {
  const p = parseUftpdArgs(argv);
  if (p.kind === 'help') {
    process.stdout.write(p.text);
    process.exit(0);
  }
  if (p.kind === 'error') {
    process.stderr.write(p.message + '\n' + p.usage);
    process.exit(ExitCode.USAGE);
  }
  const a = p.args;
  let servers: ServerListEntry[] | undefined;
  if (a.serverList !== undefined) {
    let text = '';
    try {
      text = fs.readFileSync(a.serverList, 'utf8');
    } catch (e) {
      usageError(`${PROG}: -S: cannot read ${a.serverList}: ${(e as Error).message}`);
    }
    const r = parseServerListText(text);
    if (!r.ok) usageError(`${PROG}: -S: ${a.serverList}: ${r.error}`);
    servers = r.value;
  }
  for (const d of [...a.destDirs, ...(a.tempDir !== undefined ? [a.tempDir] : []), ...(a.backupDirs ?? [])]) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(d);
    } catch {
      st = undefined;
    }
    if (!st?.isDirectory()) usageError(`${PROG}: ${d} is not a directory`);
  }
  await runDaemon(PROG, a, (d, log) => start(a, servers, d, log));
}

async function start(a: UftpdArgs, servers: ServerListEntry[] | undefined, d: Daemon, log: Logger): Promise<void> {
  log.log(1, VERSION_LINE);
  const keys = loadKeys(a, log);
  const want6 = a.publicMcast.some((m) => isIP(m) === 6);
  const want4 = a.publicMcast.some((m) => isIP(m) === 4);
  const ifaces: { 4: ResolvedInterface[]; 6: ResolvedInterface[] } = { 4: [], 6: [] };
  for (const fam of [4, 6] as const) {
    if ((fam === 4 && !want4) || (fam === 6 && !want6)) continue;
    const r = await resolveInterfaces(a.interfaces.length ? a.interfaces : undefined, fam);
    if (!r.ok) throw new StartupError(ExitCode.USAGE, `${PROG}: -I: ${r.error}`);
    ifaces[fam] = r.value;
  }
  let uid = a.uid;
  if (uid === undefined) {
    const first = ifaces[4][0] ?? ifaces[6][0];
    if (a.interfaces.length > 0 && first !== undefined && first.family === 4) {
      uid = first.address.split('.').reduce((n, x) => ((n << 8) | Number(x)) >>> 0, 0);
    } else {
      const du = defaultUid();
      if (!du) throw new StartupError(ExitCode.NETWORK, `${PROG}: no multicast-capable interface to take a unique ID from; give -U`);
      uid = du.uid;
    }
  }
  const memberIds = ifaces[4].map((i) => i.address.split('.').reduce((n, x) => ((n << 8) | Number(x)) >>> 0, 0));

  let responseProxy: Endpoint | undefined;
  if (a.responseProxy !== undefined) {
    const h = a.responseProxy.host;
    let addr = h;
    if (isIP(h) === 0) {
      try {
        addr = (await lookup(h)).address;
      } catch (e) {
        throw new StartupError(ExitCode.USAGE, `${PROG}: -R: cannot resolve ${h}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    responseProxy = { address: addr, port: a.port };
  }
  const hbServers: Endpoint[] = [];
  for (const h of a.hbServers) {
    let addr = h.host;
    if (isIP(addr) === 0) {
      try {
        addr = (await lookup(addr)).address;
      } catch (e) {
        throw new StartupError(ExitCode.USAGE, `${PROG}: -H: cannot resolve ${h.host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    hbServers.push({ address: addr, port: h.port });
  }

  // the status file (-F), appended to like the log
  let statusFd = -1;
  if (a.statusFile !== undefined && a.statusFile !== '@LOG') {
    try {
      statusFd = fs.openSync(a.statusFile, 'a');
    } catch (e) {
      throw new StartupError(ExitCode.LOG, `${PROG}: -F: cannot open ${a.statusFile}: ${(e as Error).message}`);
    }
  }
  const statusLine = (line: string): void => {
    if (a.statusFile === undefined) return;
    if (statusFd < 0) log.log(1, line);
    else {
      try {
        fs.writeSync(statusFd, line + '\n');
      } catch (e) {
        log.log(1, `Error writing status file: ${(e as Error).message}`);
      }
    }
  };

  const pool = new BufferPool();
  const config: ClientConfig = {
    pool,
    logLevel: a.logLevel,
    uid,
    memberIds,
    destDirs: a.destDirs,
    tempDir: a.tempDir !== undefined,
    encryptedOnly: a.encryptedOnly,
    serverList: servers,
    cacheSize: a.cacheSize,
    responseProxy,
    responseProxyFingerprint: a.responseProxy?.fingerprint,
    heartbeat: hbServers.length > 0 ? { servers: hbServers, intervalMs: a.hbInterval * 1000, key: { privateKey: keys[0].privateKey, blob: keys[0].blob } } : undefined,
    keyex: keyexFactory(keys, (n) => randomBytes(n)),
    wallMicros: (now) => Math.floor((performance.timeOrigin + now) * 1000),
  };
  const machine = new ClientMachine(config);
  const disk = new Disk({
    destDirs: a.destDirs,
    tempDir: a.tempDir,
    tempFiles: a.tempFiles,
    backupDirs: a.backupDirs,
    moveIndividually: a.moveIndividually,
    script: a.script,
    asyncWrites: true,
    release: (data) => pool.give(data),
    report: (r) => receive.loop?.effectResult(r),
    log: (level, text) => log.log(level, text),
    runScript: (argv) => {
      try {
        const c = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
        c.on('error', (e) => log.log(1, `postreceive script ${argv[0]}: ${e.message}`));
        c.unref();
      } catch (e) {
        log.log(1, `postreceive script ${argv[0]}: ${(e as Error).message}`);
      }
    },
  });

  // before listening: synthetic sessions through the receive path on loopback, so that the first real session runs
  // optimized code (warmup.ts); bounded in time, never fatal. Between its two sessions, one full GC: without it a
  // fresh daemon's first mark-compact (17-31 ms) fell into its first session in some traced runs (src/daemon/gc.ts,
  // docs/benchmarks.md "uftpd: the stalls"); after the warm-up instead, it took the first session's type feedback
  // with the warm-up's dead objects (the maps V8's inline caches held weakly) and the data path was deoptimized and
  // compiled again during the first transfer (--trace-deopt: "insufficient type feedback" in the machine's fileSeg)
  const receive = new ReceivePath();
  let gcMs: number | undefined;
  const w = await warmUp({
    config, path: receive, bufferSize: a.bufSize, budgetMs: WARM_UP_MS, log: (level, text) => log.log(level, text),
    betweenRounds: () => {
      gcMs = collectGarbage();
    },
  });
  log.log(2, `Warm-up: ${w.datagrams} datagrams, ${w.files} files through the receive path in ${Math.round(w.ms)} ms${w.stopped !== undefined ? ` (stopped: ${w.stopped})` : ''}`);
  // (a warm-up that ended in its first session: the collection now)
  if (gcMs === undefined) gcMs = collectGarbage();
  if (gcMs !== undefined) log.log(3, `Start-up garbage collection: ${gcMs.toFixed(1)} ms`);

  const eps: { 4?: UdpEndpoint; 6?: UdpEndpoint } = {};
  const open = async (family: 4 | 6): Promise<void> => {
    const r = await UdpEndpoint.open({
      family,
      port: a.port,
      ipv6Only: family === 6,
      bufferSize: a.bufSize,
      dscp: a.dscp,
      multicastLoopback: false,
      onBatch: receive.onBatch,
      onError: (e) => log.log(2, `socket error: ${e.message}`),
      // the stall guard drains at half the buffer even while our thread still reads: a receiver's drop costs a
      // retransmission (docs/benchmarks.md, the stall guard: pinned fresh runs dropped in 3 of 20 at the engine's
      // three quarters, 0 of 28 at half)
      guardBusyFill: 0.5,
    });
    if (!r.ok) throw new StartupError(ExitCode.NETWORK, `${PROG}: ${r.error}`);
    for (const w of r.value.warnings) log.log(1, w);
    eps[family] = r.value;
  };
  await open(4);
  try {
    await open(6);
  } catch (e) {
    if (want6) throw e;
    log.log(3, `No IPv6 socket: ${(e as Error).message}`);
  }

  const join = (group: string, source?: string): void => {
    const fam = isIP(group) === 6 ? 6 : 4;
    const ep = eps[fam];
    if (!ep) return log.log(1, `No IPv${fam} socket to join ${group}`);
    const r = source !== undefined ? ep.joinSource(source, group, ifaces[fam]) : ep.join(group, ifaces[fam]);
    if (!r.ok) log.log(1, r.error);
  };
  const leave = (group: string, source?: string): void => {
    const fam = isIP(group) === 6 ? 6 : 4;
    const r = eps[fam]?.leave(group, ifaces[fam], source);
    if (r && !r.ok) log.log(2, r.error);
  };
  for (const m of a.publicMcast) {
    const fam = isIP(m) as 4 | 6;
    const ep = eps[fam];
    if (!ep) throw new StartupError(ExitCode.NETWORK, `${PROG}: no IPv${fam} socket for ${m}`);
    if (ifaces[fam].length === 0) throw new StartupError(ExitCode.NETWORK, `${PROG}: no interface to listen for ${m} on`);
    const ssm = servers?.filter((s) => isIP(s.address) === fam);
    if (ssm && ssm.length > 0) {
      for (const s of ssm) {
        const r = ep.joinSource(s.address, m, ifaces[fam]);
        if (!r.ok) throw new StartupError(ExitCode.NETWORK, `${PROG}: ${r.error}`);
      }
    } else {
      const r = ep.join(m, ifaces[fam]);
      if (!r.ok) throw new StartupError(ExitCode.NETWORK, `${PROG}: ${r.error}`);
    }
    log.log(2, `Listening on ${m} (${ifaces[fam].map((i) => i.name).join(', ')})`);
  }

  const names = new Map<string, string>();
  const serverName = async (ip: string): Promise<string> => {
    if (a.quiet) return ip;
    const known = names.get(ip);
    if (known !== undefined) return known;
    let name = ip;
    try {
      // getnameinfo (nsswitch: /etc/hosts, then DNS), as the C program's lookup
      const r = await Promise.race([lookupService(ip, 0), new Promise<undefined>((res) => setTimeout(() => res(undefined), 2000))]);
      if (r !== undefined && r.hostname !== '') name = r.hostname;
    } catch {
      // no name: the address stands for it
    }
    if (names.size < 1024) names.set(ip, name);
    return name;
  };

  const onEffect = (e: ClientEffect): ClientEffectResult | Promise<ClientEffectResult> | undefined => {
    switch (e.type) {
      case 'log':
        log.log(e.level, e.text);
        return undefined;
      case 'join':
        join(e.group, e.source);
        return undefined;
      case 'leave':
        leave(e.group, e.source);
        return undefined;
      case 'connect': {
        const when = statusTime(new Date());
        const head = `CONNECT;${when};${hex8(e.session.serverId)};${hex8(e.session.groupId)};${e.from.address}`;
        if (a.quiet) statusLine(`${head};${e.from.address}`);
        else void serverName(e.from.address).then((n) => statusLine(`${head};${n}`));
        return undefined;
      }
      case 'result':
        statusLine(`RESULT;${statusTime(new Date())};${hex8(e.session.serverId)};${hex8(e.session.groupId)};${e.name};${Math.floor(e.size / 1024)}KB;${e.word}`);
        return undefined;
      default:
        return disk.execute(e);
    }
  };

  const sockets = [eps[4], eps[6]].filter((x): x is UdpEndpoint => x !== undefined);
  const loop: ClientLoop = new EventLoop<ClientEffect, ClientEffectResult | undefined>({
    machine: receive.machine,
    sockets,
    clock: receive.clock,
    onEffect: receive.onEffect,
    onUnroutable: (t) => log.log(1, `No socket to send to ${t.to.address}`),
    onError: (e) => {
      log.log(0, `Internal error: ${(e as Error).stack ?? String(e)}`);
      log.flush();
      process.exit(ExitCode.MEMORY);
    },
  });
  receive.client = machine;
  receive.effect = onEffect;
  receive.loop = loop;
  // Receive coalescing (src/daemon/coalesce.ts): from a uftp server at full speed a turn brings a few datagrams; after
  // such a turn the answers go out and the thread sleeps (300 µs at most) so that the next turn reads a batch: fewer
  // wake-ups and receive calls per datagram (docs/benchmarks.md, "uftpd: receive coalescing"). UFTPD_COALESCE_US=0
  // turns it off. Native engine only (node:dgram delivers one datagram per callback, with no turns to coalesce).
  const coalescer = sockets.every((s) => s.backend !== 'dgram') ? new ReceiveCoalescer(coalesceFromEnv(process.env, 'UFTPD')) : undefined;
  if (coalescer) coalesceTurns(sockets, coalescer, receive);
  d.onShutdown(async () => {
    // sessions in progress end as failed; with -T what they received is kept for a restart
    machine.shutdown();
    for (let e = machine.pollEffect(); e !== undefined; e = machine.pollEffect()) void onEffect(e);
    await disk.whenIdle();
    loop.stop();
    if (coalescer) log.log(2, coalesceSummary(coalescer));
    if (statusFd >= 0) fs.closeSync(statusFd);
    await eps[4]?.close();
    await eps[6]?.close();
  });
  loop.start();
  log.log(1, `Listening on port ${a.port} as 0x${hex8(uid)}; receiving into ${a.destDirs.join(', ')}`);
  d.ready();
}
