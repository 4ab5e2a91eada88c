/**
 * The server half of the UFTP key exchange (protocol.txt 4), on src/crypto: what the ANNOUNCE carries
 * (EXT_ENC_INFO, signed over the whole datagram for the ECDH schemes), the premaster from a REGISTER (RSA-OAEP
 * decryption or ECDH), the CLIENT_KEY check, the KEYINFO entry for a client, the verify_data of its KEYINFO_ACK,
 * and sealing/opening ENCRYPTED messages with the group keys. Pure computation: keys and randoms come in from
 * the driver (no randomness is drawn here).
 */
import type { KeyObject } from 'node:crypto';
import {
  blobFingerprint, blobToPublicKey, clientKeySignedData, deriveClientSession, ecdhPremaster, encryptGroupMaster,
  openEncrypted, rsaDecryptPremaster, sealEncrypted, sealEncryptedInto, signToFit, verifyData, verifySignature, type GroupCrypto,
  type HandshakeValues, type LoadedKey, type Opened, type SymmetricKeys,
} from '../../crypto/index.js';
import {
  EncInfoFlag, KeyexType, decodeKeyBlob, encodePacketInto, packetLength, parseIPv4, parseIPv6, type ExtEncInfo, type KeyBlob,
  type Packet, type UftpHeader,
} from '../../wire/index.js';

export interface ServerSecurityParams {
  readonly group: GroupCrypto;
  readonly keyexType: number;
  readonly clientAuth: boolean;
  readonly serverKey: LoadedKey;
  readonly serverRandom: Uint8Array;
  /** 48 bytes, first byte 0x40. */
  readonly groupMaster: Uint8Array;
  /** Ephemeral ECDH key pair for ECDH_RSA / ECDH_ECDSA. */
  readonly ecdh?: { readonly privateKey: KeyObject; readonly blob: KeyBlob };
  /** -H @file / -j: client or proxy ID -> required key fingerprint (checked only with -c, as the real uftp). */
  readonly fingerprints?: ReadonlyMap<number, string>;
}

/** What the server keeps per client during the handshake. */
export interface ClientHandshake {
  premaster?: Uint8Array;
  clientRandom?: Uint8Array;
  session?: SymmetricKeys;
  clientKey?: KeyObject;
  clientKeyBlob?: KeyBlob;
  clientKeySig?: Uint8Array;
  /** The client proved it holds the group key (KEYINFO_ACK verify_data matched). */
  acked: boolean;
}

export class ServerSecurity {
  constructor(readonly p: ServerSecurityParams, private readonly privateAddr: string) {}

  get group(): GroupCrypto {
    return this.p.group;
  }

  encInfo(): ExtEncInfo {
    const g = this.p.group;
    return {
      type: 'EXT_ENC_INFO', flags: this.p.clientAuth ? EncInfoFlag.CLIENT_AUTH : 0, keyexType: this.p.keyexType, sigType: g.sigType,
      keyType: g.keySuite.id, hashType: g.hashSuite.id, serverRandom: this.p.serverRandom, publicKey: this.p.serverKey.blob,
      dhKey: this.p.ecdh?.blob ?? null, signature: new Uint8Array(0),
    };
  }

  /** Encodes an ANNOUNCE; with ECDH it is signed with the server key over the datagram with the signature zeroed. */
  encodeAnnounce(p: Packet): Uint8Array | undefined {
    if (this.p.keyexType === KeyexType.RSA) {
      const out = new Uint8Array(packetLength(p));
      encodePacketInto(p, out);
      return out;
    }
    const ext = p.message.type === 'ANNOUNCE' ? p.message.extensions.find((e): e is ExtEncInfo => e.type === 'EXT_ENC_INFO') : undefined;
    if (!ext) return undefined;
    const signed = signToFit(this.p.serverKey.privateKey, this.p.group.hashSuite, (len) => {
      ext.signature = new Uint8Array(len);
      const out = new Uint8Array(packetLength(p));
      encodePacketInto(p, out);
      return { bytes: out, offset: out.length - len };
    });
    return signed;
  }

  /** The premaster from a REGISTER's key info; an error names why it is unusable. */
  premaster(keyInfo: Uint8Array): { ok: true; value: Uint8Array } | { ok: false; error: string } {
    if (this.p.keyexType === KeyexType.RSA) return rsaDecryptPremaster(this.p.serverKey.privateKey, keyInfo);
    if (!this.p.ecdh) return { ok: false, error: 'no ECDH key' };
    const b = decodeKeyBlob(keyInfo);
    if (!b.ok) return { ok: false, error: `client ECDH key: ${b.error.message}` };
    const k = blobToPublicKey(b.value);
    if (!k.ok) return { ok: false, error: `client ECDH key: ${k.error}` };
    return ecdhPremaster(this.p.ecdh.privateKey, k.value);
  }

  onRegister(h: ClientHandshake, keyInfo: Uint8Array, clientRandom: Uint8Array): string | undefined {
    const pm = this.premaster(keyInfo);
    if (!pm.ok) return pm.error;
    h.premaster = Uint8Array.from(pm.value);
    h.clientRandom = Uint8Array.from(clientRandom);
    h.session = deriveClientSession(this.p.group.hashSuite, this.p.group.keySuite, h.premaster, this.p.serverRandom, h.clientRandom).keys;
    return undefined;
  }

  onClientKey(h: ClientHandshake, id: number, blob: KeyBlob, signature: Uint8Array): string | undefined {
    const want = this.p.fingerprints?.get(id);
    if (this.p.clientAuth && want !== undefined && blobFingerprint(blob) !== want) return `key fingerprint does not match the host list`;
    const k = blobToPublicKey(blob);
    if (!k.ok) return `CLIENT_KEY: ${k.error}`;
    h.clientKey = k.value;
    h.clientKeyBlob = { ...blob };
    h.clientKeySig = Uint8Array.from(signature);
    return undefined;
  }

  private values(groupId: number, h: ClientHandshake): HandshakeValues | undefined {
    if (!h.premaster || !h.clientRandom) return undefined;
    const addr = this.privateAddr.includes(':') ? parseIPv6(this.privateAddr) : parseIPv4(this.privateAddr);
    if (!addr) return undefined;
    return { groupId, privateAddress: addr, serverRandom: this.p.serverRandom, clientRandom: h.clientRandom, premaster: h.premaster, clientKeyBlob: h.clientKeyBlob };
  }

  /** Whether the client may get a KEYINFO: registered and, with -c, its CLIENT_KEY signature verifies. */
  ready(groupId: number, h: ClientHandshake): boolean {
    if (!h.session) return false;
    if (!this.p.clientAuth) return true;
    const v = this.values(groupId, h);
    if (!v || !h.clientKey || !h.clientKeySig) return false;
    return verifySignature(h.clientKey, this.p.group.hashSuite, clientKeySignedData(v), h.clientKeySig);
  }

  keyinfoEntry(srcId: number, ivCounter: bigint, h: ClientHandshake): Uint8Array | undefined {
    if (!h.session) return undefined;
    return encryptGroupMaster(this.p.group.keySuite, h.session, srcId, ivCounter, this.p.groupMaster);
  }

  checkVerifyData(groupId: number, h: ClientHandshake, got: Uint8Array): boolean {
    const v = this.values(groupId, h);
    if (!v) return false;
    const want = verifyData(this.p.group.hashSuite, this.p.groupMaster, v);
    return Buffer.from(got).equals(want);
  }

  /**
   * seal() into `out` from its start where it can (the FILESEG path: a reused datagram buffer, no Buffer of its
   * own); returns the datagram. KEYEX (a signature per datagram, as long as the server's key) gets its own buffer.
   */
  sealInto(header: UftpHeader, body: Uint8Array, ivCounter: bigint, out: Uint8Array): Uint8Array {
    const n = sealEncryptedInto(this.p.group, header, body, ivCounter, out);
    return n !== undefined ? out.subarray(0, n) : this.seal(header, body, ivCounter);
  }

  seal(header: UftpHeader, body: Uint8Array, ivCounter: bigint): Uint8Array {
    const r = sealEncrypted(this.p.group, header, body, ivCounter, this.p.serverKey.privateKey);
    if (!r.ok) throw new Error(`seal: ${r.error}`); // a configuration bug: suites are checked at start-up
    return r.value;
  }

  open(datagram: Uint8Array, senderKey: KeyObject | undefined): { ok: true; value: Opened } | { ok: false; error: string } {
    return openEncrypted(this.p.group, datagram, senderKey);
  }
}
