/**
 * Daemonizing in Node, with the UFTP daemons' conventions.
 *
 * Unless -d, a daemon must report start-up errors (bad options 1, network 2, keys 3, log 4) BEFORE it detaches
 * and exit 0 once it runs in the background. Node cannot fork, so the program re-spawns itself detached (new
 * session, stdio ignored, an IPC channel) and waits: the child does its start-up and sends either "ready" or
 * "error <code> <message>"; the parent prints the message and exits with that code, or exits 0 on "ready".
 *
 * Use:
 *   const cl = parseCommandLine(...)            // errors -> exit 1 (in the parent, before any spawn)
 *   const d = await startDaemon({ prog, foreground: o.debug, pidfile: o.pidfile, priority: o.priority });
 *   // only the daemon (child, or the foreground process) gets here
 *   try {
 *     log = Logger.open({ ..., onFatal: (m) => void d.exit(ExitCode.LOG, m) });   // roll failure -> exit 4
 *     d.attachLogger(log); sock = await ...;                                      // StartupError(2, ...) etc.
 *   } catch (e) { d.fail(e) }                                                     // parent prints, exits code
 *   d.onShutdown(() => sock.close());  d.onReload(() => reloadTags());
 *   d.ready();                                   // pidfile written, parent exits 0
 *
 * SIGTERM/SIGINT run the shutdown hooks (last registered first), remove the pidfile, flush the log and exit 6
 * ("interrupted by the user"); SIGHUP runs the reload hooks.
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ExitCode, StartupError, type ExitCodeValue } from './exitcodes.js';
import { Logger } from './log.js';

/** Set in the environment of the re-spawned background child. */
export const DAEMON_CHILD_ENV = 'UFTP_TS_DAEMON_CHILD';

export interface DaemonOptions {
  /** Program name, for messages. */
  readonly prog: string;
  /** -d: stay in the foreground (no re-spawn). */
  readonly foreground: boolean;
  /** -P: file to write the daemon's pid to; removed on exit. */
  readonly pidfile?: string;
  /** -N: nice value -20..19. */
  readonly priority?: number;
  /** How long the parent waits for the child's start-up (ms). Default 60 s. */
  readonly startupTimeoutMs?: number;
  /** How long shutdown hooks may take altogether before the process exits anyway (ms). Default 5 s. */
  readonly shutdownTimeoutMs?: number;
}

export type ShutdownHook = () => void | Promise<void>;

export class Daemon {
  private readonly shutdownHooks: ShutdownHook[] = [];
  private readonly reloadHooks: (() => void)[] = [];
  private logger: Logger | undefined;
  private pidfileWritten = false;
  private isReady = false;
  private stopping = false;
  private failing = false;

  constructor(
    private readonly opts: DaemonOptions,
    /** True in the re-spawned background child (false with -d). */
    readonly background: boolean,
  ) {}

  /** The logger that gets the "Exiting on signal N" line and is flushed and closed on exit. */
  attachLogger(log: Logger): void {
    this.logger = log;
  }

  /** Runs on SIGTERM/SIGINT and on `exit()`: close sockets, stop timers. Last registered runs first. */
  onShutdown(hook: ShutdownHook): void {
    this.shutdownHooks.push(hook);
  }

  /** Runs on SIGHUP (e.g. ktftpd reloads its tag table). */
  onReload(hook: () => void): void {
    this.reloadHooks.push(hook);
  }

  /**
   * Start-up is complete: writes the pidfile and releases the waiting parent (which exits 0). A pidfile that
   * cannot be written is a start-up failure (exit 1).
   */
  ready(): void {
    if (this.isReady || this.failing) return;
    if (this.opts.pidfile !== undefined) {
      try {
        fs.writeFileSync(this.opts.pidfile, `${process.pid}\n`);
        this.pidfileWritten = true;
        // whatever way the process ends (process.exit from anywhere), the pidfile goes with it
        process.once('exit', () => this.removePidfile());
      } catch (e) {
        this.fail(new StartupError(ExitCode.USAGE, `Error writing pidfile ${this.opts.pidfile}: ${(e as Error).message}`));
      }
    }
    this.isReady = true;
    // what start-up logged is in the file by the time the launching process returns
    this.logger?.flush();
    if (this.background && process.send) {
      process.send('ready', () => process.disconnect());
    }
  }

  /**
   * A start-up failure: reported to the waiting parent (or printed, in the foreground) and the process exits
   * with the code. A StartupError carries its code; anything else is a bug and exits 1 with its message.
   */
  fail(e: unknown): never {
    // A failure while reporting a failure (e.g. the log's onFatal during start-up): the first report stands.
    if (this.failing) throw e instanceof DaemonExit ? e : new DaemonExit(ExitCode.USAGE);
    this.failing = true;
    const code: ExitCodeValue = e instanceof StartupError ? e.code : ExitCode.USAGE;
    const message = e instanceof Error ? e.message : String(e);
    // A foreground logger writes to stderr already: print the message there once, not twice.
    const loggedToStderr = this.logger !== undefined && this.logger.path === undefined;
    if (this.logger) {
      this.logger.error(message);
      this.logger.close();
    }
    this.removePidfile();
    if (this.background && process.send && process.connected && !this.isReady) {
      process.send(`error ${code} ${message}`, () => process.exit(code));
      // Wait for the message to go out; exit from the callback. Bound it in case the parent is gone.
      setTimeout(() => process.exit(code), 2000).unref();
      // Block further start-up work: this promise never resolves, but callers treat fail() as never returning.
      throw new DaemonExit(code);
    }
    if (!this.background && !loggedToStderr) process.stderr.write(message + '\n');
    process.exit(code);
  }

  /**
   * Exit with `code` after the shutdown hooks (pidfile removed, log flushed). A `message` goes to the log (when
   * it still works) and to stderr. For a fatal log error pass it as the Logger's onFatal:
   *   Logger.open({ ..., onFatal: (m) => void d.exit(ExitCode.LOG, m) })
   */
  async exit(code: ExitCodeValue = ExitCode.OK, message?: string): Promise<never> {
    // Before "ready" the waiting parent must get the code and message (it prints them and exits with the code).
    if (this.background && !this.isReady && code !== ExitCode.OK) this.fail(new StartupError(code, message ?? `exit ${code}`));
    if (message !== undefined) {
      this.logger?.error(message);
      if (!this.background) process.stderr.write(message + '\n');
    }
    if (!this.stopping) {
      this.stopping = true;
      await this.runShutdownHooks();
    }
    process.exit(code);
  }

  /** Installs SIGTERM/SIGINT (exit 6) and SIGHUP (reload) handlers. */
  installSignalHandlers(): void {
    const onStop = (sig: NodeJS.Signals): void => {
      if (this.stopping) return;
      this.stopping = true;
      this.logger?.error(`Exiting on signal ${os.constants.signals[sig]}`);
      void this.runShutdownHooks().then(() => process.exit(ExitCode.INTERRUPTED));
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', () => {
      this.logger?.log(2, 'Got SIGHUP, reloading');
      for (const h of this.reloadHooks) {
        try {
          h();
        } catch (e) {
          this.logger?.error(`reload failed: ${(e as Error).message}`);
        }
      }
    });
  }

  private async runShutdownHooks(): Promise<void> {
    const limit = this.opts.shutdownTimeoutMs ?? 5000;
    const all = (async () => {
      for (const h of [...this.shutdownHooks].reverse()) {
        try {
          await h();
        } catch (e) {
          this.logger?.error(`shutdown: ${(e as Error).message}`);
        }
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, limit)))]);
    if (timer) clearTimeout(timer);
    this.removePidfile();
    this.logger?.close();
  }

  private removePidfile(): void {
    if (!this.pidfileWritten || this.opts.pidfile === undefined) return;
    this.pidfileWritten = false;
    try {
      fs.unlinkSync(this.opts.pidfile);
    } catch {
      // already removed: nothing to do
    }
  }
}

/** Thrown by `fail()` in the background child to stop start-up while the error message goes to the parent. */
export class DaemonExit extends Error {
  constructor(readonly code: number) {
    super(`daemon exiting with code ${code}`);
    this.name = 'DaemonExit';
  }
}

/**
 * In the foreground (-d) or in the re-spawned child: sets the priority, installs signal handlers and returns
 * the Daemon. In the launching process (no -d): re-spawns itself detached, waits for the child's start-up and
 * exits (0 on "ready", the child's code and message on "error"): the returned promise never resolves there.
 */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const isChild = process.env[DAEMON_CHILD_ENV] === '1' && typeof process.send === 'function';
  if (!opts.foreground && !isChild) return runParent(opts);
  const d = new Daemon(opts, isChild);
  if (isChild) {
    delete process.env[DAEMON_CHILD_ENV];
    // Before "ready", an unexpected crash still reaches the parent as a message.
    process.on('uncaughtException', (e) => {
      if (e instanceof DaemonExit) return;
      d.fail(e);
    });
  }
  if (opts.priority !== undefined && opts.priority !== 0) {
    try {
      os.setPriority(opts.priority);
    } catch (e) {
      d.fail(new StartupError(ExitCode.USAGE, `Error setting priority ${opts.priority}: ${(e as Error).message}`));
    }
  }
  d.installSignalHandlers();
  return d;
}

function runParent(opts: DaemonOptions): Promise<never> {
  return new Promise<never>(() => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
    });
    let done = false;
    const finish = (code: number, message?: string): void => {
      if (done) return;
      done = true;
      if (message !== undefined) process.stderr.write(message + '\n');
      if (child.connected) child.disconnect();
      child.unref();
      process.exit(code);
    };
    const timer = setTimeout(
      () => finish(ExitCode.USAGE, `${opts.prog}: daemon did not finish start-up within ${(opts.startupTimeoutMs ?? 60000) / 1000} s`),
      opts.startupTimeoutMs ?? 60000,
    );
    timer.unref();
    child.on('message', (m: unknown) => {
      if (m === 'ready') return finish(ExitCode.OK);
      if (typeof m === 'string' && m.startsWith('error ')) {
        const sp = m.indexOf(' ', 6);
        const code = Number(m.slice(6, sp < 0 ? undefined : sp));
        finish(Number.isInteger(code) && code > 0 ? code : ExitCode.USAGE, sp < 0 ? undefined : m.slice(sp + 1));
      }
    });
    child.on('error', (e) => finish(ExitCode.USAGE, `${opts.prog}: cannot start daemon: ${e.message}`));
    child.on('exit', (code, signal) =>
      finish(code && code > 0 ? code : ExitCode.USAGE, `${opts.prog}: daemon exited (${signal ?? `code ${code}`}) before start-up completed`),
    );
  });
}

/** The options every UFTP daemon shares for start-up: -d, -P, -N and the logger's -x, -L, -g, -n. */
export interface DaemonArgs {
  readonly debug: boolean;
  readonly pidFile?: string;
  readonly priority?: number;
  readonly logLevel: number;
  readonly logFile?: string;
  readonly maxLogSize?: number;
  readonly maxLogCount?: number;
}

/**
 * The start-up sequence of every daemon, once: detach (unless -d), open the logger (a failure is exit 4), then
 * `start`, whose StartupError (or any exception) is reported before the parent exits. `start` calls d.ready().
 */
export async function runDaemon(prog: string, a: DaemonArgs, start: (d: Daemon, log: Logger) => Promise<void>): Promise<void> {
  const d = await startDaemon({ prog, foreground: a.debug, pidfile: a.pidFile, priority: a.priority });
  let log: Logger;
  try {
    log = Logger.open({ level: a.logLevel, foreground: a.debug, file: a.logFile, maxSizeMB: a.maxLogSize, maxCount: a.maxLogCount });
  } catch (e) {
    return d.fail(e instanceof StartupError ? e : new StartupError(ExitCode.LOG, `${prog}: ${(e as Error).message}`));
  }
  d.attachLogger(log);
  try {
    await start(d, log);
  } catch (e) {
    d.fail(e);
  }
}
