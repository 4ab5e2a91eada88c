/**
 * uftpproxyd's command line: one table row per option of `man uftpproxyd`, with its documented default and
 * valid range. Anything out of range is a one-line error naming the option (exit 1), stricter than the C
 * program where it is lax (it accepts `-x 9` and `-s fp=ZZ`; we do not).
 *
 * `parseProxyArgs` does everything that needs no I/O: the option table, then the rules that tie options
 * together (exactly one of -s/-c/-r; -k and -K the same length when both are given; ...). Files named by -C,
 * -S and -k are read later, at start-up (src/apps/uftpproxyd/run.ts), and their errors name the option too.
 */
import {
  commaList,
  flag,
  hex32,
  hostPortList,
  intDecOrHex,
  intRange,
  nonEmpty,
  option,
  parseCommandLine,
  type ArgParser,
  type CommandLineSpec,
  type HostPort,
} from '../../daemon/getopt.js';
import { parseKeySpec, type KeySpec } from '../../crypto/keyfile.js';
import { curveByName, DEFAULT_PORT, DEFAULT_PUBLIC_MCAST } from '../../wire/constants.js';
import { isIP } from 'node:net';
import { isMulticast } from '../../core/address.js';

export { isMulticast, isSsm } from '../../core/address.js';

export const PROG = 'uftpproxyd';
export const DEFAULT_LOGFILE = '/tmp/uftpproxyd.log';
export const DEFAULT_BUF_SIZE = 262144;
export const DEFAULT_HB_INTERVAL = 20;

/** -s: a fixed downstream address, or the fingerprint of the proxy whose heartbeats name it. */
export type ServerTarget = { readonly kind: 'dest'; readonly host: string } | { readonly kind: 'fp'; readonly fingerprint: string };

/** 20 bytes (SHA-1 of a key blob) as colon-separated hex, the form uftp_keymgt prints. Normalized to upper case. */
export function parseFingerprint(what: string): ArgParser<string> {
  return (raw) => {
    const parts = raw.split(':');
    if (parts.length !== 20 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
      return { ok: false, error: `${what} '${raw}' is not a key fingerprint (20 colon-separated hex bytes, XX:XX:...)` };
    }
    return { ok: true, value: raw.toUpperCase() };
  };
}

const serverTarget: ArgParser<ServerTarget> = (raw) => {
  if (raw.startsWith('fp=')) {
    const fp = parseFingerprint('fingerprint')(raw.slice(3));
    return fp.ok ? { ok: true, value: { kind: 'fp', fingerprint: fp.value } } : fp;
  }
  if (raw.length === 0) return { ok: false, error: 'downstream address must not be empty' };
  if (/\s/.test(raw)) return { ok: false, error: `downstream address '${raw}' contains blanks` };
  return { ok: true, value: { kind: 'dest', host: raw } };
};

const mcastAddr: ArgParser<string> = (raw) =>
  isMulticast(raw) ? { ok: true, value: raw } : { ok: false, error: `'${raw}' is not a multicast address` };

const keySpec: ArgParser<KeySpec> = (raw) => {
  const r = parseKeySpec(raw);
  return r.ok ? r : { ok: false, error: `${r.error}: '${raw}' (expected rsa:BITS with 512-2048 bits, or ec:CURVE)` };
};

const curve: ArgParser<string> = (raw) => {
  const c = curveByName(raw);
  return c ? { ok: true, value: c.name } : { ok: false, error: `unknown EC curve '${raw}'` };
};

export const PROXY_OPTIONS = {
  server: option('s', '{dest|fp=fingerprint}', 'server proxy: downstream proxy name/IP, or the key fingerprint of the proxy whose heartbeats give it', serverTarget),
  client: flag('c', 'client proxy'),
  response: flag('r', 'response proxy'),
  debug: flag('d', 'debug: stay in the foreground, log to stderr (-L ignored)'),
  port: option('p', 'port', 'UDP port to listen on', intRange('port', 1, 65535), DEFAULT_PORT),
  ttl: option('t', 'ttl', 'multicast time-to-live (1-255)', intRange('ttl', 1, 255), 1),
  dscp: option('Q', 'dscp', 'DSCP of outgoing packets (0-63, decimal or 0x hex)', intDecOrHex('dscp', 0, 63), 0),
  priority: option('N', 'priority', 'nice value (-20..19)', intRange('priority', -20, 19), 0),
  outInterface: option('O', 'out_multi_interface', 'client proxy: interface (name, hostname or IP) to multicast from', nonEmpty('interface')),
  uid: option('U', 'UID', 'unique ID, 0xnnnnnnnn (default: from the first multicast-capable interface)', (raw) => {
    const r = hex32('UID')(raw);
    if (r.ok && r.value === 0xffffffff) return { ok: false, error: `UID ${raw} is reserved` };
    return r;
  }),
  destPort: option('q', 'dest_port', 'port of the downstream proxy (server proxy) or clients (client proxy)', intRange('destination port', 1, 65535), DEFAULT_PORT),
  sysKeys: flag('m', 'system key container (Windows only; no effect here)'),
  logLevel: option('x', 'log_level', 'log level 0-5', intRange('log level', 0, 5), 2),
  hbServers: option('H', 'hb_server[:port][,...]', 'proxies to send heartbeats to (default port 1044)', hostPortList('heartbeat server', DEFAULT_PORT)),
  maxLogSize: option('g', 'max_log_size', 'roll the log at this many MB (1-1024)', intRange('max log size', 1, 1024)),
  maxLogCount: option('n', 'max_log_count', 'archived logs kept when rolling (1-1000)', intRange('max log count', 1, 1000), 5),
  hbInterval: option('h', 'hb_interval', 'seconds between heartbeats (1-3600)', intRange('heartbeat interval', 1, 3600), DEFAULT_HB_INTERVAL),
  bufSize: option('B', 'udp_buf_size', 'UDP send/receive buffer bytes (65536-104857600)', intRange('buffer size', 65536, 104857600), DEFAULT_BUF_SIZE),
  logFile: option('L', 'logfile', 'log file', nonEmpty('log file'), DEFAULT_LOGFILE),
  pidFile: option('P', 'pidfile', 'write the pid to this file', nonEmpty('pidfile')),
  clientList: option('C', 'clientlist_file', 'client proxy: clients allowed (ID|fingerprint per line)', nonEmpty('client list file')),
  serverList: option('S', 'serverlist_file', 'servers allowed (ID|IP[|fingerprint] per line); SSM joins', nonEmpty('server list file')),
  keyFiles: option('k', 'keyfile[,keyfile...]', 'private key files to read (or write, with -K)', commaList(nonEmpty('key file'), 'key file list')),
  newKeys: option('K', '{rsa:bits|ec:curve}[,...]', 'private keys to generate', commaList(keySpec, 'key list')),
  ecdhCurve: option('e', 'ecdh_curve', 'response proxy: curve of its ECDH key', curve),
  interfaces: option('I', 'interface[,interface...]', 'interfaces to listen on (server/response proxy) or report (client proxy)', commaList(nonEmpty('interface'), 'interface list')),
  publicMcast: option('M', 'pub_mcast_addr[,...]', 'public multicast addresses to listen on', commaList(mcastAddr, 'multicast address list'), [DEFAULT_PUBLIC_MCAST], DEFAULT_PUBLIC_MCAST),
} as const;

/**
 * One operand is allowed: the curve of `-r [curve]` (the form; the real 4.10.2 takes no argument to -r and
 * has -e). Options and the operand may come in any order, as glibc getopt allows.
 */
export const PROXY_CMDLINE: CommandLineSpec<typeof PROXY_OPTIONS> = { prog: PROG, table: PROXY_OPTIONS, operandsUsage: '[curve (with -r)]', maxOperands: 1, permute: true };

export type ProxyMode = 'server' | 'client' | 'response';

/** The command line after parsing and cross-checks; what start-up works from. */
export interface ProxyArgs {
  readonly mode: ProxyMode;
  readonly server?: ServerTarget;
  readonly debug: boolean;
  readonly port: number;
  readonly ttl: number;
  readonly dscp: number;
  readonly priority: number;
  readonly outInterface?: string;
  readonly uid?: number;
  readonly destPort: number;
  readonly logLevel: number;
  readonly hbServers: readonly HostPort[];
  readonly hbInterval: number;
  readonly maxLogSize?: number;
  readonly maxLogCount: number;
  readonly bufSize: number;
  readonly logFile: string;
  readonly pidFile?: string;
  readonly clientList?: string;
  readonly serverList?: string;
  readonly keyFiles: readonly string[];
  readonly newKeys: readonly KeySpec[];
  readonly ecdhCurve?: string;
  readonly interfaces: readonly string[];
  readonly publicMcast: readonly string[];
}

export type ProxyArgsResult =
  | { readonly kind: 'ok'; readonly args: ProxyArgs }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string; readonly usage: string };

/** Parses argv (without node and script). Errors are one line "uftpproxyd: -x: ..." (exit 1). */
export function parseProxyArgs(argv: readonly string[]): ProxyArgsResult {
  const cl = parseCommandLine(PROXY_CMDLINE, argv);
  if (cl.kind !== 'ok') return cl;
  const o = cl.options;
  const fail = (message: string): ProxyArgsResult => ({ kind: 'error', message: `${PROG}: ${message}`, usage: '' });
  const modes = [o.server !== undefined, o.client, o.response].filter(Boolean).length;
  if (modes === 0) return fail('one of -s, -c or -r must be given');
  if (modes > 1) return fail('only one of -s, -c, -r may be given');
  const mode: ProxyMode = o.server !== undefined ? 'server' : o.client ? 'client' : 'response';
  let ecdhCurve = o.ecdhCurve;
  if (cl.operands.length > 0) {
    const word = cl.operands[0];
    if (mode !== 'response') return fail(`unexpected argument '${word}'`);
    const c = curve(word);
    if (!c.ok) return fail(`-r: ${c.error}`);
    if (ecdhCurve !== undefined && ecdhCurve !== c.value) return fail(`-r ${word} and -e ${ecdhCurve} name different curves`);
    ecdhCurve = c.value;
  }
  const keyFiles = o.keyFiles ?? [];
  const newKeys = o.newKeys ?? [];
  if (keyFiles.length > 0 && newKeys.length > 0 && keyFiles.length !== newKeys.length) {
    return fail(`-k and -K must list the same number of keys (${keyFiles.length} and ${newKeys.length})`);
  }
  const publicMcast = o.publicMcast;
  const fams = new Set(publicMcast.map((a) => isIP(a)));
  if (fams.size > 1) return fail('-M: public multicast addresses mix IPv4 and IPv6');
  return {
    kind: 'ok',
    args: {
      mode,
      server: o.server,
      debug: o.debug,
      port: o.port,
      ttl: o.ttl,
      dscp: o.dscp,
      priority: o.priority,
      outInterface: o.outInterface,
      uid: o.uid,
      destPort: o.destPort,
      logLevel: o.logLevel,
      hbServers: o.hbServers ?? [],
      hbInterval: o.hbInterval,
      maxLogSize: o.maxLogSize,
      maxLogCount: o.maxLogCount,
      bufSize: o.bufSize,
      logFile: o.logFile,
      pidFile: o.pidFile,
      clientList: o.clientList,
      serverList: o.serverList,
      keyFiles,
      newKeys,
      ecdhCurve,
      interfaces: o.interfaces ?? [],
      publicMcast,
    },
  };
}
