/**
 * Atomic replacement of a file, asynchronously (every call on libuv's thread pool, nothing blocks the loop): the
 * one place for temp names beside a target, exclusive temp creation that never follows a link, the commit (the
 * old file's mode and owner, fsync, rename over the target, fsync of the directory). KTFTP's puts and gets use
 * it (src/ktftp/fileops.ts); it is there for uftpd's Disk too (whose path checks are paths.ts placeName and
 * disk.ts walkDirs).
 *
 *   const t = await createTemp(target, 'ktftp');      // `.{name}.ktftp-{12 hex}` beside target, O_EXCL|O_NOFOLLOW
 *   ... write t.fd ...
 *   await commitReplace(t.fd, t.tmp, target, () => aborted);  // old file or the complete new one, never a mix
 */
import { close, constants as fsc, fchmod, fchown, fsync, open, rename, stat, statfs, unlink } from 'node:fs';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';

const pOpen = promisify(open);
const pClose = promisify(close);
const pStat = promisify(stat);
const pStatfs = promisify(statfs);
const pFchmod = promisify(fchmod);
const pFchown = promisify(fchown);
const pFsync = promisify(fsync);
const pRename = promisify(rename);
const pUnlink = promisify(unlink);

/** A hidden, unique name beside `target`: `.{basename}.{label}-{12 hex digits}`. */
export function tempNameBeside(target: string, label: string): string {
  return posix.join(posix.dirname(target), `.${posix.basename(target)}.${label}-${randomBytes(6).toString('hex')}`);
}

export type AtomicResult<T> = { ok: true; value: T } | { ok: false; error: NodeJS.ErrnoException };

function asErrno(e: unknown): NodeJS.ErrnoException {
  return e instanceof Error ? (e as NodeJS.ErrnoException) : new Error(String(e));
}

/** Free bytes for an unprivileged writer in the file system of `dir`. */
export async function freeBytes(dir: string): Promise<AtomicResult<number>> {
  try {
    const s = await pStatfs(dir);
    return { ok: true, value: s.bavail * s.bsize };
  } catch (e) {
    return { ok: false, error: asErrno(e) };
  }
}

/**
 * Creates a new temporary file beside `target` for writing: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, so nothing
 * that exists (a file, a link planted under a guessed name) is ever opened or followed.
 */
export async function createTemp(target: string, label: string): Promise<AtomicResult<{ fd: number; tmp: string }>> {
  const tmp = tempNameBeside(target, label);
  try {
    const fd = await pOpen(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    return { ok: true, value: { fd, tmp } };
  } catch (e) {
    return { ok: false, error: asErrno(e) };
  }
}

/** fsync of a directory (after a rename or unlink in it); file systems that refuse it are let be. */
export async function syncDir(dir: string): Promise<void> {
  let fd: number;
  try {
    fd = await pOpen(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch {
    return;
  }
  try {
    await pFsync(fd);
  } catch {
    /* some file systems refuse fsync on a directory */
  } finally {
    await pClose(fd).catch(() => undefined);
  }
}

/** Closes `fd` and removes `tmp`, ignoring what is already gone (a temp file given up). */
export async function discardTemp(fd: number | null, tmp: string): Promise<void> {
  if (fd !== null) await pClose(fd).catch(() => undefined);
  await pUnlink(tmp).catch(() => undefined);
}

/**
 * Makes the temporary file `tmp` (open as `fd`, fully written) the content of `target`: it gets the old file's
 * mode and owner (0644 and ours when there is none; the owner only as root), is fsynced and closed, renamed over
 * the target (a link at the target is replaced, never written through), and the directory is fsynced. `cancelled`
 * is asked last before the rename: when it says yes, or anything fails, the temporary file goes and the target
 * stays as it was. `fd` is closed in every case.
 */
export async function commitReplace(fd: number, tmp: string, target: string, cancelled: () => boolean = () => false): Promise<AtomicResult<void> | { ok: false; cancelled: true }> {
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
    if (cancelled()) {
      await discardTemp(null, tmp);
      return { ok: false, cancelled: true };
    }
    await pRename(tmp, target);
  } catch (e) {
    await discardTemp(open ? fd : null, tmp);
    return { ok: false, error: asErrno(e) };
  }
  await syncDir(posix.dirname(target));
  return { ok: true, value: undefined };
}
