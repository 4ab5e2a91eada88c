/**
 * The file list of a uftp session: operands (or -i list), directories recursed in name order, -X excludes,
 * symbolic links sent as links unless -l, special files skipped, -E base directories, -D / -o naming, and the
 * @DELETE:{name} and @FREESPACE metafiles. The result is what the server machine sends, in order, plus the local
 * path each regular file is read from.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FileType } from '../../wire/constants.js';
import type { ServerFile } from '../../session/server/machine.js';

export interface SourceFile extends ServerFile {
  /** Local path to read (regular files), else ''. */
  readonly source: string;
}

export interface WalkOptions {
  readonly followLinks: boolean;
  readonly excludes: ReadonlySet<string>;
  readonly baseDirs: readonly string[];
  readonly destName?: string;
  readonly subdir: boolean;
}

export interface WalkResult {
  readonly files: SourceFile[];
  /** Lines to log: skipped special files, unreadable entries, names not under a base directory. */
  readonly warnings: string[];
}

const enc = new TextEncoder();

function entry(name: string, fileType: number, size: number, mtime: number, source: string, link = ''): SourceFile {
  return { name: enc.encode(name), displayName: name, fileType, size, mtime, linkName: enc.encode(link), source };
}

/** The sent name of an operand: its last path element, or (with -E) the path below the matching base dir. */
function sentName(operand: string, baseDirs: readonly string[]): string | undefined {
  const clean = operand.replace(/\/+$/, '') || operand;
  if (baseDirs.length === 0) return path.basename(clean);
  for (const b of baseDirs) {
    const base = b.replace(/\/+$/, '');
    if (clean.startsWith(base + '/') && clean.length > base.length + 1) return clean.slice(base.length + 1);
  }
  return undefined;
}

export function walkFiles(operands: readonly string[], o: WalkOptions): WalkResult {
  const files: SourceFile[] = [];
  const warnings: string[] = [];
  const single = operands.filter((x) => !x.startsWith('@')).length === 1 && !o.subdir;
  const rename = (name: string, top: string): string => {
    if (o.destName === undefined) return name;
    if (single) return o.destName + name.slice(top.length);
    return `${o.destName}/${name}`;
  };
  const visit = (local: string, name: string, top: string, excludeKey: string): void => {
    if (o.excludes.has(excludeKey)) return;
    let st: fs.Stats;
    try {
      st = o.followLinks ? fs.statSync(local) : fs.lstatSync(local);
    } catch (e) {
      warnings.push(`Error getting status of ${local}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}, skipping`);
      return;
    }
    const mtime = Math.floor(st.mtimeMs / 1000);
    const sent = rename(name, top);
    if (st.isSymbolicLink()) {
      files.push(entry(sent, FileType.LINK, 0, 0, '', fs.readlinkSync(local)));
    } else if (st.isFile()) {
      files.push(entry(sent, FileType.REG, st.size, mtime, local));
    } else if (st.isDirectory()) {
      let names: string[];
      try {
        names = fs.readdirSync(local).sort();
      } catch (e) {
        warnings.push(`Error reading directory ${local}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}, skipping`);
        return;
      }
      if (names.length === 0) files.push(entry(sent, FileType.DIR, 0, mtime, ''));
      for (const n of names) visit(path.join(local, n), `${name}/${n}`, top, `${excludeKey}/${n}`);
    } else {
      warnings.push(`Skipping special file ${local}`);
    }
  };
  for (const op of operands) {
    if (op === '@FREESPACE') {
      files.push(entry('.', FileType.FREESPACE, 0, 0, ''));
      continue;
    }
    if (op.startsWith('@DELETE:')) {
      const n = op.slice('@DELETE:'.length);
      if (n === '') warnings.push('Empty name in @DELETE:, skipping');
      else files.push(entry(n, FileType.DELETE, 0, 0, ''));
      continue;
    }
    const name = sentName(op, o.baseDirs);
    if (name === undefined) {
      warnings.push(`${op} does not match any base directory, skipping`);
      continue;
    }
    visit(op, name, name, op.replace(/\/+$/, ''));
  }
  return { files, warnings };
}

/** Reads a list file (-i, -X): one name per line, empty lines ignored; '-' is stdin. */
export function readListFile(file: string): string[] {
  // read as bytes, then decoded: a list too large for the memory allowed fails as a RangeError the caller can
  // report (exit 5), where reading straight into a string aborts the process inside Node (std::bad_alloc)
  const text = (file === '-' ? fs.readFileSync(0) : fs.readFileSync(file)).toString('utf8');
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
}
