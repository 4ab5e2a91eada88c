/**
 * The client proxy (uftpproxyd -c): the downstream end of a multicast tunnel. No I/O.
 *
 * Observed with the real programs (2026-11-22, plain session srv -> real server proxy -> real client proxy ->
 * 2 uftpd; see docs/protocol-notes.md "## uftpproxyd"): the client proxy re-multicasts every server message
 * UNCHANGED (ANNOUNCE to the public address, everything else to the private one, from its own port so the
 * clients answer to it); clients' REGISTER / FILEINFO_ACK / COMPLETE are held ~1 GRTT and sent upstream as
 * one message with the proxy's own ID in the header, its own sequence counter, GRTT byte 0, the client IDs in
 * the body and (REGISTER, FILEINFO_ACK) the echoed timestamp advanced by the time the proxy held it.
 *
 * Here:
 *  - sessions keyed by (server ID, group ID, group instance); the upstream address is where the ANNOUNCE came
 *    from, and only server messages from that address are re-multicast;
 *  - REGISTER, FILEINFO_ACK (per file ID and flags), COMPLETE (per file ID and status) and STATUS (per file
 *    and section, NAK bitmaps OR-ed) are aggregated for 1 GRTT; the client with the longest RTT (smallest
 *    echoed timestamp relative to its arrival) is listed first and its timestamp is the one sent;
 *  - CC_ACK is forwarded at once, unchanged; a client's ABORT goes upstream with Host = the client's ID;
 *  - -C: responses from clients not in the list are dropped; -S: ANNOUNCEs from servers not in it are dropped;
 *  - a session with nothing pending and no packet for 4 * ROBUST * GRTT (at least MIN_IDLE_MS) is reclaimed.
 * Encrypted sessions (ANNOUNCE with EXT_ENC_INFO) need the proxy's own key exchange (protocol.txt 5.1.1.2);
 * this version does not implement it and ignores such sessions with a log line.
 */
import { MessageType, UFTP_HEADER_LEN, ABORT_MESSAGE_LEN } from '../wire/constants.js';
import { put16, put32 } from '../wire/fields.js';
import { unquantizeGrtt } from '../wire/quantize.js';
import type { ClientListEntry, ServerListEntry } from './lists.js';
import {
  DOWNSTREAM_TYPES,
  endpointText,
  groupTag,
  hexId,
  peekDatagram,
  readAnnounce,
  readComplete,
  readFileInfoAck,
  readRegister,
  readStatus,
  sameEndpoint,
  typeName,
  writeHeader,
  writeIds,
  writeTimestampUs,
  type Endpoint,
  type ProxyIo,
} from './proxy-common.js';
import { MAX_IDLE_MS, MAX_SESSIONS, MIN_IDLE_MS } from './server-proxy.js';
import { isSsm } from './addr.js';
import { KeyexSession, NO_COMPATIBLE_KEY } from './proxy-keyex.js';
import type { LoadedKey } from '../crypto/keyfile.js';
import type { KeyObject } from 'node:crypto';
import type { KeyBlob } from '../wire/keyblob.js';
import { decodeHeader, type UftpHeader } from '../wire/header.js';
import { decodePacket } from '../wire/packet.js';
import type { ClientKey } from '../wire/clientkey.js';
import { blobFingerprint } from '../crypto/pubkey.js';

/** A response proxy sends PROXY_KEY at most this often (protocol.txt 5.2.20). */
export const PROXY_KEY_INTERVAL_MS = 5000;

export interface ClientProxyConfig {
  readonly uid: number;
  /**
   * Response proxy (-r): sessions come from ANNOUNCEs the proxy hears by multicast itself; server messages
   * reach the clients directly and are not re-multicast (the private address is joined only to follow the
   * session); KEY_REQ is answered with PROXY_KEY (at most once per PROXY_KEY_INTERVAL_MS).
   */
  readonly response?: {
    /** The public multicast addresses PROXY_KEY goes to. */
    readonly publicAddrs: readonly string[];
    /** A ready PROXY_KEY datagram for a nonce (the driver signs with its key). */
    readonly proxyKey: (nonce: number) => Uint8Array;
    readonly nonce: () => number;
    /** The ECDH key PROXY_KEY advertises (-e), for ECDH sessions. */
    readonly dhKey?: { privateKey: KeyObject; blob: KeyBlob };
  };
  /** -q: the clients' port. */
  readonly destPort: number;
  readonly clientList?: readonly ClientListEntry[];
  readonly serverList?: readonly ServerListEntry[];
  /** Our private keys (-k/-K): a client proxy takes part in encrypted sessions with one of them. */
  readonly keys?: readonly LoadedKey[];
}

type PendingKind = 'REGISTER' | 'FILEINFO_ACK' | 'COMPLETE' | 'STATUS';

interface Contribution {
  /** Echoed server timestamp (µs), for REGISTER and FILEINFO_ACK. */
  readonly tsUs: number;
  /** When it reached us (ms, our clock). */
  readonly rx: number;
}

interface Pending {
  readonly kind: PendingKind;
  readonly fileId: number;
  /** FILEINFO_ACK flags, COMPLETE status, STATUS section. */
  readonly sub: number;
  readonly deadline: number;
  readonly from: Map<number, Contribution>;
  naks?: Uint8Array;
  ext?: Uint8Array;
}

interface Session {
  readonly key: string;
  readonly serverId: number;
  readonly groupId: number;
  readonly groupInst: number;
  readonly upstream: Endpoint;
  readonly publicAddr: string;
  readonly privateAddr: string;
  /** privateAddr at the clients' port (one object for every re-multicast datagram). */
  readonly privateDest: Endpoint;
  readonly blockSize: number;
  robust: number;
  grttQ: number;
  lastHeard: number;
  seq: number;
  readonly pending: Map<string, Pending>;
  /** Clients seen (ID -> address), for logs and the sim tests. */
  readonly clients: Map<number, Endpoint>;
  down: number;
  up: number;
  /** Encrypted session: our key exchange with the server and with the clients. */
  enc?: KeyexSession;
  /** Clients the server confirmed (REG_CONF), whom we send our KEYINFO. */
  regConf?: Set<number>;
  /** The last server header (for the KEYINFO we send in the server's name). */
  lastServerHeader?: UftpHeader;
  keyinfoDue?: number;
  keyinfoTries: number;
}

export interface ClientProxyStats {
  down: number;
  up: number;
  aggregated: number;
  dropped: number;
}

export class ClientProxy {
  private readonly sessions = new Map<string, Session>();
  private readonly byGroup = new Map<number, Session[]>();
  /** Encrypted sessions we refused, so we log once per session. */
  private readonly refused = new Map<string, number>();
  readonly stats: ClientProxyStats = { down: 0, up: 0, aggregated: 0, dropped: 0 };
  private lastProxyKey = -Infinity;

  constructor(
    private readonly cfg: ClientProxyConfig,
    private readonly io: ProxyIo,
  ) {}

  get sessionCount(): number {
    return this.sessions.size;
  }

  handle(now: number, from: Endpoint, data: Uint8Array): void {
    const h = peekDatagram(data);
    if (!h.ok) {
      this.drop(4, `Dropped datagram from ${endpointText(from)}: ${h.error.message}`);
      return;
    }
    const hdr = h.value;
    const func = hdr.func;
    if (func === MessageType.ANNOUNCE) {
      this.onAnnounce(now, from, data, hdr.srcId, hdr.groupId, hdr.groupInst, hdr.grtt);
      return;
    }
    if (func === MessageType.KEY_REQ && this.cfg.response) {
      this.onKeyReq(now, from);
      return;
    }
    if (func === MessageType.HB_REQ || func === MessageType.HB_RESP || func === MessageType.KEY_REQ || func === MessageType.PROXY_KEY) {
      this.drop(4, `Ignoring ${typeName(func)} from ${endpointText(from)}`);
      return;
    }
    const list = this.byGroup.get(hdr.groupId);
    // the "[GROUPID/II]" tag is built only for a log line, not per datagram
    if (!list) {
      this.drop(4, `${groupTag(hdr.groupId, hdr.groupInst)}: ${typeName(func)} from ${endpointText(from)} for no known session`);
      return;
    }
    let up: Session | undefined;
    for (let i = 0; i < list.length; i++) {
      const x = list[i];
      if (x.groupInst === hdr.groupInst && x.serverId === hdr.srcId && sameEndpoint(x.upstream, from)) {
        up = x;
        break;
      }
    }
    if (up) {
      if (!DOWNSTREAM_TYPES.has(func)) {
        this.drop(3, `${groupTag(hdr.groupId, hdr.groupInst)}: ${typeName(func)} from upstream ${endpointText(from)} is not a server message`);
        return;
      }
      up.lastHeard = now;
      up.grttQ = hdr.grtt;
      if (up.enc && (func === MessageType.KEYINFO || func === MessageType.REG_CONF)) {
        this.serverKeyex(now, up, func, data);
        return;
      }
      if (this.cfg.response) return; // the clients hear the server themselves
      let out = data;
      if (up.enc && func === MessageType.ENCRYPTED) {
        const r = up.enc.resignDown(data);
        if (!r) return this.drop(2, `${groupTag(hdr.groupId, hdr.groupInst)}: ENCRYPTED from the server does not verify with its key; dropped`);
        out = r;
      }
      up.down++;
      this.stats.down++;
      if (func !== MessageType.FILESEG && this.io.logEnabled(5)) this.io.log(5, `${groupTag(hdr.groupId, hdr.groupInst)}: ${typeName(func)} re-multicast to ${up.privateAddr}`);
      this.io.send(up.privateDest, out, true);
      return;
    }
    let s: Session | undefined;
    for (let i = 0; i < list.length; i++) {
      if (list[i].groupInst === hdr.groupInst) {
        s = list[i];
        break;
      }
    }
    if (!s) {
      this.drop(4, `${groupTag(hdr.groupId, hdr.groupInst)}: ${typeName(func)} from ${endpointText(from)} for no known session`);
      return;
    }
    this.fromClient(now, s, from, hdr.srcId, func, data);
  }

  private onAnnounce(now: number, from: Endpoint, data: Uint8Array, serverId: number, groupId: number, groupInst: number, grttQ: number): void {
    const tag = groupTag(groupId, groupInst);
    const key = `${hexId(serverId)}/${hexId(groupId)}/${groupInst}`;
    let s = this.sessions.get(key);
    if (s && !sameEndpoint(s.upstream, from)) {
      this.drop(2, `${tag}: ANNOUNCE for an existing session from ${endpointText(from)}, not ${endpointText(s.upstream)}`);
      return;
    }
    if (!s) {
      if (this.refused.has(key)) {
        this.refused.set(key, now);
        this.stats.dropped++;
        return;
      }
      if (this.sessions.size >= MAX_SESSIONS) {
        this.drop(1, `${tag}: ${MAX_SESSIONS} sessions open; ANNOUNCE from ${endpointText(from)} dropped`);
        return;
      }
      const a = readAnnounce(data);
      if (!a.ok) {
        this.drop(2, `${tag}: malformed ANNOUNCE from ${endpointText(from)}: ${a.error.message}`);
        return;
      }
      if (this.cfg.serverList && !this.cfg.serverList.some((e) => e.id === serverId)) {
        this.drop(1, `${tag}: Server ${hexId(serverId)} not in server list`);
        return;
      }
      // with -S, a proxy that listens by multicast (response proxy, as the server proxy) needs SSM addresses (man
      // uftpproxyd); the real client proxy with -S accepts any private address (black-box), and so do we
      if (this.cfg.serverList && this.cfg.response && !isSsm(a.value.privateAddr)) {
        this.drop(1, `${tag}: private multicast address ${a.value.privateAddr} is not an SSM address, rejected (-S given)`);
        return;
      }
      let enc: KeyexSession | undefined;
      if (a.value.encrypted) {
        if (!this.cfg.keys || this.cfg.keys.length === 0) {
          this.refuse(now, key, `${tag}: encrypted session from ${hexId(serverId)}: no key; session ignored`);
          return;
        }
        const p = decodePacket(data);
        if (!p.ok) {
          this.drop(2, `${tag}: malformed ANNOUNCE from ${endpointText(from)}: ${p.error.message}`);
          return;
        }
        const listed = this.cfg.serverList?.find((e) => e.id === serverId)?.fingerprint;
        if (listed !== undefined && p.value.message.type === 'ANNOUNCE') {
          const ei = p.value.message.extensions.find((x) => x.type === 'EXT_ENC_INFO');
          const fp = ei && ei.type === 'EXT_ENC_INFO' ? blobFingerprint(ei.publicKey) : undefined;
          if (fp !== listed) {
            this.refuse(now, key, `${tag}: server ${hexId(serverId)} key fingerprint ${fp ?? '(none)'} does not match the server list`);
            return;
          }
        }
        const r = this.cfg.response;
        const k = KeyexSession.create(p.value, this.cfg.keys, r ? { key: this.cfg.keys[0], clientDh: r.dhKey } : undefined);
        if (!k.ok) {
          this.refuse(now, key, k.error === NO_COMPATIBLE_KEY ? `${tag}: ${k.error}` : `${tag}: encrypted session from ${hexId(serverId)}: ${k.error}; session ignored`);
          return;
        }
        enc = k.value;
      }
      s = {
        key,
        serverId,
        groupId,
        groupInst,
        upstream: from,
        publicAddr: a.value.publicAddr,
        privateAddr: a.value.privateAddr,
        privateDest: { address: a.value.privateAddr, port: this.cfg.destPort },
        blockSize: a.value.blockSize,
        robust: a.value.robust,
        grttQ,
        lastHeard: now,
        seq: 0,
        pending: new Map(),
        clients: new Map(),
        down: 0,
        up: 0,
        enc,
        keyinfoTries: 0,
      };
      this.sessions.set(key, s);
      const list = this.byGroup.get(groupId);
      if (list) list.push(s);
      else this.byGroup.set(groupId, [s]);
      this.io.log(2, `${tag}: Received request from ${hexId(serverId)} via ${endpointText(from)}`);
      this.io.log(3, `${tag}: Using public multicast address ${s.publicAddr}, private multicast address ${s.privateAddr}`);
      if (this.cfg.response) this.joinPrivate(s.privateAddr, this.cfg.serverList ? from.address : undefined);
    }
    s.lastHeard = now;
    s.grttQ = grttQ;
    if (this.cfg.response) return;
    s.down++;
    this.stats.down++;
    const out = s.enc ? s.enc.rewriteAnnounce(data) : data;
    if (!out) return this.drop(2, `${tag}: cannot rewrite the encrypted ANNOUNCE`);
    this.io.send({ address: s.publicAddr, port: this.cfg.destPort }, out, true);
  }

  /** Response proxy: private addresses joined, counted per session. */
  private readonly joined = new Map<string, number>();

  /** Joins a private address (source-specific from the server with -S), counted per session. */
  private joinPrivate(addr: string, source?: string): void {
    const k = `${addr}|${source ?? ''}`;
    const n = this.joined.get(k) ?? 0;
    if (n === 0) this.io.join(addr, source);
    this.joined.set(k, n + 1);
  }

  private leavePrivate(addr: string, source?: string): void {
    const k = `${addr}|${source ?? ''}`;
    const n = (this.joined.get(k) ?? 1) - 1;
    if (n <= 0) {
      this.joined.delete(k);
      this.io.leave(addr, source);
    } else this.joined.set(k, n);
  }

  private onKeyReq(now: number, from: Endpoint): void {
    const r = this.cfg.response;
    if (!r) return;
    this.io.log(3, `Received KEY_REQ from ${endpointText(from)}`);
    if (now - this.lastProxyKey < PROXY_KEY_INTERVAL_MS) {
      this.drop(4, `PROXY_KEY sent less than ${PROXY_KEY_INTERVAL_MS / 1000} s ago; KEY_REQ from ${endpointText(from)} not answered`);
      return;
    }
    this.lastProxyKey = now;
    const d = r.proxyKey(r.nonce());
    for (const a of r.publicAddrs) this.io.send({ address: a, port: this.cfg.destPort }, d, true);
    this.io.log(2, `Sent PROXY_KEY to ${r.publicAddrs.join(', ')}`);
  }

  private refuse(now: number, key: string, message: string): void {
    if (this.refused.size > 1024) this.refused.clear();
    this.refused.set(key, now);
    this.drop(1, message);
  }

  /** KEYINFO and REG_CONF of an encrypted session: our side of the key exchange (proxy-keyex.ts). */
  private serverKeyex(now: number, s: Session, func: number, data: Uint8Array): void {
    const tag = groupTag(s.groupId, s.groupInst);
    const enc = s.enc;
    if (!enc) return;
    const p = decodePacket(data);
    if (!p.ok) return this.drop(2, `${tag}: malformed ${typeName(func)} from the server: ${p.error.message}`);
    s.lastServerHeader = p.value.header;
    if (p.value.message.type === 'KEYINFO') {
      const r = enc.onServerKeyInfo(p.value.header, p.value.message, this.cfg.uid, s.seq++);
      if (!r.ok) return this.drop(1, `${tag}: KEYINFO: ${r.error}`);
      this.io.log(3, `${tag}: Got group key from KEYINFO; KEYINFO_ACK sent upstream`);
      this.sendUp(s, r.ack);
      return;
    }
    if (p.value.message.type === 'REG_CONF') {
      const rc = s.regConf ?? new Set<number>();
      for (const id of p.value.message.clientIds) rc.add(id);
      s.regConf = rc;
      s.keyinfoTries = 0;
      this.sendKeyInfo(now, s);
    }
  }

  private sendKeyInfo(now: number, s: Session): void {
    const enc = s.enc;
    const h = s.lastServerHeader;
    if (!enc || !h || !s.regConf) return;
    const ki = enc.buildKeyInfo(h, [...s.regConf]);
    if (!ki) {
      s.keyinfoDue = undefined;
      return;
    }
    s.keyinfoTries++;
    s.keyinfoDue = s.keyinfoTries < s.robust ? now + 2 * this.grttMs(s) : undefined;
    this.io.log(3, `${groupTag(s.groupId, s.groupInst)}: KEYINFO sent to the clients (try ${s.keyinfoTries})`);
    this.io.send({ address: s.privateAddr, port: this.cfg.destPort }, ki, true);
  }

  /** A checked CLIENT_KEY makes its client's REGISTER ready to go upstream. */
  private clientKey(now: number, s: Session, clientId: number, ck: ClientKey): void {
    const enc = s.enc;
    if (!enc) return;
    const tag = groupTag(s.groupId, s.groupInst);
    const fp = this.cfg.clientList?.find((e) => e.id === clientId)?.fingerprint;
    const was = enc.ready(clientId);
    const r = enc.onClientKey(clientId, ck, fp);
    if (!r.ok) return this.drop(1, `${tag}: CLIENT_KEY from ${hexId(clientId)}: ${r.error}`);
    if ('pending' in r && r.pending) return;
    const c = enc.clients.get(clientId);
    if (!was && c && enc.ready(clientId)) {
      this.io.log(4, `${tag}: CLIENT_KEY from ${hexId(clientId)} verified`);
      this.add(now, s, 'REGISTER', 0, 0, clientId, c.tsUs, this.grttMs(s));
    }
  }

  private fromClient(now: number, s: Session, from: Endpoint, clientId: number, func: number, data: Uint8Array): void {
    const tag = groupTag(s.groupId, s.groupInst);
    if (s.enc && func === MessageType.ENCRYPTED) {
      if (this.cfg.clientList && !this.cfg.clientList.some((e) => e.id === clientId)) {
        this.drop(2, `${tag}: Host ${hexId(clientId)} not in host list`);
        return;
      }
      const o = s.enc.open(data);
      if (!o.ok) return this.drop(3, `${tag}: ENCRYPTED from ${hexId(clientId)}: ${o.error}`);
      const inner = o.value.message;
      if (inner.type === 'KEYINFO_ACK') {
        const r = s.enc.onClientKeyInfoAck(clientId, inner.verifyData);
        if (!r.ok) return this.drop(1, `${tag}: KEYINFO_ACK from ${hexId(clientId)}: ${r.error}`);
        s.lastHeard = now;
        this.io.log(3, `${tag}: Client ${hexId(clientId)} has the group key`);
        return;
      }
      if (inner.type === 'CC_ACK' || inner.type === 'ABORT') {
        // the server can open these itself (group key, the client's ID): pass them on unchanged
        s.lastHeard = now;
        s.up++;
        this.stats.up++;
        if (inner.type === 'ABORT') this.io.log(1, `${tag}: Client ${hexId(clientId)} aborted`);
        const up = s.enc.resignUp(data);
        if (up) this.io.send(s.upstream, up, false);
        return;
      }
      // the inner message with the outer header, handled like a plain one
      const plain = new Uint8Array(16 + o.value.body.length);
      plain.set(data.subarray(0, 16));
      plain[1] = o.value.body[0];
      plain.set(o.value.body, 16);
      const h = peekDatagram(plain);
      if (!h.ok) return this.drop(2, `${tag}: inner message from ${hexId(clientId)}: ${h.error.message}`);
      this.fromClient(now, s, from, clientId, plain[1], plain);
      return;
    }
    if (this.cfg.clientList && !this.cfg.clientList.some((e) => e.id === clientId)) {
      this.drop(2, `${tag}: Host ${hexId(clientId)} not in host list`);
      return;
    }
    if (s.clients.size < 65536 || s.clients.has(clientId)) s.clients.set(clientId, from);
    s.lastHeard = now;
    const gtt = this.grttMs(s);
    switch (func) {
      case MessageType.REGISTER: {
        const r = readRegister(data);
        if (!r.ok) return this.drop(2, `${tag}: malformed REGISTER from ${hexId(clientId)}: ${r.error.message}`);
        if (s.enc) {
          const full = decodePacket(data);
          if (!full.ok || full.value.message.type !== 'REGISTER') return this.drop(2, `${tag}: malformed REGISTER from ${hexId(clientId)}`);
          const k = s.enc.onClientRegister(clientId, full.value.message, r.value.timestampUs);
          if (!k.ok) return this.drop(1, `${tag}: REGISTER from ${hexId(clientId)}: ${k.error}`);
          const early = s.enc.takeEarlyKey(clientId);
          if (early) this.clientKey(now, s, clientId, early);
          if (!s.enc.ready(clientId)) {
            this.io.log(4, `${tag}: Received REGISTER from ${hexId(clientId)}, waiting for its CLIENT_KEY`);
            return;
          }
        } else if (r.value.keyInfoLen !== 0) return this.drop(2, `${tag}: REGISTER from ${hexId(clientId)} carries key info in a plain session`);
        this.add(now, s, 'REGISTER', 0, 0, clientId, r.value.timestampUs, gtt);
        this.io.log(4, `${tag}: Received REGISTER from ${hexId(clientId)}`);
        return;
      }
      case MessageType.FILEINFO_ACK: {
        const r = readFileInfoAck(data);
        if (!r.ok) return this.drop(2, `${tag}: malformed FILEINFO_ACK from ${hexId(clientId)}: ${r.error.message}`);
        this.add(now, s, 'FILEINFO_ACK', r.value.fileId, r.value.flags, clientId, r.value.timestampUs, gtt);
        return;
      }
      case MessageType.COMPLETE: {
        const r = readComplete(data);
        if (!r.ok) return this.drop(2, `${tag}: malformed COMPLETE from ${hexId(clientId)}: ${r.error.message}`);
        this.add(now, s, 'COMPLETE', r.value.fileId, r.value.status, clientId, 0, gtt);
        this.io.log(4, `${tag}: Received COMPLETE for file ${r.value.fileId} from ${hexId(clientId)}`);
        return;
      }
      case MessageType.STATUS: {
        const r = readStatus(data);
        if (!r.ok) return this.drop(2, `${tag}: malformed STATUS from ${hexId(clientId)}: ${r.error.message}`);
        const p = this.add(now, s, 'STATUS', r.value.fileId, r.value.section, clientId, 0, gtt);
        if (r.value.naks.length > 8192) return this.drop(2, `${tag}: STATUS from ${hexId(clientId)} with an oversized NAK map`);
        if (!p.naks || p.naks.length < r.value.naks.length) {
          const n = new Uint8Array(r.value.naks.length);
          if (p.naks) n.set(p.naks);
          p.naks = n;
        }
        for (let i = 0; i < r.value.naks.length; i++) p.naks[i] |= r.value.naks[i];
        if (!p.ext && r.value.extensions.length > 0) p.ext = Uint8Array.from(r.value.extensions);
        return;
      }
      case MessageType.CC_ACK:
        s.up++;
        this.stats.up++;
        this.io.send(s.upstream, data, false);
        return;
      case MessageType.ABORT: {
        if (data.length < UFTP_HEADER_LEN + 8) return this.drop(2, `${tag}: truncated ABORT from ${hexId(clientId)}`);
        const b = Uint8Array.from(data);
        put32(b, 4, this.cfg.uid);
        put16(b, 2, s.seq++ & 0xffff);
        put32(b, UFTP_HEADER_LEN + 4, clientId);
        const text = Buffer.from(b.subarray(UFTP_HEADER_LEN + 8, UFTP_HEADER_LEN + 8 + ABORT_MESSAGE_LEN)).toString('latin1').replace(/\0.*$/s, '');
        this.io.log(1, `${tag}: Client ${hexId(clientId)} aborted: ${text}`);
        s.up++;
        this.stats.up++;
        this.io.send(s.upstream, b, false);
        return;
      }
      case MessageType.CLIENT_KEY: {
        if (!s.enc) return this.drop(3, `${tag}: CLIENT_KEY from ${hexId(clientId)} in a plain session`);
        const full = decodePacket(data);
        if (!full.ok || full.value.message.type !== 'CLIENT_KEY') return this.drop(2, `${tag}: malformed CLIENT_KEY from ${hexId(clientId)}`);
        this.clientKey(now, s, clientId, full.value.message);
        return;
      }
      case MessageType.KEYINFO_ACK:
      case MessageType.ENCRYPTED:
        return this.drop(3, `${tag}: ${typeName(func)} from ${hexId(clientId)} in a plain session`);
      default:
        return this.drop(3, `${tag}: ${typeName(func)} from ${endpointText(from)} is not a client message`);
    }
  }

  private add(now: number, s: Session, kind: PendingKind, fileId: number, sub: number, clientId: number, tsUs: number, grttMs: number): Pending {
    const key = `${kind}/${fileId}/${sub}`;
    let p = s.pending.get(key);
    if (!p) {
      p = { kind, fileId, sub, deadline: now + grttMs, from: new Map() };
      s.pending.set(key, p);
    }
    if (!p.from.has(clientId)) p.from.set(clientId, { tsUs, rx: now });
    return p;
  }

  private grttMs(s: Session): number {
    return Math.max(1, unquantizeGrtt(s.grttQ) * 1000);
  }

  private idleMs(s: Session): number {
    return Math.min(MAX_IDLE_MS, Math.max(MIN_IDLE_MS, 4 * s.robust * unquantizeGrtt(s.grttQ) * 1000));
  }

  handleTimeout(now: number): void {
    for (const s of this.sessions.values()) {
      for (const [k, p] of s.pending) {
        if (p.deadline <= now) {
          s.pending.delete(k);
          this.flush(now, s, p);
        }
      }
      if (s.keyinfoDue !== undefined && s.keyinfoDue <= now) this.sendKeyInfo(now, s);
      if (s.pending.size === 0 && now - s.lastHeard >= this.idleMs(s)) this.reclaim(s);
    }
    const horizon = 60_000;
    for (const [k, t] of this.refused) if (now - t > horizon) this.refused.delete(k);
  }

  nextDeadline(): number | undefined {
    let d: number | undefined;
    const min = (t: number): void => {
      if (d === undefined || t < d) d = t;
    };
    for (const s of this.sessions.values()) {
      if (s.pending.size === 0) min(s.lastHeard + this.idleMs(s));
      for (const p of s.pending.values()) min(p.deadline);
      if (s.keyinfoDue !== undefined) min(s.keyinfoDue);
    }
    for (const t of this.refused.values()) min(t + 60_001);
    return d;
  }

  /** Sends one aggregated message (several if the client list does not fit in one). */
  private flush(now: number, s: Session, p: Pending): void {
    const tag = groupTag(s.groupId, s.groupInst);
    // slowest first: smallest (echoed timestamp - arrival) is the longest round trip
    const entries = [...p.from.entries()];
    if (p.kind === 'REGISTER' || p.kind === 'FILEINFO_ACK') entries.sort((a, b) => a[1].tsUs - a[1].rx * 1000 - (b[1].tsUs - b[1].rx * 1000));
    const ids = entries.map((e) => e[0]);
    const slowest = entries[0][1];
    const tsOut = slowest.tsUs + (now - slowest.rx) * 1000;
    const regKey = p.kind === 'REGISTER' && s.enc ? s.enc.registerFields : undefined;
    const keyInfoLen = regKey ? regKey.keyInfo.length : 0;
    const fixed = p.kind === 'REGISTER' ? 44 + ((keyInfoLen + 3) & ~3) : p.kind === 'FILEINFO_ACK' ? 16 : 8;
    const perMsg = Math.max(1, Math.floor((Math.max(s.blockSize, 512) - fixed) / 4));
    this.stats.aggregated += ids.length;
    if (p.kind === 'STATUS') {
      const ext = p.ext ?? new Uint8Array(0);
      const naks = p.naks ?? new Uint8Array(0);
      const len = UFTP_HEADER_LEN + 8 + ext.length + naks.length;
      const b = this.buf(len);
      writeHeader(b, { func: MessageType.STATUS, seq: s.seq++, srcId: this.cfg.uid, groupId: s.groupId, groupInst: s.groupInst });
      const m = UFTP_HEADER_LEN;
      b[m] = MessageType.STATUS;
      b[m + 1] = (8 + ext.length) / 4;
      put16(b, m + 2, p.fileId);
      put16(b, m + 4, p.sub);
      put16(b, m + 6, 0);
      b.set(ext, m + 8);
      b.set(naks, m + 8 + ext.length);
      this.sendUp(s, b.subarray(0, len));
      this.io.log(4, `${tag}: STATUS for file ${p.fileId} section ${p.sub} sent upstream for ${ids.length} client(s)`);
      return;
    }
    for (let i = 0; i < ids.length; i += perMsg) {
      const chunk = ids.slice(i, i + perMsg);
      const len = UFTP_HEADER_LEN + fixed + chunk.length * 4;
      const b = this.buf(len);
      const m = UFTP_HEADER_LEN;
      const func = MessageType[p.kind];
      writeHeader(b, { func, seq: s.seq++, srcId: this.cfg.uid, groupId: s.groupId, groupInst: s.groupInst });
      b.fill(0, m, m + fixed);
      b[m] = func;
      b[m + 1] = fixed / 4;
      if (p.kind === 'REGISTER') {
        writeTimestampUs(b, m + 4, tsOut);
        if (regKey) {
          put16(b, m + 2, keyInfoLen);
          b.set(regKey.clientRandom, m + 12);
          b.set(regKey.keyInfo, m + 44);
        }
      } else if (p.kind === 'FILEINFO_ACK') {
        put16(b, m + 2, p.fileId);
        b[m + 4] = p.sub;
        writeTimestampUs(b, m + 8, tsOut);
      } else {
        put16(b, m + 2, p.fileId);
        b[m + 4] = p.sub;
      }
      writeIds(b, m + fixed, chunk);
      this.sendUp(s, b.subarray(0, len));
    }
    if (p.kind === 'REGISTER' && s.enc) {
      const hb = this.buf(UFTP_HEADER_LEN);
      writeHeader(hb, { func: MessageType.CLIENT_KEY, seq: s.seq++, srcId: this.cfg.uid, groupId: s.groupId, groupInst: s.groupInst });
      const h = decodeHeader(hb);
      const ck = h.ok ? s.enc.buildClientKey(h.value) : undefined;
      if (ck) this.sendUp(s, ck);
    }
    this.io.log(3, `${tag}: ${p.kind}${p.kind === 'REGISTER' ? '' : ` for file ${p.fileId}`} sent upstream for ${ids.length} client(s)`);
  }

  /** A fresh buffer per message: the driver may still be sending the previous one. */
  private buf(len: number): Uint8Array {
    return new Uint8Array(len);
  }

  private sendUp(s: Session, data: Uint8Array): void {
    if (s.enc && data[1] !== MessageType.REGISTER && data[1] !== MessageType.ENCRYPTED && data[1] !== MessageType.CLIENT_KEY) {
      const h = decodeHeader(data);
      const sealed = h.ok ? s.enc.seal(h.value, data.subarray(UFTP_HEADER_LEN)) : undefined;
      if (!sealed) return this.drop(1, `${groupTag(s.groupId, s.groupInst)}: cannot seal ${typeName(data[1])} (no group key yet)`);
      data = sealed;
    }
    s.up++;
    this.stats.up++;
    this.io.send(s.upstream, data, false);
  }

  private reclaim(s: Session): void {
    this.sessions.delete(s.key);
    const list = this.byGroup.get(s.groupId);
    if (list) {
      const rest = list.filter((x) => x !== s);
      if (rest.length) this.byGroup.set(s.groupId, rest);
      else this.byGroup.delete(s.groupId);
    }
    if (this.cfg.response) this.leavePrivate(s.privateAddr, this.cfg.serverList ? s.upstream.address : undefined);
    this.io.log(2, `${groupTag(s.groupId, s.groupInst)}: Session ended (${s.down} packets down, ${s.up} up, ${s.clients.size} clients)`);
  }

  private drop(level: number, message: string): void {
    this.stats.dropped++;
    if (this.io.logEnabled(level)) this.io.log(level, message);
  }
}
