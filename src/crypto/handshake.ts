/**
 * The per-client and group key handshake of protocol.txt 4, as the real 4.10 programs do it:
 *  - unicast keys from premaster + both randoms (keys.ts, UFTP's PRF);
 *  - KEYINFO carries the last 47 bytes of the 48-byte group master, CBC-encrypted (PKCS#7 -> 48 bytes) with the
 *    client's session key; GCM/CCM sessions use the CBC form of the same AES key size. The IV is built from the
 *    session salt, the KEYINFO's Source ID (the server, or the proxy that sent it) and the KEYINFO's IV counter,
 *    with the IV length of the CBC cipher (16 bytes for AES, 8 for DES/3DES);
 *  - the first byte of the group master is the protocol version, 0x40 (black-box: read from a real uftpd's memory).
 */
import { UFTP_VER_NUM } from '../wire/constants.js';
import { ok, type Result } from '../wire/result.js';
import { decryptCbc, encryptCbc } from './cipher.js';
import { buildIv, groupKeys, masterSecret, sessionKeys, GROUP_MASTER_LENGTH, type SymmetricKeys } from './keys.js';
import type { HashSuite, KeySuite } from './suites.js';

export interface ClientSession {
  readonly master: Buffer;
  readonly keys: SymmetricKeys;
}

export function deriveClientSession(
  hash: HashSuite,
  suite: KeySuite,
  premaster: Uint8Array,
  serverRandom: Uint8Array,
  clientRandom: Uint8Array,
): ClientSession {
  const master = masterSecret(hash, premaster, serverRandom, clientRandom);
  return { master, keys: sessionKeys(hash, suite, master, serverRandom, clientRandom) };
}

/** The encrypted group master of a KEYINFO entry (48 bytes) for one client. */
export function encryptGroupMaster(
  suite: KeySuite,
  session: SymmetricKeys,
  keyinfoSrcId: number,
  ivCounter: bigint,
  groupMaster: Uint8Array,
): Buffer {
  const iv = buildIv(suite.blockSize, session.salt, keyinfoSrcId, ivCounter);
  return encryptCbc(suite.cbcOpenssl, session.key, iv, groupMaster.subarray(1, GROUP_MASTER_LENGTH));
}

/** Decrypts a KEYINFO entry and rebuilds the 48-byte group master (version byte first). */
export function decryptGroupMaster(
  suite: KeySuite,
  session: SymmetricKeys,
  keyinfoSrcId: number,
  ivCounter: bigint,
  encrypted: Uint8Array,
): Result<Buffer, string> {
  const iv = buildIv(suite.blockSize, session.salt, keyinfoSrcId, ivCounter);
  const d = decryptCbc(suite.cbcOpenssl, session.key, iv, encrypted);
  if (!d.ok) return { ok: false, error: `KEYINFO: group master: ${d.error}` };
  if (d.value.length !== GROUP_MASTER_LENGTH - 1) return { ok: false, error: `KEYINFO: group master of ${d.value.length} bytes, want 47` };
  return ok(Buffer.concat([Buffer.from([UFTP_VER_NUM]), d.value]));
}

/** The group keys from a group master. */
export function deriveGroupKeys(hash: HashSuite, suite: KeySuite, groupMaster: Uint8Array, serverRandom: Uint8Array): SymmetricKeys {
  return groupKeys(hash, suite, groupMaster, serverRandom);
}
