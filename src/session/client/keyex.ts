/**
 * The client's half of the key exchange (protocol.txt 4; the real programs' details in docs/protocol-notes.md
 * "Crypto"): from an encrypted ANNOUNCE to the group key, then sealing and opening ENCRYPTED messages. No I/O;
 * randomness is injected.
 *
 *  RSA:        REGISTER key info = a 48-byte premaster (version byte first) RSA-OAEP-encrypted to the server's key
 *  ECDH_*:     the ANNOUNCE's signature (server's RSA/ECDSA key) is checked; REGISTER key info = our ephemeral EC
 *              key blob on the server's DH curve (zero padded to 4 bytes); premaster = SHA-1(ECDH secret)
 *  CLIENT_KEY: sent with the REGISTER when the server asks for client authentication or KEYEX signatures
 *  KEYINFO:    our entry gives the group master; KEYINFO_ACK carries verify_data
 * The key used is the first -k key of the server key's type and size (RSA) or curve (EC), as the real uftpd
 * ("No client key compatible with server key" otherwise).
 */
import type { KeyObject } from 'node:crypto';
import type { LoadedKey } from '../../crypto/keyfile.js';
import { blobFingerprint, blobToPublicKey, curveName, publicKeyToBlob } from '../../crypto/pubkey.js';
import { ecdhPremaster, generateEcdhKey, rsaEncryptPremaster, signData, verifySignature } from '../../crypto/sign.js';
import { hashSuite, keySuite, type HashSuite, type KeySuite } from '../../crypto/suites.js';
import { decryptGroupMaster, deriveClientSession, deriveGroupKeys, type ClientSession } from '../../crypto/handshake.js';
import { clientKeySignedData, verifyData, type HandshakeValues } from '../../crypto/keys.js';
import { openEncrypted, sealEncrypted, type GroupCrypto } from '../../crypto/encrypted.js';
import { KeyexType, SigType, UFTP_VER_NUM } from '../../wire/constants.js';
import type { ExtEncInfo } from '../../wire/extensions.js';
import { parseIPv4, parseIPv6 } from '../../wire/fields.js';
import type { UftpHeader } from '../../wire/header.js';
import { encodeKeyBlob, type KeyBlob } from '../../wire/keyblob.js';
import type { KeyInfo } from '../../wire/keyinfo.js';
import type { ClientKey } from '../../wire/clientkey.js';
import type { Announce } from '../../wire/announce.js';
import { decodePacket, signedBytes, type Message } from '../../wire/packet.js';

export type R<T> = { ok: true; value: T } | { ok: false; error: string };

export interface ClientKeyex {
  readonly hasGroupKey: boolean;
  readonly registerFields: { clientRandom: Uint8Array; keyInfo: Uint8Array };
  /** The CLIENT_KEY to send with the REGISTER, when the server asks for one. */
  clientKey(): ClientKey | undefined;
  /** Our KEYINFO entry: the verify_data for KEYINFO_ACK; undefined when the KEYINFO has no entry for us. */
  onKeyInfo(h: UftpHeader, ki: KeyInfo, uid: number): R<Uint8Array> | undefined;
  open(datagram: Uint8Array): R<{ header: UftpHeader; message: Message }>;
  seal(h: UftpHeader, inner: Uint8Array): Uint8Array | undefined;
}

/** -R: the response proxy's keys from its PROXY_KEY (the key exchange is made with the proxy, not the server). */
export interface ProxyKeyInfo {
  readonly blob: KeyBlob;
  readonly key: KeyObject;
  readonly dh?: { readonly blob: KeyBlob; readonly key: KeyObject };
}

export interface KeyexFactory {
  create(h: UftpHeader, m: Announce, datagram: Uint8Array, proxy?: ProxyKeyInfo): R<ClientKeyex>;
  fingerprint(blob: KeyBlob): string;
}

/** The real uftpd's words when none of its keys fits the server's. */
export const NO_CLIENT_KEY = 'No client key compatible with server key';

function compatible(k: LoadedKey, server: KeyBlob): boolean {
  if (k.kind === 'RSA' && server.kind === 'RSA') return k.bits === server.modulus.length * 8;
  if (k.kind === 'EC' && server.kind === 'EC') return k.curveId === server.curve;
  return false;
}

function pad4(b: Uint8Array): Uint8Array {
  if (b.length % 4 === 0) return b;
  const o = new Uint8Array((b.length + 3) & ~3);
  o.set(b);
  return o;
}

/** Keys (-k/-K) and a source of random bytes make a factory. */
export function keyexFactory(keys: readonly LoadedKey[], random: (n: number) => Uint8Array): KeyexFactory {
  return {
    fingerprint: (blob) => blobFingerprint(blob),
    create(h, m, datagram, proxy) {
      const enc = m.extensions.find((x): x is ExtEncInfo => x.type === 'EXT_ENC_INFO');
      if (!enc) return { ok: false, error: 'no EXT_ENC_INFO' };
      const suite = keySuite(enc.keyType);
      if (!suite.ok) return { ok: false, error: suite.error };
      const hash = hashSuite(enc.hashType);
      if (!hash.ok) return { ok: false, error: hash.error };
      const sk = blobToPublicKey(enc.publicKey);
      if (!sk.ok) return { ok: false, error: `server key: ${sk.error}` };
      // behind a response proxy our key exchange is with the proxy: its key, its ECDH key
      const peerBlob = proxy?.blob ?? enc.publicKey;
      const peerKey = proxy?.key ?? sk.value;
      const key = keys.find((k) => compatible(k, peerBlob)) ?? keys.find((k) => compatible(k, enc.publicKey));
      if (!key) return { ok: false, error: NO_CLIENT_KEY };
      const privateAddress = (m.privateMcast.includes(':') ? parseIPv6(m.privateMcast) : parseIPv4(m.privateMcast)) ?? new Uint8Array(4);
      const clientRandom = Uint8Array.from(random(32));
      let premaster: Uint8Array;
      let keyInfo: Uint8Array;
      if (enc.keyexType === KeyexType.RSA) {
        if (peerBlob.kind !== 'RSA') return { ok: false, error: 'RSA key exchange with a non-RSA key' };
        // the version byte, then 47 random bytes (protocol.txt 4)
        premaster = Uint8Array.from([UFTP_VER_NUM, ...random(47)]);
        keyInfo = rsaEncryptPremaster(peerKey, premaster);
      } else if (enc.keyexType === KeyexType.ECDH_RSA || enc.keyexType === KeyexType.ECDH_ECDSA) {
        if (!enc.dhKey || enc.dhKey.kind !== 'EC') return { ok: false, error: 'ECDH key exchange without an EC DH key' };
        // the ANNOUNCE is signed by the server's key: check before trusting its DH key
        const p = decodePacket(datagram);
        if (!p.ok) return { ok: false, error: 'ANNOUNCE does not decode' };
        if (enc.signature.length === 0 || !verifySignature(sk.value, hash.value, signedBytes(datagram, p.value), enc.signature)) {
          return { ok: false, error: 'ANNOUNCE signature does not verify' };
        }
        if (proxy && !proxy.dh) return { ok: false, error: 'ECDH key exchange but the response proxy has no ECDH key' };
        const dhBlob = proxy?.dh?.blob ?? enc.dhKey;
        const curve = dhBlob.kind === 'EC' ? curveName(dhBlob.curve) : undefined;
        if (!curve) return { ok: false, error: 'unknown ECDH curve' };
        const serverDh = proxy?.dh ? { ok: true as const, value: proxy.dh.key } : blobToPublicKey(enc.dhKey);
        if (!serverDh.ok) return { ok: false, error: `server ECDH key: ${serverDh.error}` };
        const pair = generateEcdhKey(curve);
        const blob = publicKeyToBlob(pair.publicKey);
        if (!blob.ok) return { ok: false, error: blob.error };
        const pm = ecdhPremaster(pair.privateKey, serverDh.value);
        if (!pm.ok) return { ok: false, error: pm.error };
        premaster = pm.value;
        keyInfo = pad4(encodeKeyBlob(blob.value));
      } else {
        return { ok: false, error: `unknown key exchange type ${enc.keyexType}` };
      }
      const session = deriveClientSession(hash.value, suite.value, premaster, enc.serverRandom, clientRandom);
      return {
        ok: true,
        value: new Keyex(enc, suite.value, hash.value, sk.value, key, h.groupId, privateAddress, clientRandom, premaster, keyInfo, session),
      };
    },
  };
}

/** IV counters remembered below the highest seen (a reordered datagram is still accepted once). */
const REPLAY_WINDOW = 1024n;

class Keyex implements ClientKeyex {
  private group: GroupCrypto | undefined;
  /** Replay protection: the highest server IV counter seen and which of the REPLAY_WINDOW below it came. */
  private maxCtr = -1n;
  private readonly seen = new Uint8Array(Number(REPLAY_WINDOW) / 8);
  private groupMaster: Buffer | undefined;
  private ivCounter = 0n;
  private readonly needsClientKey: boolean;
  private readonly serverRandom: Uint8Array;
  private readonly sigType: number;

  constructor(
    enc: ExtEncInfo,
    private readonly suite: KeySuite,
    private readonly hash: HashSuite,
    private readonly serverKey: KeyObject,
    private readonly key: LoadedKey,
    private readonly groupId: number,
    private readonly privateAddress: Uint8Array,
    private readonly clientRandom: Uint8Array,
    private readonly premaster: Uint8Array,
    private readonly keyInfo: Uint8Array,
    private readonly session: ClientSession,
  ) {
    this.serverRandom = Uint8Array.from(enc.serverRandom);
    this.sigType = enc.sigType;
    this.needsClientKey = (enc.flags & 0x01) !== 0 || enc.sigType === SigType.KEYEX;
  }

  get hasGroupKey(): boolean {
    return this.group !== undefined;
  }

  get registerFields(): { clientRandom: Uint8Array; keyInfo: Uint8Array } {
    return { clientRandom: this.clientRandom, keyInfo: this.keyInfo };
  }

  private handshake(withKey: boolean): HandshakeValues {
    return {
      groupId: this.groupId, privateAddress: this.privateAddress, serverRandom: this.serverRandom, clientRandom: this.clientRandom,
      premaster: this.premaster, clientKeyBlob: withKey ? this.key.blob : undefined,
    };
  }

  clientKey(): ClientKey | undefined {
    if (!this.needsClientKey) return undefined;
    const sig = signData(this.key.privateKey, this.hash, clientKeySignedData(this.handshake(false)));
    return { type: 'CLIENT_KEY', publicKey: this.key.blob, verifyData: sig, extensions: [] };
  }

  onKeyInfo(h: UftpHeader, ki: KeyInfo, uid: number): R<Uint8Array> | undefined {
    const entry = ki.keys.find((k) => k.clientId === uid);
    if (!entry) return undefined;
    const gm = decryptGroupMaster(this.suite, this.session.keys, h.srcId, ki.ivCounter, entry.encryptedGroupMaster);
    if (!gm.ok) return gm;
    if (!this.groupMaster || !this.groupMaster.equals(gm.value)) {
      this.groupMaster = gm.value;
      this.group = { keySuite: this.suite, hashSuite: this.hash, sigType: this.sigType, keys: deriveGroupKeys(this.hash, this.suite, gm.value, this.serverRandom) };
    }
    return { ok: true, value: verifyData(this.hash, gm.value, this.handshake(this.needsClientKey)) };
  }

  open(datagram: Uint8Array): R<{ header: UftpHeader; message: Message }> {
    if (!this.group) return { ok: false, error: 'no group key yet' };
    const o = openEncrypted(this.group, datagram, this.sigType === SigType.KEYEX ? this.serverKey : undefined);
    if (!o.ok) return o;
    // only after the signature or tag checked out: a forged counter cannot move the window
    if (!this.fresh(o.value.ivCounter)) return { ok: false, error: `replayed datagram (IV counter ${o.value.ivCounter})` };
    return { ok: true, value: { header: o.value.header, message: o.value.message } };
  }

  /** Accepts each IV counter once (a window of REPLAY_WINDOW below the highest; older ones are refused). */
  private fresh(ctr: bigint): boolean {
    if (ctr > this.maxCtr) {
      const shift = ctr - this.maxCtr;
      if (shift >= REPLAY_WINDOW) this.seen.fill(0);
      else for (let c = this.maxCtr + 1n; c < ctr; c++) this.clearBit(c);
      this.maxCtr = ctr;
      this.setBit(ctr);
      return true;
    }
    if (this.maxCtr - ctr >= REPLAY_WINDOW) return false;
    const i = Number(ctr % REPLAY_WINDOW);
    if ((this.seen[i >> 3] & (1 << (i & 7))) !== 0) return false;
    this.setBit(ctr);
    return true;
  }

  private setBit(c: bigint): void {
    const i = Number(c % REPLAY_WINDOW);
    this.seen[i >> 3] |= 1 << (i & 7);
  }

  private clearBit(c: bigint): void {
    const i = Number(c % REPLAY_WINDOW);
    this.seen[i >> 3] &= ~(1 << (i & 7));
  }

  seal(h: UftpHeader, inner: Uint8Array): Uint8Array | undefined {
    if (!this.group) return undefined;
    const r = sealEncrypted(this.group, h, inner, ++this.ivCounter, this.sigType === SigType.KEYEX ? this.key.privateKey : undefined);
    return r.ok ? r.value : undefined;
  }
}
