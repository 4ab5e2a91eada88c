/**
 * A ServerContext for tests that drive ServerSession directly (unit and simulation tests): a tag table, an ident
 * table and a file system, with an EC server key and the limits the tests share; `over` replaces any field.
 */
import type { KeyObject } from 'node:crypto';
import { generateKey } from '../crypto/keyfile.js';
import { publicKeyDer } from './crypto.js';
import type { TagFs } from './fileops.js';
import type { ServerContext } from './server-session.js';
import { parseIdentTable, parseTagTable } from './tags.js';

function must<T>(r: { ok: true; value: T } | { ok: false; error: string }, what: string): T {
  if (!r.ok) throw new Error(`${what}: ${r.error}`);
  return r.value;
}

let defaultKey: { privateKey: KeyObject; publicKey: KeyObject } | undefined;

export function testServerContext(tagText: string, fs: TagFs, o: { identText?: string; key?: { privateKey: KeyObject; publicKey: KeyObject } } = {}, over: Partial<ServerContext> = {}): ServerContext {
  const key = o.key ?? (defaultKey ??= must(generateKey('ec:prime256v1'), 'key'));
  return {
    tags: must(parseTagTable(tagText, 'tags'), 'tags'),
    idents: must(parseIdentTable(o.identText ?? '', 'idents'), 'idents'),
    fs,
    key: { privateKey: key.privateKey, publicDer: publicKeyDer(key.publicKey) },
    fingerprintOf: () => null,
    krb5: false,
    log: () => undefined,
    maxBlksize: 65464,
    maxWindow: 64,
    rexmt: 100,
    timeout: 1000,
    ...over,
  };
}
