/**
 * A client proxy's part in an encrypted session (protocol.txt 5.1.1.2), RSA key exchange. No I/O.
 *
 * Observed with the real 4.10.2 client proxy (2026-11-22, RSA + AES-128-CBC + HMAC/SHA-1; docs/protocol-notes.md):
 *  - the ANNOUNCE is re-multicast with only the public key blob of EXT_ENC_INFO replaced by the proxy's own
 *    (same server random, header, everything else);
 *  - clients REGISTER to the proxy with the premaster encrypted to the proxy's key; the proxy's REGISTER
 *    upstream carries its own client random and premaster (encrypted to the server's key) and the client IDs;
 *  - the server's KEYINFO (entry for the proxy's ID) goes to the proxy, which answers KEYINFO_ACK in an
 *    ENCRYPTED with its own ID and IV counter; the server's REG_CONF is NOT re-multicast: instead the proxy
 *    multicasts its own KEYINFO to the private address, with the SERVER's ID as source ID, seq 0, the proxy's
 *    next IV counter, and the group master encrypted for each client with that client's session key;
 *  - clients' KEYINFO_ACKs stay at the proxy; later server ENCRYPTED messages pass unchanged; the clients'
 *    ENCRYPTED responses are opened with the group key and aggregated, and the aggregate sealed with the group
 *    key under the proxy's ID.
 */
import type { KeyObject } from 'node:crypto';
import type { Random } from '../../core/machine.js';
import { parseIPv4, parseIPv6 } from '../../core/address.js';
import type { LoadedKey } from '../../crypto/keyfile.js';
import { blobFingerprint, blobToPublicKey, curveName, publicKeyToBlob } from '../../crypto/pubkey.js';
import { ecdhPremaster, generateEcdhKey, rsaDecryptPremaster, rsaEncryptPremaster, signData, signToFit, verifySignature, zeroedForSignature } from '../../crypto/sign.js';
import { hashSuite, keySuite, type HashSuite, type KeySuite } from '../../crypto/suites.js';
import { deriveClientSession, decryptGroupMaster, deriveGroupKeys, encryptGroupMaster, type ClientSession } from '../../crypto/handshake.js';
import { clientKeySignedData, verifyData, type HandshakeValues } from '../../crypto/keys.js';
import { openEncrypted, sealEncrypted, type GroupCrypto, type Opened } from '../../crypto/encrypted.js';
import { KeyexType, SigType, UFTP_VER_NUM, MessageType } from '../../wire/constants.js';
import { HeaderView, type UftpHeader } from '../../wire/header.js';
import { AnnounceView } from '../../wire/announce.js';
import { EncryptedView, withSignatureLength } from '../../wire/encrypted.js';
import type { ExtEncInfo } from '../../wire/extensions.js';
import { decodeKeyBlobPrefix, encodeKeyBlob, type KeyBlob } from '../../wire/keyblob.js';
import { decodePacket, encodePacket, encodeMessageBody, type Packet } from '../../wire/packet.js';
import type { Register } from '../../wire/register.js';
import type { KeyInfo } from '../../wire/keyinfo.js';
import type { ClientKey } from '../../wire/clientkey.js';

export interface ClientCrypto {
  readonly id: number;
  readonly clientRandom: Uint8Array;
  readonly premaster: Uint8Array;
  readonly session: ClientSession;
  /** The REGISTER's echoed timestamp (µs) and arrival (ms): the REGISTER is aggregated once the CLIENT_KEY checks. */
  readonly tsUs: number;
  /** Verified CLIENT_KEY: the client's public key. */
  clientKey?: { blob: KeyBlob; pub: KeyObject };
  acked: boolean;
}

/** The real proxy's log line when none of its keys fits (black-box, 4.10.2). */
export const NO_COMPATIBLE_KEY = 'No proxy key compatible with server key';

function compatible(k: LoadedKey, server: KeyBlob): boolean {
  if (k.kind === 'RSA' && server.kind === 'RSA') return k.bits === server.modulus.length * 8;
  if (k.kind === 'EC' && server.kind === 'EC') return k.curveId === server.curve;
  return false;
}

/**
 * The key a proxy uses for a server: the first -k key of the same type and size (RSA) or curve (EC) as the
 * server's. Like the real proxy (which refuses a 512-bit RSA key for a 1024-bit server, even for RSA key
 * exchange), there is no fallback to a key of another size.
 */
export function chooseKey(keys: readonly LoadedKey[], server: KeyBlob): { key?: LoadedKey; note?: string } {
  const k = keys.find((x) => compatible(x, server));
  return k ? { key: k } : { note: NO_COMPATIBLE_KEY };
}


function pad4(b: Uint8Array): Uint8Array {
  if (b.length % 4 === 0) return b;
  const o = new Uint8Array((b.length + 3) & ~3);
  o.set(b);
  return o;
}

/** Clients one session keeps keys for, at most (a flood of forged REGISTERs cannot grow it further). */
export const MAX_CLIENTS = 65536;

/** A response proxy's keys: the one PROXY_KEY carries and its long-lived ECDH key (-e). */
export interface KeyexResponse {
  readonly key: LoadedKey;
  readonly clientDh?: { privateKey: KeyObject; blob: KeyBlob };
}

export class KeyexSession {
  readonly suite: KeySuite;
  readonly hash: HashSuite;
  readonly sigType: number;
  readonly serverRandom: Uint8Array;
  readonly privateAddress: Uint8Array;
  private readonly serverKey: KeyObject;
  private readonly ourRandom: Uint8Array;
  private readonly ourPremaster: Uint8Array;
  private readonly ourSession: ClientSession;
  /** Our REGISTER key info: the premaster RSA-encrypted to the server, or our ECDH public key blob. */
  private readonly keyInfo: Uint8Array;
  readonly keyex: number;
  /** ECDH: our ephemeral key (our half upstream, and the key our clients agree with). */
  private readonly dh?: { privateKey: KeyObject; blob: KeyBlob };
  /** Response proxy: the ECDH key our clients agree with (else `dh`). */
  private clientDh?: { privateKey: KeyObject; blob: KeyBlob };
  /** Our IV counter for everything we originate (KEYINFO_ACK, KEYINFO, aggregated responses). */
  private ivCounter = 0n;
  groupMaster: Buffer | undefined;
  group: GroupCrypto | undefined;
  readonly clients = new Map<number, ClientCrypto>();
  /** CLIENT_KEYs that came before their REGISTER. */
  private readonly earlyKeys = new Map<number, ClientKey>();
  /** The server asked for CLIENT_KEY (client authentication, or signatures with -w keyex). */
  readonly needsClientKey: boolean;

  private constructor(
    enc: ExtEncInfo,
    serverKey: KeyObject,
    private readonly key: LoadedKey,
    private readonly groupId: number,
    privateAddr: string,
    suite: KeySuite,
    hash: HashSuite,
    random: Random,
    dh?: { ours: { privateKey: KeyObject; blob: KeyBlob }; premaster: Uint8Array },
  ) {
    this.ourRandom = Uint8Array.from(random.bytes(32));
    this.suite = suite;
    this.hash = hash;
    this.sigType = enc.sigType;
    this.serverRandom = Uint8Array.from(enc.serverRandom);
    this.serverKey = serverKey;
    this.privateAddress = (privateAddr.includes(':') ? parseIPv6(privateAddr) : parseIPv4(privateAddr)) ?? new Uint8Array(4);
    this.keyex = enc.keyexType;
    this.needsClientKey = (enc.flags & 0x01) !== 0 || enc.sigType === SigType.KEYEX;
    if (dh) {
      this.dh = dh.ours;
      this.ourPremaster = dh.premaster;
      this.keyInfo = pad4(encodeKeyBlob(dh.ours.blob));
    } else {
      // the premaster secret: the protocol version, then 47 random bytes (protocol.txt 4)
      this.ourPremaster = Uint8Array.from([UFTP_VER_NUM, ...random.bytes(47)]);
      this.keyInfo = rsaEncryptPremaster(serverKey, this.ourPremaster);
    }
    this.ourSession = deriveClientSession(hash, suite, this.ourPremaster, this.serverRandom, this.ourRandom);
  }

  /** From a decoded encrypted ANNOUNCE. Errors say why the proxy cannot take part. */
  /**
   * `response`: a response proxy's clients know our key from PROXY_KEY, not from an ANNOUNCE: `key` is the one
   * PROXY_KEY carries and `clientDh` its long-lived ECDH key (-e), which the clients' ECDH keys agree with.
   */
  static create(
    p: Packet,
    keys: readonly LoadedKey[],
    random: Random,
    response?: KeyexResponse,
  ): { ok: true; value: KeyexSession; note?: string } | { ok: false; error: string } {
    if (p.message.type !== 'ANNOUNCE') return { ok: false, error: 'not an ANNOUNCE' };
    const enc = p.message.extensions.find((x): x is ExtEncInfo => x.type === 'EXT_ENC_INFO');
    if (!enc) return { ok: false, error: 'no EXT_ENC_INFO' };
    if (enc.keyexType !== KeyexType.RSA && enc.keyexType !== KeyexType.ECDH_RSA && enc.keyexType !== KeyexType.ECDH_ECDSA) {
      return { ok: false, error: `unknown key exchange type ${enc.keyexType}` };
    }
    const suite = keySuite(enc.keyType);
    if (!suite.ok) return { ok: false, error: suite.error };
    const hash = hashSuite(enc.hashType);
    if (!hash.ok) return { ok: false, error: hash.error };
    const sk = blobToPublicKey(enc.publicKey);
    if (!sk.ok) return { ok: false, error: `server key: ${sk.error}` };
    const choice = response ? (compatible(response.key, enc.publicKey) ? { key: response.key } : { note: NO_COMPATIBLE_KEY }) : chooseKey(keys, enc.publicKey);
    if (!choice.key) return { ok: false, error: choice.note ?? 'no usable key' };
    if (response && enc.keyexType !== KeyexType.RSA && !response.clientDh) return { ok: false, error: 'ECDH key exchange needs the response proxy\'s ECDH key (-e curve)' };
    if (enc.keyexType === KeyexType.RSA && choice.key.kind !== 'RSA') return { ok: false, error: 'RSA key exchange needs an RSA key' };
    let dh: { ours: { privateKey: KeyObject; blob: KeyBlob }; premaster: Uint8Array } | undefined;
    if (enc.keyexType !== KeyexType.RSA) {
      if (!enc.dhKey || enc.dhKey.kind !== 'EC') return { ok: false, error: 'ECDH key exchange without an EC DH key' };
      const curve = curveName(enc.dhKey.curve);
      if (!curve) return { ok: false, error: `unknown ECDH curve ${enc.dhKey.curve}` };
      const serverDh = blobToPublicKey(enc.dhKey);
      if (!serverDh.ok) return { ok: false, error: `server ECDH key: ${serverDh.error}` };
      const pair = generateEcdhKey(curve);
      const blob = publicKeyToBlob(pair.publicKey);
      if (!blob.ok) return { ok: false, error: blob.error };
      const pm = ecdhPremaster(pair.privateKey, serverDh.value);
      if (!pm.ok) return { ok: false, error: pm.error };
      dh = { ours: { privateKey: pair.privateKey, blob: blob.value }, premaster: pm.value };
    }
    const s = new KeyexSession(enc, sk.value, choice.key, p.header.groupId, p.message.privateMcast, suite.value, hash.value, random, dh);
    s.clientDh = response?.clientDh;
    return { ok: true, value: s };
  }

  /**
   * The ANNOUNCE as re-multicast to our clients: our public key instead of the server's; with ECDH also our DH
   * key, and the datagram signed with our key (the server's signature is checked first).
   */
  rewriteAnnounce(datagram: Uint8Array): Uint8Array | undefined {
    const p = decodePacket(datagram);
    if (!p.ok || p.value.message.type !== 'ANNOUNCE') return undefined;
    const m = p.value.message;
    if (!this.dh) {
      const exts = m.extensions.map((x) => (x.type === 'EXT_ENC_INFO' ? { ...x, publicKey: this.key.blob } : x));
      return encodePacket({ header: p.value.header, message: { ...m, extensions: exts } });
    }
    const at = AnnounceView.check(datagram);
    const span = at.ok ? at.value.signatureSpan : undefined;
    if (!span) return undefined;
    const sig = datagram.subarray(span.offset, span.offset + span.length);
    if (!verifySignature(this.serverKey, this.hash, zeroedForSignature(datagram, span.offset, span.length), sig)) return undefined;
    const dhBlob = this.dh.blob;
    return signToFit(this.key.privateKey, this.hash, (sigLen) => {
      const out = encodePacket({
        header: p.value.header,
        message: { ...m, extensions: m.extensions.map((x) => (x.type === 'EXT_ENC_INFO' ? { ...x, publicKey: this.key.blob, dhKey: dhBlob, signature: new Uint8Array(sigLen) } : x)) },
      });
      const v = AnnounceView.check(out);
      const pos = v.ok ? v.value.signatureSpan : undefined;
      return pos ? { bytes: out, offset: pos.offset } : undefined;
    });
  }

  /** A client's REGISTER: its premaster (encrypted to our key) and random give its session keys. */
  onClientRegister(clientId: number, reg: Register, tsUs: number): { ok: true } | { ok: false; error: string } {
    const existing = this.clients.get(clientId);
    if (existing && Buffer.from(existing.clientRandom).equals(Buffer.from(reg.clientRandom))) return { ok: true };
    if (!existing && this.clients.size >= MAX_CLIENTS) return { ok: false, error: `more than ${MAX_CLIENTS} clients in one session` };
    let pm: { ok: true; value: Buffer } | { ok: false; error: string };
    const dhKey = this.clientDh ?? this.dh;
    if (this.keyex !== KeyexType.RSA && dhKey) {
      const blob = decodeKeyBlobPrefix(reg.keyInfo);
      if (!blob.ok) return { ok: false, error: `ECDH key: ${blob.error.message}` };
      const pub = blobToPublicKey(blob.value);
      if (!pub.ok) return { ok: false, error: `ECDH key: ${pub.error}` };
      pm = ecdhPremaster(dhKey.privateKey, pub.value);
    } else {
      pm = rsaDecryptPremaster(this.key.privateKey, reg.keyInfo);
    }
    if (!pm.ok) return { ok: false, error: pm.error };
    const session = deriveClientSession(this.hash, this.suite, pm.value, this.serverRandom, reg.clientRandom);
    this.clients.set(clientId, { id: clientId, clientRandom: Uint8Array.from(reg.clientRandom), premaster: pm.value, session, tsUs, acked: false });
    return { ok: true };
  }

  /** Is this client ready to be registered upstream (REGISTER seen, and its CLIENT_KEY checked if one is needed)? */
  ready(clientId: number): boolean {
    const c = this.clients.get(clientId);
    return c !== undefined && (!this.needsClientKey || c.clientKey !== undefined);
  }

  /**
   * A client's CLIENT_KEY: its key must have the fingerprint of the -C list (when given) and its signature over
   * group ID + private address + randoms + premaster must verify. Kept until the REGISTER comes if early.
   */
  onClientKey(clientId: number, ck: ClientKey, fingerprint?: string): { ok: true; pending?: boolean } | { ok: false; error: string } {
    const c = this.clients.get(clientId);
    if (!c) {
      if (this.earlyKeys.size < 4096) this.earlyKeys.set(clientId, ck);
      return { ok: true, pending: true };
    }
    if (fingerprint !== undefined) {
      const fp = blobFingerprint(ck.publicKey);
      if (fp !== fingerprint) return { ok: false, error: `key fingerprint ${fp} is not the one in the client list` };
    }
    const pub = blobToPublicKey(ck.publicKey);
    if (!pub.ok) return { ok: false, error: pub.error };
    if (!verifySignature(pub.value, this.hash, clientKeySignedData(this.handshake(c.clientRandom, c.premaster)), ck.verifyData)) {
      return { ok: false, error: 'CLIENT_KEY signature does not verify' };
    }
    c.clientKey = { blob: ck.publicKey, pub: pub.value };
    return { ok: true };
  }

  /** A CLIENT_KEY that arrived before the client's REGISTER. */
  takeEarlyKey(clientId: number): ClientKey | undefined {
    const k = this.earlyKeys.get(clientId);
    this.earlyKeys.delete(clientId);
    return k;
  }

  /** Our CLIENT_KEY upstream (after our REGISTER), when the server asks for it. */
  buildClientKey(header: UftpHeader): Uint8Array | undefined {
    if (!this.needsClientKey) return undefined;
    const sig = signData(this.key.privateKey, this.hash, clientKeySignedData(this.handshake(this.ourRandom, this.ourPremaster)));
    return encodePacket({ header: { ...header, func: MessageType.CLIENT_KEY }, message: { type: 'CLIENT_KEY', publicKey: this.key.blob, verifyData: sig, extensions: [] } });
  }

  /** Client random and key info for our own REGISTER upstream. */
  get registerFields(): { clientRandom: Uint8Array; keyInfo: Uint8Array } {
    return { clientRandom: this.ourRandom, keyInfo: this.keyInfo };
  }

  private handshake(clientRandom: Uint8Array, premaster: Uint8Array, clientKeyBlob?: KeyBlob): HandshakeValues {
    return { groupId: this.groupId, privateAddress: this.privateAddress, serverRandom: this.serverRandom, clientRandom, premaster, clientKeyBlob };
  }

  /** The server's KEYINFO: learn the group master from our entry; returns our KEYINFO_ACK (sealed). */
  onServerKeyInfo(header: UftpHeader, ki: KeyInfo, uid: number, seq: number): { ok: true; ack: Uint8Array } | { ok: false; error: string } {
    const entry = ki.keys.find((k) => k.clientId === uid);
    if (!entry) return { ok: false, error: 'KEYINFO has no entry for this proxy' };
    const gm = decryptGroupMaster(this.suite, this.ourSession.keys, header.srcId, ki.ivCounter, entry.encryptedGroupMaster);
    if (!gm.ok) return gm;
    if (!this.groupMaster || !this.groupMaster.equals(gm.value)) {
      this.groupMaster = gm.value;
      this.group = { keySuite: this.suite, hashSuite: this.hash, sigType: this.sigType, keys: deriveGroupKeys(this.hash, this.suite, gm.value, this.serverRandom) };
    }
    const vd = verifyData(this.hash, gm.value, this.handshake(this.ourRandom, this.ourPremaster, this.needsClientKey ? this.key.blob : undefined));
    const inner = encodeMessageBody({ type: 'KEYINFO_ACK', verifyData: vd, extensions: [] });
    const sealed = this.seal({ ...header, srcId: uid, seq, grtt: 0, gsize: 0 }, inner);
    return sealed ? { ok: true, ack: sealed } : { ok: false, error: 'cannot seal KEYINFO_ACK' };
  }

  /** Our KEYINFO for the clients listed (those we have keys for and that have not acknowledged). */
  buildKeyInfo(header: UftpHeader, ids: readonly number[]): Uint8Array | undefined {
    if (!this.groupMaster) return undefined;
    const ctr = ++this.ivCounter;
    const keys = [];
    for (const id of ids) {
      const c = this.clients.get(id);
      if (!c || c.acked) continue;
      keys.push({ clientId: id, encryptedGroupMaster: encryptGroupMaster(this.suite, c.session.keys, header.srcId, ctr, this.groupMaster) });
    }
    if (keys.length === 0) return undefined;
    return encodePacket({ header: { ...header, func: MessageType.KEYINFO, seq: 0 }, message: { type: 'KEYINFO', ivCounter: ctr, extensions: [], keys } });
  }

  /** Opens a client's ENCRYPTED. */
  open(datagram: Uint8Array): { ok: true; value: Opened } | { ok: false; error: string } {
    if (!this.group) return { ok: false, error: 'no group key yet' };
    let verifyKey: KeyObject | undefined;
    if (this.sigType === SigType.KEYEX) {
      const h = HeaderView.check(datagram);
      if (!h.ok) return { ok: false, error: h.error.message };
      verifyKey = this.clients.get(h.value.srcId)?.clientKey?.pub;
      if (!verifyKey) return { ok: false, error: 'no verified key of the sender' };
    }
    return openEncrypted(this.group, datagram, verifyKey);
  }

  /** Checks a client's KEYINFO_ACK verify_data; marks it acknowledged. */
  onClientKeyInfoAck(clientId: number, vd: Uint8Array): { ok: true } | { ok: false; error: string } {
    const c = this.clients.get(clientId);
    if (!c || !this.groupMaster) return { ok: false, error: 'KEYINFO_ACK from a client without keys' };
    const want = verifyData(this.hash, this.groupMaster, this.handshake(c.clientRandom, c.premaster, c.clientKey?.blob));
    if (!want.equals(Buffer.from(vd))) return { ok: false, error: 'verify_data mismatch' };
    c.acked = true;
    return { ok: true };
  }

  /**
   * A server ENCRYPTED on its way to our clients. With HMAC or GCM/CCM it goes unchanged. With -w keyex it is
   * signed with the server's key, but our clients know our key (the ANNOUNCE they got carries it): the
   * server's signature is checked and replaced by ours (payload, IV counter and header unchanged).
   */
  resignDown(d: Uint8Array): Uint8Array | undefined {
    return this.resign(d, this.serverKey);
  }

  /**
   * A client's ENCRYPTED passed upstream as it is (CC_ACK, ABORT): with -w keyex the server knows only our key,
   * so the client's signature (checked by open()) is replaced by ours.
   */
  resignUp(d: Uint8Array): Uint8Array | undefined {
    return this.resign(d);
  }

  private resign(d: Uint8Array, verifyWith?: KeyObject): Uint8Array | undefined {
    if (this.sigType !== SigType.KEYEX) return d;
    const v = EncryptedView.check(d);
    if (!v.ok) return undefined;
    const e = v.value;
    if (verifyWith && !verifySignature(verifyWith, this.hash, zeroedForSignature(d, e.signatureOffset, e.signatureLength), e.signature)) return undefined;
    return signToFit(this.key.privateKey, this.hash, (len) => ({ bytes: withSignatureLength(e, len), offset: e.signatureOffset }), 'uftp', e.signatureLength);
  }

  /** Seals an inner message (function byte first) under our ID with our next IV counter. */
  seal(header: UftpHeader, inner: Uint8Array): Uint8Array | undefined {
    if (!this.group) return undefined;
    const r = sealEncrypted(this.group, header, inner, ++this.ivCounter, this.sigType === SigType.KEYEX ? this.key.privateKey : undefined);
    return r.ok ? r.value : undefined;
  }
}
