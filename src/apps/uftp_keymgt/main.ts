/**
 * uftp_keymgt: create and view RSA/EC private keys for the UFTP suite (man uftp_keymgt).
 *
 *   uftp_keymgt [ -m ] [ key_file [ key_file ...] ]
 *   uftp_keymgt [ -m ] -g { rsa:key_length | ec:curve } key_file
 *   uftp_keymgt [ -m ] -d key_file
 *
 * Behaviour copied black-box from the real 4.10.2 program (docs/protocol-notes.md "## Crypto"):
 *  - everything is printed on stderr; stdout stays empty;
 *  - exit 1 only for a bad -g spec ("Invalid key specification", "Invalid key size", "Invalid curve" - the last
 *    without a newline), -g with -d ("Can't specify both -g and -d"), -g/-d without a file ("No keyfile specified");
 *    every other outcome exits 0, including unreadable keys and a refused overwrite;
 *  - unknown options and a missing -g argument print glibc's getopt message and are otherwise ignored;
 *  - each -g is checked when it is met; with several, any rsa: spec wins over ec:, and the last of a kind counts;
 *  - -g writes only the first file operand; -d does nothing (it deletes Windows key containers); -m is ignored.
 */
import { describeKey, generateKey, parseKeySpec, readKeyFile, writeKeyFile, type KeySpec } from '../../crypto/keyfile.js';

const PROG = 'uftp_keymgt';

interface Output {
  err(text: string): void;
  out?(text: string): void;
}

/** Printed for `--help`, which the real program does not have (it reports each letter as an invalid option). */
export const USAGE = `usage: uftp_keymgt [ -m ] [ key_file [ key_file ...] ]
       uftp_keymgt [ -m ] -g { rsa:key_length | ec:curve } key_file
       uftp_keymgt [ -m ] -d key_file

  key_file ...   print the type, size or curve, and fingerprint of each key file
  -g SPEC FILE   generate a key (rsa:512..2048 or ec:CURVE) into FILE; never overwrites FILE
  -d FILE        deletes a Windows key container; does nothing here
  -m             use the machine key store (Windows only); ignored here
Output goes to stderr, as the C program's does.
`;

/** Runs uftp_keymgt on argv (without node and script); returns the exit code. */
export function main(argv: readonly string[], out: Output): number {
  if (argv.length === 1 && argv[0] === '--help') {
    (out.out ?? out.err)(USAGE);
    return 0;
  }
  let rsaBits: number | undefined;
  let curve: string | undefined;
  let gen = false;
  let del = false;
  const files: string[] = [];

  // glibc getopt with argument permutation, optstring "g:dm"
  let i = 0;
  while (i < argv.length) {
    const word = argv[i++];
    if (word === '--') {
      files.push(...argv.slice(i));
      break;
    }
    if (word.length < 2 || word[0] !== '-') {
      files.push(word);
      continue;
    }
    for (let k = 1; k < word.length; k++) {
      const c = word[k];
      if (c === 'm') continue;
      if (c === 'd') {
        del = true;
        continue;
      }
      if (c !== 'g') {
        out.err(`${PROG}: invalid option -- '${c}'\n`);
        continue;
      }
      let arg: string;
      if (k + 1 < word.length) {
        arg = word.slice(k + 1);
      } else if (i < argv.length) {
        arg = argv[i++];
      } else {
        out.err(`${PROG}: option requires an argument -- 'g'\n`);
        break;
      }
      const spec = parseKeySpec(arg);
      if (!spec.ok) {
        out.err(spec.error === 'Invalid curve' ? spec.error : `${spec.error}\n`);
        return 1;
      }
      gen = true;
      if (spec.value.kind === 'RSA') rsaBits = spec.value.bits;
      else curve = spec.value.curve;
      break;
    }
  }

  if (gen && del) {
    out.err("Can't specify both -g and -d\n");
    return 1;
  }
  if ((gen || del) && files.length === 0) {
    out.err('No keyfile specified\n');
    return 1;
  }
  if (del) return 0;
  if (gen) {
    const spec: KeySpec = rsaBits !== undefined ? { kind: 'RSA', bits: rsaBits } : { kind: 'EC', curve: curve ?? '' };
    const file = files[0];
    const key = generateKey(spec);
    if (!key.ok) {
      out.err(`${key.error}\nError generating/storing key\n`);
      return 0;
    }
    if (file !== '') {
      const w = writeKeyFile(file, key.value);
      if (!w.ok) {
        out.err(`${w.error}\nError generating/storing key\n`);
        return 0;
      }
    }
    out.err(`${describeKey(file, key.value)}\n`);
    return 0;
  }
  for (const file of files) {
    const key = readKeyFile(file);
    if (key.ok) out.err(`${describeKey(file, key.value)}\n`);
    else out.err(`${key.error}\n${file}: no such key\n`);
  }
  return 0;
}

const invokedDirectly = process.argv[1] !== undefined && /uftp_keymgt(\.js|\.ts)?$/.test(process.argv[1]);
if (invokedDirectly) {
  let buffered = '';
  let stdout = '';
  const code = main(process.argv.slice(2), { err: (t) => (buffered += t), out: (t) => (stdout += t) });
  process.stdout.write(stdout, () => process.stderr.write(buffered, () => process.exit(code)));
}
