/**
 * uftpproxyd's driver: command line -> daemon -> log -> keys -> sockets -> one proxy machine (src/session/proxy)
 * driven by the one event loop (src/daemon/loop.ts), its joins, leaves and log lines carried out here.
 * Everything here is I/O; the protocol lives in the machines.
 *
 * Exit values (man uftpproxyd): 1 bad option, 2 network set-up, 3 keys, 4 log file, 6 SIGINT/SIGTERM.
 * Without -d the process detaches after start-up succeeded (start-up errors are reported first) and the
 * launching process exits 0.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { endpointText, type Endpoint, type Random } from '../../core/machine.js';
import { hexId } from '../../core/ids.js';
import { ExitCode, StartupError } from '../../daemon/exitcodes.js';
import { runDaemon, type Daemon } from '../../daemon/daemon.js';
import { collectGarbage } from '../../daemon/gc.js';
import type { Logger } from '../../daemon/log.js';
import { EventLoop } from '../../daemon/loop.js';
import { describeKey, generateKey, readKeyFile, writeKeyFile, type LoadedKey } from '../../crypto/keyfile.js';
import { defaultUid, resolveInterface, resolveInterfaces, type ResolvedInterface } from '../../net/interfaces.js';
import { UdpEndpoint } from '../../net/udp.js';
import type { EngineStats } from '../../net/engine.js';
import type { KeyBlob } from '../../wire/keyblob.js';
import { ClientProxy } from '../../session/proxy/client.js';
import type { ProxyBase, ProxyEffect, ProxySession } from '../../session/proxy/common.js';
import { parseClientList, parseServerList, type ClientListEntry, type ServerListEntry } from '../../session/proxy/lists.js';
import { ResponseProxy } from '../../session/proxy/response.js';
import { ServerProxy } from '../../session/proxy/server.js';
import { PROG, parseProxyArgs, type ProxyArgs } from './options.js';
import { primeKeyExchange, rehearseSession, rewarmAfterFirstConfirm, warmDataPath } from './warmup.js';
import { ReceiveCoalescer, coalesceFromEnv, coalesceSummary, coalesceTurns } from '../../daemon/coalesce.js';
import { batchForwarder, newForwardState } from './forward.js';

export const VERSION_LINE = 'uftpproxyd (uftp-ts) compatible with UFTP 4.10';

/** The drivers' randomness: node:crypto. */
export const cryptoRandom: Random = {
  u32: () => randomBytes(4).readUInt32BE(0),
  bytes: (n) => randomBytes(n),
};

function usageError(message: string): never {
  process.stderr.write(message + '\n');
  process.exit(ExitCode.USAGE);
}

/** Reads the -C/-S list files; errors are exit 1 naming the option. */
function readLists(a: ProxyArgs): { clients?: ClientListEntry[]; servers?: ServerListEntry[] } {
  const out: { clients?: ClientListEntry[]; servers?: ServerListEntry[] } = {};
  const read = (opt: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      return usageError(`${PROG}: -${opt}: cannot read ${path}: ${(e as Error).message}`);
    }
  };
  if (a.clientList !== undefined) {
    const r = parseClientList(read('C', a.clientList));
    if (!r.ok) usageError(`${PROG}: -C: ${a.clientList}: ${r.error}`);
    out.clients = r.value;
  }
  if (a.serverList !== undefined) {
    const r = parseServerList(read('S', a.serverList));
    if (!r.ok) usageError(`${PROG}: -S: ${a.serverList}: ${r.error}`);
    out.servers = r.value;
  }
  return out;
}

/** -k / -K as the manual says. Errors are StartupError(3). */
function loadKeys(a: ProxyArgs, log: Logger): LoadedKey[] {
  const keys: LoadedKey[] = [];
  const fail = (m: string): never => {
    throw new StartupError(ExitCode.KEYS, `${PROG}: ${m}`);
  };
  if (a.newKeys.length > 0) {
    a.newKeys.forEach((spec, i) => {
      const file = a.keyFiles[i];
      if (file !== undefined && existsSync(file)) fail(`-k: key file ${file} already exists; not overwritten`);
      const k = generateKey(spec);
      if (!k.ok) fail(`-K: ${k.error}`);
      else {
        if (file !== undefined) {
          const w = writeKeyFile(file, k.value);
          if (!w.ok) fail(`-k: ${file}: ${w.error}`);
        }
        keys.push(k.value);
        log.log(1, `Generated ${describeKey(file ?? 'key', k.value)}${file === undefined ? ' (not persisted)' : ''}`);
      }
    });
    return keys;
  }
  if (a.keyFiles.length > 0) {
    for (const f of a.keyFiles) {
      const k = readKeyFile(f);
      if (!k.ok) fail(`-k: ${f}: ${k.error}`);
      else {
        keys.push(k.value);
        log.log(1, `Loaded ${k.value.kind === 'RSA' ? `${k.value.bits} bit RSA` : `ECDSA ${k.value.curve}`} key with fingerprint ${k.value.fingerprint}`);
      }
    }
    return keys;
  }
  const k = generateKey({ kind: 'RSA', bits: 512 });
  if (!k.ok) fail(`key generation failed: ${k.error}`);
  else {
    keys.push(k.value);
    log.log(1, `Loaded 512 bit RSA key with fingerprint ${k.value.fingerprint}`);
  }
  return keys;
}

async function resolveHost(opt: string, host: string, port: number): Promise<Endpoint> {
  if (isIP(host)) return { address: host, port };
  try {
    const r = await lookup(host);
    return { address: r.address, port };
  } catch (e) {
    throw new StartupError(ExitCode.USAGE, `${PROG}: -${opt}: cannot resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The engine's counters in one log line (shutdown, -x 2): where a session's datagrams went and at what cost. */
export function engineStatsText(s: EngineStats): string {
  const gro = s.groCoalesced ? ` (${s.groCoalesced} coalesced by GRO)` : '';
  return `received ${s.received} in ${s.recvCalls} receive calls${gro}; sent ${s.sent} in ${s.sendmmsgCalls} sendmmsg and ${s.gsoCalls} GSO calls; ` +
    `kernel send buffer full ${s.blocked} times, ${s.refused} refused, ${s.sendErrors} send errors, ${s.gsoFallbacks} GSO fallbacks; ` +
    `receive spin ${s.spinHits} hits, ${s.spinMisses} misses; ` +
    (s.guard ? `stall guard rescued ${s.guardRescued} in ${s.guardDrains} drains (peak ${s.guardPeakBytes} bytes, full ${s.guardFull} times)` : 'stall guard off');
}

export async function runProxy(argv: readonly string[]): Promise<void> {
  const p = parseProxyArgs(argv);
  if (p.kind === 'help') {
    process.stdout.write(p.text);
    process.exit(0);
  }
  if (p.kind === 'error') {
    process.stderr.write(p.message + '\n' + p.usage);
    process.exit(ExitCode.USAGE);
  }
  const a = p.args;
  const lists = readLists(a);
  await runDaemon(PROG, a, (d, log) => start(a, lists, d, log));
}

async function start(a: ProxyArgs, lists: { clients?: ClientListEntry[]; servers?: ServerListEntry[] }, d: Daemon, log: Logger): Promise<void> {
  log.log(1, VERSION_LINE);
  if (a.outInterface !== undefined && a.mode !== 'client') log.log(1, '-O applies to client proxies only; ignored');
  if (a.clientList !== undefined && a.mode !== 'client') log.log(1, '-C applies to client proxies only; ignored');
  if (a.ecdhCurve !== undefined && a.mode !== 'response') log.log(1, '-e applies to response proxies only; ignored');
  const keys = loadKeys(a, log);
  // the first encrypted session's key-exchange calls, made now (warmup.ts): the server times its GRTT on it
  const primed = primeKeyExchange(keys);
  log.log(3, `Key exchange primed (${primed} operations)`);
  let dhKey: { privateKey: KeyObject; blob: KeyBlob } | undefined;
  if (a.mode === 'response' && a.ecdhCurve !== undefined) {
    const k = generateKey({ kind: 'EC', curve: a.ecdhCurve });
    if (!k.ok) throw new StartupError(ExitCode.KEYS, `${PROG}: -e: ${k.error}`);
    dhKey = { privateKey: k.value.privateKey, blob: k.value.blob };
    log.log(2, `Generated ECDH key on ${a.ecdhCurve}`);
  }

  // IPv6 when the public addresses (or the downstream address) are IPv6
  let dest: Endpoint | undefined;
  if (a.server?.kind === 'dest') dest = await resolveHost('s', a.server.host, a.destPort);
  const hbServers: Endpoint[] = [];
  for (const h of a.hbServers) hbServers.push(await resolveHost('H', h.host, h.port));
  const want6 = a.publicMcast.some((m) => isIP(m) === 6) || isIP(dest?.address ?? '') === 6 || hbServers.some((h) => isIP(h.address) === 6);
  const want4 = !a.publicMcast.every((m) => isIP(m) === 6) || isIP(dest?.address ?? '') === 4 || hbServers.some((h) => isIP(h.address) === 4) || a.mode === 'client';
  const listens = a.mode !== 'client';

  let uid = a.uid;
  if (uid === undefined) {
    const du = defaultUid();
    if (!du) throw new StartupError(ExitCode.NETWORK, `${PROG}: no multicast-capable interface to take a unique ID from; give -U`);
    uid = du.uid;
    log.log(2, `Using unique ID 0x${hexId(uid)} (from ${du.name} ${du.address})`);
  }

  let out4: ResolvedInterface | undefined;
  let out6: ResolvedInterface | undefined;
  if (a.mode === 'client' && a.outInterface !== undefined) {
    const r4 = await resolveInterface(a.outInterface, 4);
    const r6 = await resolveInterface(a.outInterface, 6);
    if (!r4.ok && !r6.ok) throw new StartupError(ExitCode.NETWORK, `${PROG}: -O: ${r4.error}`);
    if (r4.ok) out4 = r4.value;
    if (r6.ok) out6 = r6.value;
  }

  // the loop exists once the sockets do; datagrams before that (none: nothing is joined yet) are dropped. The receive
  // callback is the forwarding fast path of forward.ts (views of the engine's ring to the machine, no copy).
  const fw = newForwardState();
  const onBatch = batchForwarder(fw);
  const eps: { 4?: UdpEndpoint; 6?: UdpEndpoint } = {};
  const open = async (family: 4 | 6): Promise<void> => {
    const r = await UdpEndpoint.open({
      family,
      port: a.port,
      ipv6Only: family === 6,
      bufferSize: a.bufSize,
      ttl: a.ttl,
      dscp: a.dscp,
      multicastInterface: family === 4 ? out4 : out6,
      multicastLoopback: false,
      onBatch,
      recvInfo: false,
      onError: (e) => log.log(2, `socket error: ${e.message}`),
    });
    if (!r.ok) throw new StartupError(ExitCode.NETWORK, `${PROG}: ${r.error}`);
    for (const w of r.value.warnings) log.log(1, w);
    if (r.value.backend !== 'dgram') fw.ring = true;
    eps[family] = r.value;
  };
  if (want4) await open(4);
  if (want6) await open(6);
  else {
    // a client proxy (or a server proxy with IPv4 public addresses) may still meet IPv6 peers: listen there too
    // when the system has IPv6; failing to is not fatal
    try {
      await open(6);
    } catch (e) {
      log.log(2, `No IPv6 socket: ${(e as Error).message}`);
    }
  }
  d.onShutdown(async () => {
    await eps[4]?.close();
    await eps[6]?.close();
  });

  // multicast listening (server proxy): -M on the -I interfaces; SSM joins per -S server
  const ifaces: { 4: ResolvedInterface[]; 6: ResolvedInterface[] } = { 4: [], 6: [] };
  if (listens) {
    for (const fam of [4, 6] as const) {
      if (!eps[fam]) continue;
      const r = await resolveInterfaces(a.interfaces.length ? a.interfaces : undefined, fam);
      if (!r.ok) {
        if (a.publicMcast.some((m) => isIP(m) === fam)) throw new StartupError(ExitCode.NETWORK, `${PROG}: -I: ${r.error}`);
        continue;
      }
      ifaces[fam] = r.value;
    }
    for (const m of a.publicMcast) {
      const fam = isIP(m) as 4 | 6;
      const ep = eps[fam];
      if (!ep) continue;
      if (ifaces[fam].length === 0) throw new StartupError(ExitCode.NETWORK, `${PROG}: no interface to listen for ${m} on`);
      const servers = lists.servers?.filter((s) => isIP(s.address) === fam);
      if (servers && servers.length) {
        for (const s of servers) {
          const r = ep.joinSource(s.address, m, ifaces[fam]);
          if (!r.ok) throw new StartupError(ExitCode.NETWORK, `${PROG}: ${r.error}`);
        }
      } else {
        const r = ep.join(m, ifaces[fam]);
        if (!r.ok) throw new StartupError(ExitCode.NETWORK, `${PROG}: ${r.error}`);
      }
      log.log(2, `Listening on ${m} (${ifaces[fam].map((i) => i.name).join(', ')})`);
    }
  }

  const onEffect = (e: ProxyEffect): void => {
    if (e.kind === 'log') {
      log.log(e.level, e.message);
      return;
    }
    const fam = isIP(e.group) === 6 ? 6 : 4;
    const ep = eps[fam];
    if (!ep) return;
    if (e.kind === 'join') {
      const r = e.source !== undefined ? ep.joinSource(e.source, e.group, ifaces[fam]) : ep.join(e.group, ifaces[fam]);
      if (!r.ok) log.log(1, r.error);
    } else {
      const r = ep.leave(e.group, ifaces[fam], e.source);
      if (!r.ok) log.log(2, r.error);
    }
  };

  const heartbeats = hbServers.length
    ? { servers: hbServers, intervalMs: a.hbInterval * 1000, key: keys[0] ? { privateKey: keys[0].privateKey, blob: keys[0].blob } : undefined }
    : undefined;
  const base = { uid, logLevel: a.logLevel, random: cryptoRandom, heartbeats, ringViews: fw.ring };
  // one constructor call per mode for the daemon's machine and the start-up warm-up's (warmDataPath): the same
  // options object shape (V8 map), so that what the warm-up optimizes stays valid for the daemon's
  type Base = typeof base;
  const serverProxy = (b: Base, to: Endpoint | undefined, fingerprint: string | undefined, serverList: typeof lists.servers): ServerProxy =>
    new ServerProxy({ ...b, dest: to, fingerprint, serverList });
  const clientProxy = (b: Base, destPort: number, clientList: typeof lists.clients, serverList: typeof lists.servers): ClientProxy =>
    new ClientProxy({ ...b, destPort, clientList, serverList, keys });
  let machine: ProxyBase<ProxySession>;
  if (a.mode === 'server') {
    machine = serverProxy(base, dest, a.server?.kind === 'fp' ? a.server.fingerprint : undefined, lists.servers);
    log.log(1, dest ? `Server proxy: forwarding to ${endpointText(dest)}` : `Server proxy: waiting for a heartbeat signed by ${a.server?.kind === 'fp' ? a.server.fingerprint : '?'}`);
  } else if (a.mode === 'response') {
    machine = new ResponseProxy({ ...base, destPort: a.destPort, serverList: lists.servers, publicAddrs: a.publicMcast, key: keys[0], dhKey, keys });
    log.log(1, `Response proxy: aggregating for clients that send to port ${a.port}`);
  } else {
    machine = clientProxy(base, a.destPort, lists.clients, lists.servers);
    log.log(1, `Client proxy: re-multicasting to port ${a.destPort}${a.outInterface ? ` on ${a.outInterface}` : ''}`);
  }
  const sockets = [eps[4], eps[6]].filter((x): x is UdpEndpoint => x !== undefined);
  const loop = new EventLoop<ProxyEffect>({
    machine,
    sockets,
    // a received batch (up to 64 ring slots x 64 GRO segments) is forwarded in the drain that follows it, so its
    // datagrams go from the ring to the engine's staging without a copy of their own; the engine flushes every
    // 1024 staged, and the loop still holds back when the kernel is full (sendQueueCount above 64)
    sendBudget: 4096,
    onEffect,
    onUnroutable: (t) => log.log(2, `No IPv${isIP(t.to.address) === 6 ? 6 : 4} socket to send to ${endpointText(t.to)}`),
    onError: (e) => d.fail(e),
  });
  fw.loop = loop;
  fw.machine = machine;
  // Receive coalescing (src/daemon/coalesce.ts), server proxy only: after a turn of a stream that brought few
  // datagrams, send what it forwarded and sleep (off the CPU) until more have arrived, so that they are read and sent
  // in one go. Not in the client proxy: its upstream is a server proxy whose bursts arrive coalesced already (GRO), and
  // what it would hold back goes to the clients in larger bursts (measured: more drops at the uftpd clients).
  const coalescer = fw.ring && a.mode === 'server' ? new ReceiveCoalescer(coalesceFromEnv()) : undefined;
  if (coalescer) coalesceTurns(sockets, coalescer, fw);
  d.onShutdown(() => {
    loop.stop();
    log.log(2, `Forwarded ${loop.sent} datagrams; ${fw.detached} copied out of the receive ring after a held turn`);
    if (coalescer) log.log(2, coalesceSummary(coalescer));
    for (const fam of [4, 6] as const) {
      const ep = eps[fam];
      if (ep && ep.backend !== 'dgram') log.log(2, `IPv${fam} socket: ${engineStatsText(ep.stats())}`);
    }
  });
  // the first session's forwarding paths run once (warmup.ts), before the first real ANNOUNCE
  // the throwaway machines: no heartbeats (they must not send any), no server or client list (the synthetic
  // sessions' IDs would be refused), their own downstream
  const warmBase: Base = { ...base, heartbeats: undefined };
  const warmMachine = (to: Endpoint): ProxyBase<ProxySession> =>
    a.mode === 'server' ? serverProxy(warmBase, to, undefined, undefined) : clientProxy(warmBase, to.port, undefined, undefined);
  const rehearsed = a.mode === 'response' ? 0 : rehearseSession(a.mode, uid, cryptoRandom, loop.now, warmMachine);
  log.log(3, `Start-up rehearsal: ${rehearsed} datagrams through a throwaway ${a.mode} proxy, dropped`);
  // the forwarding data path run hot on loopback (warmup.ts), so that V8 optimizes it now, not in the first transfer
  if (fw.ring && a.mode !== 'response' && process.env.UFTPPROXYD_WARM_DATA !== '0') {
    // a short pass first: its end (the throwaway loop stopped, its sockets closed) stores into fields that had held
    // one value since construction, and V8 then drops the optimized code that relied on that ("code dependencies"
    // in --trace-deopt-verbose): the data path compiled again during the first real transfer. After this pass the
    // fields are known to change, and what the full pass optimizes survives its own end.
    const opts = { mode: a.mode, uid, random: cryptoRandom, bufferSize: a.bufSize, budgetMs: 500, logLevel: a.logLevel, machine: warmMachine };
    await warmDataPath({ ...opts, bursts: 4 });
    const w = await warmDataPath(opts);
    log.log(2, `Start-up data path warm-up: ${w.forwarded} of ${w.sent} datagrams forwarded on loopback in ${w.ms.toFixed(0)} ms${w.stopped !== undefined ? ` (ended: ${w.stopped})` : ''}`);
    // the client proxy: once more when the first session is confirmed, with the real session's shapes (warmup.ts)
    if (machine instanceof ClientProxy && process.env.UFTPPROXYD_REWARM !== '0') {
      const m = machine;
      rewarmAfterFirstConfirm({ loop, confirmed: () => m.stats.confirmed, sockets, log }, opts);
    }
  }
  loop.start();
  // V8's first mark-compact now, not in the first transfer (src/daemon/gc.ts)
  collectGarbage();
  log.log(2, `Listening on port ${a.port} as 0x${hexId(uid)}`);
  d.ready();
}
