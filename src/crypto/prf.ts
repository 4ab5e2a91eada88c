/**
 * The TLS pseudo-random functions UFTP uses for its key schedule (protocol.txt section 4):
 *  - SHA-1 selected: the TLS 1.0/1.1 PRF (RFC 2246 / RFC 4346 section 5): P_MD5(S1, label+seed) XOR P_SHA1(S2, label+seed),
 *    S1 and S2 the first and second halves of the secret (sharing the middle byte when its length is odd);
 *  - SHA-256/384/512 selected: the TLS 1.2 PRF (RFC 5246 section 5): P_<hash>(secret, label+seed).
 * HMAC comes from node:crypto; only the P_hash expansion is written here.
 *
 * The real UFTP 4.10 programs do not use RFC P_hash for output longer than one hash block (black-box finding, see
 * pHashUftp and docs/protocol-notes.md "## Crypto"); `prf` is UFTP's, `prfTls10`/`prfTls12`/`prfRfc` are the RFCs'.
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

/**
 * P_hash as the real UFTP 4.10 programs compute it (found black-box, see docs/protocol-notes.md "## Crypto"):
 * the first block is RFC 5246's, HMAC(secret, A(1) + seed) with A(1) = HMAC(secret, seed), but every further block
 * is HMAC(secret, previous output block + seed) instead of using A(i) = HMAC(secret, A(i-1)).
 * Output that fits in one hash block is identical to the RFC's.
 */
export function pHashUftp(hash: string, secret: Uint8Array, seed: Uint8Array, length: number): Buffer {
  const out = Buffer.alloc(length);
  let chain: Buffer = createHmac(hash, secret).update(seed).digest();
  let off = 0;
  while (off < length) {
    const block = createHmac(hash, secret).update(chain).update(seed).digest();
    off += block.copy(out, off, 0, Math.min(block.length, length - off));
    chain = block;
  }
  return out;
}

function labelSeed(label: string | Uint8Array, seed: Uint8Array): Buffer {
  const l = typeof label === 'string' ? Buffer.from(label, 'latin1') : Buffer.from(label);
  return Buffer.concat([l, seed]);
}

type PHash = (hash: string, secret: Uint8Array, seed: Uint8Array, length: number) => Buffer;

function tls10(p: PHash, secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  const half = Math.ceil(secret.length / 2);
  const s1 = secret.subarray(0, half);
  const s2 = secret.subarray(secret.length - half);
  const ls = labelSeed(label, seed);
  const md5 = p('md5', s1, ls, length);
  const sha1 = p('sha1', s2, ls, length);
  for (let i = 0; i < length; i++) md5[i] ^= sha1[i];
  return md5;
}

/** TLS 1.0/1.1 PRF (MD5 and SHA-1 combined), as RFC 2246/4346 define it. */
export function prfTls10(secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return tls10(pHash, secret, label, seed, length);
}

/** TLS 1.2 PRF with the given hash, as RFC 5246 defines it. */
export function prfTls12(hash: 'sha256' | 'sha384' | 'sha512', secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return pHash(hash, secret, labelSeed(label, seed), length);
}

/**
 * The PRF the real UFTP 4.10 programs use for a session's hash: the TLS 1.0/1.1 construction for SHA-1, the TLS 1.2
 * one otherwise, both built on pHashUftp (each block after the first chains on the previous output block).
 * Equal to the RFC PRFs for output up to one hash block (16 bytes for the MD5 half of TLS 1.0, 20/32/48/64 otherwise),
 * different beyond - which covers the master secret, key blocks and group key blocks.
 */
export function prf(hash: PrfHash, secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return hash === 'sha1' ? tls10(pHashUftp, secret, label, seed, length) : pHashUftp(hash, secret, labelSeed(label, seed), length);
}

/** The RFC PRF for a session hash (TLS 1.0/1.1 for SHA-1, TLS 1.2 otherwise), without UFTP's chaining quirk. */
export function prfRfc(hash: PrfHash, secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return hash === 'sha1' ? prfTls10(secret, label, seed, length) : prfTls12(hash, secret, label, seed, length);
}
