/**
 * ktftp: the KTFTP client (docs/ktftp.md). BSD tftp's interactive mode plus push and delete, or one
 * command on the command line for scripts:
 *
 *   ktftp [-k keyfile] [-F fingerprint] [-p port] [-t timeout] [-r rexmt] [-b blksize] [-w windowsize] [-v]
 *         [--krb5] [--known-hosts FILE]  get HOST:TAG [LOCAL|-] | put LOCAL|- HOST:TAG | push HOST:TAG | delete HOST:TAG
 *   ktftp [options] [host [port]]          interactive
 *
 * Exit codes (the seed's table): 0 success, 255 (-1) local error, 1 EUNDEF, 2 ENOTFOUND, 3 EACCESS,
 * 4 ENOSPACE, 5 EBADOP, 6 EBADID, 7 EEXISTS, 8 ENOUSER, 9 ETIMEOUT.
 */
import { existsSync, fstatSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readKeyFile } from '../../crypto/keyfile.js';
import { defaultKnownHosts, pinCheck, runClient } from '../../ktftp/client.js';
import { exitCodeFor, type ClientAuth } from '../../ktftp/client-session.js';
import { openReadAsync, openWriteAsync, streamSource, WriteBehindSink, type Sink, type Source } from '../../ktftp/fileops.js';
import { discardTemp } from '../../files/atomic.js';
import type { Outcome } from '../../ktftp/transfer.js';
import type { Packet, RequestOp } from '../../ktftp/wire.js';
import { getopt } from '../../daemon/getopt.js';

const PROG = 'ktftp';
const LOCAL_ERROR = 255;

interface Settings {
  keyfile: string | undefined;
  fingerprint: string | undefined;
  port: number;
  timeout: number; // s
  rexmt: number; // s
  blksize: number;
  windowsize: number;
  mode: 'octet' | 'netascii';
  verbose: boolean;
  trace: boolean;
  krb5: boolean;
  knownHosts: string;
  host: string | undefined;
}

const USAGE = `usage: ${PROG} [-k keyfile] [-F server_fingerprint] [-p port] [-t timeout] [-r rexmt] [-b blksize] [-w windowsize] [-v]
            [--krb5] [--known-hosts FILE] COMMAND
  COMMAND:  get HOST:TAG [LOCAL|-]  |  put LOCAL|- HOST:TAG  |  push HOST:TAG  |  delete HOST:TAG
            or nothing / [host [port]] for interactive mode
`;

function err(msg: string): void {
  process.stderr.write(`${PROG}: ${msg}\n`);
}

function parseSeconds(what: string, raw: string): number | string {
  if (!/^\d+(\.\d+)?$/.test(raw)) return `${what} '${raw}' is not a number of seconds`;
  const n = Number(raw);
  if (n <= 0 || n > 3600) return `${what} ${raw} out of range (0-3600]`;
  return n;
}

function parseInt2(what: string, raw: string, min: number, max: number): number | string {
  if (!/^\d+$/.test(raw)) return `${what} '${raw}' is not an integer`;
  const n = Number(raw);
  return n < min || n > max ? `${what} ${raw} out of range ${min}-${max}` : n;
}

/** Splits HOST:TAG (IPv6 as [addr]:TAG). */
function hostTag(s: string): { host: string; tag: string } | null {
  if (s.startsWith('[')) {
    const c = s.indexOf(']:');
    if (c < 0) return null;
    return { host: s.slice(1, c), tag: s.slice(c + 2) };
  }
  const c = s.lastIndexOf(':');
  if (c <= 0 || c === s.length - 1) return null;
  return { host: s.slice(0, c), tag: s.slice(c + 1) };
}

/**
 * Standard output as the sink of a get: written in order by the driver on the thread pool (a write effect per
 * window or 256 KiB, one at a time); while a slow reader lets more than MAX_WRITE_BACKLOG wait, the ACKs wait
 * too. A pipe cannot take back what it got: the exit code tells.
 */
function stdoutSink(): WriteBehindSink {
  return new WriteBehindSink(1, 'standard output', null, () => undefined);
}

/**
 * Standard input as a source, read asynchronously (a pipe may stall; the transfer keeps retransmitting and
 * answering meanwhile; fileops.ts streamSource: at most 4 MiB queued).
 */
function stdinSource(): Source {
  let size: number | null = null;
  try {
    const st = fstatSync(0);
    if (st.isFile()) size = st.size;
  } catch {
    /* unknown */
  }
  return streamSource(process.stdin, 'standard input', size, 0);
}

function describe(o: Outcome): string {
  if (o.ok) return '';
  if (o.kind === 'tftp') return o.remote ? `Error code ${o.code}: ${o.message}` : o.message;
  return o.message;
}

async function authFor(s: Settings, host: string): Promise<ClientAuth | string> {
  if (s.krb5) {
    const k = await import('../../ktftp/krb5/index.js');
    const c = await k.initiateContext(`ktftp@${host}`, { mutual: false });
    if (!c.ok) return `Kerberos: ${c.error}`;
    return { method: 'krb5', token: c.value.token };
  }
  let file = s.keyfile;
  if (file === undefined) {
    const dflt = join(process.env.HOME ?? homedir(), '.ktftp', 'key');
    if (existsSync(dflt)) file = dflt;
  }
  if (file === undefined) return { method: 'none' };
  const r = readKeyFile(file);
  if (!r.ok) return `${file}: ${r.error}`;
  return { method: 'key', privateKey: r.value.privateKey, publicKey: r.value.publicKey };
}

function traceLine(dir: 'sent' | 'received', p: Packet | string): void {
  if (typeof p === 'string') return void process.stderr.write(`${dir} ${p}\n`);
  let t: string;
  switch (p.type) {
    case 'REQUEST':
      t = `${p.op} <tag=${p.tag}, mode=${p.mode}, ${p.options.map(([n, v]) => `${n}=${v.length > 24 ? v.slice(0, 24) + '...' : v}`).join(', ')}>`;
      break;
    case 'DATA':
      t = `DATA <block=${p.block}, ${p.data.length} bytes>`;
      break;
    case 'ACK':
      t = `ACK <block=${p.block}>`;
      break;
    case 'ERROR':
      t = `ERROR <code=${p.code}, msg=${p.message}>`;
      break;
    case 'OACK':
      t = `OACK <${p.options.map(([n, v]) => `${n}=${v.length > 24 ? v.slice(0, 24) + '...' : v}`).join(', ')}>`;
      break;
    case 'AUTH':
      t = `AUTH <method=${p.method}, ${p.credential.length}+${p.proof.length} bytes> (sealed)`;
      break;
  }
  process.stderr.write(`${dir} ${t}\n`);
}

/** Runs one operation; prints what failed; returns the exit code. */
async function operate(s: Settings, op: RequestOp, host: string, tag: string, local: string | undefined, signal?: AbortSignal): Promise<number> {
  const auth = await authFor(s, host);
  if (typeof auth === 'string') {
    err(auth);
    return LOCAL_ERROR;
  }
  let source: Source | undefined;
  let sink: Sink | undefined;
  if (op === 'WRQ') {
    if (local === '-') source = stdinSource();
    else {
      const r = await openReadAsync(local!);
      if (!r.ok) {
        err(`${local}: ${r.message}`);
        return LOCAL_ERROR;
      }
      source = r.value;
    }
  } else if (op === 'RRQ') {
    const target = local ?? tag;
    if (target === '-') sink = stdoutSink();
    else {
      const w = await openWriteAsync(target, null);
      if (!w.ok) {
        err(`${target}: ${w.message}`);
        return LOCAL_ERROR;
      }
      sink = w.value;
    }
  }
  const res = await runClient(
    {
      host,
      port: s.port,
      op,
      tag,
      mode: s.mode,
      blksize: s.blksize,
      windowsize: s.windowsize,
      rexmt: s.rexmt * 1000,
      timeout: s.timeout * 1000,
      auth,
      verifyServer: pinCheck(host, s.fingerprint, s.knownHosts),
      source,
      sink,
      tsize: source?.size ?? null,
      trace: s.trace ? traceLine : undefined,
    },
    signal,
  );
  // an aborted get leaves no temporary file (its removal may still be on the thread pool)
  if (sink instanceof WriteBehindSink && sink.tmp !== null && !sink.committed) await discardTemp(null, sink.tmp);
  const code = exitCodeFor(res.outcome);
  if (!res.outcome.ok) err(describe(res.outcome));
  else if (s.verbose && (op === 'RRQ' || op === 'WRQ')) {
    const secs = res.elapsedMs / 1000;
    process.stderr.write(
      `${op === 'RRQ' ? 'Received' : 'Sent'} ${res.outcome.bytes} bytes in ${secs.toFixed(3)} seconds [${Math.round((res.outcome.bytes * 8) / Math.max(secs, 1e-6))} bits/sec]` +
        ` (blksize ${res.session.negotiated.blksize}, windowsize ${res.session.negotiated.windowsize})\n`,
    );
  } else if (s.verbose) process.stderr.write(`${op === 'PUSH' ? 'Pushed' : 'Deleted'} ${tag}\n`);
  return code;
}

function parseArgs(argv: string[]): { s: Settings; operands: string[] } | string {
  const s: Settings = {
    keyfile: undefined,
    fingerprint: undefined,
    port: 69,
    timeout: 25,
    rexmt: 1,
    blksize: 1408,
    windowsize: 16,
    mode: 'octet',
    verbose: false,
    trace: false,
    krb5: false,
    knownHosts: defaultKnownHosts(),
    host: undefined,
  };
  const short: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--krb5') s.krb5 = true;
    else if (a === '--known-hosts' || a.startsWith('--known-hosts=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) return "option '--known-hosts' requires an argument";
      s.knownHosts = v;
    } else if (a === '--help') return 'help';
    else if (a.startsWith('--') && a !== '--') return `unrecognized option '${a}'`;
    else short.push(a);
  }
  const g = getopt(short, 'k:F:p:t:r:b:w:v');
  if (!g.ok) return g.error;
  for (const { opt, arg } of g.value.options) {
    const v = arg ?? '';
    let r: number | string = 0;
    switch (opt) {
      case 'k':
        s.keyfile = v;
        break;
      case 'F':
        if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$/.test(v)) return `-F: '${v}' is not a colon-hex fingerprint`;
        s.fingerprint = v.toUpperCase();
        break;
      case 'p':
        r = parseInt2('port', v, 1, 65535);
        if (typeof r === 'number') s.port = r;
        break;
      case 't':
        r = parseSeconds('timeout', v);
        if (typeof r === 'number') s.timeout = r;
        break;
      case 'r':
        r = parseSeconds('rexmt', v);
        if (typeof r === 'number') s.rexmt = r;
        break;
      case 'b':
        r = parseInt2('blksize', v, 8, 65464);
        if (typeof r === 'number') s.blksize = r;
        break;
      case 'w':
        r = parseInt2('windowsize', v, 1, 65535);
        if (typeof r === 'number') s.windowsize = r;
        break;
      case 'v':
        s.verbose = true;
        break;
    }
    if (typeof r === 'string') return `-${opt}: ${r}`;
  }
  return { s, operands: g.value.operands };
}

const OPS: Record<string, RequestOp> = { get: 'RRQ', put: 'WRQ', push: 'PUSH', delete: 'DELETE' };

async function commandLine(s: Settings, operands: string[]): Promise<number> {
  const [cmd, ...args] = operands;
  const op = OPS[cmd];
  const bad = (m: string): number => {
    err(m);
    process.stderr.write(USAGE);
    return LOCAL_ERROR;
  };
  if (op === 'RRQ') {
    if (args.length < 1 || args.length > 2) return bad('get: expected HOST:TAG [LOCAL|-]');
    const ht = hostTag(args[0]);
    if (ht === null) return bad(`get: '${args[0]}' is not HOST:TAG`);
    return operate(s, op, ht.host, ht.tag, args[1], interruptSignal());
  }
  if (op === 'WRQ') {
    if (args.length !== 2) return bad('put: expected LOCAL|- HOST:TAG');
    const ht = hostTag(args[1]);
    if (ht === null) return bad(`put: '${args[1]}' is not HOST:TAG`);
    return operate(s, op, ht.host, ht.tag, args[0], interruptSignal());
  }
  // push / delete: one or more HOST:TAG (the seed: "the named tags")
  if (args.length < 1) return bad(`${cmd}: expected HOST:TAG`);
  let code = 0;
  for (const a of args) {
    const ht = hostTag(a);
    if (ht === null) return bad(`${cmd}: '${a}' is not HOST:TAG`);
    const c = await operate(s, op, ht.host, ht.tag, undefined, interruptSignal());
    if (c !== 0) code = c;
    if (c !== 0) break;
  }
  return code;
}

function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  const on = (): void => ac.abort();
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  ac.signal.addEventListener('abort', () => undefined);
  return ac.signal;
}

const HELP = `Commands may be abbreviated.  Commands are:

connect     connect to remote ktftp server: connect host [port]
get         receive file:  get tag [local]   or  get host:tag [local]   (local "-" is standard output)
put         send file:     put local [tag]   or  put local host:tag     (local "-" is standard input)
push        move tags to their ~ holders:    push tag...
delete      delete the files of tags:        delete tag...
mode        set file transfer mode (octet/binary or netascii/ascii)
binary      set mode to octet
ascii       set mode to netascii
status      show current status
verbose     toggle verbose mode
trace       toggle packet tracing
rexmt       set per-packet retransmission timeout (seconds)
timeout     set total retransmission timeout (seconds)
blksize     set block size
windowsize  set window size
quit        exit ktftp
?           print help information
`;

async function interactive(s: Settings): Promise<number> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  let last = 0;
  const prompt = (): void => {
    if (process.stdin.isTTY) rl.setPrompt('ktftp> ');
    if (process.stdin.isTTY) rl.prompt();
  };
  const need = (): string | null => {
    if (s.host === undefined) {
      process.stdout.write('No target machine specified.\n');
      return null;
    }
    return s.host;
  };
  const target = (t: string): { host: string; tag: string } | null => {
    const ht = t.includes(':') ? hostTag(t) : null;
    if (ht !== null) return ht;
    const h = need();
    return h === null ? null : { host: h, tag: t };
  };
  const run = async (line: string): Promise<boolean> => {
    const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
    if (words.length === 0) return true;
    const [c, ...a] = words;
    const match = (name: string): boolean => c.length > 0 && name.startsWith(c);
    const num = (what: string, v: string | undefined, f: (n: number) => void, int = false): void => {
      if (v === undefined) return void process.stdout.write(`usage: ${what} value\n`);
      const r = int ? parseInt2(what, v, what === 'blksize' ? 8 : 1, 65535) : parseSeconds(what, v);
      if (typeof r === 'string') process.stdout.write(`${r}\n`);
      else f(r);
    };
    if (c === '?' || match('help')) process.stdout.write(HELP);
    else if (match('quit') || c === 'exit') return false;
    else if (match('connect')) {
      if (a.length < 1) process.stdout.write('usage: connect host [port]\n');
      else {
        s.host = a[0];
        if (a[1] !== undefined) {
          const p = parseInt2('port', a[1], 1, 65535);
          if (typeof p === 'string') process.stdout.write(`${p}\n`);
          else s.port = p;
        }
      }
    } else if (match('mode')) {
      if (a[0] === undefined) process.stdout.write(`Using ${s.mode} mode to transfer files.\n`);
      else if (a[0] === 'octet' || a[0] === 'binary') s.mode = 'octet';
      else if (a[0] === 'netascii' || a[0] === 'ascii') s.mode = 'netascii';
      else process.stdout.write(`${a[0]}: unknown mode\n`);
    } else if (match('binary')) s.mode = 'octet';
    else if (match('ascii')) s.mode = 'netascii';
    else if (match('status')) {
      process.stdout.write(
        `Connected to ${s.host ?? '(none)'}${s.host !== undefined ? ` port ${s.port}` : ''}.\n` +
          `Mode: ${s.mode} Verbose: ${s.verbose ? 'on' : 'off'} Tracing: ${s.trace ? 'on' : 'off'}\n` +
          `Rexmt-interval: ${s.rexmt} seconds, Max-timeout: ${s.timeout} seconds\n` +
          `Blksize: ${s.blksize} Windowsize: ${s.windowsize} Identity: ${s.krb5 ? 'Kerberos ticket' : (s.keyfile ?? 'default key or none')}\n`,
      );
    } else if (match('verbose')) {
      s.verbose = !s.verbose;
      process.stdout.write(`Verbose mode ${s.verbose ? 'on' : 'off'}.\n`);
    } else if (match('trace')) {
      s.trace = !s.trace;
      process.stdout.write(`Packet tracing ${s.trace ? 'on' : 'off'}.\n`);
    } else if (match('rexmt')) num('rexmt', a[0], (n) => (s.rexmt = n));
    else if (match('timeout')) num('timeout', a[0], (n) => (s.timeout = n));
    else if (match('blksize')) num('blksize', a[0], (n) => (s.blksize = n), true);
    else if (match('windowsize')) num('windowsize', a[0], (n) => (s.windowsize = n), true);
    else if (match('get')) {
      if (a.length < 1) process.stdout.write('usage: get tag [local]\n');
      else {
        const t = target(a[0]);
        if (t !== null) last = await operate(s, 'RRQ', t.host, t.tag, a[1]);
      }
    } else if (match('put')) {
      if (a.length < 1) process.stdout.write('usage: put local [tag]\n');
      else if (a[0] === '-') process.stdout.write('put: standard input holds the commands in interactive mode\n');
      else {
        const t = target(a[1] ?? a[0].split('/').pop()!);
        if (t !== null) last = await operate(s, 'WRQ', t.host, t.tag, a[0]);
      }
    } else if (match('push') || match('delete')) {
      const op: RequestOp = match('push') ? 'PUSH' : 'DELETE';
      if (a.length < 1) process.stdout.write(`usage: ${op === 'PUSH' ? 'push' : 'delete'} tag...\n`);
      for (const x of a) {
        const t = target(x);
        if (t === null) break;
        last = await operate(s, op, t.host, t.tag, undefined);
        if (last !== 0) break;
      }
    } else process.stdout.write('?Invalid command\n');
    return true;
  };
  prompt();
  for await (const line of rl) {
    const goOn = await run(line);
    if (!goOn) break;
    prompt();
  }
  rl.close();
  return last;
}

async function main(): Promise<number> {
  const p = parseArgs(process.argv.slice(2));
  if (p === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (typeof p === 'string') {
    err(p);
    process.stderr.write(USAGE);
    return LOCAL_ERROR;
  }
  const { s, operands } = p;
  if (operands.length > 0 && OPS[operands[0]] !== undefined) return commandLine(s, operands);
  if (operands.length > 0) {
    s.host = operands[0];
    if (operands[1] !== undefined) {
      const port = parseInt2('port', operands[1], 1, 65535);
      if (typeof port === 'string') {
        err(port);
        return LOCAL_ERROR;
      }
      s.port = port;
    }
  }
  return interactive(s);
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    err(`internal error: ${(e as Error).message}`);
    process.exit(LOCAL_ERROR);
  },
);
