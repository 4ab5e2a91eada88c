/**
 * What the client proxy (-c) and the response proxy (-r) share: sessions learnt from ANNOUNCEs, the clients'
 * responses aggregated for one GRTT and sent upstream under the proxy's own ID, and the proxy's part in encrypted
 * sessions (keyex.ts). The two modes differ only in how server messages reach the clients (client.ts re-multicasts
 * them; response.ts leaves them alone, as the clients hear the server themselves) and in PROXY_KEY (response).
 *
 * Observed with the real programs (2026-11-22, plain session srv -> real server proxy -> real client proxy ->
 * 2 uftpd; see docs/protocol-notes.md "## uftpproxyd"): clients' REGISTER / FILEINFO_ACK / COMPLETE are held
 * ~1 GRTT and sent upstream as one message with the proxy's own ID in the header, its own sequence counter,
 * GRTT byte 0, the client IDs in the body and (REGISTER, FILEINFO_ACK) the echoed timestamp advanced by the time
 * the proxy held it.
 *
 * Here:
 *  - sessions keyed by (server ID, group ID, group instance); the upstream address is where the ANNOUNCE came
 *    from, and only server messages from that address count as the server's;
 *  - REGISTER, FILEINFO_ACK (per file ID and flags), COMPLETE (per file ID and status) and STATUS (per file
 *    and section, NAK bitmaps OR-ed) are aggregated for 1 GRTT; the client with the longest RTT (smallest
 *    echoed timestamp relative to its arrival) is listed first and its timestamp is the one sent;
 *  - a FILEINFO_ACK, COMPLETE or STATUS goes up as soon as every client we registered upstream (less those that
 *    aborted) has answered it, without waiting out the GRTT: the server waits for exactly these answers (a
 *    FILEINFO_ACK before it sends the file, a COMPLETE before it ends the file or the group), so holding them
 *    longer only adds a GRTT to each of those rounds. With one of them silent, or answering otherwise (another
 *    status or flags), the aggregate waits the full GRTT as before. The real uftpproxyd waits the full GRTT
 *    (black-box, docs/protocol-notes.md). REGISTERs always wait: who else will register is not known;
 *  - CC_ACK is forwarded at once, unchanged; a client's ABORT goes upstream with Host = the client's ID;
 *  - -C: responses from clients not in the list are dropped; -S: ANNOUNCEs from servers not in it are dropped;
 *  - a session with nothing pending and no packet for 4 * ROBUST * GRTT (at least MIN_IDLE_MS) is reclaimed.
 */
import { isSsm } from '../../core/address.js';
import { blobFingerprint } from '../../crypto/pubkey.js';
import type { LoadedKey } from '../../crypto/keyfile.js';
import { AbortView } from '../../wire/abort.js';
import type { ClientKey } from '../../wire/clientkey.js';
import { MessageType, SigType, UFTP_VER_NUM } from '../../wire/constants.js';
import { completeLength } from '../../wire/complete.js';
import { fileInfoAckLength } from '../../wire/fileinfo.js';
import { HeaderView, type UftpHeader } from '../../wire/header.js';
import { decodePacket, encodeMessageBody, encodePacket, joinDatagram, viewDatagram, type Message, type Packet } from '../../wire/packet.js';
import { registerLength } from '../../wire/register.js';
import { encodeStatusRaw, StatusView } from '../../wire/status.js';
import { KeyexSession, NO_COMPATIBLE_KEY, type KeyexResponse } from './keyex.js';
import type { ClientListEntry, ServerListEntry } from './lists.js';
import {
  DOWNSTREAM_TYPES, ProxyBase, endpointText, groupTag, grttMs, hexId, idleMs, sameEndpoint, sessionKey, typeName,
  type Endpoint, type ProxyBaseConfig, type ProxySession,
} from './common.js';

/** Refused encrypted sessions are remembered this long (one log line per session, not per ANNOUNCE). */
const REFUSED_TTL_MS = 60_000;
/** The timestamp fields of a REGISTER and a FILEINFO_ACK, from microseconds. */
function timestamp(us: number): { sec: number; usec: number } {
  const sec = Math.floor(us / 1e6);
  return { sec: sec >>> 0, usec: Math.floor(us - sec * 1e6) >>> 0 };
}
function microseconds(t: { sec: number; usec: number }): number {
  return t.sec * 1e6 + t.usec;
}

export interface AggregatingProxyConfig extends ProxyBaseConfig {
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
  readonly session: Session;
  readonly key: string;
  readonly kind: PendingKind;
  readonly fileId: number;
  /** FILEINFO_ACK flags, COMPLETE status, STATUS section. */
  readonly sub: number;
  readonly from: Map<number, Contribution>;
  /** How many of `from` are in the session's `registered` set (the answer is complete when all are). */
  fromRegistered: number;
  naks?: Uint8Array;
  ext?: Uint8Array;
}

/** The KEYINFO resend timer of a session (by session key). */
interface KeyInfoTimer {
  readonly keyinfoOf: string;
}

export interface Session extends ProxySession {
  readonly upstream: Endpoint;
  readonly publicAddr: string;
  readonly privateAddr: string;
  /** privateAddr at the clients' port (one object for every re-multicast datagram). */
  readonly privateDest: Endpoint;
  readonly blockSize: number;
  seq: number;
  readonly pending: Map<string, Pending>;
  /** Clients seen (ID -> address), for logs and the sim tests. */
  readonly clients: Map<number, Endpoint>;
  /** Clients whose REGISTER we sent upstream and that have not aborted: whom the server waits for. */
  readonly registered: Set<number>;
  down: number;
  up: number;
  /** Encrypted session: our key exchange with the server and with the clients. */
  enc?: KeyexSession;
  /**
   * The server's ENCRYPTED must be re-signed on their way down (KeyexSession.resignDown: the server signs with its
   * key, -w keyex). False in plain, HMAC and GCM/CCM sessions: their data path is then a plain session's, one the
   * start-up warm-up ran (a branch it never took would throw its optimized code away at the first FILEINFO).
   */
  readonly resignDown: boolean;
  /**
   * Clients the server confirmed (REG_CONF), whom we send our KEYINFO. This and the next are in the session from its
   * creation (undefined until set): a property added later changes the object's V8 map, so code optimized on a plain
   * session (the daemon's start-up warm-up) would be thrown away at an encrypted one's first datagram.
   */
  regConf: Set<number> | undefined;
  /** The last server header (for the KEYINFO we send in the server's name). */
  lastServerHeader: UftpHeader | undefined;
  readonly keyinfoTimer: KeyInfoTimer;
  keyinfoTries: number;
}

export interface AggregatingProxyStats {
  down: number;
  up: number;
  aggregated: number;
  dropped: number;
  /** REG_CONFs from servers: registrations confirmed (the driver re-warms the data path after the first, run.ts). */
  confirmed: number;
}

export abstract class AggregatingProxy extends ProxyBase<Session> {
  /** Encrypted sessions we refused, so we log once per session (in the order last refused). */
  private readonly refused = new Map<string, number>();
  readonly stats: AggregatingProxyStats = { down: 0, up: 0, aggregated: 0, dropped: 0, confirmed: 0 };

  constructor(protected readonly cfg: AggregatingProxyConfig) {
    super(cfg);
  }

  // --- what the two modes do differently ------------------------------------------------------------------

  /** A datagram that is neither for a session nor an ANNOUNCE (KEY_REQ for the response proxy). True if taken. */
  protected abstract other(now: number, from: Endpoint, func: number): boolean;
  /** -S with a proxy that listens by multicast needs SSM private addresses (man uftpproxyd). */
  protected abstract readonly needsSsm: boolean;
  /** The response proxy's key and ECDH key for the clients' side of the key exchange. */
  protected abstract readonly keyexResponse: KeyexResponse | undefined;
  /** A new session: the response proxy joins the private address. */
  protected abstract opened(s: Session): void;
  /** The ANNOUNCE of a session: the client proxy re-multicasts it. */
  protected abstract announced(s: Session, data: Uint8Array): void;
  /** A server message other than the key exchange: the client proxy re-multicasts it. */
  protected abstract fromServer(s: Session, func: number, data: Uint8Array): void;
  protected abstract closed(s: Session): void;

  // --- datagrams ------------------------------------------------------------------------------------------

  protected handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    const h = viewDatagram(data);
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
    if (func === MessageType.HB_RESP && this.heartbeatResponse(from, data)) return;
    if (this.other(now, from, func)) return;
    if (func === MessageType.HB_REQ || func === MessageType.HB_RESP || func === MessageType.KEY_REQ || func === MessageType.PROXY_KEY) {
      this.drop(4, `Ignoring ${typeName(func)} from ${endpointText(from)}`);
      return;
    }
    const groupId = hdr.groupId;
    const groupInst = hdr.groupInst;
    const list = this.byGroup.get(groupId);
    // the "[GROUPID/II]" tag is built only for a log line, not per datagram
    if (!list) {
      this.drop(4, `${groupTag(groupId, groupInst)}: ${typeName(func)} from ${endpointText(from)} for no known session`);
      return;
    }
    const srcId = hdr.srcId;
    let up: Session | undefined;
    for (let i = 0; i < list.length; i++) {
      const x = list[i];
      if (x.groupInst === groupInst && x.serverId === srcId && sameEndpoint(x.upstream, from)) {
        up = x;
        break;
      }
    }
    if (up) {
      if (!DOWNSTREAM_TYPES.has(func)) {
        this.drop(3, `${groupTag(groupId, groupInst)}: ${typeName(func)} from upstream ${endpointText(from)} is not a server message`);
        return;
      }
      up.lastHeard = now;
      up.grttQ = hdr.grtt;
      if (func === MessageType.REG_CONF) this.stats.confirmed++;
      if (up.enc && (func === MessageType.KEYINFO || func === MessageType.REG_CONF)) {
        this.serverKeyex(now, up, func, data);
        return;
      }
      this.fromServer(up, func, data);
      return;
    }
    let s: Session | undefined;
    for (let i = 0; i < list.length; i++) {
      if (list[i].groupInst === groupInst) {
        s = list[i];
        break;
      }
    }
    if (!s) {
      this.drop(4, `${groupTag(groupId, groupInst)}: ${typeName(func)} from ${endpointText(from)} for no known session`);
      return;
    }
    this.fromClient(now, s, from, srcId, func, data);
  }

  private onAnnounce(now: number, from: Endpoint, data: Uint8Array, serverId: number, groupId: number, groupInst: number, grttQ: number): void {
    const tag = groupTag(groupId, groupInst);
    const key = sessionKey(serverId, groupId, groupInst);
    let s = this.sessions.get(key);
    if (s && !sameEndpoint(s.upstream, from)) {
      this.drop(2, `${tag}: ANNOUNCE for an existing session from ${endpointText(from)}, not ${endpointText(s.upstream)}`);
      return;
    }
    if (!s) {
      if (this.refused.has(key)) {
        this.refused.delete(key);
        this.refused.set(key, now);
        this.stats.dropped++;
        return;
      }
      const a = this.admitAnnounce(tag, from, data);
      if (!a) return;
      const privateAddr = a.privateAddr;
      if (this.cfg.serverList && !this.cfg.serverList.some((e) => e.id === serverId)) {
        this.drop(1, `${tag}: Server ${hexId(serverId)} not in server list`);
        return;
      }
      // with -S, a proxy that listens by multicast (response proxy, as the server proxy) needs SSM addresses (man
      // uftpproxyd); the real client proxy with -S accepts any private address (black-box), and so do we
      if (this.cfg.serverList && this.needsSsm && !isSsm(privateAddr)) {
        this.drop(1, `${tag}: private multicast address ${privateAddr} is not an SSM address, rejected (-S given)`);
        return;
      }
      let enc: KeyexSession | undefined;
      if (a.encrypted) {
        const k = this.keyex(now, key, tag, serverId, from, data);
        if (!k) return;
        enc = k;
      }
      const created: Session = {
        key, serverId, groupId, groupInst, upstream: from, publicAddr: a.publicAddr, privateAddr,
        privateDest: { address: privateAddr, port: this.cfg.destPort }, blockSize: a.blockSize, robust: a.robust,
        grttQ, lastHeard: now, seq: 0, pending: new Map(), clients: new Map(), registered: new Set(), down: 0, up: 0, enc,
        resignDown: enc !== undefined && enc.sigType === SigType.KEYEX,
        regConf: undefined, lastServerHeader: undefined, keyinfoTimer: { keyinfoOf: key }, keyinfoTries: 0,
      };
      s = created;
      this.addSession(s);
      this.log(2, `${tag}: Received request from ${hexId(serverId)} via ${endpointText(from)}`);
      this.log(3, `${tag}: Using public multicast address ${s.publicAddr}, private multicast address ${s.privateAddr}`);
      this.opened(s);
    }
    s.lastHeard = now;
    s.grttQ = grttQ;
    this.announced(s, data);
  }

  /** An encrypted session: our key exchange with its server, or undefined (refused, logged) if we cannot. */
  private keyex(now: number, key: string, tag: string, serverId: number, from: Endpoint, data: Uint8Array): KeyexSession | undefined {
    if (!this.cfg.keys || this.cfg.keys.length === 0) {
      this.refuse(now, key, `${tag}: encrypted session from ${hexId(serverId)}: no key; session ignored`);
      return undefined;
    }
    const p = decodePacket(data);
    if (!p.ok || p.value.message.type !== 'ANNOUNCE') {
      this.drop(2, `${tag}: malformed ANNOUNCE from ${endpointText(from)}: ${p.ok ? 'not an ANNOUNCE' : p.error.message}`);
      return undefined;
    }
    const listed = this.cfg.serverList?.find((e) => e.id === serverId)?.fingerprint;
    if (listed !== undefined) {
      const ei = p.value.message.extensions.find((x) => x.type === 'EXT_ENC_INFO');
      const fp = ei && ei.type === 'EXT_ENC_INFO' ? blobFingerprint(ei.publicKey) : undefined;
      if (fp !== listed) {
        this.refuse(now, key, `${tag}: server ${hexId(serverId)} key fingerprint ${fp ?? '(none)'} does not match the server list`);
        return undefined;
      }
    }
    const k = KeyexSession.create(p.value, this.cfg.keys, this.cfg.random, this.keyexResponse);
    if (!k.ok) {
      this.refuse(now, key, k.error === NO_COMPATIBLE_KEY ? `${tag}: ${k.error}` : `${tag}: encrypted session from ${hexId(serverId)}: ${k.error}; session ignored`);
      return undefined;
    }
    return k.value;
  }

  private refuse(now: number, key: string, message: string): void {
    if (this.refused.size > 1024) this.refused.clear();
    this.refused.delete(key);
    this.refused.set(key, now);
    this.armSweep(now + REFUSED_TTL_MS + 1);
    this.drop(1, message);
  }

  protected override sweep(now: number): number | undefined {
    for (const [k, t] of this.refused) {
      if (now - t > REFUSED_TTL_MS) this.refused.delete(k);
      else return t + REFUSED_TTL_MS + 1;
    }
    return undefined;
  }

  /** KEYINFO and REG_CONF of an encrypted session: our side of the key exchange (keyex.ts). */
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
      this.log(3, `${tag}: Got group key from KEYINFO; KEYINFO_ACK sent upstream`);
      this.countUp(s);
      this.send(s.upstream, r.ack);
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
      this.timers.delete(s.keyinfoTimer);
      return;
    }
    s.keyinfoTries++;
    if (s.keyinfoTries < s.robust) this.timers.set(s.keyinfoTimer, now + 2 * grttMs(s));
    else this.timers.delete(s.keyinfoTimer);
    this.log(3, `${groupTag(s.groupId, s.groupInst)}: KEYINFO sent to the clients (try ${s.keyinfoTries})`);
    this.send(s.privateDest, ki);
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
      this.log(4, `${tag}: CLIENT_KEY from ${hexId(clientId)} verified`);
      this.add(now, s, 'REGISTER', 0, 0, clientId, c.tsUs);
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
        this.log(3, `${tag}: Client ${hexId(clientId)} has the group key`);
        return;
      }
      if (inner.type === 'CC_ACK' || inner.type === 'ABORT') {
        // the server can open these itself (group key, the client's ID): pass them on unchanged
        s.lastHeard = now;
        if (inner.type === 'ABORT') {
          this.log(1, `${tag}: Client ${hexId(clientId)} aborted`);
          this.unregister(now, s, clientId);
        }
        const up = s.enc.resignUp(data);
        if (up) {
          this.countUp(s);
          this.send(s.upstream, up);
        }
        return;
      }
      // the inner message with the outer header, handled like a plain one
      const plain = joinDatagram(o.value.header, o.value.body);
      const h = viewDatagram(plain);
      if (!h.ok) return this.drop(2, `${tag}: inner message from ${hexId(clientId)}: ${h.error.message}`);
      this.fromClient(now, s, from, clientId, h.value.func, plain);
      return;
    }
    if (this.cfg.clientList && !this.cfg.clientList.some((e) => e.id === clientId)) {
      this.drop(2, `${tag}: Host ${hexId(clientId)} not in host list`);
      return;
    }
    if (s.clients.size < 65536 || s.clients.has(clientId)) s.clients.set(clientId, from);
    s.lastHeard = now;
    switch (func) {
      case MessageType.REGISTER: {
        const full = decodePacket(data);
        if (!full.ok || full.value.message.type !== 'REGISTER') {
          return this.drop(2, `${tag}: malformed REGISTER from ${hexId(clientId)}${full.ok ? '' : `: ${full.error.message}`}`);
        }
        const reg = full.value.message;
        const tsUs = microseconds(reg.timestamp);
        if (s.enc) {
          const k = s.enc.onClientRegister(clientId, reg, tsUs);
          if (!k.ok) return this.drop(1, `${tag}: REGISTER from ${hexId(clientId)}: ${k.error}`);
          const early = s.enc.takeEarlyKey(clientId);
          if (early) this.clientKey(now, s, clientId, early);
          if (!s.enc.ready(clientId)) {
            this.log(4, `${tag}: Received REGISTER from ${hexId(clientId)}, waiting for its CLIENT_KEY`);
            return;
          }
        } else if (reg.keyInfo.length !== 0) return this.drop(2, `${tag}: REGISTER from ${hexId(clientId)} carries key info in a plain session`);
        this.add(now, s, 'REGISTER', 0, 0, clientId, tsUs);
        this.log(4, `${tag}: Received REGISTER from ${hexId(clientId)}`);
        return;
      }
      case MessageType.FILEINFO_ACK: {
        const r = decodePacket(data);
        if (!r.ok || r.value.message.type !== 'FILEINFO_ACK') {
          return this.drop(2, `${tag}: malformed FILEINFO_ACK from ${hexId(clientId)}${r.ok ? '' : `: ${r.error.message}`}`);
        }
        const m = r.value.message;
        this.add(now, s, 'FILEINFO_ACK', m.fileId, m.flags, clientId, microseconds(m.timestamp));
        return;
      }
      case MessageType.COMPLETE: {
        const r = decodePacket(data);
        if (!r.ok || r.value.message.type !== 'COMPLETE') {
          return this.drop(2, `${tag}: malformed COMPLETE from ${hexId(clientId)}${r.ok ? '' : `: ${r.error.message}`}`);
        }
        const m = r.value.message;
        this.add(now, s, 'COMPLETE', m.fileId, m.status, clientId, 0);
        this.log(4, `${tag}: Received COMPLETE for file ${m.fileId} from ${hexId(clientId)}`);
        return;
      }
      case MessageType.STATUS: {
        const r = StatusView.check(data);
        if (!r.ok) return this.drop(2, `${tag}: malformed STATUS from ${hexId(clientId)}: ${r.error.message}`);
        const naks = r.value.naks;
        if (naks.length > 8192) return this.drop(2, `${tag}: STATUS from ${hexId(clientId)} with an oversized NAK map`);
        const p = this.add(now, s, 'STATUS', r.value.fileId, r.value.section, clientId, 0);
        if (!p.naks || p.naks.length < naks.length) {
          const n = new Uint8Array(naks.length);
          if (p.naks) n.set(p.naks);
          p.naks = n;
        }
        for (let i = 0; i < naks.length; i++) p.naks[i] |= naks[i];
        const ext = r.value.extensions;
        if (!p.ext && ext.length > 0) p.ext = Uint8Array.from(ext);
        this.sendIfComplete(now, s, p);
        return;
      }
      case MessageType.CC_ACK:
        this.countUp(s);
        this.send(s.upstream, data);
        return;
      case MessageType.ABORT: {
        const b = Uint8Array.from(data);
        const a = AbortView.check(b);
        const h = HeaderView.check(b);
        if (!a.ok || !h.ok) return this.drop(2, `${tag}: truncated ABORT from ${hexId(clientId)}`);
        h.value.setSrcId(this.cfg.uid);
        h.value.setSeq(s.seq++);
        a.value.setHost(clientId);
        this.log(1, `${tag}: Client ${hexId(clientId)} aborted: ${a.value.text}`);
        this.countUp(s);
        this.send(s.upstream, b);
        this.unregister(now, s, clientId);
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

  // --- aggregation ----------------------------------------------------------------------------------------

  private add(now: number, s: Session, kind: PendingKind, fileId: number, sub: number, clientId: number, tsUs: number): Pending {
    const key = `${kind}/${fileId}/${sub}`;
    let p = s.pending.get(key);
    if (!p) {
      p = { session: s, key, kind, fileId, sub, from: new Map(), fromRegistered: 0 };
      s.pending.set(key, p);
      this.timers.set(p, now + grttMs(s));
    }
    if (!p.from.has(clientId)) {
      p.from.set(clientId, { tsUs, rx: now });
      if (s.registered.has(clientId)) p.fromRegistered++;
    }
    // a STATUS is complete only once its NAKs are OR-ed in: the caller sends it (sendIfComplete)
    if (kind !== 'STATUS') this.sendIfComplete(now, s, p);
    return p;
  }

  /** Every client the server waits for has answered: send the aggregate now instead of at the end of the GRTT. */
  private sendIfComplete(now: number, s: Session, p: Pending): void {
    if (p.kind === 'REGISTER' || p.fromRegistered < s.registered.size || s.registered.size === 0) return;
    if (s.pending.get(p.key) !== p) return;
    s.pending.delete(p.key);
    this.timers.delete(p);
    this.flush(now, s, p);
  }

  /** A client that aborted is no longer waited for; answers it was the last one missing go up. */
  private unregister(now: number, s: Session, clientId: number): void {
    if (!s.registered.delete(clientId)) return;
    for (const p of [...s.pending.values()]) {
      if (p.from.has(clientId)) p.fromRegistered--;
      this.sendIfComplete(now, s, p);
    }
  }

  protected onTimer(now: number, key: object): void {
    if ('keyinfoOf' in key) {
      const s = this.sessions.get((key as KeyInfoTimer).keyinfoOf);
      if (s) this.sendKeyInfo(now, s);
      return;
    }
    if ('kind' in key) {
      const p = key as Pending;
      const s = p.session;
      if (s.pending.get(p.key) !== p) return;
      s.pending.delete(p.key);
      this.flush(now, s, p);
      if (s.pending.size === 0 && now - s.lastHeard >= idleMs(s)) this.reclaim(s);
      return;
    }
    const s = key as Session;
    if (this.sessions.get(s.key) === s && this.idleDue(now, s, s.pending.size > 0)) this.reclaim(s);
  }

  /** Sends one aggregated message (several if the client list does not fit in one). */
  private flush(now: number, s: Session, p: Pending): void {
    const tag = groupTag(s.groupId, s.groupInst);
    // slowest first: smallest (echoed timestamp - arrival) is the longest round trip
    const entries = [...p.from.entries()];
    if (p.kind === 'REGISTER' || p.kind === 'FILEINFO_ACK') entries.sort((a, b) => a[1].tsUs - a[1].rx * 1000 - (b[1].tsUs - b[1].rx * 1000));
    const ids = entries.map((e) => e[0]);
    if (p.kind === 'REGISTER') for (const id of ids) if (s.registered.size < 65536) s.registered.add(id);
    const slowest = entries[0][1];
    const ts = timestamp(slowest.tsUs + (now - slowest.rx) * 1000);
    this.stats.aggregated += ids.length;
    if (p.kind === 'STATUS') {
      const body = encodeStatusRaw(p.fileId, p.sub, p.ext ?? new Uint8Array(0), p.naks ?? new Uint8Array(0));
      this.sendUp(s, { func: MessageType.STATUS, body });
      this.log(4, `${tag}: STATUS for file ${p.fileId} section ${p.sub} sent upstream for ${ids.length} client(s)`);
      return;
    }
    const regKey = p.kind === 'REGISTER' && s.enc ? s.enc.registerFields : undefined;
    const message = (clientIds: number[]): Message => {
      switch (p.kind) {
        case 'REGISTER':
          return { type: 'REGISTER', timestamp: ts, clientRandom: regKey ? regKey.clientRandom : new Uint8Array(32), keyInfo: regKey ? regKey.keyInfo : new Uint8Array(0), extensions: [], clientIds };
        case 'FILEINFO_ACK':
          return { type: 'FILEINFO_ACK', fileId: p.fileId, flags: p.sub, timestamp: ts, extensions: [], clientIds };
        default:
          return { type: 'COMPLETE', fileId: p.fileId, status: p.sub, extensions: [], clientIds };
      }
    };
    const empty = message([]);
    const fixed = empty.type === 'REGISTER' ? registerLength(empty) : empty.type === 'FILEINFO_ACK' ? fileInfoAckLength(empty) : empty.type === 'COMPLETE' ? completeLength(empty) : 0;
    const perMsg = Math.max(1, Math.floor((Math.max(s.blockSize, 512) - fixed) / 4));
    for (let i = 0; i < ids.length; i += perMsg) this.sendUp(s, { message: message(ids.slice(i, i + perMsg)) });
    if (p.kind === 'REGISTER' && s.enc) {
      const ck = s.enc.buildClientKey(this.ownHeader(s, MessageType.CLIENT_KEY));
      if (ck) {
        this.countUp(s);
        this.send(s.upstream, ck);
      }
    }
    this.log(3, `${tag}: ${p.kind}${p.kind === 'REGISTER' ? '' : ` for file ${p.fileId}`} sent upstream for ${ids.length} client(s)`);
  }

  /** The header of a message we originate for a session: our ID, our next sequence number, GRTT 0. */
  private ownHeader(s: Session, func: number): UftpHeader {
    return { version: UFTP_VER_NUM, func, seq: s.seq++ & 0xffff, srcId: this.cfg.uid >>> 0, groupId: s.groupId, groupInst: s.groupInst, grtt: 0, gsize: 0, reserved: 0 };
  }

  /**
   * One of our messages upstream; in an encrypted session sealed with the group key (all but REGISTER, which
   * carries our key exchange in the clear).
   */
  private sendUp(s: Session, m: { message: Message } | { func: number; body: Uint8Array }): void {
    const func = 'message' in m ? MessageType[m.message.type] : m.func;
    const header = this.ownHeader(s, func);
    let out: Uint8Array | undefined;
    if (s.enc && func !== MessageType.REGISTER) {
      out = s.enc.seal(header, 'message' in m ? encodeMessageBody(m.message) : m.body);
      if (!out) return this.drop(1, `${groupTag(s.groupId, s.groupInst)}: cannot seal ${typeName(func)} (no group key yet)`);
    } else {
      out = 'message' in m ? encodePacket({ header, message: m.message } as Packet) : joinDatagram(header, m.body);
    }
    this.countUp(s);
    this.send(s.upstream, out);
  }

  protected countUp(s: Session): void {
    s.up++;
    this.stats.up++;
  }

  protected countDown(s: Session): void {
    s.down++;
    this.stats.down++;
  }

  private reclaim(s: Session): void {
    this.removeSession(s);
    this.timers.delete(s.keyinfoTimer);
    for (const p of s.pending.values()) this.timers.delete(p);
    this.closed(s);
    this.log(2, `${groupTag(s.groupId, s.groupInst)}: Session ended (${s.down} packets down, ${s.up} up, ${s.clients.size} clients)`);
  }

  protected drop(level: number, message: string): void {
    this.stats.dropped++;
    if (this.logEnabled(level)) this.log(level, message);
  }
}
