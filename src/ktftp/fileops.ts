/**
 * File operations behind tags, as the server session sees them (TagFs), and the real implementation on the
 * local file system. A put is atomic: it writes a temporary file beside the target, fsyncs it, gives it the
 * old file's mode and owner, renames it over the target and fsyncs the directory (src/files/atomic.ts); any
 * failure, or an abort before the rename, removes the temporary file and leaves the old file as it was. push is
 * rename(2) of path to path~; delete is unlink(2).
 *
 * The daemon's files are effects (issue 8): the machine asks, the driver does the I/O on libuv's thread pool with
 * the functions at the end of this file (openReadAsync, openWriteAsync, readAt, writeAt, commitAtomic,
 * commandAsync) and reports back. The ktftp client's local files go the same way.
 */
import { close, constants as fsc, createReadStream, fstat, open, read, rename, unlink, write } from 'node:fs';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { posix } from 'node:path';
import { strerror } from '../crypto/keyfile.js';
import { commitReplace, createTemp, discardTemp, freeBytes, syncDir } from '../files/atomic.js';
import type { KtftpEffect } from './machine.js';
import { ErrCode } from './wire.js';

const pOpen = promisify(open);
const pFstat = promisify(fstat);
const pRename = promisify(rename);
const pUnlink = promisify(unlink);

/** Closes a descriptor on the thread pool, without waiting (a source or temp file given up inside a step). */
function closeLater(fd: number): void {
  close(fd, () => undefined);
}

export type FsResult<T> = { ok: true; value: T } | { ok: false; code: number; message: string };

export interface Source {
  /**
   * Exactly `max` bytes, fewer only at end of file (an empty buffer there). A source fed asynchronously (a pipe)
   * returns null while it has fewer than `max` bytes and no end of file yet; it then calls the `onReadable`
   * callback when more has arrived.
   */
  read(max: number): FsResult<Buffer | null>;
  /** Registers the callback for a source that may return null. */
  onReadable?(cb: () => void): void;
  /** Size when known (a regular file), else null. */
  readonly size: number | null;
  close(): void;
}

export interface Sink {
  write(data: Uint8Array): FsResult<void>;
  /** Makes the written bytes the file's new content, durably. */
  commit(): FsResult<void>;
  /** Forgets everything written; the old file stays. Safe to call after commit (no-op). */
  abort(): void;
}

/**
 * The files behind tags as a session reaches them. Each operation the TagFs does not have is the driver's: the
 * machine asks with an effect (`open` for openRead/openWrite: openReadAsync/openWriteAsync; `command` for push and
 * remove: commandAsync) and goes on with the answer. The daemon's TagFs (driverTagFs) has none; the in-memory
 * one of the simulations has all.
 */
export interface TagFs {
  openRead?(path: string): FsResult<Source>;
  openWrite?(path: string, tsize: number | null): FsResult<Sink>;
  /** rename(path, path + '~') */
  push?(path: string): FsResult<void>;
  remove?(path: string): FsResult<void>;
}

/** The daemon's TagFs: every file operation is an effect the driver carries out. */
export const driverTagFs: TagFs = {};


/** Maps a system error to a TFTP error code and message naming the path. */
export function fsError(e: unknown, path: string, what: 'read' | 'write' | 'push' | 'delete'): { ok: false; code: number; message: string } {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const text = strerror(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') return { ok: false, code: ErrCode.NOSPACE, message: `Disk full or allocation exceeded: ${text}` };
  if (code === 'ENOENT' && what !== 'write') return { ok: false, code: ErrCode.NOTFOUND, message: `File not found` };
  return { ok: false, code: ErrCode.UNDEF, message: `${what} ${path}: ${text}` };
}

/** Most bytes a stream source queues before it pauses its stream. */
export const STREAM_HIGH_WATER = 4 * 1024 * 1024;

/**
 * A stream (standard input, a FIFO, a device) as a Source, read asynchronously by Node: a read that has fewer
 * than `max` bytes and no end yet returns null, and `onReadable`'s callback runs when more came (the machine's
 * driver then pokes the transfer). At most STREAM_HIGH_WATER bytes are queued: the stream is paused above that.
 * `what` names it in errors ("standard input: ...", "read /path: ..."); `code` is the TFTP code of a read error.
 */
export function streamSource(stream: NodeJS.ReadableStream & { destroy(): void }, what: string, size: number | null, code: number = ErrCode.UNDEF): Source {
  const chunks: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let error: string | null = null;
  let readable: (() => void) | null = null;
  stream.on('data', (d: Buffer) => {
    chunks.push(d);
    queued += d.length;
    if (queued > STREAM_HIGH_WATER) stream.pause();
    readable?.();
  });
  stream.on('end', () => {
    ended = true;
    readable?.();
  });
  stream.on('error', (e: Error) => {
    error = strerror(e);
    ended = true;
    readable?.();
  });
  const take = (n: number): Buffer => {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = chunks[0];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) chunks.shift();
      else chunks[0] = c.subarray(k);
    }
    queued -= n;
    return out;
  };
  return {
    size,
    onReadable(cb: () => void): void {
      readable = cb;
    },
    read(max: number): FsResult<Buffer | null> {
      if (error !== null) return { ok: false, code, message: `${what}: ${error}` };
      if (queued < max && !ended) return { ok: true, value: null };
      const out = take(Math.min(max, queued));
      if (queued < STREAM_HIGH_WATER && stream.isPaused() && !ended) stream.resume();
      return { ok: true, value: out };
    },
    close(): void {
      readable = null;
      stream.pause();
      stream.destroy();
    },
  };
}

/** How much a ReadAheadSource asks for per read, and how far ahead of the sender it keeps reading. */
export const READ_CHUNK = 256 * 1024;
export const READ_AHEAD = 1024 * 1024;

/** What the driver reports for a read a ReadAheadSource asked for. */
export type ReadResult = { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly code: number; readonly message: string };

/**
 * The file of a get as the machine sees it when the driver does the reading (issue 8: file I/O as effects). It
 * does no I/O: it asks (`want()`: `length` bytes at `position` of the descriptor `fd`, one read at a time, up to
 * READ_AHEAD bytes ahead of the sender), the machine turns that into a `read` effect, the driver reads
 * (asynchronously, pread on the thread pool) and hands the bytes back (`feed`). A block the bytes do not reach
 * yet reads as null, as a pipe's does, and the transfer goes on when the machine pokes it after `feed`.
 * Blocks are handed out as views of the fed chunks (a copy only for a block across two chunks).
 */
export class ReadAheadSource implements Source {
  private chunks: Buffer[] = [];
  /** Offset in chunks[0] of the first byte not handed out yet. */
  private head = 0;
  private buffered = 0;
  private position = 0;
  private eof = false;
  private error: { code: number; message: string } | null = null;
  private inFlight = false;
  private closed = false;
  private fdClosed = false;

  constructor(
    /** The descriptor the driver reads (opened by the driver; closed by `closeFd` once no read is in flight). */
    readonly fd: number,
    /** For the driver's error messages. */
    readonly path: string,
    readonly size: number | null,
    private readonly closeFd: () => void,
    private readonly ahead = READ_AHEAD,
    private readonly chunk = READ_CHUNK,
  ) {}

  /** The next read to ask the driver for, if any (none while one is in flight, after EOF, an error or close). */
  want(): { readonly position: number; readonly length: number } | null {
    if (this.inFlight || this.eof || this.error !== null || this.closed || this.buffered >= this.ahead) return null;
    this.inFlight = true;
    return { position: this.position, length: this.chunk };
  }

  /** Closed by the machine: a read that comes back now only lets the descriptor go (`feed`). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The driver's answer to the read `want()` gave. A short read moves on; zero bytes is the end of the file.
   * After close(), it closes the descriptor the read was using.
   */
  feed(r: ReadResult): void {
    this.inFlight = false;
    if (this.closed) {
      this.closeFdOnce();
      return;
    }
    if (!r.ok) {
      this.error = { code: r.code, message: r.message };
      return;
    }
    if (r.bytes.length === 0) {
      this.eof = true;
      return;
    }
    this.chunks.push(r.bytes);
    this.buffered += r.bytes.length;
    this.position += r.bytes.length;
  }

  read(max: number): FsResult<Buffer | null> {
    if (this.buffered < max && !this.eof) {
      if (this.error !== null) return { ok: false, ...this.error };
      return { ok: true, value: null };
    }
    const n = Math.min(max, this.buffered);
    const first = this.chunks[0];
    let out: Buffer;
    if (n === 0) out = Buffer.alloc(0);
    else if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.head += n;
    } else {
      out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const c = this.chunks[0];
        const take = Math.min(n - got, c.length - this.head);
        c.copy(out, got, this.head, this.head + take);
        got += take;
        this.head += take;
        if (this.head === c.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
    }
    if (this.chunks.length > 0 && this.head === this.chunks[0].length) {
      this.chunks.shift();
      this.head = 0;
    }
    this.buffered -= n;
    return { ok: true, value: out };
  }

  /** Gives the file up. A read on the thread pool still uses the descriptor: it is closed when that one is fed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks = [];
    this.buffered = 0;
    if (!this.inFlight) this.closeFdOnce();
  }

  private closeFdOnce(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    this.closeFd();
  }
}

/** The driver's push (rename to path~) or delete (unlink), on the thread pool, then fsync of the directory. */
export async function commandAsync(op: 'push' | 'delete', path: string): Promise<FsResult<void>> {
  try {
    if (op === 'push') await pRename(path, path + '~');
    else await pUnlink(path);
  } catch (e) {
    return fsError(e, path, op);
  }
  await syncDir(posix.dirname(path));
  return { ok: true, value: undefined };
}

/** How much a WriteBehindSink gathers before it asks for a write (a window's end asks for what it has). */
export const WRITE_CHUNK = 256 * 1024;

/** What the driver reports for a write or the commit a WriteBehindSink asked for. */
export type WriteResult = { readonly ok: true } | { readonly ok: false; readonly code: number; readonly message: string };

/**
 * The file of a put as the machine sees it when the driver does the writing (issue 8: file I/O as effects): the
 * write-side twin of ReadAheadSource. It does no I/O. `write` gathers the blocks; `want()` asks for one write at a
 * time (what was gathered, about `chunk` bytes at most, once it reaches `chunk` bytes, or a quarter of it when the
 * receiver ended a window with `flush`), and for
 * the commit once `commit` was called and every byte is written. The driver writes at `position` of the temporary
 * file `fd` and reports back (`feedWrite`); the commit (mode and owner of the old file, fsync, rename over the
 * target, fsync of the directory, or removal of the temporary file on failure) is the driver's too
 * (`commitAtomic`), and its result (`feedCommit`) decides the put's final ACK or ERROR. A failed write is kept
 * and returned by the next `write`, so it reaches the client. `abort` removes the temporary file (after a write
 * in flight has come back, so the descriptor is never closed under it).
 */
export class WriteBehindSink implements Sink {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private position = 0;
  private inFlight = false;
  private inFlightLen = 0;
  private flushWanted = false;
  private commitWanted = false;
  private commitAsked = false;
  private closed = false;
  private cleaned = false;
  /** The first failed write or commit. */
  error: { readonly code: number; readonly message: string } | null = null;
  /** The commit came back ok: the target has the new content. */
  committed = false;

  constructor(
    /** The temporary file's descriptor the driver writes. */
    readonly fd: number,
    /** The target, for messages and the commit. */
    readonly path: string,
    /** The temporary file beside the target; null for a stream (standard output: written in order, nothing to commit). */
    readonly tmp: string | null,
    /** Closes the descriptor and removes the temporary file (a promise when that is still running on return). */
    private readonly cleanup: () => unknown,
    private readonly chunk = WRITE_CHUNK,
  ) {}

  /** Aborted: a write that comes back now only lets the temporary file go (`feedWrite`). */
  get aborted(): boolean {
    return this.closed;
  }

  /** Bytes taken and not yet written (gathered, and on the thread pool): what a receiver's back-pressure looks at. */
  get backlog(): number {
    return this.pendingLen + this.inFlightLen;
  }

  write(data: Uint8Array): FsResult<void> {
    if (this.error !== null) return { ok: false, ...this.error };
    this.pending.push(Buffer.from(data));
    this.pendingLen += data.length;
    return { ok: true, value: undefined };
  }

  /**
   * The receiver ended a window: what is gathered may be written now, if it is worth a write (a quarter chunk);
   * in lock-step a write per block would cost a thread-pool round trip per block.
   */
  flush(): void {
    if (this.pendingLen >= this.chunk / 4) this.flushWanted = true;
  }

  /** Asks for the commit (the driver's): the result comes through `feedCommit`. */
  commit(): FsResult<void> {
    if (this.error !== null) return { ok: false, ...this.error };
    this.commitWanted = true;
    return { ok: true, value: undefined };
  }

  /** The next thing to ask the driver for, if any (one at a time). */
  want(): { readonly kind: 'write'; readonly position: number; readonly bytes: Buffer } | { readonly kind: 'commit' } | null {
    if (this.inFlight || this.closed || this.error !== null || this.commitAsked) return null;
    if (this.pendingLen > 0 && (this.pendingLen >= this.chunk || this.flushWanted || this.commitWanted)) {
      // at most about a chunk per write (what fell behind goes in steps, so a held ACK is let go step by step)
      let k = 0;
      let n = 0;
      while (k < this.pending.length && n < this.chunk) n += this.pending[k++].length;
      const parts = k === this.pending.length ? this.pending : this.pending.slice(0, k);
      this.pending = k === this.pending.length ? [] : this.pending.slice(k);
      const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
      this.pendingLen -= n;
      if (this.pendingLen === 0) this.flushWanted = false;
      this.inFlight = true;
      this.inFlightLen = bytes.length;
      const position = this.position;
      this.position += bytes.length;
      return { kind: 'write', position, bytes };
    }
    if (this.commitWanted && this.pendingLen === 0) {
      this.commitAsked = true;
      return { kind: 'commit' };
    }
    return null;
  }

  feedWrite(r: WriteResult): void {
    this.inFlight = false;
    this.inFlightLen = 0;
    if (this.closed) {
      this.clean();
      return;
    }
    if (!r.ok && this.error === null) this.error = { code: r.code, message: r.message };
  }

  /** The driver's commit came back; on failure it has already removed the temporary file. */
  feedCommit(r: WriteResult): void {
    this.cleaned = true;
    if (r.ok) this.committed = true;
    else if (this.error === null) this.error = { code: r.code, message: r.message };
  }

  abort(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.pendingLen = 0;
    if (!this.inFlight && !this.commitAsked) this.clean();
  }

  private clean(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    const done = this.cleanup();
    if (done instanceof Promise) this.cleaning = done.then(() => undefined);
  }

  private cleaning: Promise<void> | null = null;

  /** Resolves once the temporary file of an aborted put is gone (a driver waits for it before it exits). */
  whenClean(): Promise<void> {
    return this.cleaning ?? Promise.resolve();
  }
}

/**
 * The driver's commit of a put written through a WriteBehindSink (src/files/atomic.ts commitReplace: the old
 * file's mode and owner, fsync, rename over the target, fsync of the directory, on the thread pool). An abort of
 * the put that the machine took before the rename (the client's ERROR, a shutdown) leaves the old file: the
 * temporary file goes, as on any failure.
 */
export async function commitAtomic(file: WriteBehindSink): Promise<WriteResult> {
  if (file.tmp === null) return file.aborted ? { ok: false, code: ErrCode.UNDEF, message: `write ${file.path}: aborted` } : { ok: true };
  const r = await commitReplace(file.fd, file.tmp, file.path, () => file.aborted);
  if (r.ok) return { ok: true };
  if ('cancelled' in r) return { ok: false, code: ErrCode.UNDEF, message: `write ${file.path}: aborted before the rename` };
  return fsError(r.error, file.path, 'write');
}

/** The label of KTFTP's temporary files: `.{name}.ktftp-{12 hex}` beside the target. */
const TEMP_LABEL = 'ktftp';

/**
 * The driver's open of a put's target: the free-space check (when the client sent tsize), then a new temporary
 * file beside the target (O_CREAT|O_EXCL|O_NOFOLLOW, 0600), written through a WriteBehindSink.
 */
export async function openWriteAsync(target: string, tsize: number | null): Promise<FsResult<WriteBehindSink>> {
  if (tsize !== null) {
    const free = await freeBytes(posix.dirname(target));
    if (!free.ok) return fsError(free.error, target, 'write');
    if (tsize > free.value) return { ok: false, code: ErrCode.NOSPACE, message: `Disk full or allocation exceeded: ${tsize} bytes do not fit` };
  }
  const t = await createTemp(target, TEMP_LABEL);
  if (!t.ok) return fsError(t.error, target, 'write');
  const { fd, tmp } = t.value;
  return { ok: true, value: new WriteBehindSink(fd, target, tmp, () => discardTemp(fd, tmp)) };
}

/**
 * The driver's open of a get's file (following links: tag paths are the operator's). A regular file is read
 * through a ReadAheadSource (the driver's reads); a FIFO or a device as a stream (streamSource: read by Node as
 * data comes, the transfer poked when it has more); a directory is an error.
 */
export async function openReadAsync(path: string): Promise<FsResult<Source>> {
  let fd: number;
  try {
    fd = await pOpen(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (e) {
    return fsError(e, path, 'read');
  }
  let st: { isDirectory(): boolean; isFile(): boolean; isFIFO(): boolean; size: number };
  try {
    st = await pFstat(fd);
  } catch (e) {
    closeLater(fd);
    return fsError(e, path, 'read');
  }
  if (st.isDirectory()) {
    closeLater(fd);
    return { ok: false, code: ErrCode.UNDEF, message: `read ${path}: Is a directory` };
  }
  if (st.isFIFO()) {
    // a FIFO is polled by the event loop (a pipe handle on the non-blocking descriptor): no thread waits on it
    return { ok: true, value: streamSource(new Socket({ fd, readable: true, writable: false }), `read ${path}`, null) };
  }
  // a device: read by Node's stream on the thread pool; the descriptor goes with the stream
  if (!st.isFile()) return { ok: true, value: streamSource(createReadStream('', { fd, highWaterMark: 64 * 1024 }), `read ${path}`, null) };
  return { ok: true, value: new ReadAheadSource(fd, path, st.size, () => closeLater(fd)) };
}

/**
 * The driver's read for a ReadAheadSource (pread on the thread pool). If the machine closed the source while the
 * read ran, the result is fed here, which closes the descriptor (the machine's loop may have stopped already).
 */
export function readAt(file: ReadAheadSource, position: number, length: number): Promise<ReadResult> {
  return new Promise((resolve) => {
    read(file.fd, Buffer.allocUnsafe(length), 0, length, position, (err, n, buf) => {
      const result: ReadResult = err ? fsError(err, file.path, 'read') : { ok: true, bytes: buf.subarray(0, n) };
      if (file.isClosed) file.feed(result);
      resolve(result);
    });
  });
}

/**
 * The driver's write for a WriteBehindSink (pwrite on the thread pool, all of `bytes`). If the machine aborted
 * the sink while the write ran, the result is fed here, which lets the temporary file go.
 */
export function writeAt(file: WriteBehindSink, position: number, bytes: Buffer): Promise<WriteResult> {
  const stream = file.tmp === null;
  return new Promise((resolve) => {
    const done = (result: WriteResult): void => {
      if (file.aborted) file.feedWrite(result);
      resolve(result);
    };
    const step = (off: number): void => {
      // a stream (a pipe) is written in order at its own position; one a reader set non-blocking may say EAGAIN:
      // try again shortly (the loop goes on meanwhile; the receiver holds its ACKs while the backlog is large)
      write(file.fd, bytes, off, bytes.length - off, stream ? null : position + off, (err, n) => {
        if (err && stream && err.code === 'EAGAIN') setTimeout(() => step(off), 2);
        else if (err) done(stream ? { ok: false, code: ErrCode.UNDEF, message: `${file.path}: ${strerror(err)}` } : fsError(err, file.path, 'write'));
        else if (off + n < bytes.length) step(off + n);
        else done({ ok: true });
      });
    };
    step(0);
  });
}

/** Gives up what an open the machine no longer wants (its transfer ended meanwhile) returned. */
export function releaseOpened(r: FsResult<Source | Sink>): void {
  if (!r.ok) return;
  if ('close' in r.value) r.value.close();
  else r.value.abort();
}

/** An in-memory TagFs for simulations: same contract, no disk. */
export class MemTagFs implements TagFs {
  readonly files = new Map<string, Buffer>();
  /** When set, a write that would make a file larger than this fails with ENOSPACE. */
  capacity: number | null = null;

  openRead(path: string): FsResult<Source> {
    const f = this.files.get(path);
    if (f === undefined) return { ok: false, code: ErrCode.NOTFOUND, message: 'File not found' };
    let off = 0;
    return {
      ok: true,
      value: {
        size: f.length,
        read: (max: number) => {
          const out = f.subarray(off, off + max);
          off += out.length;
          return { ok: true, value: Buffer.from(out) };
        },
        close: () => undefined,
      },
    };
  }

  openWrite(path: string, tsize: number | null): FsResult<Sink> {
    if (tsize !== null && this.capacity !== null && tsize > this.capacity)
      return { ok: false, code: ErrCode.NOSPACE, message: 'Disk full or allocation exceeded' };
    const parts: Buffer[] = [];
    let len = 0;
    let done = false;
    return {
      ok: true,
      value: {
        write: (d) => {
          if (this.capacity !== null && len + d.length > this.capacity) return { ok: false, code: ErrCode.NOSPACE, message: 'Disk full or allocation exceeded' };
          parts.push(Buffer.from(d));
          len += d.length;
          return { ok: true, value: undefined };
        },
        commit: () => {
          if (!done) this.files.set(path, Buffer.concat(parts));
          done = true;
          return { ok: true, value: undefined };
        },
        abort: () => {
          done = true;
        },
      },
    };
  }

  push(path: string): FsResult<void> {
    const f = this.files.get(path);
    if (f === undefined) return { ok: false, code: ErrCode.NOTFOUND, message: 'File not found' };
    this.files.set(path + '~', f);
    this.files.delete(path);
    return { ok: true, value: undefined };
  }

  remove(path: string): FsResult<void> {
    if (!this.files.delete(path)) return { ok: false, code: ErrCode.NOTFOUND, message: 'File not found' };
    return { ok: true, value: undefined };
  }
}

/** The read, write and commit effects a transfer's file asks for now (none while one of each is in flight). */
export function fileEffects(src: ReadAheadSource | null, sink: WriteBehindSink | null, out: (e: KtftpEffect) => void): void {
  const want = src?.want();
  if (src && want) out({ kind: 'read', file: src, ...want });
  const w = sink?.want();
  if (sink && w) out(w.kind === 'write' ? { kind: 'write', file: sink, position: w.position, bytes: w.bytes } : { kind: 'commit', file: sink });
}
