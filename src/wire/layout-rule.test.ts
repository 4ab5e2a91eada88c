/**
 * The rule that keeps UFTP's byte layouts in src/wire: no other source file that deals in UFTP datagrams (that
 * imports src/wire) reads or writes a field by byte offset. Checked on the TypeScript syntax tree with the type
 * checker, so it sees what the code does, not how it is spelled. In such a file, outside src/wire, these fail:
 *
 *  - indexing a Uint8Array/Buffer with a constant or a constant expression (`b[1]`, `d[m + 4]`, `b[UFTP_HEADER_LEN]`);
 *    a plain variable index (`naks[i]`, a loop over a bitmap) is fine;
 *  - Buffer's fixed-width accessors (`readUInt16BE`, `writeBigUInt64BE`, ...) and DataView's (`getUint16`, ...);
 *  - `subarray`/`slice` of a Uint8Array/Buffer at a constant offset (`d.subarray(16)`, `b.subarray(0, 28)`);
 *  - importing src/wire's raw field helpers (u16, u32, u64, put16, put32, put64, readTimestamp, putTimestamp).
 *
 * Tests are not checked (they forge hostile bytes on purpose), nor KTFTP, whose own codec is src/ktftp/wire.ts.
 * The views in src/wire (HeaderView, AnnounceView, StatusView, FileSegView, EncryptedView, AbortView, viewDatagram)
 * are the way to touch a field without a full decode. See docs/architecture.md, "Byte layouts live in src/wire".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const RAW_HELPERS = new Set(['u16', 'u32', 'u64', 'put16', 'put32', 'put64', 'readTimestamp', 'putTimestamp']);
const BUFFER_ACCESSOR = /^(read|write)(Big)?U?Int(8|16|32|64)(BE|LE)?$|^(get|set)(Big)?U?int(8|16|32|64)$/i;

interface Finding {
  file: string;
  line: number;
  text: string;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
}

/**
 * Not UFTP message layouts: KTFTP's own protocol (its codec is src/ktftp/wire.ts), pcap's link, IP and UDP headers,
 * and the crypto formats of protocol.txt section 4 (IVs, key derivation, UFTP's ECDSA signature encoding, the DER
 * and EC point forms keys are converted from),
 * which src/crypto's tests check against the real programs.
 */
const NOT_UFTP_LAYOUTS = [/^src\/wire\//, /^src\/ktftp\//, /^src\/pcap\//, /^src\/crypto\/(keys|sign|handshake|pubkey)\.ts$/];
function rel(root: string, f: string): string {
  return path.relative(root, f).split(path.sep).join('/');
}

/** Files the rule applies to: src/ but the folders above, no tests. */
export function governedFiles(root: string): string[] {
  const all: string[] = [];
  walk(path.join(root, 'src'), all);
  return all.filter((f) => !NOT_UFTP_LAYOUTS.some((r) => r.test(rel(root, f))) && !/\.test(-util)?\.ts$/.test(rel(root, f)));
}

function importsWire(sf: ts.SourceFile, file: string, root: string): boolean {
  const wire = path.join(root, 'src', 'wire');
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) && !ts.isExportDeclaration(st)) continue;
    const spec = st.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue;
    const target = path.resolve(path.dirname(file), spec.text);
    if (target === wire || target.startsWith(wire + path.sep)) return true;
  }
  return false;
}

function isBytes(checker: ts.TypeChecker, e: ts.Expression): boolean {
  const t = checker.getTypeAtLocation(e);
  const names = t.isUnion() ? t.types.map((x) => checker.typeToString(x)) : [checker.typeToString(t)];
  return names.some((n) => /^(Uint8Array|Buffer|Uint8Array<.*>|Buffer<.*>|DataView)$/.test(n));
}

/** A constant offset: a number literal, or an expression of literals and constants (UPPER_CASE or enum-like names). */
function isConstantOffset(e: ts.Expression): boolean {
  if (ts.isNumericLiteral(e)) return true;
  if (ts.isParenthesizedExpression(e)) return isConstantOffset(e.expression);
  if (ts.isIdentifier(e)) return /^[A-Z][A-Z0-9_]*$/.test(e.text);
  if (ts.isPropertyAccessExpression(e)) return /^[A-Z][A-Z0-9_]*$/.test(e.name.text);
  // base + constant, constant - x: an offset; i >> 3, i * 4, x & 7 are bit and element indexes, not offsets
  if (ts.isBinaryExpression(e) && (e.operatorToken.kind === ts.SyntaxKind.PlusToken || e.operatorToken.kind === ts.SyntaxKind.MinusToken)) {
    return isConstantOffset(e.left) || isConstantOffset(e.right);
  }
  return false;
}

/** Every place in `files` that reads or writes a UFTP field by offset. */
export function findOffsetAccess(files: readonly string[], root: string, host?: ts.CompilerHost): Finding[] {
  const program = ts.createProgram(files as string[], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, types: ['node'], skipLibCheck: true, noEmit: true }, host);
  const checker = program.getTypeChecker();
  const out: Finding[] = [];
  for (const file of files) {
    const sf = program.getSourceFile(file);
    if (!sf || !importsWire(sf, file, root)) continue;
    const report = (n: ts.Node): void => {
      const { line } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
      out.push({ file: path.relative(root, file), line: line + 1, text: n.getText(sf).slice(0, 80) });
    };
    const visit = (n: ts.Node): void => {
      if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && /\/wire\/fields(\.js)?$/.test(n.moduleSpecifier.text)) {
        const b = n.importClause?.namedBindings;
        if (b && ts.isNamedImports(b)) for (const el of b.elements) if (RAW_HELPERS.has((el.propertyName ?? el.name).text)) report(el);
      } else if (ts.isElementAccessExpression(n) && isConstantOffset(n.argumentExpression) && isBytes(checker, n.expression)) {
        report(n);
      } else if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && isBytes(checker, n.expression.expression)) {
        const m = n.expression.name.text;
        if (BUFFER_ACCESSOR.test(m)) report(n);
        else if ((m === 'subarray' || m === 'slice') && n.arguments.some((a) => isConstantOffset(a) && !(ts.isNumericLiteral(a) && a.text === '0'))) report(n);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

test('no file outside src/wire reads or writes a UFTP field by byte offset', { timeout: 120_000 }, () => {
  const governed = governedFiles(ROOT);
  assert.ok(governed.length > 20, `found ${governed.length} source files under ${ROOT}/src`);
  assert.ok(governed.some((f) => f.includes(`${path.sep}session${path.sep}proxy${path.sep}`)), 'the proxies are governed');
  const found = findOffsetAccess(governed, ROOT);
  assert.deepEqual(found.map((f) => `${f.file}:${f.line}: ${f.text}`), [], 'use a view or a Repr of src/wire instead');
});

test('the rule catches offsets, accessors and raw helpers, and lets plain indexes and views pass', { timeout: 60_000 }, () => {
  const dir = path.join(ROOT, 'src', 'session', '__rule_sample__');
  const file = path.join(dir, 'sample.ts');
  const source = `
import { UFTP_HEADER_LEN } from '../../wire/constants.js';
import { u16 } from '../../wire/fields.js';
import { HeaderView } from '../../wire/header.js';
export function bad(d: Uint8Array, b: Buffer): number {
  const m = UFTP_HEADER_LEN;
  b.writeUInt16BE(1, 18);
  return d[1] + d[m + 2] + d[UFTP_HEADER_LEN] + b.readUInt32BE(4) + u16(d, 2) + d.subarray(16).length;
}
export function good(d: Uint8Array, naks: Uint8Array): number {
  let x = 0;
  for (let i = 0; i < naks.length; i++) x |= naks[i];
  const h = HeaderView.check(d);
  const parts = ['a', 'b'];
  return x + (h.ok ? h.value.groupId : 0) + parts[1].length + d.subarray(0, naks.length).length;
}
`;
  // the sample is given to the compiler in memory: nothing is written to the tree
  const base = ts.createCompilerHost({});
  const host: ts.CompilerHost = {
    ...base,
    fileExists: (f) => f === file || base.fileExists(f),
    readFile: (f) => (f === file ? source : base.readFile(f)),
    getSourceFile: (f, lang, onError) => (f === file ? ts.createSourceFile(f, source, lang) : base.getSourceFile(f, lang, onError)),
  };
  const found = findOffsetAccess([file], ROOT, host).map((f) => f.text);
  assert.deepEqual(found.sort(), ['b.readUInt32BE(4)', 'b.writeUInt16BE(1, 18)', 'd.subarray(16)', 'd[1]', 'd[UFTP_HEADER_LEN]', 'd[m + 2]', 'u16'].sort());
});
