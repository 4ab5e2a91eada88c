/**
 * Restart files (-f writes, -F resumes). The real uftp writes `_group_<group ID>_restart` in the current directory as a
 * dump of its C structures (group ID, file list, failed clients); ours has the same name and holds the same things
 * as JSON, plus which files each failed client did get, so that a resumed session announces only the files some
 * failed client still misses (a deliberate difference: the files are not interchangeable with the real uftp's).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SourceFile } from './files.js';

export interface RestartState {
  readonly groupId: number;
  readonly groupInst: number;
  readonly files: readonly SourceFile[];
  readonly failed: readonly { readonly id: number; readonly completed: readonly number[] }[];
}

interface FileJson {
  name: string;
  fileType: number;
  size: number;
  mtime: number;
  link: string;
  source: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function restartFileName(groupId: number): string {
  return `_group_${(groupId >>> 0).toString(16).toUpperCase().padStart(8, '0')}_restart`;
}

export function writeRestart(dir: string, st: RestartState): string {
  const file = path.join(dir, restartFileName(st.groupId));
  const files: FileJson[] = st.files.map((f) => ({
    name: dec.decode(f.name), fileType: f.fileType, size: f.size, mtime: f.mtime, link: dec.decode(f.linkName), source: f.source ? path.resolve(f.source) : '',
  }));
  fs.writeFileSync(file, JSON.stringify({ uftpRestart: 1, groupId: st.groupId, groupInst: st.groupInst, files, failed: st.failed }, null, 1) + '\n');
  return file;
}

/** Reads a restart file; the error is one line naming what is wrong. */
export function readRestart(file: string): { ok: true; value: RestartState } | { ok: false; error: string } {
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return { ok: false, error: `restart file ${file}: ${(e as Error).message}` };
  }
  const o = j as { uftpRestart?: number; groupId?: number; groupInst?: number; files?: FileJson[]; failed?: { id: number; completed: number[] }[] };
  if (o.uftpRestart !== 1 || typeof o.groupId !== 'number' || !Array.isArray(o.files) || !Array.isArray(o.failed)) {
    return { ok: false, error: `restart file ${file}: not a uftp-ts restart file` };
  }
  const files: SourceFile[] = o.files.map((f) => ({
    name: enc.encode(f.name), displayName: f.name, fileType: f.fileType, size: f.size, mtime: f.mtime, linkName: enc.encode(f.link), source: f.source,
  }));
  return { ok: true, value: { groupId: o.groupId >>> 0, groupInst: (o.groupInst ?? 0) & 0xff, files, failed: o.failed } };
}

/** The files of a restart that at least one failed client still misses, and those clients. */
export function restartPlan(st: RestartState): { files: SourceFile[]; hosts: number[] } {
  const files = st.files.filter((_, i) => st.failed.some((c) => !c.completed.includes(i)));
  return { files, hosts: st.failed.map((c) => c.id >>> 0) };
}
