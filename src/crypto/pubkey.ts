/**
 * Public keys as UFTP carries them: key blobs (protocol.txt 5.2.3.2 RSA, 5.2.3.3 EC) to and from
 * node:crypto KeyObjects, and key fingerprints.
 *
 * Black-box findings (uftp_keymgt 4.10.2, see docs/protocol-notes.md "## Crypto"):
 * - The fingerprint is SHA-1 over the public key blob as 5.2.3.2/5.2.3.3 lay it out
 *   (RSA: 01 00 modlen(16) exponent(32) modulus; EC: 02 curve keylen(16) X||Y, no 0x04 prefix),
 *   printed as uppercase hex pairs joined by ':'. EC blobs are hashed including the zero padding to a multiple
 *   of 4 bytes that they carry on the wire (matters only for sect163* and sect193*); RSA blobs are not padded.
 * - A key on a curve outside 5.3.12 gets curve number 0 in its blob and prints as "curve UNKNOWN".
 * - An EC key stored in compressed form has the same fingerprint: the blob always holds X||Y.
 */
import { createHash, createPublicKey, ECDH, type KeyObject } from 'node:crypto';
import { curveById, curveByName } from '../wire/constants.js';
import { encodeKeyBlob, type KeyBlob } from '../wire/keyblob.js';
import { ok, type Result } from '../wire/result.js';

/**
 * DER-encoded object identifiers of the 5.3.12 curves (SEC 2 / X9.62), keyed by OpenSSL name.
 * Checked against keys OpenSSL generates in pubkey.test.ts.
 */
const CURVE_OIDS: ReadonlyMap<string, string> = new Map([
  ['sect163k1', '1.3.132.0.1'],
  ['sect163r1', '1.3.132.0.2'],
  ['sect163r2', '1.3.132.0.15'],
  ['sect193r1', '1.3.132.0.24'],
  ['sect193r2', '1.3.132.0.25'],
  ['sect233k1', '1.3.132.0.26'],
  ['sect233r1', '1.3.132.0.27'],
  ['sect239k1', '1.3.132.0.3'],
  ['sect283k1', '1.3.132.0.16'],
  ['sect283r1', '1.3.132.0.17'],
  ['sect409k1', '1.3.132.0.36'],
  ['sect409r1', '1.3.132.0.37'],
  ['sect571k1', '1.3.132.0.38'],
  ['sect571r1', '1.3.132.0.39'],
  ['secp160k1', '1.3.132.0.9'],
  ['secp160r1', '1.3.132.0.8'],
  ['secp160r2', '1.3.132.0.30'],
  ['secp192k1', '1.3.132.0.31'],
  ['prime192v1', '1.2.840.10045.3.1.1'],
  ['secp224k1', '1.3.132.0.32'],
  ['secp224r1', '1.3.132.0.33'],
  ['secp256k1', '1.3.132.0.10'],
  ['prime256v1', '1.2.840.10045.3.1.7'],
  ['secp384r1', '1.3.132.0.34'],
  ['secp521r1', '1.3.132.0.35'],
]);

const EC_PUBLIC_KEY_OID = '1.2.840.10045.2.1';

/** Curve name for a curve number of 5.3.12, or undefined. */
export function curveName(id: number): string | undefined {
  return curveById(id)?.name;
}

/** Curve number of 5.3.12 for an OpenSSL curve name (aliases accepted), 0 when not in the table. */
export function curveId(name: string): number {
  return curveByName(name)?.id ?? 0;
}

// ---------------------------------------------------------------- minimal DER
function derLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let l = len; l > 0; l >>>= 8) bytes.unshift(l & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derTlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

export function derOid(oid: string): Buffer {
  const parts = oid.split('.').map((p) => Number(p));
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const groups: number[] = [];
    let v = p;
    do {
      groups.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < groups.length - 1; i++) groups[i] |= 0x80;
    out.push(...groups);
  }
  return derTlv(0x06, Buffer.from(out));
}

interface Tlv {
  readonly tag: number;
  readonly content: Buffer;
  readonly end: number;
}

function readTlv(buf: Buffer, pos: number): Tlv | undefined {
  if (pos + 2 > buf.length) return undefined;
  const tag = buf[pos];
  let len = buf[pos + 1];
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > buf.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i];
    p += n;
  }
  if (p + len > buf.length) return undefined;
  return { tag, content: buf.subarray(p, p + len), end: p + len };
}

/** The public point (as stored, 0x04||X||Y or compressed) from an EC SubjectPublicKeyInfo. */
function ecPointFromSpki(spki: Buffer): Buffer | undefined {
  const outer = readTlv(spki, 0);
  if (!outer || outer.tag !== 0x30) return undefined;
  const alg = readTlv(outer.content, 0);
  if (!alg || alg.tag !== 0x30) return undefined;
  const bits = readTlv(outer.content, alg.end);
  if (!bits || bits.tag !== 0x03 || bits.content.length < 2 || bits.content[0] !== 0) return undefined;
  return bits.content.subarray(1);
}

// ---------------------------------------------------------------- blobs
function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** The EC curve name of a KeyObject (OpenSSL's name, e.g. prime256v1). */
export function keyCurveName(key: KeyObject): string | undefined {
  return key.asymmetricKeyDetails?.namedCurve;
}

/**
 * The key blob for a public (or private) RSA or EC key.
 * RSA: exponent and modulus (modulus in its minimal big-endian form, ceil(bits/8) bytes).
 * EC: curve number (0 if the curve is not in 5.3.12) and X||Y, each padded to the field size.
 */
export function publicKeyToBlob(key: KeyObject): Result<KeyBlob, string> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType === 'rsa') {
    const jwk = pub.export({ format: 'jwk' });
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return err2('RSA key without modulus/exponent');
    const modulus = stripLeadingZeros(Buffer.from(jwk.n, 'base64url'));
    const e = stripLeadingZeros(Buffer.from(jwk.e, 'base64url'));
    if (e.length > 4) return err2(`RSA public exponent of ${e.length} bytes does not fit a key blob`);
    return ok({ kind: 'RSA', exponent: e.readUIntBE(0, e.length), modulus: new Uint8Array(modulus) });
  }
  if (pub.asymmetricKeyType === 'ec') {
    const name = keyCurveName(pub);
    if (!name) return err2('EC key without a named curve');
    const spki = pub.export({ type: 'spki', format: 'der' });
    let point = ecPointFromSpki(spki);
    if (!point) return err2('EC key: cannot find the public point');
    if (point[0] !== 0x04) {
      try {
        point = ECDH.convertKey(point, name, undefined, undefined, 'uncompressed') as Buffer;
      } catch (e) {
        return err2(`EC key on ${name}: cannot decompress the public point (${(e as Error).message})`);
      }
    }
    return ok({ kind: 'EC', curve: curveId(name), key: new Uint8Array(point.subarray(1)) });
  }
  return err2(`unsupported key type ${pub.asymmetricKeyType ?? 'unknown'}`);
}

function err2(message: string): { readonly ok: false; readonly error: string } {
  return { ok: false, error: message };
}

/** A node:crypto public KeyObject from a key blob; the error names what is wrong with the blob. */
export function blobToPublicKey(blob: KeyBlob): Result<KeyObject, string> {
  try {
    if (blob.kind === 'RSA') {
      if (blob.exponent === 0) return err2('RSA key blob: public exponent 0');
      const e = Buffer.alloc(4);
      e.writeUInt32BE(blob.exponent >>> 0);
      return ok(
        createPublicKey({
          key: {
            kty: 'RSA',
            n: stripLeadingZeros(Buffer.from(blob.modulus)).toString('base64url'),
            e: stripLeadingZeros(e).toString('base64url'),
          },
          format: 'jwk',
        }),
      );
    }
    const name = curveName(blob.curve);
    if (!name) return err2(`EC key blob: unknown curve number ${blob.curve}`);
    const oid = CURVE_OIDS.get(name);
    if (!oid) return err2(`EC key blob: no OID for curve ${name}`);
    if (blob.key.length % 2 !== 0) return err2(`EC key blob: key length ${blob.key.length} is not X||Y`);
    const point = Buffer.concat([Buffer.from([0x04]), blob.key]);
    const spki = derTlv(
      0x30,
      Buffer.concat([
        derTlv(0x30, Buffer.concat([derOid(EC_PUBLIC_KEY_OID), derOid(oid)])),
        derTlv(0x03, Buffer.concat([Buffer.from([0]), point])),
      ]),
    );
    return ok(createPublicKey({ key: spki, format: 'der', type: 'spki' }));
  } catch (e) {
    return err2(`${blob.kind} key blob: not a valid public key (${(e as Error).message})`);
  }
}

/** Exported for tests and for the curve table check. */
export function curveOid(name: string): string | undefined {
  return CURVE_OIDS.get(name);
}

/** Uppercase colon-separated hex, as uftp_keymgt prints fingerprints. */
export function colonHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
}

/** Raw 20-byte SHA-1 fingerprint of a key blob. */
export function blobFingerprintBytes(blob: KeyBlob): Buffer {
  // the blob as it is on the wire: EC blobs with the zero padding to a 4-byte multiple they carry
  // (sect163*: 46 -> 48 bytes, sect193*: 54 -> 56), RSA blobs unpadded (src/wire/keyblob.ts)
  return createHash('sha1').update(encodeKeyBlob(blob)).digest();
}

/** Fingerprint of a key blob as uftp_keymgt prints it: SHA-1 of the blob, e.g. "1C:CD:...". */
export function blobFingerprint(blob: KeyBlob): string {
  return colonHex(blobFingerprintBytes(blob));
}

/** Fingerprint of a public (or private) RSA/EC key: SHA-1 over its key blob, uppercase colon hex. */
export function fingerprint(key: KeyObject): Result<string, string> {
  const blob = publicKeyToBlob(key);
  return blob.ok ? ok(blobFingerprint(blob.value)) : blob;
}
