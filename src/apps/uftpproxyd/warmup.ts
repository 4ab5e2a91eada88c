/**
 * A fresh proxy's first session rehearsed at start-up: its key-exchange calls made once, and a plain session's
 * opening run through a throwaway machine.
 *
 * The server measures its GRTT for the whole announce phase on one round trip, the first REGISTER's, through both
 * proxies (docs/protocol-notes.md, "uftpproxyd at full speed"), and that is the round trip a fresh proxy process
 * serves cold. Node compiles its own crypto code (HMAC, for the key exchange's PRF) and OpenSSL sets up each
 * digest and signature on first use. Measured in the Figure 1 lab (docs/benchmarks.md, "Figure 1 at -R -1: a
 * fresh proxy's first round trip"): an encrypted session's first ANNOUNCE took 2.8-4.2 ms through our client
 * proxy with only the RSA calls primed (1.3 ms of it in the first premaster-to-keys derivation in one CPU
 * profile), 2.0-3.5 ms with both of these (two series, 13 sessions: within the spread between series); in-process
 * the derivation, signature and check take ~0.4 ms primed against ~1.3 ms. Nothing here touches a socket or the
 * daemon's state.
 */
import { randomBytes } from 'node:crypto';
import { drain, type Endpoint, type Random } from '../../core/machine.js';
import type { LoadedKey } from '../../crypto/keyfile.js';
import { deriveClientSession } from '../../crypto/handshake.js';
import { blobToPublicKey } from '../../crypto/pubkey.js';
import { rsaDecryptPremaster, rsaEncryptPremaster, signData, verifySignature } from '../../crypto/sign.js';
import { HASH_SUITES, KEY_SUITES } from '../../crypto/suites.js';
import { ClientProxy } from '../../session/proxy/client.js';
import { ServerProxy } from '../../session/proxy/server.js';
import { UFTP_VER_NUM } from '../../wire/constants.js';
import { encodePacket, type Message } from '../../wire/packet.js';
import { quantizeGrtt } from '../../wire/quantize.js';

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

const WARM_SERVER: Endpoint = { address: '192.0.2.1', port: 1044 }; // RFC 5737 documentation addresses
const WARM_CLIENT: Endpoint = { address: '192.0.2.2', port: 1044 };
const WARM_DOWNSTREAM: Endpoint = { address: '192.0.2.3', port: 1044 };

function packet(message: Message, srcId: number, grtt: number): Uint8Array {
  return encodePacket({
    header: { version: UFTP_VER_NUM, func: 0, seq: 0, srcId, groupId: 0x7fff0001, groupInst: 0, grtt: quantizeGrtt(grtt), gsize: 0, reserved: 0 },
    message,
  });
}

/**
 * One plain session's opening through a throwaway server or client proxy, so that V8 has run the decode, session
 * set-up, forwarding and encode paths (their inline caches and feedback) before the first real ANNOUNCE: the
 * ANNOUNCE forwarded, a client's REGISTER taken and, when the hold ends, sent upstream. Everything the machine
 * produces is dropped. Returns the number of datagrams it produced (2 when the rehearsal ran through).
 */
export function rehearseSession(mode: 'server' | 'client', uid: number, random: Random, now: number): number {
  let produced = 0;
  const sink = {
    transmit: (): boolean => {
      produced++;
      return true;
    },
    effect: (): void => {},
  };
  const machine = mode === 'server' ? new ServerProxy({ uid, random, dest: WARM_DOWNSTREAM }) : new ClientProxy({ uid, random, destPort: 1044 });
  const announce = packet(
    { type: 'ANNOUNCE', flags: 0, robust: 20, ccType: 0, blockSize: 1300, timestamp: { sec: 1, usec: 0 }, publicMcast: '230.4.4.1', privateMcast: '230.5.5.1', extensions: [], clientIds: [] },
    0x0a000001,
    0.5,
  );
  const register = packet(
    { type: 'REGISTER', timestamp: { sec: 1, usec: 0 }, clientRandom: new Uint8Array(32), keyInfo: new Uint8Array(0), extensions: [], clientIds: [] },
    0x0a000002,
    0,
  );
  drain(machine, now, sink);
  machine.handle(now, WARM_SERVER, announce);
  drain(machine, now, sink);
  machine.handle(now + 1, mode === 'server' ? WARM_DOWNSTREAM : WARM_CLIENT, register);
  drain(machine, now + 1, sink);
  // the client proxy's hold (one GRTT, as quantized) ends and the REGISTER goes up; the server proxy forwarded it
  // at once and its next deadline is the session's idle end
  const due = machine.pollTimeout();
  if (due !== undefined) {
    machine.handleTimeout(due);
    drain(machine, due, sink);
  }
  return produced;
}
