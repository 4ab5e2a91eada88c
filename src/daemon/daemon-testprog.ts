#!/usr/bin/env node
/**
 * A tiny daemon built on the common layer, used by test/lab/daemon-*.test.ts to exercise daemonizing, pidfile,
 * signals, start-up errors and log rolling exactly as uftpproxyd/ktftpd use them. Not installed as a bin.
 *
 *   daemon-testprog [-d] [-P pidfile] [-L logfile] [-x level] [-g MB] [-n count] [-N prio] [-p port]
 *                   [-F code] [-w lines]
 *   -p port   bind UDP 127.0.0.1:port (in use -> exit 2)      -F code  fail start-up with this exit code
 *   -w lines  write this many 100-byte log lines at start-up and each second
 */
import * as dgram from 'node:dgram';
import { parseCommandLine, flag, option, intRange, nonEmpty } from './getopt.js';
import { Logger, DEFAULT_LOG_LEVEL, DEFAULT_MAX_LOG_COUNT } from './log.js';
import { startDaemon } from './daemon.js';
import { ExitCode, StartupError, type ExitCodeValue } from './exitcodes.js';

const spec = {
  prog: 'daemon-testprog',
  table: {
    debug: flag('d', 'foreground, log to stderr'),
    pidfile: option('P', 'pidfile', 'pid file', nonEmpty('pidfile')),
    logfile: option('L', 'logfile', 'log file', nonEmpty('logfile'), '/tmp/daemon-testprog.log'),
    level: option('x', 'log_level', 'log level', intRange('log level', 0, 5), DEFAULT_LOG_LEVEL),
    maxSize: option('g', 'max_log_size', 'roll at MB', intRange('max log size', 1, 1024)),
    maxCount: option('n', 'max_log_count', 'archives kept', intRange('max log count', 1, 1000), DEFAULT_MAX_LOG_COUNT),
    priority: option('N', 'priority', 'nice value', intRange('priority', -20, 19), 0),
    port: option('p', 'port', 'UDP port on 127.0.0.1', intRange('port', 1, 65535)),
    failCode: option('F', 'code', 'fail start-up with this code', intRange('exit code', 1, 6)),
    lines: option('w', 'lines', 'log lines per second', intRange('lines', 0, 1_000_000), 0),
  },
};

const cl = parseCommandLine(spec, process.argv.slice(2));
if (cl.kind === 'help') {
  process.stdout.write(cl.text);
  process.exit(0);
}
if (cl.kind === 'error') {
  process.stderr.write(cl.message + '\n' + cl.usage);
  process.exit(ExitCode.USAGE);
}
const o = cl.options;
const d = await startDaemon({ prog: spec.prog, foreground: o.debug, pidfile: o.pidfile, priority: o.priority });
try {
  const log = Logger.open({
    level: o.level, foreground: o.debug, file: o.logfile, maxSizeMB: o.maxSize, maxCount: o.maxCount,
    onFatal: (m) => void d.exit(ExitCode.LOG, m),
  });
  d.attachLogger(log);
  log.log(1, `daemon-testprog starting, pid ${process.pid}`);
  if (o.failCode !== undefined) throw new StartupError(o.failCode as ExitCodeValue, `Simulated start-up failure ${o.failCode}`);
  if (o.port !== undefined) {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(new StartupError(ExitCode.NETWORK, `Error binding socket for listener: ${e.message}`)));
      sock.bind(o.port, '127.0.0.1', () => resolve());
    });
    d.onShutdown(() => new Promise<void>((r) => sock.close(() => r())));
  }
  const filler = 'x'.repeat(100 - 28 - 1 - 12);
  let n = 0;
  const burst = (): void => {
    for (let i = 0; i < o.lines; i++) log.log(1, `${String(n++).padStart(10, '0')}: ${filler}`);
  };
  burst();
  const timer = setInterval(burst, 1000);
  d.onShutdown(() => clearInterval(timer));
  d.onReload(() => log.log(1, 'reloaded'));
  d.ready();
  log.log(1, 'ready');
} catch (e) {
  d.fail(e);
}
