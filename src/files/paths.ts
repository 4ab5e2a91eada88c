/**
 * Where a name from a FILEINFO may land on a receiver's disk: pure checks, no I/O (the symlink checks that need
 * the disk are in disk.ts). A name is whoever sent the ANNOUNCE's choice, so everything here assumes it is hostile.
 *
 * Rules (docs/uftpd.md "Path safety"):
 *  - the name must be valid UTF-8, at most PATH_MAX_BYTES bytes, each component at most NAME_MAX_BYTES;
 *  - `..` is refused anywhere; empty and `.` components are dropped ("a//./b" is "a/b"); nothing may remain empty;
 *  - a relative name lands in the first destination directory;
 *  - an absolute name must lie strictly below one of the destination directories (component-wise, so /tmp/ab does
 *    not match -D /tmp/a) and is refused outright when files go to a temp directory (-T), as the manual says.
 */

export const PATH_MAX_BYTES = 4095;
export const NAME_MAX_BYTES = 255;

export interface Placed {
  /** Index of the destination directory (-D) the name lands in. */
  readonly destIndex: number;
  /** Components below that directory, never empty, never "." or "..". */
  readonly parts: readonly string[];
}

export type PathResult = { ok: true; value: Placed } | { ok: false; error: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes FILEINFO name bytes; undefined when they are not UTF-8 or hold a NUL. */
export function nameText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The components of a '/'-separated path without empty and "." parts; undefined if any part is "..". */
export function splitPath(p: string): string[] | undefined {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') return undefined;
    out.push(c);
  }
  return out;
}

/**
 * Places a FILEINFO name below the destination directories. `destDirs` are absolute, normalised paths (the -D
 * list); `tempDir` says whether -T is in use (then absolute names are refused).
 */
export function placeName(name: Uint8Array, destDirs: readonly string[], tempDir: boolean): PathResult {
  if (name.length === 0) return { ok: false, error: 'empty name' };
  if (name.length > PATH_MAX_BYTES) return { ok: false, error: `name of ${name.length} bytes is longer than ${PATH_MAX_BYTES}` };
  const text = nameText(name);
  if (text === undefined) return { ok: false, error: 'name is not valid UTF-8 or holds a NUL byte' };
  const parts = splitPath(text);
  if (parts === undefined) return { ok: false, error: 'name has a ".." component' };
  for (const c of parts) {
    if (Buffer.byteLength(c) > NAME_MAX_BYTES) return { ok: false, error: `a component is longer than ${NAME_MAX_BYTES} bytes` };
  }
  if (!text.startsWith('/')) {
    if (parts.length === 0) return { ok: false, error: 'name has no components' };
    return { ok: true, value: { destIndex: 0, parts } };
  }
  if (tempDir) return { ok: false, error: 'absolute name while receiving into a temp directory' };
  for (const [i, d] of destDirs.entries()) {
    const dp = splitPath(d) ?? [];
    if (parts.length <= dp.length) continue;
    if (dp.every((c, k) => parts[k] === c)) return { ok: true, value: { destIndex: i, parts: parts.slice(dp.length) } };
  }
  return { ok: false, error: 'absolute name outside every destination directory' };
}

/** The suffix of a -t temp file: `.~uftp-GGGGGGGG-FFFF` (black-box: the real uftpd 4.10.2). */
export function tempSuffix(groupId: number, fileId: number): string {
  return `.~uftp-${groupId.toString(16).toUpperCase().padStart(8, '0')}-${fileId.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The -T directory of a session: `{temp_dir}/_group_GGGGGGGG` (black-box: the real uftpd 4.10.2). */
export function sessionTempName(groupId: number): string {
  return `_group_${groupId.toString(16).toUpperCase().padStart(8, '0')}`;
}
