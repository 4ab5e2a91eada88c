/**
 * The tag table (tagfile) and the identity table (identfile), and the access decision.
 *
 *   tagfile:   tag|/absolute/path|acl       acl = comma-separated identity names, `*`, `anonymous`
 *   identfile: name|fingerprint             fingerprint as uftp_keymgt prints it (colon hex)
 *
 * Blank lines and lines starting with `#` are ignored. A malformed line is an error naming file and line.
 * Every tag `t` also answers as `t~`, its holder: the same path with `~` appended and the same ACL.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { checkTagName, ErrCode } from './wire.js';

export interface TagEntry {
  readonly tag: string;
  readonly path: string;
  readonly acl: readonly string[];
}

export interface TagTable {
  readonly entries: ReadonlyMap<string, TagEntry>;
}

export type Identity = { readonly kind: 'anonymous' } | { readonly kind: 'named'; readonly name: string; readonly via: 'key' | 'krb5' };

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

const NAME_RE = /^[^\s|,*#][^\s|,]*$/;

function lines(text: string): string[] {
  return text.split(/\r?\n/);
}

export function parseTagTable(text: string, file: string): ParseResult<TagTable> {
  const entries = new Map<string, TagEntry>();
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const raw = ls[i].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const where = `${file}:${i + 1}`;
    const f = raw.split('|');
    if (f.length !== 3) return { ok: false, error: `${where}: expected tag|/absolute/path|acl, found ${f.length} field(s)` };
    const tag = f[0].trim();
    const path = f[1].trim();
    const aclText = f[2].trim();
    if (tag.endsWith('~')) return { ok: false, error: `${where}: tag "${tag}" ends with "~" (holders are implicit)` };
    const bad = checkTagName(tag);
    if (bad !== null) return { ok: false, error: `${where}: tag "${tag}": ${bad}` };
    if (entries.has(tag)) return { ok: false, error: `${where}: tag "${tag}" defined twice` };
    if (!path.startsWith('/')) return { ok: false, error: `${where}: path "${path}" is not absolute` };
    if (path.includes('\0') || posix.normalize(path) !== path || path.endsWith('/'))
      return { ok: false, error: `${where}: path "${path}" is not a normalized file path` };
    const acl = aclText === '' ? [] : aclText.split(',').map((s) => s.trim());
    for (const a of acl) {
      if (a === '*' || a === 'anonymous') continue;
      if (!NAME_RE.test(a)) return { ok: false, error: `${where}: ACL entry "${a}" is not an identity name` };
    }
    entries.set(tag, { tag, path, acl });
  }
  return { ok: true, value: { entries } };
}

export function loadTagTable(file: string): ParseResult<TagTable> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, error: `${file}: ${(e as Error).message}` };
  }
  return parseTagTable(text, file);
}

export interface IdentTable {
  /** fingerprint (uppercase colon hex) -> identity name */
  readonly byFingerprint: ReadonlyMap<string, string>;
}

const FP_RE = /^[0-9A-F]{2}(:[0-9A-F]{2})+$/;

export function normalizeFingerprint(fp: string): string {
  return fp.trim().toUpperCase();
}

export function parseIdentTable(text: string, file: string): ParseResult<IdentTable> {
  const byFingerprint = new Map<string, string>();
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const raw = ls[i].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const where = `${file}:${i + 1}`;
    const f = raw.split('|');
    if (f.length !== 2) return { ok: false, error: `${where}: expected name|fingerprint, found ${f.length} field(s)` };
    const name = f[0].trim();
    const fp = normalizeFingerprint(f[1]);
    if (!NAME_RE.test(name) || name === 'anonymous') return { ok: false, error: `${where}: "${name}" is not a usable identity name` };
    if (!FP_RE.test(fp)) return { ok: false, error: `${where}: "${f[1].trim()}" is not a colon-hex fingerprint` };
    const prev = byFingerprint.get(fp);
    if (prev !== undefined && prev !== name) return { ok: false, error: `${where}: fingerprint already belongs to "${prev}"` };
    byFingerprint.set(fp, name);
  }
  return { ok: true, value: { byFingerprint } };
}

export function loadIdentTable(file: string): ParseResult<IdentTable> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, error: `${file}: ${(e as Error).message}` };
  }
  return parseIdentTable(text, file);
}

export type Decision = { ok: true; path: string; entry: TagEntry; holder: boolean } | { ok: false; code: number; message: string };

/**
 * May `who` use `tag` (possibly a `~` holder)? Unknown tags and refused tags get the same answer, so a
 * caller cannot probe which tags exist.
 */
export function authorize(table: TagTable, tag: string, who: Identity): Decision {
  const bad = checkTagName(tag);
  if (bad !== null) return { ok: false, code: ErrCode.ACCESS, message: `Access violation: ${bad}` };
  const holder = tag.endsWith('~');
  const base = holder ? tag.slice(0, -1) : tag;
  const entry = table.entries.get(base);
  const refused = { ok: false as const, code: ErrCode.ACCESS, message: `Access violation: tag "${tag}" is not permitted` };
  if (entry === undefined) return refused;
  const allowed =
    entry.acl.includes('anonymous') || (who.kind === 'named' && (entry.acl.includes('*') || entry.acl.includes(who.name)));
  if (!allowed) return refused;
  return { ok: true, path: holder ? entry.path + '~' : entry.path, entry, holder };
}
