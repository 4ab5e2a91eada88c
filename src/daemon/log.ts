/**
 * The UFTP daemons' logging.
 *
 *  - levels 0-5 (-x, default 2): a message of level L is written when L <= the configured level; level 0 is
 *    always written. Check `enabled(level)` before building an expensive message.
 *  - each line is "YYYY/MM/DD HH:MM:SS.uuuuuu: message" in local time, as real uftpd/uftpproxyd write it
 *    (observed in their -L files at -x 5, e.g. "2026/11/22 20:04:17.798798: UFTP version 4.10.2 ...").
 *  - -L logfile (default given per program); -d writes to stderr and ignores -L and rolling.
 *  - -g max_log_size MB (1-1024): when the file would grow past it, logfile -> logfile.1, older archives
 *    shift up (logfile.1 -> logfile.2 ...), archives beyond -n max_log_count (1-1000, default 5) are deleted,
 *    and a new logfile is opened.
 *  - writes are buffered: lines collect in memory and go out in one write per event-loop turn (or when 64 KiB
 *    are pending), never one syscall per line; `flush()` writes synchronously and runs on process exit.
 *  - a failure to open or roll the log file is fatal: `onFatal` (default: message to stderr, exit 4).
 */

import * as fs from 'node:fs';
import { ExitCode, StartupError } from './exitcodes.js';

export const DEFAULT_LOG_LEVEL = 2;
export const DEFAULT_MAX_LOG_COUNT = 5;
export const MAX_LOG_LEVEL = 5;

export interface LoggerOptions {
  /** -x: 0-5. */
  readonly level: number;
  /** -d: log to stderr; `file` and rolling are ignored. */
  readonly foreground: boolean;
  /** -L: the log file (required unless foreground). */
  readonly file?: string;
  /** -g: roll when the file reaches this many MB (1-1024); undefined = never roll. */
  readonly maxSizeMB?: number;
  /** -n: archives kept when rolling (1-1000); default 5. */
  readonly maxCount?: number;
  /** Bytes per MB for -g; only tests change it (to roll at small sizes). Default 1024*1024. */
  readonly bytesPerMB?: number;
  /** Called when the log cannot be written or rolled after start-up. Default: stderr + exit(4). */
  readonly onFatal?: (message: string) => void;
}

const FLUSH_THRESHOLD = 64 * 1024;

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** "YYYY/MM/DD HH:MM:SS.uuuuuu" in local time, for a time in microseconds since the epoch. */
export function formatTimestamp(epochMicros: number): string {
  const ms = Math.floor(epochMicros / 1000);
  const d = new Date(ms);
  const us = Math.floor(epochMicros - Math.floor(epochMicros / 1e6) * 1e6);
  return (
    `${d.getFullYear()}/${pad2(d.getMonth() + 1)}/${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(us).padStart(6, '0')}`
  );
}

/** Matches one line as written by Logger (and by the real daemons). */
export const LOG_LINE_RE = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}\.\d{6}: /;

/** Microseconds since the epoch, with sub-millisecond resolution. */
function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

export class Logger {
  /** The configured level (-x). */
  readonly level: number;
  private readonly foreground: boolean;
  private readonly file: string | undefined;
  private readonly maxBytes: number;
  private readonly maxCount: number;
  private readonly onFatal: (message: string) => void;
  private fd = -1;
  private size = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private closed = false;
  /** Cached "YYYY/MM/DD HH:MM:SS" of the current second. */
  private secPrefix = '';
  private secStart = -1;
  private readonly exitFlush = (): void => this.flush();

  private constructor(opts: LoggerOptions) {
    this.level = opts.level;
    this.foreground = opts.foreground;
    this.file = opts.foreground ? undefined : opts.file;
    this.maxBytes = opts.maxSizeMB !== undefined ? opts.maxSizeMB * (opts.bytesPerMB ?? 1024 * 1024) : 0;
    this.maxCount = opts.maxCount ?? DEFAULT_MAX_LOG_COUNT;
    this.onFatal =
      opts.onFatal ??
      ((message) => {
        process.stderr.write(message + '\n');
        process.exit(ExitCode.LOG);
      });
  }

  /**
   * Opens the log (appending to an existing file, as the real daemons do). Throws StartupError(4) naming the
   * file when it cannot be opened.
   */
  static open(opts: LoggerOptions): Logger {
    if (!Number.isInteger(opts.level) || opts.level < 0 || opts.level > MAX_LOG_LEVEL) {
      throw new Error(`Logger: level ${opts.level} out of range`);
    }
    const l = new Logger(opts);
    if (!l.foreground) {
      if (l.file === undefined) throw new Error('Logger: a log file is required unless foreground');
      const r = l.openFile();
      if (r !== undefined) throw new StartupError(ExitCode.LOG, r);
    }
    process.on('exit', l.exitFlush);
    return l;
  }

  /** A logger for tests and tools: writes to stderr at the given level. */
  static stderr(level = DEFAULT_LOG_LEVEL): Logger {
    return Logger.open({ level, foreground: true });
  }

  /** The file being written, or undefined when logging to stderr. */
  get path(): string | undefined {
    return this.file;
  }

  /** True when a message of this level would be written: check it before formatting an expensive message. */
  enabled(level: number): boolean {
    return level <= this.level;
  }

  /** Writes one line at `level` (0 = always). */
  log(level: number, message: string): void {
    if (level > this.level || this.closed) return;
    this.push(message);
  }

  /** Level 0: errors, always written. */
  error(message: string): void {
    if (!this.closed) this.push(message);
  }

  private push(message: string): void {
    const t = nowMicros();
    const sec = Math.floor(t / 1e6);
    if (sec !== this.secStart) {
      this.secStart = sec;
      const full = formatTimestamp(t);
      this.secPrefix = full.slice(0, 19);
    }
    const line = `${this.secPrefix}.${String(t - sec * 1e6).padStart(6, '0')}: ${message}\n`;
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= FLUSH_THRESHOLD) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      }).unref();
    }
  }

  /** Writes everything pending, synchronously. Safe to call at any time, including from an exit handler. */
  flush(): void {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.foreground) {
      process.stderr.write(lines.join(''));
      return;
    }
    if (this.fd < 0) return;
    if (this.maxBytes === 0) {
      this.writeChunk(lines.join(''));
      return;
    }
    // Rolling: roll before a line that would take the file past the limit (a non-empty file only, so a single
    // line larger than the limit still gets written).
    let chunk = '';
    let chunkBytes = 0;
    for (const line of lines) {
      const n = Buffer.byteLength(line);
      if (this.size + chunkBytes + n > this.maxBytes && this.size + chunkBytes > 0) {
        if (chunk.length > 0) this.writeChunk(chunk);
        chunk = '';
        chunkBytes = 0;
        if (!this.roll()) return;
      }
      chunk += line;
      chunkBytes += n;
    }
    if (chunk.length > 0) this.writeChunk(chunk);
  }

  /** Flushes and closes the file. Later messages are dropped. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    process.removeListener('exit', this.exitFlush);
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already gone: nothing to flush
      }
      this.fd = -1;
    }
  }

  private writeChunk(chunk: string): void {
    try {
      const buf = Buffer.from(chunk);
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
      this.size += buf.length;
    } catch (e) {
      this.fatal(`Error writing log file ${this.file}: ${(e as Error).message}`);
    }
  }

  /** Returns an error message, or undefined when the file is open. */
  private openFile(): string | undefined {
    const file = this.file as string;
    try {
      this.fd = fs.openSync(file, 'a', 0o644);
      this.size = fs.fstatSync(this.fd).size;
      return undefined;
    } catch (e) {
      return `Error opening log file ${file}: ${(e as NodeJS.ErrnoException).message}`;
    }
  }

  /** logfile.(n-1) -> logfile.n ... logfile -> logfile.1, then a fresh logfile. False (after onFatal) on failure. */
  private roll(): boolean {
    const file = this.file as string;
    try {
      fs.closeSync(this.fd);
      this.fd = -1;
      // Archives beyond the maximum are deleted (also any left over from a larger -n earlier).
      for (let i = this.maxCount; ; i++) {
        try {
          fs.unlinkSync(`${file}.${i}`);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
          throw e;
        }
      }
      for (let i = this.maxCount - 1; i >= 1; i--) {
        try {
          fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
      fs.renameSync(file, `${file}.1`);
    } catch (e) {
      this.fatal(`Error rolling log file ${file}: ${(e as Error).message}`);
      return false;
    }
    const r = this.openFile();
    if (r !== undefined) {
      this.fatal(r);
      return false;
    }
    this.size = 0;
    return true;
  }

  private fatal(message: string): void {
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.onFatal(message);
  }
}
