/**
 * uftp's driver: the command line, the file list, keys and the socket around the pure ServerMachine
 * (src/session/server/machine.ts), driven by the one event loop (src/daemon/loop.ts) over a src/net socket.
 * Reads are answered synchronously from the page cache (fs.readSync of a read-ahead chunk), so a paced or
 * unpaced pass never waits on the event loop for data.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { ExitCode } from '../../daemon/exitcodes.js';
import { Logger } from '../../daemon/log.js';
import { UdpEndpoint } from '../../net/udp.js';
import { defaultUid, resolveInterface, type ResolvedInterface } from '../../net/interfaces.js';
import { isMulticastAddress, uidFromAddress } from '../../net/address.js';
import { ServerMachine, UftpExit, hexId, type ServerConfig, type ServerEffect, type ServerEffectResult } from '../../session/server/machine.js';
import { EventLoop } from '../../daemon/loop.js';
import { Progress } from './progress.js';
import { parseUftpArgs, PROG, type UftpOptions } from './options.js';
import { ServerSecurity, type ServerSecurityParams } from '../../session/server/security.js';
import {
  KEYEX_TYPES, cipherAvailable, deriveGroupKeys, generateEcdhKey, generateKey, hashSuiteByName, keySuiteByName, publicKeyToBlob,
  readKeyFile, writeKeyFile, type GroupCrypto, type LoadedKey,
} from '../../crypto/index.js';
import { KeyexType, SigType, UFTP_VER_NUM } from '../../wire/constants.js';
import type { Result } from '../../core/result.js';
import { readListFile, walkFiles, type SourceFile } from './files.js';
import { readRestart, restartPlan, writeRestart, type RestartState } from './restart.js';

/** Datagrams queued in the socket before the driver yields (the machine's buffer ring is far larger). */
const MAX_QUEUED = 512;

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Replaces 'x' parts of a -P address with random values (0-255 IPv4, 0-0xffff IPv6). */
export function randomizeAddress(spec: string, rnd: () => number): string {
  if (spec.includes(':')) return spec.split(':').map((p) => (p.toLowerCase() === 'x' ? (rnd() & 0xffff).toString(16) : p)).join(':');
  return spec.split('.').map((p) => (p.toLowerCase() === 'x' ? String(rnd() & 0xff) : p)).join('.');
}

interface Out {
  log(level: number, text: string): void;
  status(line: string): void;
  close(): void;
}

function makeOut(o: UftpOptions): Out {
  let logger: Logger | undefined;
  if (o.logFile !== undefined || o.timestamps) {
    logger = Logger.open({ level: o.logLevel, foreground: o.logFile === undefined, file: o.logFile, maxSizeMB: o.maxLogSize, maxCount: o.maxLogCount });
  }
  const log = (level: number, text: string): void => {
    if (level > o.logLevel) return;
    if (logger) logger.log(level, text);
    else process.stderr.write(text + '\n');
  };
  let statusFd = -1;
  // appended to, as the real uftp does (two sessions with the same -S file: the second's lines follow the first's)
  if (o.statusFile !== undefined && o.statusFile !== '@LOG') statusFd = fs.openSync(o.statusFile, 'a');
  return {
    log,
    status: (line) => {
      if (o.statusFile === '@LOG') log(0, line);
      else if (statusFd >= 0) fs.writeSync(statusFd, line + '\n');
    },
    close: () => {
      if (statusFd >= 0) fs.closeSync(statusFd);
      logger?.flush();
    },
  };
}

/**
 * A memory allocation the program survives to report (exit 5, as the C uftp on a failed malloc): a Buffer or
 * ArrayBuffer that could not be allocated (RangeError "Array buffer allocation failed", e.g. under `ulimit -d`).
 * A V8 heap exhaustion or a std::bad_alloc inside Node is fatal and never reaches here.
 */
export function allocationFailed(e: unknown): boolean {
  if (e instanceof RangeError && /allocation failed/i.test(e.message)) return true;
  return e instanceof Error && (e as NodeJS.ErrnoException).code === 'ERR_MEMORY_ALLOCATION_FAILED';
}

export async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseUftpArgs(argv);
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return ExitCode.OK;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(parsed.message + '\n' + parsed.usage);
    return ExitCode.USAGE;
  }
  const o = parsed.options;
  let out: Out;
  try {
    out = makeOut(o);
  } catch (e) {
    process.stderr.write(`${PROG}: ${(e as Error).message}\n`);
    return ExitCode.LOG;
  }
  try {
    return await session(o, parsed.files, out);
  } finally {
    out.close();
  }
}

async function session(o: UftpOptions, operands: readonly string[], out: Out): Promise<number> {
  // file list
  let names = [...operands];
  let excludes = new Set<string>();
  try {
    if (o.listFile !== undefined) names = readListFile(o.listFile);
    if (o.excludeFile !== undefined) excludes = new Set(readListFile(o.excludeFile).map((l) => l.replace(/\/+$/, '')));
  } catch (e) {
    if (allocationFailed(e)) {
      out.log(0, `${PROG}: memory allocation failed reading the list file: ${(e as Error).message}`);
      return ExitCode.MEMORY;
    }
    out.log(0, `${PROG}: ${(e as Error).message}`);
    return ExitCode.USAGE;
  }
  let files: SourceFile[];
  let restart: RestartState | undefined;
  let restartHosts: number[] | undefined;
  if (o.restartFile !== undefined) {
    const r = readRestart(o.restartFile);
    if (!r.ok) {
      out.log(0, `${PROG}: -F: ${r.error}`);
      return ExitCode.USAGE;
    }
    restart = r.value;
    const plan = restartPlan(restart);
    files = plan.files;
    restartHosts = plan.hosts;
    out.log(2, `Restarting group ${(restart.groupId >>> 0).toString(16).toUpperCase().padStart(8, '0')}: ${plan.files.length} of ${restart.files.length} files for ${plan.hosts.length} client(s)`);
  } else {
    const walk = walkFiles(names, { followLinks: o.followLinks, excludes, baseDirs: o.baseDirs ?? [], destName: o.destName, subdir: o.subdir });
    for (const w of walk.warnings) out.log(1, w);
    files = walk.files;
  }
  // addressing
  const family: 4 | 6 = isIP(o.publicAddr) === 6 ? 6 : 4;
  if (isIP(o.publicAddr) === 0) {
    out.log(0, `${PROG}: -M: invalid address ${o.publicAddr}`);
    return ExitCode.USAGE;
  }
  const unicast = !isMulticastAddress(o.publicAddr);
  const rnd = (): number => randomBytes(4).readUInt32BE(0);
  let privateAddr = unicast ? o.publicAddr : randomizeAddress(o.privateAddr === '230.5.5.x' && family === 6 ? 'ff02::x' : o.privateAddr, rnd);
  if (!unicast && (isIP(privateAddr) !== family || !isMulticastAddress(privateAddr))) {
    out.log(0, `${PROG}: -P: ${privateAddr} is not a multicast address of the same family as ${o.publicAddr}`);
    return ExitCode.USAGE;
  }
  if (unicast) privateAddr = o.publicAddr;
  let iface: ResolvedInterface | undefined;
  if (o.iface !== undefined) {
    const r = await resolveInterface(o.iface, family);
    if (!r.ok) {
      out.log(0, `${PROG}: -I: ${r.error}`);
      return ExitCode.NETWORK;
    }
    iface = r.value;
  }
  const uid = o.uid ?? (iface ? uidFromAddress(iface.address) : defaultUid()?.uid);
  if (uid === undefined) {
    out.log(0, `${PROG}: no interface address to derive a UID from; give -U`);
    return ExitCode.NETWORK;
  }
  const loopRef: { loop?: EventLoop<ServerEffect, ServerEffectResult> } = {};
  const ep = await UdpEndpoint.open({
    family, port: o.sourcePort, bufferSize: o.bufSize, ttl: o.ttl, dscp: o.dscp, multicastInterface: iface,
    onMessage: (msg, rinfo) => loopRef.loop?.datagram({ address: rinfo.address, port: rinfo.port }, msg),
  });
  if (!ep.ok) {
    out.log(0, `${PROG}: ${ep.error}`);
    return ExitCode.NETWORK;
  }
  const sock = ep.value;
  for (const w of sock.warnings) out.log(1, w);
  let security: ServerSecurity | undefined;
  if (o.keyType !== 'none') {
    const sp = securityParams(o, hostFingerprints(o));
    if (!sp.ok) {
      out.log(0, `${PROG}: ${sp.error}`);
      await sock.close();
      return ExitCode.KEYS;
    }
    // unicast mode: the ANNOUNCE's private address is the zero address, and so is the one in the handshake
    security = new ServerSecurity(sp.value, unicast ? (family === 6 ? '::' : '0.0.0.0') : privateAddr);
    out.log(2, `Using ${o.keyType} encryption, ${o.hashType} hashing, key exchange ${o.keyex}, server key fingerprint ${sp.value.serverKey.fingerprint}`);
  }
  const cfg: ServerConfig = {
    uid, groupId: restart?.groupId ?? (rnd() || 1), groupInst: restart ? (restart.groupInst + 1) & 0xff : 0, restartable: o.restartable, publicAddr: o.publicAddr, privateAddr, port: o.port, blockSize: o.blockSize, robust: o.robust,
    grttInit: o.grtt.init, grttMin: o.grtt.min, grttMax: o.grtt.max,
    rate: o.rate === -1 ? undefined : (o.rate * 1024) / 8,
    tfmcc: o.cc.type === 'tfmcc' ? {
      // Kbps of 1024 bits, as -R; defaults: 256 Kbps to start, no floor below one block a second, no ceiling
      min: ((o.cc.min ?? 0) * 1024) / 8 || o.blockSize,
      init: ((o.cc.init ?? 256) * 1024) / 8,
      max: o.cc.max !== undefined ? (o.cc.max * 1024) / 8 : Number.MAX_SAFE_INTEGER,
      blockSize: o.blockSize,
    } : undefined,
    maxPasses: o.maxPasses, txWeight: o.cc.type === 'none' ? o.txWeight : undefined, quitOnError: o.quitOnError, maxNakPct: o.maxNakPct, maxNakCount: o.maxNakCount,
    proxyList: o.proxyList !== undefined ? readHostFile(o.proxyList) : undefined,
    hosts: restartHosts ?? (o.hosts?.kind === 'ids' ? o.hosts.ids : o.hosts?.kind === 'file' ? readHostFile(o.hosts.file) : undefined),
    sync: o.sync, syncPreview: o.syncPreview, ipv6: family === 6, unicast, files, ipOverhead: family === 6 ? 48 : 28, security,
  };
  out.log(2, 'UFTP version 4.10.2 (uftp-ts)');
  out.log(2, `Starting at ${new Date().toString()}`);
  if (cfg.rate !== undefined) out.log(2, `Transfer rate: ${o.rate} Kbps (${Math.round(o.rate / 8)} KB/s)`);
  else out.log(2, 'Transfer rate: full interface speed');
  const m = new ServerMachine(cfg, nowMs());
  m.enabled4 = o.logLevel >= 4;
  const fds = new Map<number, number>();
  let exitCode: number | undefined;
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => (resolveDone = r));
  let finishing = false;

  const read = (e: Extract<ServerEffect, { type: 'read' }>): ServerEffectResult => {
    const f = files[e.file];
    try {
      let fd = fds.get(e.file);
      if (fd === undefined) {
        for (const [k, v] of fds) {
          fs.closeSync(v);
          fds.delete(k);
        }
        fd = fs.openSync(f.source, 'r');
        fds.set(e.file, fd);
      }
      const buf = Buffer.allocUnsafe(e.length);
      let got = 0;
      while (got < e.length) {
        const n = fs.readSync(fd, buf, got, e.length - got, e.offset + got);
        if (n === 0) break;
        got += n;
      }
      // a file that shrank while being sent: the rest goes out as zeros, as its size was announced
      if (got < e.length) buf.fill(0, got);
      return { type: 'read', file: e.file, offset: e.offset, data: buf };
    } catch (err) {
      if (allocationFailed(err)) {
        out.log(0, `${PROG}: memory allocation failed: ${(err as Error).message}`);
        resolveDone(ExitCode.MEMORY);
      }
      return { type: 'readError', file: e.file, offset: e.offset, message: (err as Error).message };
    }
  };

  const loop = new EventLoop<ServerEffect, ServerEffectResult>({
    machine: m,
    sockets: [sock],
    clock: nowMs,
    maxSendQueue: MAX_QUEUED,
    onEffect: (e) => {
      switch (e.type) {
        case 'log':
          out.log(e.level, e.text);
          return;
        case 'status':
          out.status(e.line);
          return;
        case 'progress':
          progress?.update(e);
          return;
        case 'finished':
          exitCode = e.exitCode;
          progress?.clear();
          if (!finishing) {
            finishing = true;
            // late COMPLETEs still get their DONE_CONF for a moment; then the socket is closed
            setTimeout(() => resolveDone(exitCode ?? UftpExit.OK), 100);
          }
          return;
        case 'read':
          return read(e);
        case 'restart': {
          try {
            const f = writeRestart(process.cwd(), { groupId: cfg.groupId, groupInst: cfg.groupInst ?? 0, files, failed: e.failed });
            out.log(1, `${e.failed.length} client(s) did not get every file; restart file ${f}`);
          } catch (err) {
            out.log(0, `Error writing the restart file: ${(err as Error).message}`);
          }
          return;
        }
      }
    },
    onError: (e) => {
      if (allocationFailed(e)) out.log(0, `${PROG}: memory allocation failed: ${(e as Error).message}`);
      else out.log(0, `${PROG}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      resolveDone(ExitCode.MEMORY);
    },
  });
  loopRef.loop = loop;
  const progress = o.logFile === undefined && process.stderr.isTTY ? new Progress(files) : undefined;

  const onSignal = (): void => {
    out.log(0, 'Interrupted, aborting');
    m.interrupt();
    loop.kick();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  loop.start();
  const code = await done;
  loop.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  for (const fd of fds.values()) fs.closeSync(fd);
  await sock.close();
  return code;
}

/** The server's key (-k / -K, or a fresh one as the man page says), randoms, the ECDH key and the group keys. */
function securityParams(o: UftpOptions, fingerprints: ReadonlyMap<number, string>): Result<ServerSecurityParams, string> {
  const suite = keySuiteByName(o.keyType);
  if (!suite.ok) return suite;
  if (!cipherAvailable(suite.value.openssl)) return { ok: false, error: `-Y ${o.keyType}: cipher not available in this OpenSSL` };
  const hash = hashSuiteByName(o.hashType);
  if (!hash.ok) return hash;
  const [kxName, curveName] = o.keyex.split(':');
  const keyexType = KEYEX_TYPES.get(kxName);
  if (keyexType === undefined) return { ok: false, error: `-e: invalid key exchange ${o.keyex}` };
  const wantEc = keyexType === KeyexType.ECDH_ECDSA;
  let key: Result<LoadedKey, string>;
  if (o.keyLength !== undefined) {
    key = generateKey(wantEc ? `ec:${o.keyLength}` : `rsa:${o.keyLength}`);
    if (key.ok && o.keyFile !== undefined) {
      if (fs.existsSync(o.keyFile)) return { ok: false, error: `-k: key file ${o.keyFile} already exists` };
      const w = writeKeyFile(o.keyFile, key.value);
      if (!w.ok) return w;
    }
  } else if (o.keyFile !== undefined) {
    key = readKeyFile(o.keyFile);
  } else {
    key = generateKey(wantEc ? 'ec:prime256v1' : 'rsa:512');
  }
  if (!key.ok) return key;
  if ((key.value.kind === 'EC') !== wantEc) return { ok: false, error: `-k: ${kxName} needs ${wantEc ? 'an EC' : 'an RSA'} key` };
  const sigType = suite.value.mode !== 'cbc' ? SigType.AUTHENC : o.sigType === 'keyex' ? SigType.KEYEX : SigType.HMAC;
  const serverRandom = randomBytes(32);
  serverRandom.writeUInt32LE(Math.floor(Date.now() / 1000) >>> 0, 0);
  const groupMaster = Buffer.concat([Buffer.from([UFTP_VER_NUM]), randomBytes(47)]);
  let ecdh: ServerSecurityParams['ecdh'];
  if (keyexType !== KeyexType.RSA) {
    const pair = generateEcdhKey(curveName ?? 'prime256v1');
    const blob = publicKeyToBlob(pair.publicKey);
    if (!blob.ok) return blob;
    ecdh = { privateKey: pair.privateKey, blob: blob.value };
  }
  const group: GroupCrypto = { keySuite: suite.value, hashSuite: hash.value, sigType, keys: deriveGroupKeys(hash.value, suite.value, groupMaster, serverRandom) };
  // -w keyex: clients sign with their own key, so the real uftp asks for CLIENT_KEY (CLIENT_AUTH) even without -c
  return { ok: true, value: { group, keyexType, clientAuth: o.clientAuth || sigType === SigType.KEYEX, serverKey: key.value, serverRandom, groupMaster, ecdh, fingerprints } };
}

/** Fingerprints from -H @file and -j (ID|fingerprint lines). */
function hostFingerprints(o: UftpOptions): Map<number, string> {
  const fps = new Map<number, string>();
  const files = [o.hosts?.kind === 'file' ? o.hosts.file : undefined, o.proxyList].filter((f): f is string => f !== undefined);
  for (const f of files) {
    for (const line of readListFile(f)) {
      const [id, fp] = line.split('|').map((x) => x.trim());
      const n = Number.parseInt(id.replace(/^0x/i, ''), 16);
      if (Number.isFinite(n) && fp) fps.set(n >>> 0, fp.toUpperCase());
    }
  }
  return fps;
}

/** -H @file: one client ID per line, optionally followed by |fingerprint (fingerprints need encryption). */
function readHostFile(file: string): number[] {
  const ids: number[] = [];
  for (const line of readListFile(file)) {
    const id = line.split('|')[0].trim();
    const n = Number.parseInt(id.replace(/^0x/i, ''), 16);
    if (Number.isFinite(n)) ids.push(n >>> 0);
  }
  return ids;
}

export { hexId };
