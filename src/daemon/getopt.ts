/**
 * POSIX getopt(3) for the daemons' command lines, driven by an optstring like the C programs'
 * ("s:crdp:t:..."): a letter takes an argument when followed by ':'.
 *
 *  - flags cluster: `-dm` is `-d -m`; an argument may be attached (`-p1044`) or separate (`-p 1044`),
 *    and inside a cluster the rest of the word is the argument (`-dp1044`);
 *  - `--` ends the options; a lone `-` is an operand;
 *  - by default (POSIX) the first operand ends the options; with `permute: true` options and operands may
 *    be interleaved as glibc allows (operands keep their order);
 *  - errors are the messages glibc prints, without the "prog: " prefix:
 *    "invalid option -- 'z'", "option requires an argument -- 'p'".
 *
 * Long options are not part of getopt; the declarative layer (options.ts) handles `--help` itself.
 */

import type { Result } from '../core/result.js';

export interface ParsedOpt {
  /** The option letter, e.g. 'p'. */
  readonly opt: string;
  /** Its argument, for letters followed by ':' in the optstring. */
  readonly arg?: string;
}

export interface GetoptOutput {
  /** Options in command-line order (an option given twice appears twice). */
  readonly options: ParsedOpt[];
  readonly operands: string[];
}

export interface GetoptOptions {
  /** glibc's default: options may follow operands. Default false (POSIX: the first operand ends options). */
  readonly permute?: boolean;
}

/** Letters of an optstring mapped to whether they take an argument. Throws on a malformed optstring (a bug). */
export function parseOptstring(optstring: string): Map<string, boolean> {
  const m = new Map<string, boolean>();
  let s = optstring;
  if (s.startsWith('+') || s.startsWith('-')) s = s.slice(1);
  if (s.startsWith(':')) s = s.slice(1);
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === ':' || c === '-') throw new Error(`getopt: malformed optstring ${JSON.stringify(optstring)} at ${i}`);
    if (m.has(c)) throw new Error(`getopt: letter '${c}' twice in optstring ${JSON.stringify(optstring)}`);
    const takesArg = s[i + 1] === ':';
    m.set(c, takesArg);
    if (takesArg) i++;
  }
  return m;
}

/** Parses argv (without the program name). Errors name the offending letter as glibc does. */
export function getopt(argv: readonly string[], optstring: string, opts: GetoptOptions = {}): Result<GetoptOutput, string> {
  const letters = parseOptstring(optstring);
  const options: ParsedOpt[] = [];
  const operands: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const word = argv[i];
    if (word === '--') {
      for (let j = i + 1; j < argv.length; j++) operands.push(argv[j]);
      break;
    }
    if (word.length < 2 || word[0] !== '-') {
      if (!opts.permute) {
        for (let j = i; j < argv.length; j++) operands.push(argv[j]);
        break;
      }
      operands.push(word);
      i++;
      continue;
    }
    // A cluster of letters: -abc, -pVALUE, -ab VALUE
    i++;
    for (let k = 1; k < word.length; k++) {
      const c = word[k];
      const takesArg = letters.get(c);
      if (takesArg === undefined) return { ok: false, error: `invalid option -- '${c}'` };
      if (!takesArg) {
        options.push({ opt: c });
        continue;
      }
      if (k + 1 < word.length) {
        options.push({ opt: c, arg: word.slice(k + 1) });
      } else if (i < argv.length) {
        options.push({ opt: c, arg: argv[i] });
        i++;
      } else {
        return { ok: false, error: `option requires an argument -- '${c}'` };
      }
      break;
    }
  }
  return { ok: true, value: { options, operands } };
}

// ---------------------------------------------------------------------------------------------------------
// Declarative layer: an option table with names, argument parsers and validation, typed results,
// one-line errors naming the option, and usage text generated from the table.
// ---------------------------------------------------------------------------------------------------------

/** Parses one option argument; the error is the message without "prog: -x: " (e.g. "log level 9 out of range 0-5"). */
export type ArgParser<T> = (raw: string) => Result<T, string>;

/** One row of an option table. R is the type the option has in the parsed result. */
export interface OptionSpec<R> {
  /** The letter, e.g. 'p'. */
  readonly flag: string;
  /** Name of the argument in the usage text ("port"); undefined for a flag without argument. */
  readonly argName?: string;
  /** One line of help. */
  readonly help: string;
  /** The value when the option is absent. */
  readonly initial: R;
  /** Shown in the help text as "(default: ...)" when set. */
  readonly defaultText?: string;
  /** Folds one occurrence into the value so far. */
  apply(raw: string | undefined, prev: R): Result<R, string>;
}

/** A table of options by result name. (`apply` is a method, so OptionSpec<boolean> fits OptionSpec<unknown>.) */
export type OptionTable = Readonly<Record<string, OptionSpec<unknown>>>;

export type ParsedOptions<T extends OptionTable> = { -readonly [K in keyof T]: T[K] extends OptionSpec<infer R> ? R : never };

/** A flag without argument: false when absent, true when given (any number of times). */
export function flag(letter: string, help: string): OptionSpec<boolean> {
  return { flag: letter, help, initial: false, apply: () => ({ ok: true, value: true }) };
}

/** An option with an argument and a default: the last occurrence wins. */
export function option<T>(letter: string, argName: string, help: string, parse: ArgParser<T>, defaultValue: T, defaultText?: string): OptionSpec<T>;
/** An option with an argument and no default: undefined when absent; the last occurrence wins. */
export function option<T>(letter: string, argName: string, help: string, parse: ArgParser<T>): OptionSpec<T | undefined>;
export function option<T>(letter: string, argName: string, help: string, parse: ArgParser<T>, defaultValue?: T, defaultText?: string): OptionSpec<T | undefined> {
  return {
    flag: letter,
    argName,
    help,
    initial: defaultValue,
    defaultText: defaultText ?? (defaultValue === undefined ? undefined : String(defaultValue)),
    apply: (raw) => parse(raw ?? ''),
  };
}

/** An option that may be given several times; every occurrence is appended (after parsing). */
export function repeated<T>(letter: string, argName: string, help: string, parse: ArgParser<T>): OptionSpec<T[]> {
  return {
    flag: letter,
    argName,
    help,
    initial: [],
    apply: (raw, prev) => {
      const r = parse(raw ?? '');
      return r.ok ? { ok: true, value: [...prev, r.value] } : r;
    },
  };
}

// --- argument parsers ------------------------------------------------------------------------------------

const DEC = /^[+-]?\d+$/;
const HEX = /^0[xX][0-9a-fA-F]+$/;

/** A decimal integer in [min, max]. `what` names it in errors: "port 0 out of range 1-65535". */
export function intRange(what: string, min: number, max: number): ArgParser<number> {
  return (raw) => {
    if (!DEC.test(raw)) return { ok: false, error: `${what} '${raw}' is not an integer` };
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) return { ok: false, error: `${what} ${raw} out of range ${min}-${max}` };
    return { ok: true, value: n };
  };
}

/** An integer in [min, max] given in decimal or hexadecimal (0x3f), as -Q takes it. */
export function intDecOrHex(what: string, min: number, max: number): ArgParser<number> {
  return (raw) => {
    let n: number;
    if (HEX.test(raw)) n = parseInt(raw.slice(2), 16);
    else if (DEC.test(raw)) n = Number(raw);
    else return { ok: false, error: `${what} '${raw}' is not a decimal or hexadecimal (0x..) integer` };
    if (!Number.isSafeInteger(n) || n < min || n > max) return { ok: false, error: `${what} ${raw} out of range ${min}-${max}` };
    return { ok: true, value: n };
  };
}

/** A 32-bit value written in hexadecimal, 0x prefix optional, 1-8 digits (as -U 0x1234abcd). Non-zero unless allowZero. */
export function hex32(what: string, allowZero = false): ArgParser<number> {
  return (raw) => {
    const digits = raw.startsWith('0x') || raw.startsWith('0X') ? raw.slice(2) : raw;
    if (!/^[0-9a-fA-F]{1,8}$/.test(digits)) return { ok: false, error: `${what} '${raw}' is not a hexadecimal 32-bit number (0xnnnnnnnn)` };
    const n = parseInt(digits, 16) >>> 0;
    if (n === 0 && !allowZero) return { ok: false, error: `${what} must not be 0` };
    return { ok: true, value: n };
  };
}

/** A non-empty string. */
export function nonEmpty(what: string): ArgParser<string> {
  return (raw) => (raw.length > 0 ? { ok: true, value: raw } : { ok: false, error: `${what} must not be empty` });
}

/** One of a fixed set of words. */
export function oneOf<W extends string>(what: string, words: readonly W[]): ArgParser<W> {
  return (raw) =>
    (words as readonly string[]).includes(raw)
      ? { ok: true, value: raw as W }
      : { ok: false, error: `${what} '${raw}' is not one of ${words.join(', ')}` };
}

/** A comma-separated list, each item parsed by `item`; empty items are errors. */
export function commaList<T>(item: ArgParser<T>, what = 'list'): ArgParser<T[]> {
  return (raw) => {
    if (raw.length === 0) return { ok: false, error: `${what} must not be empty` };
    const out: T[] = [];
    for (const part of raw.split(',')) {
      if (part.length === 0) return { ok: false, error: `${what} '${raw}' has an empty item` };
      const r = item(part);
      if (!r.ok) return r;
      out.push(r.value);
    }
    return { ok: true, value: out };
  };
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * host[:port]; an IPv6 literal is written [addr]:port or bare (a bare address with several ':' has no port).
 * The port defaults to `defaultPort`.
 */
export function hostPort(what: string, defaultPort: number): ArgParser<HostPort> {
  const portP = intRange(`${what} port`, 1, 65535);
  return (raw) => {
    let host = raw;
    let portText: string | undefined;
    if (raw.startsWith('[')) {
      const close = raw.indexOf(']');
      if (close < 0) return { ok: false, error: `${what} '${raw}' has no closing ']'` };
      host = raw.slice(1, close);
      const rest = raw.slice(close + 1);
      if (rest.length > 0) {
        if (!rest.startsWith(':')) return { ok: false, error: `${what} '${raw}': expected ':port' after ']'` };
        portText = rest.slice(1);
      }
    } else {
      const first = raw.indexOf(':');
      if (first >= 0 && first === raw.lastIndexOf(':')) {
        host = raw.slice(0, first);
        portText = raw.slice(first + 1);
      }
    }
    if (host.length === 0) return { ok: false, error: `${what} '${raw}' has no host` };
    if (portText === undefined) return { ok: true, value: { host, port: defaultPort } };
    const p = portP(portText);
    return p.ok ? { ok: true, value: { host, port: p.value } } : p;
  };
}

/** A comma list of host[:port] (as -H hb_server[:port][,hb_server[:port]...]). */
export function hostPortList(what: string, defaultPort: number): ArgParser<HostPort[]> {
  return commaList(hostPort(what, defaultPort), what);
}

// --- the command line as a whole ------------------------------------------------------------------------

export interface CommandLineSpec<T extends OptionTable> {
  /** Program name used as the error prefix and in the usage text. */
  readonly prog: string;
  readonly table: T;
  /** Operand names for the usage text ("file..."); with `operands` bounds. */
  readonly operandsUsage?: string;
  /** How many operands are allowed (default: none). */
  readonly minOperands?: number;
  readonly maxOperands?: number;
  /** glibc-style interleaving of options and operands (default false). */
  readonly permute?: boolean;
}

export type CommandLine<T extends OptionTable> =
  | { readonly kind: 'ok'; readonly options: ParsedOptions<T>; readonly operands: string[] }
  /** `--help` was given: print `text` to stdout and exit 0. */
  | { readonly kind: 'help'; readonly text: string }
  /** One line naming the option ("uftpproxyd: -x: log level 9 out of range 0-5") plus the usage text. */
  | { readonly kind: 'error'; readonly message: string; readonly usage: string };

/** The optstring the table describes, e.g. "dp:x:". */
export function optstringOf(table: OptionTable): string {
  let s = '';
  for (const spec of Object.values(table)) s += spec.flag + (spec.argName !== undefined ? ':' : '');
  return s;
}

/** "usage: prog [ -d ] [ -p port ] ... operands" followed by one line of help per option. */
export function usageText<T extends OptionTable>(spec: CommandLineSpec<T>): string {
  const parts: string[] = [];
  for (const o of Object.values(spec.table)) parts.push(o.argName !== undefined ? `[ -${o.flag} ${o.argName} ]` : `[ -${o.flag} ]`);
  if (spec.operandsUsage) parts.push(spec.operandsUsage);
  const lines: string[] = [];
  let line = `usage: ${spec.prog}`;
  for (const p of parts) {
    if (line.length + 1 + p.length > 78) {
      lines.push(line);
      line = '   ';
    }
    line += ' ' + p;
  }
  lines.push(line);
  lines.push('');
  const heads = Object.values(spec.table).map((o) => `  -${o.flag}${o.argName !== undefined ? ' ' + o.argName : ''}`);
  const width = Math.min(28, Math.max(...heads.map((h) => h.length), 0) + 2);
  Object.values(spec.table).forEach((o, idx) => {
    const head = heads[idx];
    const dflt = o.defaultText !== undefined ? ` (default: ${o.defaultText})` : '';
    lines.push((head.length >= width ? head + '\n' + ' '.repeat(width) : head.padEnd(width)) + o.help + dflt);
  });
  return lines.join('\n') + '\n';
}

/** Parses argv (without node and script) against the table. Never throws for user errors. */
export function parseCommandLine<T extends OptionTable>(spec: CommandLineSpec<T>, argv: readonly string[]): CommandLine<T> {
  const usage = usageText(spec);
  const fail = (message: string): CommandLine<T> => ({ kind: 'error', message: `${spec.prog}: ${message}`, usage });
  // --help anywhere before "--" asks for help
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--help') return { kind: 'help', text: usage };
  }
  const byLetter = new Map<string, [string, OptionSpec<unknown>]>();
  for (const [name, o] of Object.entries(spec.table)) {
    if (byLetter.has(o.flag)) throw new Error(`option table: letter '${o.flag}' used twice`);
    byLetter.set(o.flag, [name, o]);
  }
  const g = getopt(argv, optstringOf(spec.table), { permute: spec.permute });
  if (!g.ok) return fail(g.error);
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.table)) values[name] = o.initial;
  for (const { opt, arg } of g.value.options) {
    const entry = byLetter.get(opt);
    if (!entry) throw new Error(`getopt returned unknown letter ${opt}`);
    const [name, o] = entry;
    const r = o.apply(arg, values[name]);
    if (!r.ok) return fail(`-${opt}: ${r.error}`);
    values[name] = r.value;
  }
  const operands = g.value.operands;
  const min = spec.minOperands ?? 0;
  const max = spec.maxOperands ?? 0;
  if (operands.length < min) return fail(`missing ${spec.operandsUsage ?? 'operand'}`);
  if (operands.length > max) return fail(max === 0 ? `unexpected argument '${operands[0]}'` : `too many arguments ('${operands[max]}')`);
  return { kind: 'ok', options: values as ParsedOptions<T>, operands };
}
