/**
 * The TLS pseudo-random functions UFTP uses for its key schedule (protocol.txt section 4):
 *  - SHA-1 selected: the TLS 1.0/1.1 PRF (RFC 2246 / RFC 4346 section 5): P_MD5(S1, label+seed) XOR P_SHA1(S2, label+seed),
 *    S1 and S2 the first and second halves of the secret (sharing the middle byte when its length is odd);
 *  - SHA-256/384/512 selected: the TLS 1.2 PRF (RFC 5246 section 5): P_<hash>(secret, label+seed).
 * HMAC comes from node:crypto; only the P_hash expansion is written here.
 */
import { createHmac } from 'node:crypto';

export type PrfHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** RFC 5246 P_hash: HMAC_hash(secret, A(i) + seed) for A(1)=HMAC(secret, seed), A(i)=HMAC(secret, A(i-1)). */
export function pHash(hash: string, secret: Uint8Array, seed: Uint8Array, length: number): Buffer {
  const out = Buffer.alloc(length);
  let a: Buffer = createHmac(hash, secret).update(seed).digest();
  let off = 0;
  while (off < length) {
    const block = createHmac(hash, secret).update(a).update(seed).digest();
    off += block.copy(out, off, 0, Math.min(block.length, length - off));
    if (off < length) a = createHmac(hash, secret).update(a).digest();
  }
  return out;
}

function labelSeed(label: string | Uint8Array, seed: Uint8Array): Buffer {
  const l = typeof label === 'string' ? Buffer.from(label, 'latin1') : Buffer.from(label);
  return Buffer.concat([l, seed]);
}

/** TLS 1.0/1.1 PRF (MD5 and SHA-1 combined). */
export function prfTls10(secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  const half = Math.ceil(secret.length / 2);
  const s1 = secret.subarray(0, half);
  const s2 = secret.subarray(secret.length - half);
  const ls = labelSeed(label, seed);
  const md5 = pHash('md5', s1, ls, length);
  const sha1 = pHash('sha1', s2, ls, length);
  for (let i = 0; i < length; i++) md5[i] ^= sha1[i];
  return md5;
}

/** TLS 1.2 PRF with the given hash. */
export function prfTls12(hash: 'sha256' | 'sha384' | 'sha512', secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return pHash(hash, secret, labelSeed(label, seed), length);
}

/** The PRF UFTP uses for a session's hash: TLS 1.0/1.1 PRF for SHA-1, TLS 1.2 PRF otherwise. */
export function prf(hash: PrfHash, secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return hash === 'sha1' ? prfTls10(secret, label, seed, length) : prfTls12(hash, secret, label, seed, length);
}
