/**
 * The receiver's disk: carries out the client machine's file effects (src/session/client/effects.ts). Synchronous
 * (node:fs *Sync), so an effect's answer is ready when the loop asks for the next one, as in the C program.
 *
 * Symlinks (docs/uftpd.md "Path safety"): below a destination directory nothing is ever written, renamed or
 * deleted THROUGH a symlink. Every directory on the way to a file is checked with lstat and must be a real
 * directory (a symlink there rejects the file); the file itself is opened with O_NOFOLLOW, and a symlink where the
 * file goes is removed (the link, never its target) before the file is made. After opening, the parent's real path
 * must still be the one walked (a symlink swapped in meanwhile is caught). The destination directories given with
 * -D (and -T, -A) may themselves be symlinks: those are the operator's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompStat } from '../wire/constants.js';
import type { ClientEffect, ClientEffectResult, RestartFile } from '../session/client/effects.js';
import { sessionTempName, tempSuffix, type Placed } from './paths.js';

export interface DiskConfig {
  /** -D, absolute. */
  readonly destDirs: readonly string[];
  /** -T, absolute. */
  readonly tempDir?: string;
  /** -t. */
  readonly tempFiles?: boolean;
  /** -A, absolute, one per -D. */
  readonly backupDirs?: readonly string[];
  /** -i. */
  readonly moveIndividually?: boolean;
  /** -s: called as `script -I GROUPID file...`. */
  readonly script?: string;
  readonly runScript: (argv: string[]) => void;
  readonly log: (level: number, text: string) => void;
  /** Wall clock (backup directory names). */
  readonly now?: () => Date;
  /**
   * Write blocks on libuv's thread pool (fs.write) instead of in the receiving thread: the event loop keeps taking
   * datagrams while the kernel copies a cache-full of data. `finish` then answers (a Promise) once the file's
   * writes are done, and a failed write is reported through `report` at once. The daemon sets it; the synchronous
   * form (default) lets tests drive the disk step by step.
   */
  readonly asyncWrites?: boolean;
  /** Where answers that come later go (a failed asynchronous write). */
  readonly report?: (r: ClientEffectResult) => void;
  /** Called with each written block of data once the disk is done with it (the machine's buffer pool). */
  readonly release?: (data: Uint8Array) => void;
}

interface OpenFile {
  fd: number;
  readonly groupId: number;
  readonly sid: number;
  readonly finalPath: string;
  readonly writePath: string;
  readonly destIndex: number;
  readonly size: number;
  /** -t with -A: the existing file is backed up when the new one is complete. */
  backupAtFinish: boolean;
  /** Asynchronous writes not yet done, the first error of one, and what to run when none is left. */
  pending: number;
  error?: string;
  onIdle?: () => void;
}

type Walk = { ok: true; dir: string } | { ok: false; error: string };

function errText(e: unknown): string {
  const x = e as NodeJS.ErrnoException;
  return x.code ? `${x.code}: ${x.message}` : String(e);
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Walks `parts` below `root`, each a real directory (made when `create`); a symlink or a file on the way fails. */
export function walkDirs(root: string, parts: readonly string[], create: boolean): Walk {
  let cur = root;
  for (const c of parts) {
    const next = path.join(cur, c);
    let st: fs.Stats | undefined;
    try {
      st = lstatOrUndefined(next);
      if (st === undefined) {
        if (!create) return { ok: false, error: `${next} does not exist` };
        fs.mkdirSync(next, { mode: 0o755 });
        st = fs.lstatSync(next);
      }
    } catch (e) {
      return { ok: false, error: `${next}: ${errText(e)}` };
    }
    if (st.isSymbolicLink()) return { ok: false, error: `${next} is a symbolic link; not followed` };
    if (!st.isDirectory()) return { ok: false, error: `${next} is not a directory` };
    cur = next;
  }
  return { ok: true, dir: cur };
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

export class Disk {
  private readonly files = new Map<number, OpenFile>();
  /** Files given up while writes of theirs were still on the thread pool. */
  private readonly closing = new Set<OpenFile>();
  /** Top-level entries received into a session's -T directory (for the end-of-session move and script). */
  private readonly now: () => Date;

  constructor(private readonly cfg: DiskConfig) {
    this.now = cfg.now ?? (() => new Date());
  }

  /** Files open now (tests: nothing leaks). */
  get openCount(): number {
    return this.files.size;
  }

  private root(destIndex: number, groupId: number): string {
    if (this.cfg.tempDir !== undefined) return path.join(this.cfg.tempDir, sessionTempName(groupId));
    return this.cfg.destDirs[destIndex] ?? this.cfg.destDirs[0];
  }

  /** Carries out a file effect; the answer for those that have one. Other effect types are the driver's. */
  execute(e: ClientEffect): ClientEffectResult | Promise<ClientEffectResult> | undefined {
    switch (e.type) {
      case 'open': return this.open(e.req, e.session.groupId, e.session.sid, e.fileId, e.name, e.placed, e.size, e.mtime, e.sync, e.preview);
      case 'write': return this.write(e.req, e.offset, e.data);
      case 'finish': return this.finish(e.req, e.mtime);
      case 'discard': this.discard(e.req, e.keep === true); return undefined;
      case 'save-restart': this.saveRestart(e.session.groupId, e.files); return undefined;
      case 'mkdir': return this.mkdir(e.req, e.session.groupId, e.placed, e.mtime);
      case 'symlink': return this.symlink(e.req, e.session.groupId, e.placed, e.target);
      case 'delete': return this.remove(e.req, e.placed);
      case 'freespace': return this.freespace(e.req);
      case 'session-end': this.sessionEnd(e.session.sid, e.session.groupId, e.ok); return undefined;
      default: return undefined;
    }
  }

  private fail(req: number, error: string, disk = false): ClientEffectResult {
    return { req, ok: false, error, disk };
  }

  private ensureRoot(destIndex: number, groupId: number): Walk {
    const root = this.root(destIndex, groupId);
    if (this.cfg.tempDir !== undefined) {
      try {
        const st = lstatOrUndefined(root);
        if (st === undefined) fs.mkdirSync(root, { mode: 0o700 });
        else if (!st.isDirectory()) return { ok: false, error: `${root} is not a directory` };
      } catch (e) {
        return { ok: false, error: `${root}: ${errText(e)}` };
      }
    }
    return { ok: true, dir: root };
  }

  private open(req: number, groupId: number, sid: number, fileId: number, name: string, placed: Placed, size: number, mtime: number, sync: boolean, preview: boolean): ClientEffectResult {
    const r = this.ensureRoot(placed.destIndex, groupId);
    if (!r.ok) return this.fail(req, r.error);
    const again = this.restartEntry(groupId, name, size);
    if (again) {
      const res = this.reopen(req, groupId, sid, placed, size, again, r.dir);
      if (res) return res;
    }
    const parentParts = placed.parts.slice(0, -1);
    const leaf = placed.parts[placed.parts.length - 1];
    const w = walkDirs(r.dir, parentParts, !preview);
    if (!w.ok) {
      if (preview && w.error.endsWith('does not exist')) return { req, ok: true, status: CompStat.NORMAL };
      return this.fail(req, w.error);
    }
    const finalPath = path.join(w.dir, leaf);
    let existing: fs.Stats | undefined;
    try {
      existing = lstatOrUndefined(finalPath);
    } catch (e) {
      return this.fail(req, `${finalPath}: ${errText(e)}`);
    }
    if (existing?.isDirectory()) return this.fail(req, `${finalPath} is a directory`);
    // sync mode looks at the file in the destination (with -T there is none to look at: the manual says so)
    let status: number = CompStat.NORMAL;
    if (sync && existing?.isFile()) {
      // black-box, the real uftpd 4.10.2: skipped when the existing file is newer, or as old and of the same size
      const em = Math.floor(existing.mtimeMs / 1000);
      status = em > mtime || (em === mtime && existing.size === size) ? CompStat.SKIPPED : CompStat.OVERWRITE;
    }
    if (preview || status === CompStat.SKIPPED) return { req, ok: true, status };
    const temp = this.cfg.tempFiles === true && this.cfg.tempDir === undefined;
    const writePath = temp ? finalPath + tempSuffix(groupId, fileId) : finalPath;
    let backupAtFinish = false;
    if (existing?.isFile() && this.cfg.backupDirs !== undefined) {
      if (temp) backupAtFinish = true;
      else {
        const b = this.backup(placed.destIndex, finalPath);
        if (!b.ok) return this.fail(req, b.error);
      }
    }
    let fd: number;
    try {
      const wst = lstatOrUndefined(writePath);
      if (wst?.isSymbolicLink()) fs.unlinkSync(writePath); // the link goes, its target is never touched
      fd = fs.openSync(writePath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644);
    } catch (e) {
      return this.fail(req, `${writePath}: ${errText(e)}`, (e as NodeJS.ErrnoException).code === 'ENOSPC');
    }
    // the directories walked must still be the real ones (a symlink swapped in after the walk is caught here)
    try {
      const want = path.join(fs.realpathSync(r.dir), ...parentParts);
      if (fs.realpathSync(w.dir) !== want) {
        fs.closeSync(fd);
        return this.fail(req, `${w.dir} changed into a link while opening ${leaf}`);
      }
    } catch (e) {
      fs.closeSync(fd);
      return this.fail(req, `${w.dir}: ${errText(e)}`);
    }
    this.files.set(req, { fd, groupId, sid, finalPath, writePath, destIndex: placed.destIndex, size, backupAtFinish, pending: 0 });
    return { req, ok: true, status };
  }

  private write(req: number, offset: number, data: Uint8Array): ClientEffectResult | undefined {
    const f = this.files.get(req);
    if (f === undefined || f.error !== undefined) return undefined;
    if (this.cfg.asyncWrites) {
      f.pending++;
      const step = (done: number): void => {
        fs.write(f.fd, data, done, data.length - done, offset + done, (err, n) => {
          if (!err && done + n < data.length) return step(done + n);
          if (err && f.error === undefined) {
            f.error = `${f.writePath}: ${errText(err)}`;
            this.cfg.report?.(this.fail(req, f.error, true));
          }
          this.cfg.release?.(data);
          if (--f.pending === 0 && f.onIdle) f.onIdle();
        });
      };
      step(0);
      return undefined;
    }
    try {
      let done = 0;
      while (done < data.length) done += fs.writeSync(f.fd, data, done, data.length - done, offset + done);
      this.cfg.release?.(data);
    } catch (e) {
      f.error = `${f.writePath}: ${errText(e)}`;
      return this.fail(req, f.error, true);
    }
    return undefined;
  }

  private finish(req: number, mtime: number): ClientEffectResult | Promise<ClientEffectResult> {
    const f = this.files.get(req);
    if (f === undefined) return this.fail(req, 'file not open');
    if (f.pending > 0) {
      return new Promise((resolve) => {
        f.onIdle = () => {
          f.onIdle = undefined;
          resolve(this.finish(req, mtime));
        };
      });
    }
    this.files.delete(req);
    if (f.error !== undefined) {
      // a write failed: nothing of it stays where a temp file was used (-t, -T)
      this.closeQuietly(f);
      if (f.writePath !== f.finalPath || this.cfg.tempDir !== undefined) fs.rmSync(f.writePath, { force: true });
      return this.fail(req, f.error, true);
    }
    try {
      fs.ftruncateSync(f.fd, f.size);
      fs.futimesSync(f.fd, mtime, mtime);
      fs.closeSync(f.fd);
    } catch (e) {
      try {
        fs.closeSync(f.fd);
      } catch {
        // closed already
      }
      return this.fail(req, `${f.writePath}: ${errText(e)}`, true);
    }
    if (f.writePath !== f.finalPath) {
      try {
        if (f.backupAtFinish) {
          const st = lstatOrUndefined(f.finalPath);
          if (st?.isFile()) {
            const b = this.backup(f.destIndex, f.finalPath);
            if (!b.ok) return this.fail(req, b.error);
          }
        }
        fs.renameSync(f.writePath, f.finalPath); // replaces a link at finalPath, never writes through it
      } catch (e) {
        return this.fail(req, `${f.finalPath}: ${errText(e)}`);
      }
    }
    if (this.cfg.tempDir === undefined) this.script(f.groupId, [f.finalPath]);
    return { req, ok: true, status: CompStat.NORMAL };
  }

  /** -T: the record a failed session of this group left, `{temp_dir}/_group_GGGGGGGG_restart` (our JSON). */
  private restartPath(groupId: number): string | undefined {
    if (this.cfg.tempDir === undefined) return undefined;
    return path.join(this.cfg.tempDir, `${sessionTempName(groupId)}_restart`);
  }

  private readRestart(groupId: number): RestartFile[] {
    const p = this.restartPath(groupId);
    if (p === undefined) return [];
    try {
      const j = JSON.parse(fs.readFileSync(p, 'utf8')) as { version?: number; files?: RestartFile[] };
      return j.version === 1 && Array.isArray(j.files) ? j.files : [];
    } catch {
      return []; // none, or not ours (the C uftpd writes its own binary file under the same name)
    }
  }

  private restartEntry(groupId: number, name: string, size: number): RestartFile | undefined {
    return this.readRestart(groupId).find((f) => f.name === name && f.size === size);
  }

  /** A file the failed session left: complete (nothing to open), or partial (opened without truncating it). */
  private reopen(req: number, groupId: number, sid: number, placed: Placed, size: number, e: RestartFile, root: string): ClientEffectResult | undefined {
    const w = walkDirs(root, placed.parts.slice(0, -1), false);
    if (!w.ok) return undefined;
    const file = path.join(w.dir, placed.parts[placed.parts.length - 1]);
    let st: fs.Stats | undefined;
    try {
      st = lstatOrUndefined(file);
    } catch {
      return undefined;
    }
    if (!st?.isFile()) return undefined;
    if (e.complete) {
      if (st.size !== size) return undefined;
      this.cfg.log(2, `Restart: ${file} was received completely before`);
      return { req, ok: true, status: CompStat.NORMAL, restart: { complete: true } };
    }
    if (!e.sections) return undefined;
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    this.files.set(req, { fd, groupId, sid, finalPath: file, writePath: file, destIndex: placed.destIndex, size, backupAtFinish: false, pending: 0 });
    this.cfg.log(2, `Restart: resuming ${file}`);
    return { req, ok: true, status: CompStat.NORMAL, restart: { complete: false, sections: e.sections } };
  }

  private saveRestart(groupId: number, files: readonly RestartFile[]): void {
    const p = this.restartPath(groupId);
    if (p === undefined) return;
    const kept = this.readRestart(groupId).filter((x) => !files.some((f) => f.name === x.name));
    try {
      fs.writeFileSync(p, JSON.stringify({ version: 1, groupId, files: [...kept, ...files] }), { mode: 0o600 });
      this.cfg.log(2, `Writing restart file ${p}`);
    } catch (e) {
      this.cfg.log(1, `Error writing restart file ${p}: ${errText(e)}`);
    }
  }

  /** Resolves when no asynchronous write is left (the daemon waits for this before it exits). */
  whenIdle(): Promise<void> {
    const busy = [...this.files.values(), ...this.closing].filter((f) => f.pending > 0);
    if (busy.length === 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(() => resolve(this.whenIdle()), 10));
  }

  private closeQuietly(f: OpenFile): void {
    try {
      fs.closeSync(f.fd);
    } catch {
      // already closed
    }
  }

  private discard(req: number, keep = false): void {
    const f = this.files.get(req);
    if (f === undefined) return;
    // a finish waiting for its writes owns the file: every block is in, so it is completed, not thrown away
    if (f.onIdle !== undefined) return;
    this.files.delete(req);
    if (f.pending > 0) this.closing.add(f);
    const drop = (): void => {
      this.closing.delete(f);
      this.closeQuietly(f);
      if (!keep && (f.writePath !== f.finalPath || this.cfg.tempDir !== undefined)) {
        try {
          fs.unlinkSync(f.writePath);
        } catch {
          // gone already
        }
      }
    };
    // writes still on the thread pool finish first (their fd stays open until then)
    if (f.pending > 0) f.onIdle = drop;
    else drop();
  }

  private mkdir(req: number, groupId: number, placed: Placed, mtime: number): ClientEffectResult {
    const r = this.ensureRoot(placed.destIndex, groupId);
    if (!r.ok) return this.fail(req, r.error);
    const w = walkDirs(r.dir, placed.parts, true);
    if (!w.ok) return this.fail(req, w.error);
    try {
      if (mtime > 0) fs.utimesSync(w.dir, mtime, mtime);
    } catch {
      // the time is a courtesy
    }
    return { req, ok: true, status: CompStat.NORMAL };
  }

  private symlink(req: number, groupId: number, placed: Placed, target: string): ClientEffectResult {
    const r = this.ensureRoot(placed.destIndex, groupId);
    if (!r.ok) return this.fail(req, r.error);
    const w = walkDirs(r.dir, placed.parts.slice(0, -1), true);
    if (!w.ok) return this.fail(req, w.error);
    const p = path.join(w.dir, placed.parts[placed.parts.length - 1]);
    try {
      const st = lstatOrUndefined(p);
      if (st?.isDirectory()) return this.fail(req, `${p} is a directory`);
      if (st !== undefined) fs.unlinkSync(p);
      fs.symlinkSync(target, p);
    } catch (e) {
      return this.fail(req, `${p}: ${errText(e)}`);
    }
    // the real uftpd runs -s for regular files only, not for links
    return { req, ok: true, status: CompStat.NORMAL };
  }

  /** @DELETE: in the destination directory (also with -T); a directory goes with its contents, links are not followed. */
  private remove(req: number, placed: Placed): ClientEffectResult {
    const root = this.cfg.destDirs[placed.destIndex] ?? this.cfg.destDirs[0];
    const w = walkDirs(root, placed.parts.slice(0, -1), false);
    if (!w.ok) {
      if (w.error.endsWith('does not exist')) return { req, ok: true, status: CompStat.NORMAL };
      return this.fail(req, w.error);
    }
    const p = path.join(w.dir, placed.parts[placed.parts.length - 1]);
    try {
      const st = lstatOrUndefined(p);
      if (st === undefined) return { req, ok: true, status: CompStat.NORMAL };
      if (st.isDirectory()) fs.rmSync(p, { recursive: true, force: true });
      else fs.unlinkSync(p);
    } catch (e) {
      return this.fail(req, `${p}: ${errText(e)}`);
    }
    this.cfg.log(2, `Deleted ${p}`);
    return { req, ok: true, status: CompStat.NORMAL };
  }

  private freespace(req: number): ClientEffectResult {
    try {
      const s = fs.statfsSync(this.cfg.destDirs[0]);
      return { req, ok: true, status: CompStat.NORMAL, free: BigInt(s.bavail) * BigInt(s.bsize) };
    } catch (e) {
      return this.fail(req, errText(e));
    }
  }

  /** -A: {backup}/YYYYMMDD/HHMMSS/full/path/of/file. */
  private backup(destIndex: number, file: string): { ok: true } | { ok: false; error: string } {
    const dir = this.cfg.backupDirs?.[destIndex];
    if (dir === undefined) return { ok: true };
    const d = this.now();
    const stamp = [`${d.getFullYear()}${pad2(d.getMonth() + 1)}${pad2(d.getDate())}`, `${pad2(d.getHours())}${pad2(d.getMinutes())}${pad2(d.getSeconds())}`];
    const to = path.join(dir, ...stamp, ...file.split('/').filter((c) => c !== ''));
    try {
      fs.mkdirSync(path.dirname(to), { recursive: true, mode: 0o755 });
      fs.renameSync(file, to);
    } catch (e) {
      return { ok: false, error: `backing up ${file} to ${to}: ${errText(e)}` };
    }
    this.cfg.log(2, `Backed up ${file} to ${to}`);
    return { ok: true };
  }

  private script(groupId: number, files: string[]): void {
    if (this.cfg.script === undefined || files.length === 0) return;
    const argv = [this.cfg.script, '-I', groupId.toString(16).toUpperCase().padStart(8, '0'), ...files];
    this.cfg.log(2, `Running postreceive: ${argv.join(' ')}`);
    this.cfg.runScript(argv);
  }

  /** End of a session: close what is still open; with -T move what was received into place (or keep it for a restart). */
  private sessionEnd(sid: number, groupId: number, ok: boolean): void {
    for (const [req, f] of this.files) if (f.sid === sid) this.discard(req);
    if (this.cfg.tempDir === undefined) return;
    const root = path.join(this.cfg.tempDir, sessionTempName(groupId));
    if (!ok) {
      if (fs.existsSync(root)) this.cfg.log(2, `Session incomplete: received files kept in ${root}`);
      return;
    }
    let entries: string[];
    try {
      entries = fs.readdirSync(root);
    } catch {
      return;
    }
    const dest = this.cfg.destDirs[0];
    const moved: string[] = [];
    for (const name of entries.sort()) {
      const from = path.join(root, name);
      if (this.cfg.moveIndividually) this.moveTree(groupId, from, dest, [name], moved);
      else {
        const to = path.join(dest, name);
        try {
          const st = lstatOrUndefined(to);
          if (st?.isDirectory()) fs.rmSync(to, { recursive: true, force: true });
          else if (st !== undefined) fs.unlinkSync(to);
          fs.renameSync(from, to);
          moved.push(to);
        } catch (e) {
          this.cfg.log(1, `Error moving ${from} to ${to}: ${errText(e)}`);
        }
      }
    }
    if (!this.cfg.moveIndividually) this.script(groupId, moved);
    const rp = this.restartPath(groupId);
    if (rp !== undefined) fs.rmSync(rp, { force: true });
    try {
      fs.rmSync(root, { recursive: true, force: true });
    } catch (e) {
      this.cfg.log(1, `Error removing ${root}: ${errText(e)}`);
    }
  }

  /** -i: files moved one by one into real directories of the destination (made as needed, never through a link). */
  private moveTree(groupId: number, from: string, dest: string, parts: string[], moved: string[]): void {
    const st = fs.lstatSync(from);
    if (st.isDirectory()) {
      const w = walkDirs(dest, parts, true);
      if (!w.ok) return this.cfg.log(1, `Error moving ${from}: ${w.error}`);
      for (const n of fs.readdirSync(from).sort()) this.moveTree(groupId, path.join(from, n), dest, [...parts, n], moved);
      return;
    }
    const w = walkDirs(dest, parts.slice(0, -1), true);
    if (!w.ok) return this.cfg.log(1, `Error moving ${from}: ${w.error}`);
    const to = path.join(w.dir, parts[parts.length - 1]);
    try {
      const t = lstatOrUndefined(to);
      if (t?.isDirectory()) fs.rmSync(to, { recursive: true, force: true });
      fs.renameSync(from, to);
      moved.push(to);
      this.script(groupId, [to]);
    } catch (e) {
      this.cfg.log(1, `Error moving ${from} to ${to}: ${errText(e)}`);
    }
  }
}
