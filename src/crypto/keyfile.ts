/**
 * Private key files as the UFTP C suite (OpenSSL build) reads and writes them:
 * unencrypted PEM, RSA as PKCS#1 "RSA PRIVATE KEY", EC as SEC1 "EC PRIVATE KEY" with a named curve.
 * Reading also accepts anything OpenSSL reads as an unencrypted RSA/EC private key (PKCS#8, compressed points,
 * an "EC PARAMETERS" block before the key), as the real programs do.
 *
 * Error texts are the real uftp_keymgt's (4.10.2, observed black-box; see docs/protocol-notes.md "## Crypto").
 */
import { constants as fsConstants, closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { getSystemErrorMap } from 'node:util';
import { CURVES } from '../wire/constants.js';
import type { KeyBlob } from '../wire/keyblob.js';
import { ok, type Result } from '../wire/result.js';
import { blobFingerprint, curveName, keyCurveName, publicKeyToBlob } from './pubkey.js';

interface LoadedKeyBase {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public key blob (5.2.3.2 / 5.2.3.3). */
  readonly blob: KeyBlob;
  /** SHA-1 of the blob, uppercase colon hex, as uftp_keymgt prints it. */
  readonly fingerprint: string;
}
export type LoadedKey =
  | (LoadedKeyBase & {
      readonly kind: 'RSA';
      /** Modulus length in bytes times 8: what uftp_keymgt prints (a 513-bit key prints as 520 bits). */
      readonly bits: number;
    })
  | (LoadedKeyBase & {
      readonly kind: 'EC';
      /** OpenSSL curve name, e.g. prime256v1. */
      readonly curve: string;
      /** Curve number of 5.3.12; 0 when the curve is not in that table. */
      readonly curveId: number;
    });

/** glibc strerror texts for the errno codes a key file operation can meet; libuv's text otherwise. */
const STRERROR: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EEXIST: 'File exists',
  EMFILE: 'Too many open files',
  EIO: 'Input/output error',
};

/** The C library's strerror text for a Node system error. */
export function strerror(e: unknown): string {
  const ne = e as NodeJS.ErrnoException;
  if (ne && typeof ne.code === 'string') {
    const known = STRERROR[ne.code];
    if (known) return known;
    if (typeof ne.errno === 'number') {
      const m = getSystemErrorMap().get(ne.errno);
      if (m) return m[1].charAt(0).toUpperCase() + m[1].slice(1);
    }
    return ne.code;
  }
  return String(e);
}

/** Builds a LoadedKey from a private KeyObject; error if it is not an RSA or EC key. */
export function loadedKeyFromPrivate(privateKey: KeyObject): Result<LoadedKey, string> {
  if (privateKey.type !== 'private') return { ok: false, error: 'not a private key' };
  const publicKey = createPublicKey(privateKey);
  const blob = publicKeyToBlob(publicKey);
  if (!blob.ok) return blob;
  const fp = blobFingerprint(blob.value);
  if (blob.value.kind === 'RSA') {
    return ok({ kind: 'RSA', privateKey, publicKey, blob: blob.value, fingerprint: fp, bits: blob.value.modulus.length * 8 });
  }
  const name = keyCurveName(publicKey) ?? 'UNKNOWN';
  return ok({ kind: 'EC', privateKey, publicKey, blob: blob.value, fingerprint: fp, curve: name, curveId: blob.value.curve });
}

/**
 * Reads an unencrypted PEM RSA or EC private key.
 * Errors are the real uftp_keymgt's first line: "failed to open key file: <strerror>" when the file cannot be
 * opened, "Failed to read key" when it holds no usable RSA/EC private key (empty, garbage, public key only,
 * passphrase-protected, Ed25519, a directory).
 */
export function readKeyFile(path: string): Result<LoadedKey, string> {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // fopen() succeeds on a directory; the read is what fails.
    if (code === 'EISDIR') return { ok: false, error: 'Failed to read key' };
    return { ok: false, error: `failed to open key file: ${strerror(e)}` };
  }
  return parsePrivateKeyPem(pem);
}

/** Parses PEM text as read by readKeyFile; the error is "Failed to read key". */
export function parsePrivateKeyPem(pem: Buffer | string): Result<LoadedKey, string> {
  let key: KeyObject;
  try {
    // An empty passphrase makes an encrypted key fail instead of prompting.
    key = createPrivateKey({ key: pem, format: 'pem', passphrase: '' });
  } catch {
    return { ok: false, error: 'Failed to read key' };
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') return { ok: false, error: 'Failed to read key' };
  const loaded = loadedKeyFromPrivate(key);
  return loaded.ok ? loaded : { ok: false, error: 'Failed to read key' };
}

/** PEM text of a private key the way the C suite writes it (PKCS#1 for RSA, SEC1 for EC). */
export function privateKeyToPem(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return key.export({ type: 'pkcs1', format: 'pem' }) as string;
  if (key.asymmetricKeyType === 'ec') return key.export({ type: 'sec1', format: 'pem' }) as string;
  throw new Error(`privateKeyToPem: unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
}

/**
 * Writes a private key to a new file; never overwrites. Created with mode 0600 (the real one uses 0666 & ~umask;
 * a private key should not be world readable).
 * Errors: "Private key file already exists, won't overwrite" or "failed to open key file: <strerror>".
 */
export function writeKeyFile(path: string, key: KeyObject | LoadedKey): Result<void, string> {
  const k = 'privateKey' in key ? key.privateKey : key;
  const pem = privateKeyToPem(k);
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      return { ok: false, error: "Private key file already exists, won't overwrite" };
    }
    return { ok: false, error: `failed to open key file: ${strerror(e)}` };
  }
  try {
    writeSync(fd, pem);
  } catch (e) {
    return { ok: false, error: `failed to write key file: ${strerror(e)}` };
  } finally {
    closeSync(fd);
  }
  return ok(undefined);
}

export type KeySpec = { readonly kind: 'RSA'; readonly bits: number } | { readonly kind: 'EC'; readonly curve: string };

/** RSA sizes uftp_keymgt -g accepts (black-box: 511 and 2049 are "Invalid key size"). */
export const RSA_MIN_BITS = 512;
export const RSA_MAX_BITS = 2048;

/**
 * Curves the real uftp_keymgt -g accepts: every 5.3.12 name (and the aliases secp192r1/secp256r1), exact case,
 * except secp224k1, which it refuses with "Invalid curve" (it still reads secp224k1 keys made elsewhere).
 */
export const GENERATABLE_CURVES: readonly string[] = CURVES.map((c) => c.name).filter((n) => n !== 'secp224k1');

/** C atoi(): optional leading blanks and sign, then digits; 0 when there are none. */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? Number.parseInt(m[1], 10) : 0;
}

/**
 * Parses a -g key spec ("rsa:LEN" or "ec:CURVE") with the real uftp_keymgt's rules and error texts:
 * "Invalid key specification", "Invalid key size", "Invalid curve".
 */
export function parseKeySpec(spec: string): Result<KeySpec, string> {
  if (spec.startsWith('rsa:')) {
    const bits = atoi(spec.slice(4));
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) return { ok: false, error: 'Invalid key size' };
    return ok({ kind: 'RSA', bits });
  }
  if (spec.startsWith('ec:')) {
    const name = spec.slice(3);
    const c = CURVES.find((x) => x.name === name || x.alias === name);
    if (!c || !GENERATABLE_CURVES.includes(c.name)) return { ok: false, error: 'Invalid curve' };
    return ok({ kind: 'EC', curve: c.name });
  }
  return { ok: false, error: 'Invalid key specification' };
}

/**
 * Generates a new private key. `spec` is "rsa:LEN", "ec:CURVE" or a parsed KeySpec.
 * RSA keys use public exponent 65537, as the real programs do.
 */
export function generateKey(spec: string | KeySpec): Result<LoadedKey, string> {
  let s: KeySpec;
  if (typeof spec === 'string') {
    const p = parseKeySpec(spec);
    if (!p.ok) return p;
    s = p.value;
  } else {
    s = spec;
  }
  let privateKey: KeyObject;
  try {
    privateKey =
      s.kind === 'RSA'
        ? generateKeyPairSync('rsa', { modulusLength: s.bits, publicExponent: 65537 }).privateKey
        : generateKeyPairSync('ec', { namedCurve: s.curve }).privateKey;
  } catch (e) {
    return { ok: false, error: `key generation failed: ${(e as Error).message}` };
  }
  return loadedKeyFromPrivate(privateKey);
}

/** The line uftp_keymgt prints for a key, e.g. "k.pem: RSA, 1024 bits, fingerprint: 1C:CD:..." */
export function describeKey(name: string, key: LoadedKey): string {
  if (key.kind === 'RSA') return `${name}: RSA, ${key.bits} bits, fingerprint: ${key.fingerprint}`;
  const curve = curveName(key.curveId) ?? 'UNKNOWN';
  return `${name}: ECDSA, curve ${curve}, fingerprint: ${key.fingerprint}`;
}
