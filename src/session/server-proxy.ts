/**
 * The server proxy (uftpproxyd -s): the upstream end of a multicast tunnel. No I/O: the driver feeds it
 * datagrams and the clock, it answers through a ProxyIo.
 *
 *  - An ANNOUNCE from a server (public multicast address) opens a session keyed by (server ID, group ID,
 *    group instance); the session's private multicast address is joined, and left when the session is reclaimed.
 *  - Everything the server sends for the session is forwarded unchanged, by unicast, to the downstream address.
 *  - Everything the downstream proxy sends for the session goes back, unchanged, to the address:port the
 *    ANNOUNCE came from.
 *  - `-s fp=FINGERPRINT`: the downstream address is learnt from signed heartbeats (see heartbeat.ts):
 *    an unknown sender is challenged with a fresh nonce; a valid signature by the key with that fingerprint
 *    makes the sender's address:port the downstream address; anything else is answered HB_AUTH_FAILED and
 *    changes nothing. Heartbeats from the established downstream address are accepted without a challenge.
 *  - A session silent for 4 * ROBUST * GRTT (at least MIN_IDLE_MS) is reclaimed.
 */
import { HbAuth, MessageType } from '../wire/constants.js';
import { unquantizeGrtt } from '../wire/quantize.js';
import { checkSignedHb, buildHbResp, readHbReq } from './heartbeat.js';
import {
  DOWNSTREAM_TYPES,
  UPSTREAM_TYPES,
  endpointText,
  groupTag,
  hexId,
  peekDatagram,
  readAnnounce,
  sameEndpoint,
  typeName,
  type Endpoint,
  type ProxyIo,
} from './proxy-common.js';
import { isSsm, type ServerListEntry } from './lists.js';

/** Sessions are kept at least this long after the last packet, whatever the GRTT. */
export const MIN_IDLE_MS = 5000;
/** ...and at most this long, whatever a (possibly forged) ANNOUNCE says its ROBUST and GRTT are. */
export const MAX_IDLE_MS = 600_000;
/** Sessions open at once at most; further ANNOUNCEs are dropped (a flood of forged ones cannot exhaust memory). */
export const MAX_SESSIONS = 4096;
/** Outstanding heartbeat challenges kept at most (oldest dropped first), and for how long. */
export const MAX_CHALLENGES = 256;
export const CHALLENGE_TTL_MS = 60_000;

export interface ServerProxyConfig {
  /** Our unique ID (header source ID of what we originate: HB_RESP). */
  readonly uid: number;
  /** Fixed downstream address (-s dest, with -q port). */
  readonly dest?: Endpoint;
  /** -s fp=: fingerprint of the downstream proxy's key. */
  readonly fingerprint?: string;
  /** -S: the servers we serve (SSM joins; private addresses must be SSM). */
  readonly serverList?: readonly ServerListEntry[];
  /** A fresh 32-bit nonce (crypto random in the driver; seeded in tests). */
  readonly nonce: () => number;
}

interface Session {
  readonly key: string;
  readonly serverId: number;
  readonly groupId: number;
  readonly groupInst: number;
  readonly server: Endpoint;
  readonly privateAddr: string;
  readonly publicAddr: string;
  /** Source for SSM joins (with -S). */
  readonly ssmSource?: string;
  robust: number;
  grttQ: number;
  lastHeard: number;
  forwardedDown: number;
  forwardedUp: number;
}

export interface ServerProxyStats {
  down: number;
  up: number;
  dropped: number;
}

export class ServerProxy {
  private readonly sessions = new Map<string, Session>();
  /** group ID -> sessions with that group ID (usually one). */
  private readonly byGroup = new Map<number, Session[]>();
  /** private address -> number of sessions using it (we join once). */
  private readonly joined = new Map<string, number>();
  private downstream: Endpoint | undefined;
  private readonly challenges = new Map<string, { nonce: number; at: number }>();
  readonly stats: ServerProxyStats = { down: 0, up: 0, dropped: 0 };

  constructor(
    private readonly cfg: ServerProxyConfig,
    private readonly io: ProxyIo,
  ) {
    this.downstream = cfg.dest;
  }

  /** The current downstream address (undefined in fp mode until a valid heartbeat). */
  get dest(): Endpoint | undefined {
    return this.downstream;
  }

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
    if (func === MessageType.HB_REQ) {
      this.onHeartbeat(now, from, data);
      return;
    }
    if (func === MessageType.HB_RESP || func === MessageType.KEY_REQ || func === MessageType.PROXY_KEY) {
      this.drop(4, `Ignoring ${typeName(func)} from ${endpointText(from)}`);
      return;
    }
    const fromDownstream = this.downstream !== undefined && this.downstream.address === from.address;
    if (func === MessageType.ANNOUNCE && !fromDownstream) {
      this.onAnnounce(now, from, data, hdr.srcId, hdr.groupId, hdr.groupInst, hdr.grtt);
      return;
    }
    const list = this.byGroup.get(hdr.groupId);
    let s: Session | undefined;
    if (list) {
      for (let i = 0; i < list.length; i++) {
        const x = list[i];
        if (x.groupInst === hdr.groupInst && (fromDownstream || sameEndpoint(x.server, from))) {
          s = x;
          break;
        }
      }
    }
    if (!s) {
      this.drop(4, `${groupTag(hdr.groupId, hdr.groupInst)}: ${typeName(func)} from ${endpointText(from)} for no known session`);
      return;
    }
    if (fromDownstream) {
      if (!UPSTREAM_TYPES.has(func)) {
        this.drop(3, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} from downstream ${endpointText(from)} is not a client message`);
        return;
      }
      s.lastHeard = now;
      s.forwardedUp++;
      this.stats.up++;
      if (this.io.logEnabled(5)) this.io.log(5, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} from ${hexId(hdr.srcId)} sent upstream to ${endpointText(s.server)}`);
      this.io.send(s.server, data, false);
      return;
    }
    // from the server
    if (hdr.srcId !== s.serverId || !DOWNSTREAM_TYPES.has(func)) {
      this.drop(3, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} from ${endpointText(from)} (ID ${hexId(hdr.srcId)}) is not a server message`);
      return;
    }
    s.lastHeard = now;
    s.grttQ = hdr.grtt;
    this.forwardDown(s, data, func);
  }

  private forwardDown(s: Session, data: Uint8Array, func: number): void {
    if (!this.downstream) {
      this.drop(3, `${groupTag(s.groupId, s.groupInst)}: no downstream address yet (waiting for a heartbeat); ${typeName(func)} dropped`);
      return;
    }
    s.forwardedDown++;
    this.stats.down++;
    if (func !== MessageType.FILESEG && this.io.logEnabled(5)) {
      this.io.log(5, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} sent downstream to ${endpointText(this.downstream)}`);
    }
    this.io.send(this.downstream, data, false);
  }

  private onAnnounce(now: number, from: Endpoint, data: Uint8Array, serverId: number, groupId: number, groupInst: number, grttQ: number): void {
    const tag = groupTag(groupId, groupInst);
    const key = `${hexId(serverId)}/${hexId(groupId)}/${groupInst}`;
    let s = this.sessions.get(key);
    if (s && !sameEndpoint(s.server, from)) {
      this.drop(2, `${tag}: ANNOUNCE for an existing session from ${endpointText(from)}, not ${endpointText(s.server)}`);
      return;
    }
    if (!s) {
      if (this.sessions.size >= MAX_SESSIONS) {
        this.drop(1, `${tag}: ${MAX_SESSIONS} sessions open; ANNOUNCE from ${endpointText(from)} dropped`);
        return;
      }
      const a = readAnnounce(data);
      if (!a.ok) {
        this.drop(2, `${tag}: malformed ANNOUNCE from ${endpointText(from)}: ${a.error.message}`);
        return;
      }
      let ssmSource: string | undefined;
      if (this.cfg.serverList) {
        const entry = this.cfg.serverList.find((e) => e.id === serverId);
        if (!entry) {
          this.drop(1, `${tag}: server ${hexId(serverId)} not in server list`);
          return;
        }
        if (entry.address !== from.address) {
          this.drop(1, `${tag}: server ${hexId(serverId)} announced from ${from.address}, server list says ${entry.address}`);
          return;
        }
        if (!isSsm(a.value.privateAddr)) {
          this.drop(1, `${tag}: private multicast address ${a.value.privateAddr} is not an SSM address, rejected (-S given)`);
          return;
        }
        ssmSource = entry.address;
      }
      s = {
        key,
        serverId,
        groupId,
        groupInst,
        server: from,
        privateAddr: a.value.privateAddr,
        publicAddr: a.value.publicAddr,
        ssmSource,
        robust: a.value.robust,
        grttQ,
        lastHeard: now,
        forwardedDown: 0,
        forwardedUp: 0,
      };
      this.sessions.set(key, s);
      const list = this.byGroup.get(groupId);
      if (list) list.push(s);
      else this.byGroup.set(groupId, [s]);
      this.io.log(2, `${tag}: Received request from ${hexId(serverId)} at ${endpointText(from)}`);
      this.io.log(3, `${tag}: Using public multicast address ${s.publicAddr}, private multicast address ${s.privateAddr}`);
      const jkey = `${s.privateAddr}|${ssmSource ?? ''}`;
      const n = this.joined.get(jkey) ?? 0;
      if (n === 0) this.io.join(s.privateAddr, ssmSource);
      this.joined.set(jkey, n + 1);
    }
    s.lastHeard = now;
    s.grttQ = grttQ;
    this.forwardDown(s, data, MessageType.ANNOUNCE);
  }

  private onHeartbeat(now: number, from: Endpoint, data: Uint8Array): void {
    const req = readHbReq(data);
    const who = endpointText(from);
    if (!req.ok) {
      this.drop(2, `Malformed HB_REQ from ${who}: ${req.error.message}`);
      return;
    }
    this.io.log(4, `Received HB_REQ from ${who}`);
    const fp = this.cfg.fingerprint;
    if (fp === undefined) {
      this.io.send(from, buildHbResp(this.cfg.uid, HbAuth.OK, 0), false);
      return;
    }
    if (!req.value.blob) {
      if (sameEndpoint(this.downstream, from)) {
        this.io.send(from, buildHbResp(this.cfg.uid, HbAuth.OK, 0), false);
        return;
      }
      this.challenge(now, from);
      return;
    }
    const pending = this.challenges.get(who);
    if (!pending || now - pending.at > CHALLENGE_TTL_MS) {
      this.challenges.delete(who);
      this.io.log(2, `Signed HB_REQ from ${who} without an outstanding challenge`);
      this.challenge(now, from);
      return;
    }
    this.challenges.delete(who);
    const check = checkSignedHb(req.value, fp, pending.nonce);
    if (!check.ok) {
      this.stats.dropped++;
      this.io.log(1, `Heartbeat authentication from ${who} failed: ${check.error}`);
      this.io.send(from, buildHbResp(this.cfg.uid, HbAuth.FAILED, 0), false);
      return;
    }
    if (!sameEndpoint(this.downstream, from)) this.io.log(1, `Using ${who} as downstream address:port`);
    this.downstream = from;
    this.io.send(from, buildHbResp(this.cfg.uid, HbAuth.OK, 0), false);
  }

  private challenge(now: number, from: Endpoint): void {
    const who = endpointText(from);
    let nonce = this.cfg.nonce() >>> 0;
    if (nonce === 0) nonce = 1;
    this.challenges.delete(who);
    if (this.challenges.size >= MAX_CHALLENGES) {
      const oldest = this.challenges.keys().next();
      if (!oldest.done) this.challenges.delete(oldest.value);
    }
    this.challenges.set(who, { nonce, at: now });
    this.io.send(from, buildHbResp(this.cfg.uid, HbAuth.CHALLENGE, nonce), false);
  }

  private idleMs(s: Session): number {
    return Math.min(MAX_IDLE_MS, Math.max(MIN_IDLE_MS, 4 * s.robust * unquantizeGrtt(s.grttQ) * 1000));
  }

  handleTimeout(now: number): void {
    for (const s of this.sessions.values()) {
      if (now - s.lastHeard >= this.idleMs(s)) this.reclaim(s);
    }
    for (const [who, c] of this.challenges) if (now - c.at > CHALLENGE_TTL_MS) this.challenges.delete(who);
  }

  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const s of this.sessions.values()) {
      const t = s.lastHeard + this.idleMs(s);
      if (d === undefined || t < d) d = t;
    }
    for (const c of this.challenges.values()) {
      const t = c.at + CHALLENGE_TTL_MS + 1;
      if (d === undefined || t < d) d = t;
    }
    return d;
  }

  private reclaim(s: Session): void {
    this.sessions.delete(s.key);
    const list = this.byGroup.get(s.groupId);
    if (list) {
      const rest = list.filter((x) => x !== s);
      if (rest.length) this.byGroup.set(s.groupId, rest);
      else this.byGroup.delete(s.groupId);
    }
    const jkey = `${s.privateAddr}|${s.ssmSource ?? ''}`;
    const n = (this.joined.get(jkey) ?? 1) - 1;
    if (n <= 0) {
      this.joined.delete(jkey);
      this.io.leave(s.privateAddr, s.ssmSource);
    } else this.joined.set(jkey, n);
    this.io.log(2, `${groupTag(s.groupId, s.groupInst)}: Session ended (${s.forwardedDown} packets down, ${s.forwardedUp} up)`);
  }

  private drop(level: number, message: string): void {
    this.stats.dropped++;
    if (this.io.logEnabled(level)) this.io.log(level, message);
  }
}
