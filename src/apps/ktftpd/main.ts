/**
 * ktftpd: the KTFTP server (docs/ktftp.md).
 *
 *   ktftpd [-d] [-p port] [-a address] -T tagfile -A identfile [-k keyfile] [-K rsa:len|ec:curve]
 *          [-L logfile] [-P pidfile] [-x level] [--krb5-keytab FILE]
 *
 * Keys follow uftpd's -k/-K rules: -k reads the key; -K alone makes a key that is not kept; -k with -K makes
 * the key and writes it to the keyfile; neither makes an EC prime256v1 key that is not kept. The fingerprint
 * is logged as uftp_keymgt prints it. Exit values are the UFTP daemons' (1 options/config, 2 network, 3 keys,
 * 4 log, 6 interrupted). SIGHUP re-reads the tag and identity files; a malformed line keeps the old tables.
 */
import { describeKey, generateKey, readKeyFile, writeKeyFile, type LoadedKey } from '../../crypto/keyfile.js';
import { ExitCode, StartupError } from '../../daemon/exitcodes.js';
import { flag, intRange, nonEmpty, option, parseCommandLine } from '../../daemon/getopt.js';
import { startDaemon } from '../../daemon/daemon.js';
import { DEFAULT_LOG_LEVEL, Logger } from '../../daemon/log.js';
import { KtftpServer } from '../../ktftp/server.js';
import type { Krb5Verdict } from '../../ktftp/server-session.js';

const PROG = 'ktftpd';

const spec = {
  prog: PROG,
  table: {
    debug: flag('d', 'stay in the foreground and log to stderr'),
    port: option('p', 'port', 'UDP port to listen on', intRange('port', 1, 65535), 69),
    address: option('a', 'address', 'address to listen on', nonEmpty('address'), '0.0.0.0'),
    tagfile: option('T', 'tagfile', 'tag table: tag|/absolute/path|acl', nonEmpty('tagfile')),
    identfile: option('A', 'identfile', 'identities: name|fingerprint', nonEmpty('identfile')),
    keyfile: option('k', 'keyfile', 'server private key file (PEM, as uftp_keymgt makes)', nonEmpty('keyfile')),
    keytype: option('K', 'rsa:len|ec:curve', 'generate the server key (written to -k if given)', nonEmpty('key type')),
    logfile: option('L', 'logfile', 'log file', nonEmpty('logfile'), '/tmp/ktftpd.log'),
    pidfile: option('P', 'pidfile', 'pid file', nonEmpty('pidfile')),
    level: option('x', 'log_level', 'log level 0-5', intRange('log level', 0, 5), DEFAULT_LOG_LEVEL),
  },
};

/** Takes `--krb5-keytab FILE` / `--krb5-keytab=FILE` out of argv (getopt has no long options). */
function takeLong(argv: string[], name: string): { value: string | undefined; rest: string[]; error?: string } {
  const rest: string[] = [];
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === `--${name}`) {
      if (i + 1 >= argv.length) return { value, rest, error: `option '--${name}' requires an argument` };
      value = argv[++i];
    } else if (a.startsWith(`--${name}=`)) value = a.slice(name.length + 3);
    else rest.push(a);
  }
  return { value, rest };
}

const long = takeLong(process.argv.slice(2), 'krb5-keytab');
const cl = long.error !== undefined ? { kind: 'error' as const, message: `${PROG}: ${long.error}`, usage: '' } : parseCommandLine(spec, long.rest);
if (cl.kind === 'help') {
  process.stdout.write(cl.text.replace(/\n\n/, ' [ --krb5-keytab FILE ]\n\n'));
  process.exit(0);
}
if (cl.kind === 'error') {
  process.stderr.write(cl.message + '\n' + cl.usage);
  process.exit(ExitCode.USAGE);
}
const o = cl.options;
if (o.tagfile === undefined || o.identfile === undefined) {
  process.stderr.write(`${PROG}: ${o.tagfile === undefined ? '-T tagfile' : '-A identfile'} is required\n`);
  process.exit(ExitCode.USAGE);
}
const tagfile = o.tagfile;
const identfile = o.identfile;
const keytab = long.value;

function loadKey(): LoadedKey {
  if (o.keytype !== undefined) {
    const g = generateKey(o.keytype);
    if (!g.ok) throw new StartupError(ExitCode.KEYS, `Error generating key ${o.keytype}: ${g.error}`);
    if (o.keyfile !== undefined) {
      const w = writeKeyFile(o.keyfile, g.value);
      if (!w.ok) throw new StartupError(ExitCode.KEYS, `Error writing key file ${o.keyfile}: ${w.error}`);
    }
    return g.value;
  }
  if (o.keyfile !== undefined) {
    const r = readKeyFile(o.keyfile);
    if (!r.ok) throw new StartupError(ExitCode.KEYS, `Error reading key file ${o.keyfile}: ${r.error}`);
    return r.value;
  }
  const g = generateKey('ec:prime256v1');
  if (!g.ok) throw new StartupError(ExitCode.KEYS, `Error generating key: ${g.error}`);
  return g.value;
}

const d = await startDaemon({ prog: PROG, foreground: o.debug, pidfile: o.pidfile });
try {
  const log = Logger.open({ level: o.level, foreground: o.debug, file: o.logfile });
  d.attachLogger(log);
  log.log(1, `ktftpd starting, pid ${process.pid}`);
  const key = loadKey();
  log.log(1, `Loaded ${describeKey(o.keyfile ?? '(generated key)', key)}`);
  let krb5Accept: ((token: Buffer) => Promise<Krb5Verdict>) | null = null;
  if (keytab !== undefined) {
    const k = await import('../../ktftp/krb5/index.js');
    krb5Accept = async (token) => {
      const r = await k.acceptContext(token, { keytab, service: 'ktftp' });
      return r.ok ? { ok: true, principal: r.value.principal } : { ok: false, error: r.error };
    };
    log.log(1, `Accepting Kerberos service tickets with keytab ${keytab}`);
  }
  const started = await KtftpServer.start({
    address: o.address,
    port: o.port,
    tagfile,
    identfile,
    key: { privateKey: key.privateKey, publicKey: key.publicKey },
    krb5Accept,
    log: (level, msg) => log.log(level, msg),
  });
  if (!started.ok) throw new StartupError(started.kind === 'network' ? ExitCode.NETWORK : ExitCode.USAGE, started.error);
  const server = started.server;
  d.onShutdown(() => server.close());
  d.onReload(() => {
    server.reload();
  });
  d.ready();
} catch (e) {
  d.fail(e);
}
