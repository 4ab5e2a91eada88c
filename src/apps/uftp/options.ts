/**
 * uftp's command line: one table row per option of `man uftp` (4.10), with the documented defaults and ranges.
 * `parseUftpArgs` does what needs no I/O: the table, then the rules that tie options together (-F excludes -H;
 * -i overrides file operands; -R is ignored under -C tfmcc; ...). Errors are one line naming the option (exit 1).
 */
import { isIP } from 'node:net';
import {
  flag, hex32, intDecOrHex, intRange, nonEmpty, oneOf, option, parseCommandLine, type ArgParser, type CommandLineSpec,
} from '../../daemon/getopt.js';
import { DEFAULT_PORT, DEFAULT_PUBLIC_MCAST } from '../../wire/constants.js';

export const PROG = 'uftp';
export const DEFAULT_PRIVATE_MCAST = '230.5.5.x';

const rate: ArgParser<number> = (raw) => {
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || (n !== -1 && n < 1)) {
    return { ok: false, error: `invalid rate '${raw}': a positive number of Kbps, or -1 for as fast as possible` };
  }
  return { ok: true, value: n };
};

const decimal = (what: string, min: number, max: number): ArgParser<number> => (raw) => {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) return { ok: false, error: `invalid ${what} '${raw}' (${min}-${max})` };
  return { ok: true, value: n };
};

export interface GrttSpec {
  readonly init: number;
  readonly min: number;
  readonly max: number;
}

const grtt: ArgParser<GrttSpec> = (raw) => {
  const parts = raw.split(':');
  if (parts.length !== 1 && parts.length !== 3) return { ok: false, error: `invalid GRTT '${raw}': init_grtt[:min_grtt:max_grtt]` };
  const p = decimal('GRTT', 0.001, 1000);
  const vals: number[] = [];
  for (const s of parts) {
    const v = p(s);
    if (!v.ok) return v;
    vals.push(v.value);
  }
  const g = { init: vals[0], min: vals[1] ?? 0.01, max: vals[2] ?? 15.0 };
  if (g.min > g.max) return { ok: false, error: `invalid GRTT '${raw}': min_grtt is above max_grtt` };
  if (g.init < g.min || g.init > g.max) return { ok: false, error: `invalid GRTT '${raw}': init_grtt outside min_grtt..max_grtt` };
  return { ok: true, value: g };
};

export interface CcSpec {
  readonly type: 'none' | 'tfmcc';
  readonly min?: number;
  readonly init?: number;
  readonly max?: number;
}

const cc: ArgParser<CcSpec> = (raw) => {
  const [type, ...params] = raw.split(':');
  if (type === 'none' && params.length === 0) return { ok: true, value: { type: 'none' } };
  if (type !== 'tfmcc') return { ok: false, error: `invalid congestion control type '${raw}' (none, tfmcc[:min=..:init=..:max=..])` };
  const out: { type: 'tfmcc'; min?: number; init?: number; max?: number } = { type: 'tfmcc' };
  for (const p of params) {
    const m = /^(min|init|max)=(\d+)$/.exec(p);
    if (!m) return { ok: false, error: `invalid TFMCC parameter '${p}' (min=, init=, max= in Kbps)` };
    out[m[1] as 'min' | 'init' | 'max'] = Number(m[2]);
  }
  return { ok: true, value: out };
};

const address: ArgParser<string> = (raw) => (raw.length > 0 ? { ok: true, value: raw } : { ok: false, error: 'empty address' });

/** -P: a multicast address where parts (not the first) may be 'x' for random. */
const privAddr: ArgParser<string> = (raw) => {
  if (raw.length === 0) return { ok: false, error: 'empty address' };
  const probe = raw.includes(':') ? raw.replace(/(^|:)x(?=:|$)/gi, '$11') : raw.replace(/(^|\.)x(?=\.|$)/gi, '$11');
  if (isIP(probe) === 0) return { ok: false, error: `invalid private multicast address '${raw}'` };
  if (/^x/i.test(raw)) return { ok: false, error: `invalid private multicast address '${raw}': the first part may not be x` };
  return { ok: true, value: raw };
};

const hostList: ArgParser<HostsSpec> = (raw) => {
  if (raw.startsWith('@')) {
    if (raw.length === 1) return { ok: false, error: 'missing host list file name after @' };
    return { ok: true, value: { kind: 'file', file: raw.slice(1) } };
  }
  const ids: number[] = [];
  for (const part of raw.split(',')) {
    const r = hex32('client ID')(part.trim());
    if (!r.ok) return r;
    ids.push(r.value);
  }
  return { ok: true, value: { kind: 'ids', ids } };
};

export type HostsSpec = { readonly kind: 'ids'; readonly ids: readonly number[] } | { readonly kind: 'file'; readonly file: string };

export const UFTP_OPTIONS = {
  rate: option('R', 'txrate', 'transmission speed in Kbps, -1 for as fast as possible', rate, 1000, '1000'),
  logFile: option('L', 'logfile', 'log file', nonEmpty('log file')),
  bufSize: option('B', 'udp_buf_size', 'UDP send and receive buffer size', intRange('buffer size', 65536, 104857600), 262144, '262144'),
  maxLogSize: option('g', 'max_log_size', 'roll the log at this many MB (1-1024)', intRange('max log size', 1, 1024)),
  maxLogCount: option('n', 'max_log_count', 'archive logs kept when rolling (1-1000)', intRange('max log count', 1, 1000), 5, '5'),
  keyType: option('Y', 'keytype', 'symmetric cipher: des, 3des, aes128-cbc, aes256-cbc, aes128-gcm, aes256-gcm, aes128-ccm, aes256-ccm, none',
    oneOf('key type', ['none', 'des', '3des', 'aes128-cbc', 'aes256-cbc', 'aes128-gcm', 'aes256-gcm', 'aes128-ccm', 'aes256-ccm'] as const), 'none', 'none'),
  hashType: option('h', 'hashtype', 'hash: sha1, sha256, sha384, sha512', oneOf('hash type', ['sha1', 'sha256', 'sha384', 'sha512'] as const), 'sha1', 'sha1'),
  sigType: option('w', 'sigtype', 'signature of encrypted messages: hmac, keyex', oneOf('signature type', ['hmac', 'keyex'] as const), 'hmac', 'hmac'),
  keyex: option('e', 'keyextype[:curve]', 'key exchange: rsa, ecdh_rsa, ecdh_ecdsa', nonEmpty('key exchange'), 'rsa', 'rsa'),
  clientAuth: flag('c', 'clients must authenticate with a CLIENT_KEY'),
  maxNakCount: option('m', 'max_nak_count', 'times a client may exceed -N before it is dropped (1-10)', intRange('max NAK count', 1, 10), 1, '1'),
  keyFile: option('k', 'key_file', 'server private key file', nonEmpty('key file')),
  keyLength: option('K', 'key_length|curve', 'generate an RSA key of this many bits or an EC key on this curve', nonEmpty('key length or curve')),
  followLinks: flag('l', 'follow symbolic links'),
  timestamps: flag('T', 'timestamp each line of output'),
  blockSize: option('b', 'block_size', 'data block size (512-8800)', intRange('block size', 512, 8800), 1300, '1300'),
  ttl: option('t', 'ttl', 'multicast TTL (1-255)', intRange('ttl', 1, 255), 1, '1'),
  dscp: option('Q', 'dscp', 'DSCP of outgoing packets (0-63, decimal or hex)', intDecOrHex('dscp', 0, 63), 0, '0'),
  sync: flag('z', 'sync mode'),
  syncPreview: flag('Z', 'sync preview mode'),
  iface: option('I', 'interface', 'interface to send from (name, hostname or address)', nonEmpty('interface')),
  port: option('p', 'port', 'UDP port to send to', intRange('port', 1, 65535), DEFAULT_PORT, String(DEFAULT_PORT)),
  sourcePort: option('u', 'source_port', 'UDP port to send from (0 = random)', intRange('source port', 0, 65535), 0, '0'),
  proxyList: option('j', 'proxylist_file', 'proxies expected to respond (ID[|fingerprint] per line)', nonEmpty('proxy list file')),
  quitOnError: flag('q', 'quit if any client aborts, drops out or never responds'),
  restartable: flag('f', 'write a restart file if a client fails'),
  sysKeys: flag('y', 'Windows system key container (no effect here)'),
  uid: option('U', 'UID', 'unique ID of this server (0xnnnnnnnn)', hex32('UID')),
  maxPasses: option('a', 'max_passes', 'maximum passes through a file (0-65535)', intRange('max passes', 0, 65535), 65535, '65535'),
  logLevel: option('x', 'log_level', 'log level (0-5)', intRange('log level', 0, 5), 2, '2'),
  txWeight: option('W', 'txweight', 'maximum transfer time as a percentage of the optimal time (110-10000)', intRange('txweight', 110, 10000)),
  hosts: option('H', 'host[,host...]|@file', 'closed group: client IDs or @file of IDs with fingerprints', hostList),
  restartFile: option('F', 'restart_file', 'resume a failed transfer from this restart file', nonEmpty('restart file')),
  excludeFile: option('X', 'exclude_file', 'file of paths to exclude, one per line', nonEmpty('exclude file')),
  publicAddr: option('M', 'pub_multicast_addr', 'public address (multicast, or unicast for unicast mode)', address, DEFAULT_PUBLIC_MCAST, DEFAULT_PUBLIC_MCAST),
  privateAddr: option('P', 'priv_multicast_addr', 'private multicast address (x = random part)', privAddr, DEFAULT_PRIVATE_MCAST, DEFAULT_PRIVATE_MCAST),
  maxNakPct: option('N', 'max_nak_pct', 'NAK percentage of a section above which a client gets a strike (0-100)', intRange('max NAK percentage', 0, 100), 100, '100'),
  cc: option('C', 'cc_type', 'congestion control: none, tfmcc[:min=..:init=..:max=..]', cc, { type: 'none' }, 'none'),
  subdir: flag('o', 'with -D: always place the files in the -D subdirectory'),
  destName: option('D', 'dest_name', 'name of the file(s) on the clients', nonEmpty('destination name')),
  baseDirs: option('E', 'base_dir[,base_dir...]', 'base directories: only their path elements are stripped', (raw) => ({ ok: true, value: raw.split(',').filter((s) => s !== '') })),
  statusFile: option('S', 'status_file', 'parsable status lines (CONNECT, RESULT, STATS) to this file, @LOG for the log', nonEmpty('status file')),
  grtt: option('r', 'init_grtt[:min_grtt:max_grtt]', 'group round trip time in seconds (0.001-1000)', grtt, { init: 0.5, min: 0.01, max: 15.0 }, '0.5:0.01:15.0'),
  robust: option('s', 'robust', 'robustness factor (10-50)', intRange('robustness factor', 10, 50), 20, '20'),
  listFile: option('i', 'list_file', 'file with the names of the files to send, - for stdin', nonEmpty('list file')),
} as const;

export type UftpOptions = { -readonly [K in keyof typeof UFTP_OPTIONS]: (typeof UFTP_OPTIONS)[K]['initial'] };

export const UFTP_COMMAND_LINE: CommandLineSpec<typeof UFTP_OPTIONS> = {
  prog: PROG,
  table: UFTP_OPTIONS,
  operandsUsage: '{ -i list_file | file [ file... ] }',
  minOperands: 0,
  maxOperands: Number.MAX_SAFE_INTEGER,
  permute: true,
};

export type ParsedUftp =
  | { readonly kind: 'ok'; readonly options: UftpOptions; readonly files: string[] }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string; readonly usage: string };

/** The command line and the rules between options; no I/O. */
export function parseUftpArgs(argv: readonly string[]): ParsedUftp {
  const c = parseCommandLine(UFTP_COMMAND_LINE, argv);
  if (c.kind !== 'ok') return c;
  const o = c.options as UftpOptions;
  const fail = (message: string): ParsedUftp => ({ kind: 'error', message: `${PROG}: ${message}`, usage: '' });
  if (o.restartFile !== undefined && o.hosts !== undefined) return fail('-F: -H may not be given with a restart file');
  if (o.sync && o.syncPreview) return fail('-z and -Z may not be given together');
  if (o.listFile === undefined && o.restartFile === undefined && c.operands.length === 0) return fail('no files to send (give files, -i list_file or -F restart_file)');
  if (o.keyex !== undefined) {
    const [kx, curve, extra] = o.keyex.split(':');
    if (!['rsa', 'ecdh_rsa', 'ecdh_ecdsa'].includes(kx) || extra !== undefined || (kx === 'rsa' && curve !== undefined)) {
      return fail(`-e: invalid key exchange '${o.keyex}' (rsa, ecdh_rsa[:curve], ecdh_ecdsa[:curve])`);
    }
  }
  return { kind: 'ok', options: o, files: c.operands };
}
