/**
 * The server proxy (uftpproxyd -s): the upstream end of a multicast tunnel. A Machine: datagrams and the clock
 * in; datagrams, joins, leaves and log lines out.
 *
 *  - An ANNOUNCE from a server (public multicast address) opens a session keyed by (server ID, group ID,
 *    group instance); the session's private multicast address is joined, and left when the session is reclaimed.
 *  - Everything the server sends for the session is forwarded unchanged, by unicast, to the downstream address.
 *  - Everything the downstream proxy sends for the session goes back, unchanged, to the address:port the
 *    ANNOUNCE came from.
 *  - `-s fp=FINGERPRINT`: the downstream address is learnt from signed heartbeats (heartbeat.ts):
 *    an unknown sender is challenged with a fresh nonce; a valid signature by the key with that fingerprint
 *    makes the sender's address:port the downstream address; anything else is answered HB_AUTH_FAILED and
 *    changes nothing. Heartbeats from the established downstream address are accepted without a challenge.
 *  - A session silent for 4 * ROBUST * GRTT (at least MIN_IDLE_MS) is reclaimed.
 */
import { isSsm } from '../../core/address.js';
import { HbAuth, MessageType } from '../../wire/constants.js';
import { viewDatagram } from '../../wire/packet.js';
import { checkSignedHb, buildHbResp, readHbReq } from './heartbeat.js';
import {
  DOWNSTREAM_TYPES, ProxyBase, UPSTREAM_TYPES, endpointText, groupTag, hexId, sameEndpoint, sessionKey, typeName,
  type Endpoint, type ProxyBaseConfig, type ProxySession,
} from './common.js';
import type { ServerListEntry } from './lists.js';

export { MAX_IDLE_MS, MIN_IDLE_MS, MAX_SESSIONS } from './common.js';

/** Outstanding heartbeat challenges kept at most (oldest dropped first), and for how long. */
export const MAX_CHALLENGES = 256;
export const CHALLENGE_TTL_MS = 60_000;

export interface ServerProxyConfig extends ProxyBaseConfig {
  /** Fixed downstream address (-s dest, with -q port). */
  readonly dest?: Endpoint;
  /** -s fp=: fingerprint of the downstream proxy's key. */
  readonly fingerprint?: string;
  /** -S: the servers we serve (SSM joins; private addresses must be SSM). */
  readonly serverList?: readonly ServerListEntry[];
}

interface Session extends ProxySession {
  readonly server: Endpoint;
  readonly privateAddr: string;
  readonly publicAddr: string;
  /** Source for SSM joins (with -S). */
  readonly ssmSource?: string;
  forwardedDown: number;
  forwardedUp: number;
}

export interface ServerProxyStats {
  down: number;
  up: number;
  dropped: number;
}

export class ServerProxy extends ProxyBase<Session> {
  private downstream: Endpoint | undefined;
  private readonly challenges = new Map<string, { nonce: number; at: number }>();
  readonly stats: ServerProxyStats = { down: 0, up: 0, dropped: 0 };

  constructor(private readonly cfg: ServerProxyConfig) {
    super(cfg);
    this.downstream = cfg.dest;
  }

  /** The current downstream address (undefined in fp mode until a valid heartbeat). */
  get dest(): Endpoint | undefined {
    return this.downstream;
  }

  protected handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    const h = viewDatagram(data);
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
    if (func === MessageType.HB_RESP && this.heartbeatResponse(from, data)) return;
    if (func === MessageType.HB_RESP || func === MessageType.KEY_REQ || func === MessageType.PROXY_KEY) {
      this.drop(4, `Ignoring ${typeName(func)} from ${endpointText(from)}`);
      return;
    }
    const fromDownstream = this.downstream !== undefined && this.downstream.address === from.address;
    const groupId = hdr.groupId;
    const groupInst = hdr.groupInst;
    if (func === MessageType.ANNOUNCE && !fromDownstream) {
      this.onAnnounce(now, from, data, hdr.srcId, groupId, groupInst, hdr.grtt);
      return;
    }
    const list = this.byGroup.get(groupId);
    let s: Session | undefined;
    if (list) {
      for (let i = 0; i < list.length; i++) {
        const x = list[i];
        if (x.groupInst === groupInst && (fromDownstream || sameEndpoint(x.server, from))) {
          s = x;
          break;
        }
      }
    }
    if (!s) {
      this.drop(4, `${groupTag(groupId, groupInst)}: ${typeName(func)} from ${endpointText(from)} for no known session`);
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
      if (this.logEnabled(5)) this.log(5, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} from ${hexId(hdr.srcId)} sent upstream to ${endpointText(s.server)}`);
      this.send(s.server, data);
      return;
    }
    // from the server
    const srcId = hdr.srcId;
    if (srcId !== s.serverId || !DOWNSTREAM_TYPES.has(func)) {
      this.drop(3, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} from ${endpointText(from)} (ID ${hexId(srcId)}) is not a server message`);
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
    if (func !== MessageType.FILESEG && this.logEnabled(5)) {
      this.log(5, `${groupTag(s.groupId, s.groupInst)}: ${typeName(func)} sent downstream to ${endpointText(this.downstream)}`);
    }
    this.send(this.downstream, data);
  }

  private onAnnounce(now: number, from: Endpoint, data: Uint8Array, serverId: number, groupId: number, groupInst: number, grttQ: number): void {
    const tag = groupTag(groupId, groupInst);
    const key = sessionKey(serverId, groupId, groupInst);
    let s = this.sessions.get(key);
    if (s && !sameEndpoint(s.server, from)) {
      this.drop(2, `${tag}: ANNOUNCE for an existing session from ${endpointText(from)}, not ${endpointText(s.server)}`);
      return;
    }
    if (!s) {
      const a = this.admitAnnounce(tag, from, data);
      if (!a) return;
      const privateAddr = a.privateAddr;
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
        if (!isSsm(privateAddr)) {
          this.drop(1, `${tag}: private multicast address ${privateAddr} is not an SSM address, rejected (-S given)`);
          return;
        }
        ssmSource = entry.address;
      }
      s = {
        key, serverId, groupId, groupInst, server: from, privateAddr, publicAddr: a.publicAddr, ssmSource,
        robust: a.robust, grttQ, lastHeard: now, forwardedDown: 0, forwardedUp: 0,
      };
      this.addSession(s);
      this.log(2, `${tag}: Received request from ${hexId(serverId)} at ${endpointText(from)}`);
      this.log(3, `${tag}: Using public multicast address ${s.publicAddr}, private multicast address ${s.privateAddr}`);
      this.join(s.privateAddr, ssmSource);
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
    this.log(4, `Received HB_REQ from ${who}`);
    const fp = this.cfg.fingerprint;
    if (fp === undefined) {
      this.send(from, buildHbResp(this.cfg.uid, HbAuth.OK, 0));
      return;
    }
    if (!req.value.blob) {
      if (sameEndpoint(this.downstream, from)) {
        this.send(from, buildHbResp(this.cfg.uid, HbAuth.OK, 0));
        return;
      }
      this.challenge(now, from);
      return;
    }
    const pending = this.challenges.get(who);
    if (!pending || now - pending.at > CHALLENGE_TTL_MS) {
      this.challenges.delete(who);
      this.log(2, `Signed HB_REQ from ${who} without an outstanding challenge`);
      this.challenge(now, from);
      return;
    }
    this.challenges.delete(who);
    const check = checkSignedHb(req.value, fp, pending.nonce);
    if (!check.ok) {
      this.stats.dropped++;
      this.log(1, `Heartbeat authentication from ${who} failed: ${check.error}`);
      this.send(from, buildHbResp(this.cfg.uid, HbAuth.FAILED, 0));
      return;
    }
    if (!sameEndpoint(this.downstream, from)) this.log(1, `Using ${who} as downstream address:port`);
    this.downstream = from;
    this.send(from, buildHbResp(this.cfg.uid, HbAuth.OK, 0));
  }

  private challenge(now: number, from: Endpoint): void {
    const who = endpointText(from);
    let nonce = this.cfg.random.u32() >>> 0;
    if (nonce === 0) nonce = 1;
    this.challenges.delete(who);
    if (this.challenges.size >= MAX_CHALLENGES) {
      const oldest = this.challenges.keys().next();
      if (!oldest.done) this.challenges.delete(oldest.value);
    }
    this.challenges.set(who, { nonce, at: now });
    this.armSweep(now + CHALLENGE_TTL_MS + 1);
    this.send(from, buildHbResp(this.cfg.uid, HbAuth.CHALLENGE, nonce));
  }

  protected onTimer(now: number, key: object): void {
    const s = key as Session;
    if (this.sessions.get(s.key) === s && this.idleDue(now, s, false)) this.reclaim(s);
  }

  /** Challenges expire CHALLENGE_TTL_MS after they were issued (the map is in issue order). */
  protected override sweep(now: number): number | undefined {
    for (const [who, c] of this.challenges) {
      if (now - c.at > CHALLENGE_TTL_MS) this.challenges.delete(who);
      else return c.at + CHALLENGE_TTL_MS + 1;
    }
    return undefined;
  }

  private reclaim(s: Session): void {
    this.removeSession(s);
    this.leave(s.privateAddr, s.ssmSource);
    this.log(2, `${groupTag(s.groupId, s.groupInst)}: Session ended (${s.forwardedDown} packets down, ${s.forwardedUp} up)`);
  }

  protected drop(level: number, message: string): void {
    this.stats.dropped++;
    if (this.logEnabled(level)) this.log(level, message);
  }
}
