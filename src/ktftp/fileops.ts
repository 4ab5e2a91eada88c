/**
 * File operations behind tags, as the server session sees them (TagFs), and the real implementation on the
 * local file system. A put is atomic: it writes a temporary file beside the target, fsyncs it, gives it the
 * old file's mode and owner, renames it over the target and fsyncs the directory; any failure removes the
 * temporary file and leaves the old file as it was. push is rename(2) of path to path~; delete is unlink(2).
 */
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  statfsSync,
  unlinkSync,
  writeSync,
  constants as fsc,
} from 'node:fs';
import { close, fchmod, fchown, fsync, rename, stat, unlink } from 'node:fs';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { strerror } from '../crypto/keyfile.js';
import { ErrCode } from './wire.js';

const pStat = promisify(stat);
const pFchmod = promisify(fchmod);
const pFchown = promisify(fchown);
const pFsync = promisify(fsync);
const pClose = promisify(close);
const pRename = promisify(rename);
const pUnlink = promisify(unlink);

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

export interface TagFs {
  openRead(path: string): FsResult<Source>;
  openWrite(path: string, tsize: number | null): FsResult<Sink>;
  /** rename(path, path + '~') */
  push(path: string): FsResult<void>;
  remove(path: string): FsResult<void>;
  /** push and remove are the driver's (a `command` effect, commandAsync) instead of calls inside the step. */
  readonly commandsAsEffects?: boolean;
}

/** Maps a system error to a TFTP error code and message naming the path. */
export function fsError(e: unknown, path: string, what: 'read' | 'write' | 'push' | 'delete'): { ok: false; code: number; message: string } {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const text = strerror(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') return { ok: false, code: ErrCode.NOSPACE, message: `Disk full or allocation exceeded: ${text}` };
  if (code === 'ENOENT' && what !== 'write') return { ok: false, code: ErrCode.NOTFOUND, message: `File not found` };
  return { ok: false, code: ErrCode.UNDEF, message: `${what} ${path}: ${text}` };
}

const IO_CHUNK = 256 * 1024;

class FileSource implements Source {
  private buf = Buffer.allocUnsafe(IO_CHUNK);
  private start = 0;
  private end = 0;
  private eof = false;
  constructor(private fd: number, readonly size: number | null, private readonly path: string) {}

  read(max: number): FsResult<Buffer> {
    if (this.end - this.start < max && !this.eof) {
      // Refill: keep what is left and read more behind it.
      const rest = this.buf.subarray(this.start, this.end);
      const nb = Buffer.allocUnsafe(Math.max(IO_CHUNK, max * 2));
      rest.copy(nb, 0);
      let len = rest.length;
      try {
        while (len < max && !this.eof) {
          const n = readSync(this.fd, nb, len, nb.length - len, null);
          if (n === 0) this.eof = true;
          len += n;
        }
      } catch (e) {
        return fsError(e, this.path, 'read');
      }
      this.buf = nb;
      this.start = 0;
      this.end = len;
    }
    const n = Math.min(max, this.end - this.start);
    // No copy: a refill reads into a new buffer, so bytes handed out here are never overwritten.
    const out = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return { ok: true, value: out };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
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

  constructor(
    /** The descriptor the driver reads (opened by the TagFs; closed by `closeFd`). */
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

  /** The driver's answer to the read `want()` gave. A short read moves on; zero bytes is the end of the file. */
  feed(r: ReadResult): void {
    this.inFlight = false;
    if (this.closed) return;
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks = [];
    this.buffered = 0;
    this.closeFd();
  }
}

/**
 * The real TagFs, except that a get of a regular file reads through a ReadAheadSource and a put writes through a
 * WriteBehindSink (the driver reads, writes and commits: see below); other files (a FIFO, a device) are read as
 * realTagFs does; push and delete are the driver's too (commandAsync). Opening is realTagFs's synchronous call.
 */
export const readAheadTagFs: TagFs = {
  openRead(path) {
    let fd: number;
    try {
      fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    } catch (e) {
      return fsError(e, path, 'read');
    }
    let regular: boolean;
    let size: number;
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) {
        closeSync(fd);
        return { ok: false, code: ErrCode.UNDEF, message: `read ${path}: Is a directory` };
      }
      regular = st.isFile();
      size = st.size;
    } catch (e) {
      closeSync(fd);
      return fsError(e, path, 'read');
    }
    if (!regular) return { ok: true, value: new FileSource(fd, null, path) };
    return { ok: true, value: new ReadAheadSource(fd, path, size, () => closeSync(fd)) };
  },
  openWrite: openWriteBehind,
  push: (path) => realTagFs.push(path),
  remove: (path) => realTagFs.remove(path),
  commandsAsEffects: true,
};

/** The driver's push (rename to path~) or delete (unlink), on the thread pool, then fsync of the directory. */
export async function commandAsync(op: 'push' | 'delete', path: string): Promise<FsResult<void>> {
  try {
    if (op === 'push') await pRename(path, path + '~');
    else await pUnlink(path);
  } catch (e) {
    return fsError(e, path, op);
  }
  syncDir(posix.dirname(path));
  return { ok: true, value: undefined };
}

/** How much a WriteBehindSink gathers before it asks for a write (a window's end asks for what it has). */
export const WRITE_CHUNK = 256 * 1024;

/** What the driver reports for a write or the commit a WriteBehindSink asked for. */
export type WriteResult = { readonly ok: true } | { readonly ok: false; readonly code: number; readonly message: string };

/**
 * The file of a put as the machine sees it when the driver does the writing (issue 8: file I/O as effects): the
 * write-side twin of ReadAheadSource. It does no I/O. `write` gathers the blocks; `want()` asks for one write at a
 * time (all that was gathered, once it reaches `chunk` bytes or the receiver ended a window with `flush`), and for
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
    /** The temporary file beside the target. */
    readonly tmp: string,
    /** Closes the descriptor and removes the temporary file. */
    private readonly cleanup: () => void,
    private readonly chunk = WRITE_CHUNK,
  ) {}

  /** Aborted: a write that comes back now only lets the temporary file go (`feedWrite`). */
  get aborted(): boolean {
    return this.closed;
  }

  write(data: Uint8Array): FsResult<void> {
    if (this.error !== null) return { ok: false, ...this.error };
    this.pending.push(Buffer.from(data));
    this.pendingLen += data.length;
    return { ok: true, value: undefined };
  }

  /** The receiver ended a window: what is gathered may be written now. */
  flush(): void {
    if (this.pendingLen > 0) this.flushWanted = true;
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
      const bytes = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLen);
      this.pending = [];
      this.pendingLen = 0;
      this.flushWanted = false;
      this.inFlight = true;
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
    this.cleanup();
  }
}

/**
 * The driver's commit of a put written through a WriteBehindSink: the old file's mode and owner, fsync, rename
 * over the target, fsync of the directory (on the thread pool but the last); on failure the temporary file goes.
 */
export async function commitAtomic(fd: number, tmp: string, target: string): Promise<WriteResult> {
  let open = true;
  try {
    try {
      const old = await pStat(target);
      await pFchmod(fd, old.mode & 0o7777);
      try {
        await pFchown(fd, old.uid, old.gid);
      } catch {
        /* not root: the new file keeps our owner */
      }
    } catch {
      await pFchmod(fd, 0o644);
    }
    await pFsync(fd);
    open = false;
    await pClose(fd);
    await pRename(tmp, target);
  } catch (e) {
    if (open) closeQuietly(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never created or already gone */
    }
    return fsError(e, target, 'write');
  }
  syncDir(posix.dirname(target));
  return { ok: true };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

/** Opens the temporary file of a put the driver writes (the free-space check of openAtomic first). */
export function openWriteBehind(target: string, tsize: number | null): FsResult<Sink> {
  const space = spaceFor(target, tsize);
  if (space !== null) return space;
  const tmp = tempNameFor(target);
  try {
    const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    const cleanup = (): void => {
      closeQuietly(fd);
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
    };
    return { ok: true, value: new WriteBehindSink(fd, target, tmp, cleanup) };
  } catch (e) {
    return fsError(e, target, 'write');
  }
}

/** A reader over an already open descriptor (used for standard input by the client). */
export function sourceFromFd(fd: number, path: string, size: number | null): Source {
  return new FileSource(fd, size, path);
}

class AtomicSink implements Sink {
  private fd: number;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private done = false;

  constructor(private readonly target: string, private readonly tmp: string, fd: number) {
    this.fd = fd;
  }

  private flush(): FsResult<void> {
    if (this.pendingLen === 0) return { ok: true, value: undefined };
    const b = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    try {
      let off = 0;
      while (off < b.length) off += writeSync(this.fd, b, off, b.length - off);
    } catch (e) {
      return fsError(e, this.target, 'write');
    }
    return { ok: true, value: undefined };
  }

  write(data: Uint8Array): FsResult<void> {
    this.pending.push(Buffer.from(data));
    this.pendingLen += data.length;
    if (this.pendingLen >= IO_CHUNK) return this.flush();
    return { ok: true, value: undefined };
  }

  commit(): FsResult<void> {
    const f = this.flush();
    if (!f.ok) {
      this.abort();
      return f;
    }
    try {
      try {
        const old = statSync(this.target);
        fchmodSync(this.fd, old.mode & 0o7777);
        try {
          fchownSync(this.fd, old.uid, old.gid);
        } catch {
          /* not root: the new file keeps our owner */
        }
      } catch {
        fchmodSync(this.fd, 0o644);
      }
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
      renameSync(this.tmp, this.target);
      this.done = true;
      syncDir(posix.dirname(this.target));
    } catch (e) {
      this.abort();
      return fsError(e, this.target, 'write');
    }
    return { ok: true, value: undefined };
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        /* already closed */
      }
      this.fd = -1;
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      /* never created or already gone */
    }
  }
}

function syncDir(dir: string): void {
  try {
    const d = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    /* some file systems refuse fsync on a directory */
  }
}

/** The temporary name a put writes to: hidden, beside the target, unique. */
export function tempNameFor(target: string): string {
  return posix.join(posix.dirname(target), `.${posix.basename(target)}.ktftp-${randomBytes(6).toString('hex')}`);
}

/** Opens an atomic writer for `target` (also used by the client for a local get). */
export function openAtomic(target: string, tsize: number | null): FsResult<Sink> {
  const space = spaceFor(target, tsize);
  if (space !== null) return space;
  const tmp = tempNameFor(target);
  try {
    const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    return { ok: true, value: new AtomicSink(target, tmp, fd) };
  } catch (e) {
    return fsError(e, target, 'write');
  }
}

/** ENOSPACE when `tsize` bytes do not fit beside `target`; null when they do or the size is unknown. */
function spaceFor(target: string, tsize: number | null): { ok: false; code: number; message: string } | null {
  if (tsize === null) return null;
  try {
    const s = statfsSync(posix.dirname(target));
    if (tsize > s.bavail * s.bsize) return { ok: false, code: ErrCode.NOSPACE, message: `Disk full or allocation exceeded: ${tsize} bytes do not fit` };
  } catch (e) {
    return fsError(e, target, 'write');
  }
  return null;
}

export function openSource(path: string): FsResult<Source> {
  try {
    const fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      closeSync(fd);
      return { ok: false, code: ErrCode.UNDEF, message: `read ${path}: Is a directory` };
    }
    return { ok: true, value: new FileSource(fd, st.isFile() ? st.size : null, path) };
  } catch (e) {
    return fsError(e, path, 'read');
  }
}

export const realTagFs: TagFs = {
  openRead: openSource,
  openWrite: openAtomic,
  push(path) {
    try {
      renameSync(path, path + '~');
      syncDir(posix.dirname(path));
      return { ok: true, value: undefined };
    } catch (e) {
      return fsError(e, path, 'push');
    }
  },
  remove(path) {
    try {
      unlinkSync(path);
      syncDir(posix.dirname(path));
      return { ok: true, value: undefined };
    } catch (e) {
      return fsError(e, path, 'delete');
    }
  },
};

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
