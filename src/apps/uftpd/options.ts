/**
 * uftpd's command line: one row per option of `man uftpd`, with the manual's defaults and ranges. Anything out of
 * range is one line naming the option and exit 1 (the real program is laxer in places; docs/uftpd.md lists them).
 * parseUftpdArgs does what needs no I/O: the table, then the rules that tie options together (-T with -A/-t,
 * -T with several -D, -A and -D of equal length, -k and -K of equal length when both are given).
 */
import * as path from 'node:path';
import { isIP } from 'node:net';
import {
  commaList, flag, hex32, hostPortList, intDecOrHex, intRange, nonEmpty, option, parseCommandLine,
  type ArgParser, type CommandLineSpec, type HostPort,
} from '../../daemon/getopt.js';
import { parseKeySpec, type KeySpec } from '../../crypto/keyfile.js';
import { DEFAULT_PORT, DEFAULT_PUBLIC_MCAST } from '../../wire/constants.js';
import { isMulticast } from '../../core/address.js';

export const PROG = 'uftpd';
export const DEFAULT_LOGFILE = '/tmp/uftpd.log';
export const DEFAULT_DEST = '/tmp';
export const DEFAULT_BUF_SIZE = 262144;
export const DEFAULT_CACHE_SIZE = 1048576;
/** Not in the manual; the real programs' default (docs/protocol-notes.md, Lab). */
export const DEFAULT_HB_INTERVAL = 20;

const absDir = (what: string): ArgParser<string> => (raw) => {
  if (raw.length === 0) return { ok: false, error: `${what} must not be empty` };
  return { ok: true, value: path.resolve(raw) };
};

const keySpec: ArgParser<KeySpec> = (raw) => {
  const r = parseKeySpec(raw);
  return r.ok ? r : { ok: false, error: `${r.error}: '${raw}' (expected rsa:BITS with 512-2048 bits, or ec:CURVE)` };
};

const mcastAddr: ArgParser<string> = (raw) =>
  isMulticast(raw) ? { ok: true, value: raw } : { ok: false, error: `'${raw}' is not a multicast address` };

/** -R proxy[/fingerprint]. */
export interface ResponseProxyArg {
  readonly host: string;
  readonly fingerprint?: string;
}
const responseProxy: ArgParser<ResponseProxyArg> = (raw) => {
  const slash = raw.indexOf('/');
  const host = slash < 0 ? raw : raw.slice(0, slash);
  const fp = slash < 0 ? undefined : raw.slice(slash + 1);
  if (host.length === 0) return { ok: false, error: 'response proxy must not be empty' };
  if (fp !== undefined) {
    const parts = fp.split(':');
    if (parts.length !== 20 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return { ok: false, error: `'${fp}' is not a key fingerprint` };
    return { ok: true, value: { host, fingerprint: fp.toUpperCase() } };
  }
  return { ok: true, value: { host } };
};

export const UFTPD_OPTIONS = {
  debug: flag('d', 'debug: stay in the foreground, log to stderr (-L ignored)'),
  port: option('p', 'port', 'UDP port to listen on', intRange('port', 1, 65535), DEFAULT_PORT),
  bufSize: option('B', 'buf_size', 'UDP receive buffer bytes (65536-104857600)', intRange('buffer size', 65536, 104857600), DEFAULT_BUF_SIZE),
  encryptedOnly: flag('E', 'accept encrypted sessions only'),
  dscp: option('Q', 'dscp', 'DSCP of outgoing packets (0-63, decimal or 0x hex)', intDecOrHex('dscp', 0, 63), 0),
  uid: option('U', 'UID', 'unique ID, 0xnnnnnnnn (default: from the first multicast-capable interface)', (raw) => {
    const r = hex32('UID')(raw);
    if (r.ok && r.value === 0xffffffff) return { ok: false, error: `UID ${raw} is reserved` };
    return r;
  }),
  logLevel: option('x', 'log_level', 'log level 0-5', intRange('log level', 0, 5), 2),
  tempFiles: flag('t', 'receive each file into a temp file .~uftp-{group}-{file} beside it'),
  tempDir: option('T', 'temp_dir', 'receive into this directory, move to dest_dir at the end of the session', absDir('temp dir')),
  destDirs: option('D', 'dest_dir[,dest_dir...]', 'destination directories', commaList(absDir('destination dir'), 'directory list'), [DEFAULT_DEST], DEFAULT_DEST),
  backupDirs: option('A', 'backup_dir[,backup_dir...]', 'backup directories, one per destination directory', commaList(absDir('backup dir'), 'directory list')),
  logFile: option('L', 'logfile', 'log file', nonEmpty('log file'), DEFAULT_LOGFILE),
  statusFile: option('F', 'status_file', 'status file (CONNECT and RESULT lines); @LOG: into the log', nonEmpty('status file')),
  quiet: flag('q', 'no DNS lookup of the server address'),
  pidFile: option('P', 'pidfile', 'write the pid to this file', nonEmpty('pidfile')),
  serverList: option('S', 'serverlist_file', 'servers allowed (ID|IP[|fingerprint] per line); SSM joins', nonEmpty('server list file')),
  responseProxy: option('R', 'proxy[/fingerprint]', 'response proxy all responses go to', responseProxy),
  cacheSize: option('c', 'cache_size', 'bytes of received data held before writing (10240-20971520)', intRange('cache size', 10240, 20971520), DEFAULT_CACHE_SIZE),
  keyFiles: option('k', 'keyfile[,keyfile...]', 'private key files to read (or write, with -K)', commaList(nonEmpty('key file'), 'key file list')),
  newKeys: option('K', '{rsa:bits|ec:curve}[,...]', 'private keys to generate', commaList(keySpec, 'key list')),
  sysKeys: flag('m', 'system key container (Windows only; no effect here)'),
  priority: option('N', 'priority', 'nice value (-20..19)', intRange('priority', -20, 19), 0),
  moveIndividually: flag('i', 'with -T: move files one by one at the end of the session'),
  script: option('s', 'postreceive_script', 'command run on received files: script -I session_id file...', nonEmpty('script')),
  maxLogSize: option('g', 'max_log_size', 'roll the log at this many MB (1-1024)', intRange('max log size', 1, 1024)),
  maxLogCount: option('n', 'max_log_count', 'archived logs kept when rolling (1-1000)', intRange('max log count', 1, 1000), 5),
  hbServers: option('H', 'hb_server[:port][,...]', 'proxies to send heartbeats to (default port 1044)', hostPortList('heartbeat server', DEFAULT_PORT)),
  hbInterval: option('h', 'hb_interval', 'seconds between heartbeats (1-3600)', intRange('heartbeat interval', 1, 3600), DEFAULT_HB_INTERVAL),
  interfaces: option('I', 'interface[,interface...]', 'interfaces to listen on (name, hostname or IP)', commaList(nonEmpty('interface'), 'interface list')),
  publicMcast: option('M', 'pub_mcast_addr[,...]', 'public multicast addresses to listen on', commaList(mcastAddr, 'multicast address list'), [DEFAULT_PUBLIC_MCAST], DEFAULT_PUBLIC_MCAST),
} as const;

export const UFTPD_CMDLINE: CommandLineSpec<typeof UFTPD_OPTIONS> = { prog: PROG, table: UFTPD_OPTIONS, permute: true };

export interface UftpdArgs {
  readonly debug: boolean;
  readonly port: number;
  readonly bufSize: number;
  readonly encryptedOnly: boolean;
  readonly dscp: number;
  readonly uid?: number;
  readonly logLevel: number;
  readonly tempFiles: boolean;
  readonly tempDir?: string;
  readonly destDirs: readonly string[];
  readonly backupDirs?: readonly string[];
  readonly logFile: string;
  readonly statusFile?: string;
  readonly quiet: boolean;
  readonly pidFile?: string;
  readonly serverList?: string;
  readonly responseProxy?: ResponseProxyArg;
  readonly cacheSize: number;
  readonly keyFiles: readonly string[];
  readonly newKeys: readonly KeySpec[];
  readonly priority: number;
  readonly moveIndividually: boolean;
  readonly script?: string;
  readonly maxLogSize?: number;
  readonly maxLogCount: number;
  readonly hbServers: readonly HostPort[];
  readonly hbInterval: number;
  readonly interfaces: readonly string[];
  readonly publicMcast: readonly string[];
}

export type UftpdArgsResult =
  | { readonly kind: 'ok'; readonly args: UftpdArgs }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string; readonly usage: string };

/** Parses argv (without node and script). Errors are one line "uftpd: -x: ..." (exit 1). */
export function parseUftpdArgs(argv: readonly string[]): UftpdArgsResult {
  const cl = parseCommandLine(UFTPD_CMDLINE, argv);
  if (cl.kind !== 'ok') return cl;
  const o = cl.options;
  const fail = (message: string): UftpdArgsResult => ({ kind: 'error', message: `${PROG}: ${message}`, usage: '' });
  const destDirs = o.destDirs;
  if (o.tempDir !== undefined) {
    if (o.backupDirs !== undefined) return fail('-T and -A cannot be used together');
    if (o.tempFiles) return fail('-T and -t cannot be used together');
    if (destDirs.length > 1) return fail('-T cannot be used with more than one -D directory');
  }
  if (o.backupDirs !== undefined && o.backupDirs.length !== destDirs.length) {
    return fail(`-A must list as many directories as -D (${o.backupDirs.length} and ${destDirs.length})`);
  }
  const keyFiles = o.keyFiles ?? [];
  const newKeys = o.newKeys ?? [];
  if (keyFiles.length > 0 && newKeys.length > 0 && keyFiles.length !== newKeys.length) {
    return fail(`-k and -K must list the same number of keys (${keyFiles.length} and ${newKeys.length})`);
  }
  if (new Set(o.publicMcast.map((a) => isIP(a))).size > 1) return fail('-M: public multicast addresses mix IPv4 and IPv6');
  return {
    kind: 'ok',
    args: {
      debug: o.debug, port: o.port, bufSize: o.bufSize, encryptedOnly: o.encryptedOnly, dscp: o.dscp, uid: o.uid,
      logLevel: o.logLevel, tempFiles: o.tempFiles, tempDir: o.tempDir, destDirs, backupDirs: o.backupDirs,
      logFile: o.logFile, statusFile: o.statusFile, quiet: o.quiet, pidFile: o.pidFile, serverList: o.serverList,
      responseProxy: o.responseProxy, cacheSize: o.cacheSize, keyFiles, newKeys, priority: o.priority,
      moveIndividually: o.moveIndividually, script: o.script, maxLogSize: o.maxLogSize, maxLogCount: o.maxLogCount,
      hbServers: o.hbServers ?? [], hbInterval: o.hbInterval, interfaces: o.interfaces ?? [], publicMcast: o.publicMcast,
    },
  };
}
