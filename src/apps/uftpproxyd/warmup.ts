/**
 * A fresh proxy's first encrypted session, its key-exchange calls made once at start-up.
 *
 * The server measures its GRTT for the whole announce phase on one round trip, the first REGISTER's, through both
 * proxies (docs/protocol-notes.md, "uftpproxyd at full speed"), and that is the round trip a fresh proxy process
 * serves cold. Node compiles its own crypto code (HMAC, for the key exchange's PRF) and OpenSSL sets up each
 * digest and signature on first use. Measured in the Figure 1 lab (docs/benchmarks.md, "Figure 1 at -R -1: a
 * fresh proxy's first round trip"): an encrypted session's first ANNOUNCE took 2.8-4.2 ms through our client
 * proxy with only the RSA calls primed (1.3 ms of it in the first premaster-to-keys derivation), 2.0-2.9 ms with
 * these. Nothing here touches a socket or the daemon's state.
 */
import { randomBytes } from 'node:crypto';
import type { LoadedKey } from '../../crypto/keyfile.js';
import { deriveClientSession } from '../../crypto/handshake.js';
import { blobToPublicKey } from '../../crypto/pubkey.js';
import { rsaDecryptPremaster, rsaEncryptPremaster, signData, verifySignature } from '../../crypto/sign.js';
import { HASH_SUITES, KEY_SUITES } from '../../crypto/suites.js';

/**
 * The key exchange's first calls, with each of our keys: a key imported from its blob, a premaster encrypted to it
 * and decrypted (RSA), a signature made and checked for every session hash (sha1 is uftp's default, sha256 common;
 * OpenSSL sets up each digest on first use), and a premaster-to-keys derivation per session hash (Node loads its
 * HMAC code on the first one). The results are not used. Returns how many of these operations succeeded
 * (a round trip counts when it gave back what went in).
 */
/** The hashes a session can use (uftp -h: sha1, sha256, sha384, sha512; MD5 is in the table for other uses). */
export const SESSION_HASHES = HASH_SUITES.filter((h) => h.name !== 'md5');

export function primeKeyExchange(keys: readonly LoadedKey[]): number {
  let n = 0;
  const data = randomBytes(64);
  const suite = KEY_SUITES.find((s) => s.name === 'aes256-gcm') ?? KEY_SUITES[KEY_SUITES.length - 1];
  for (const h of SESSION_HASHES) {
    try {
      deriveClientSession(h, suite, randomBytes(48), randomBytes(32), randomBytes(32));
      n++;
    } catch {
      // a digest this OpenSSL lacks: a real session with it would fail the same way, later
    }
  }
  for (const k of keys) {
    const pub = blobToPublicKey(k.blob);
    if (!pub.ok) continue;
    if (k.kind === 'RSA') {
      const premaster = randomBytes(48);
      const back = rsaDecryptPremaster(k.privateKey, rsaEncryptPremaster(pub.value, premaster));
      if (back.ok && back.value.equals(premaster)) n++;
    }
    for (const h of SESSION_HASHES) {
      try {
        if (verifySignature(pub.value, h, data, signData(k.privateKey, h, data))) n++;
      } catch {
        // as above
      }
    }
  }
  return n;
}
