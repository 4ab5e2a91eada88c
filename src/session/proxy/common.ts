/**
 * What the three proxy machines share (uftpproxyd -s, -c, -r): the effects they ask of their driver, the queue
 * behind pollTransmit/pollEffect, the session table keyed by (server ID, group ID, group instance) with its
 * multicast join counts, the timer heap behind pollTimeout, and heartbeats to upstream proxies (-H).
 *
 * Every proxy is a Machine (src/core/machine.ts): it is handed datagrams and the time, and is asked what to send,
 * what to do (join, leave, log) and when to wake. No I/O, no clock, no randomness of its own.
 */
import { endpointText, sameEndpoint, type Endpoint, type Machine, type Random, type Transmit } from '../../core/machine.js';
import { objectArray } from '../../core/arrays.js';
import { TimerHeap } from '../../core/timers.js';
import { groupTag, hexId } from '../../core/ids.js';
import { AnnounceView } from '../../wire/announce.js';
import { HbAuth, MESSAGE_NAMES, MessageType } from '../../wire/constants.js';
import { HeaderView } from '../../wire/header.js';
import { unquantizeGrtt } from '../../wire/quantize.js';
import { buildHbReq, readHbResp, type HeartbeatKey } from './heartbeat.js';

export { endpointText, groupTag, hexId, sameEndpoint, type Endpoint };

/** What a proxy asks its driver to do. Joins and leaves are counted: a group is joined once, left by the last. */
export type ProxyEffect =
  | { readonly kind: 'join'; readonly group: string; readonly source?: string }
  | { readonly kind: 'leave'; readonly group: string; readonly source?: string }
  | { readonly kind: 'log'; readonly level: number; readonly message: string };

/** Sessions are kept at least this long after the last packet, whatever the GRTT. */
export const MIN_IDLE_MS = 5000;
/** ...and at most this long, whatever a (possibly forged) ANNOUNCE says its ROBUST and GRTT are. */
export const MAX_IDLE_MS = 600_000;
/** Sessions open at once at most; further ANNOUNCEs are dropped (a flood of forged ones cannot exhaust memory). */
export const MAX_SESSIONS = 4096;

/** Messages a server sends (downstream) and messages clients send (upstream). ABORT and ENCRYPTED go both ways. */
export const DOWNSTREAM_TYPES: ReadonlySet<number> = new Set([
  MessageType.ANNOUNCE, MessageType.REG_CONF, MessageType.KEYINFO, MessageType.FILEINFO, MessageType.FILESEG,
  MessageType.DONE, MessageType.DONE_CONF, MessageType.CONG_CTRL, MessageType.ENCRYPTED, MessageType.ABORT,
]);
export const UPSTREAM_TYPES: ReadonlySet<number> = new Set([
  MessageType.REGISTER, MessageType.CLIENT_KEY, MessageType.KEYINFO_ACK, MessageType.FILEINFO_ACK, MessageType.STATUS,
  MessageType.COMPLETE, MessageType.CC_ACK, MessageType.ENCRYPTED, MessageType.ABORT,
]);

export function typeName(func: number): string {
  return MESSAGE_NAMES.get(func) ?? `type ${func}`;
}

/** The fields every proxy session has. */
export interface ProxySession {
  readonly key: string;
  readonly serverId: number;
  readonly groupId: number;
  readonly groupInst: number;
  robust: number;
  /** The server's last quantized GRTT byte. */
  grttQ: number;
  lastHeard: number;
}

export function sessionKey(serverId: number, groupId: number, groupInst: number): string {
  return `${hexId(serverId)}/${hexId(groupId)}/${groupInst}`;
}

export function grttMs(s: ProxySession): number {
  return Math.max(1, unquantizeGrtt(s.grttQ) * 1000);
}

/** A session silent for 4 * ROBUST * GRTT (within [MIN_IDLE_MS, MAX_IDLE_MS]) is reclaimed. */
export function idleMs(s: ProxySession): number {
  return Math.min(MAX_IDLE_MS, Math.max(MIN_IDLE_MS, 4 * s.robust * unquantizeGrtt(s.grttQ) * 1000));
}

/** -H / -h: the upstream proxies heartbeats go to, how often, and the key that answers their challenges. */
export interface HeartbeatConfig {
  readonly servers: readonly Endpoint[];
  readonly intervalMs: number;
  /** The first -k key; without one, challenges cannot be answered. */
  readonly key?: HeartbeatKey;
}

export interface ProxyBaseConfig {
  /** Our unique ID (-U): the source ID of what we originate. */
  readonly uid: number;
  /** Log lines above this level are not even built (the driver's logger level). Default: all. */
  readonly logLevel?: number;
  /** Nonces and key-exchange randoms (crypto-random in the driver, seeded in simulations). */
  readonly random: Random;
  readonly heartbeats?: HeartbeatConfig;
  /**
   * The driver hands over views of a receive ring that is reused after each batch (the native engine's onBatch).
   * Then only FILESEG and ENCRYPTED, which are forwarded as they are, stay views (queued; the driver calls
   * detach() before the ring is reused); every other message is copied before it is read, since sessions keep
   * parts of them (randoms, keys, addresses). Default false: the bytes are the machine's to keep.
   */
  readonly ringViews?: boolean;
}

/**
 * A reusable slot of the transmit queue (a proxy forwards without allocating a Transmit per datagram). The slot
 * pollTransmit returned last is never written again before the next poll: a driver may hold it while the socket is
 * full (src/daemon/loop.ts), and datagrams arriving meanwhile must not change it.
 */
interface Slot {
  to: Endpoint;
  data: Uint8Array;
}

/** Timer keys that are not sessions or aggregates. */
const HEARTBEAT = { timer: 'heartbeat' };
const SWEEP = { timer: 'sweep' };

/**
 * The machinery of a proxy machine: the transmit and effect queues, the session table, the timer heap and the
 * heartbeat sender. Subclasses implement `handleDatagram`, `onTimer` and `sweep`.
 */
export abstract class ProxyBase<S extends ProxySession> implements Machine<ProxyEffect> {
  protected readonly sessions = new Map<string, S>();
  /** group ID -> sessions with that group ID (usually one): the data path's lookup. */
  protected readonly byGroup = new Map<number, S[]>();
  /** Timers: sessions (idle), aggregates, KEYINFO resends, heartbeats, the sweep of expiring tables. */
  protected readonly timers = new TimerHeap<object>();
  private readonly joined = new Map<string, number>();
  /**
   * Made with object elements from the start (V8's elements kind): an empty `[]` starts as small integers and
   * changes kind (its map) at the first slot stored, so code optimized on one machine (the daemon's start-up
   * warm-up, a throwaway machine) would be thrown away ("wrong map") at the first datagram of the next.
   */
  private readonly slots: Slot[] = objectArray<Slot>();
  private head = 0;
  private tail = 0;
  /** The slot pollTransmit returned last (the driver may still hold it). */
  private lent: Slot | undefined;
  private readonly effects: ProxyEffect[] = [];
  private effectHead = 0;
  private readonly logLevel: number;
  /** Per heartbeat server (endpoint text): authenticated by the last response? */
  readonly heartbeatState = new Map<string, 'unknown' | 'ok' | 'failed' | 'challenged'>();

  constructor(protected readonly base: ProxyBaseConfig) {
    this.logLevel = base.logLevel ?? Infinity;
    if (base.heartbeats && base.heartbeats.servers.length > 0) this.timers.set(HEARTBEAT, -Infinity);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  // --- the Machine contract ---------------------------------------------------------------------------

  handle(now: number, from: Endpoint, bytes: Uint8Array): void {
    if (this.base.ringViews === true) {
      const h = HeaderView.check(bytes);
      if (h.ok && h.value.func !== MessageType.FILESEG && h.value.func !== MessageType.ENCRYPTED) bytes = Uint8Array.from(bytes);
    }
    this.handleDatagram(now, from, bytes);
  }

  handleTimeout(now: number): void {
    for (let k = this.timers.popExpired(now); k !== undefined; k = this.timers.popExpired(now)) {
      if (k === HEARTBEAT) this.sendHeartbeats(now);
      else if (k === SWEEP) this.sweepNow(now);
      else this.onTimer(now, k);
    }
  }

  pollTransmit(): Transmit | undefined {
    if (this.head === this.tail) {
      // a driver polls again only once it is done with the slot it holds: nothing is lent any more, so detach()
      // has nothing to copy after a full drain (it copied the last forwarded datagram of every batch before)
      this.lent = undefined;
      return undefined;
    }
    const s = this.slots[this.head++];
    if (this.head === this.tail) this.head = this.tail = 0;
    this.lent = s;
    return s;
  }

  pollEffect(): ProxyEffect | undefined {
    if (this.effectHead === this.effects.length) return undefined;
    const e = this.effects[this.effectHead++];
    if (this.effectHead === this.effects.length) {
      this.effects.length = 0;
      this.effectHead = 0;
    }
    return e;
  }

  pollTimeout(): number | undefined {
    const t = this.timers.earliest();
    return t === -Infinity ? 0 : t;
  }

  // --- for the subclasses -------------------------------------------------------------------------------

  protected abstract handleDatagram(now: number, from: Endpoint, bytes: Uint8Array): void;
  /** A datagram dropped: counted, and logged at `level`. */
  protected abstract drop(level: number, message: string): void;
  /** A session or aggregate timer came due. */
  protected abstract onTimer(now: number, key: object): void;
  /** Expire entries of time-limited tables; return the next time a sweep is needed, if any. */
  protected sweep(_now: number): number | undefined {
    return undefined;
  }

  /** Queue a datagram. The machine does not touch `data` afterwards. */
  protected send(to: Endpoint, data: Uint8Array): void {
    let s = this.slots[this.tail];
    if (s === undefined || s === this.lent) {
      s = { to, data };
      this.slots[this.tail] = s;
      this.lent = undefined;
    } else {
      s.to = to;
      s.data = data;
    }
    this.tail++;
  }

  /**
   * Datagrams are queued as they came (no copy): a driver that hands the machine views of a receive ring (the
   * batched engine's `onBatch`) calls this after the loop's drain, before the ring is reused. Every queued datagram
   * still a view of `ring`, including the one the driver may hold (the slot pollTransmit returned last), gets its
   * own copy. Usually nothing is left (the drain sent all); after a blocked or budget-limited turn the rest is
   * copied once. Returns the number copied.
   */
  detach(ring: ArrayBufferLike): number {
    let n = 0;
    for (let i = this.head; i < this.tail; i++) {
      const s = this.slots[i];
      if (s.data.buffer === ring) {
        s.data = new Uint8Array(s.data);
        n++;
      }
    }
    const l = this.lent;
    if (l !== undefined && l.data.buffer === ring) {
      l.data = new Uint8Array(l.data);
      n++;
    }
    return n;
  }

  protected logEnabled(level: number): boolean {
    return level <= this.logLevel;
  }

  protected log(level: number, message: string): void {
    if (level <= this.logLevel) this.effects.push({ kind: 'log', level, message });
  }

  /** Joins `group` (source-specific with `source`) unless a session already did. */
  protected join(group: string, source?: string): void {
    const k = `${group}|${source ?? ''}`;
    const n = this.joined.get(k) ?? 0;
    if (n === 0) this.effects.push({ kind: 'join', group, source });
    this.joined.set(k, n + 1);
  }

  protected leave(group: string, source?: string): void {
    const k = `${group}|${source ?? ''}`;
    const n = (this.joined.get(k) ?? 1) - 1;
    if (n <= 0) {
      this.joined.delete(k);
      this.effects.push({ kind: 'leave', group, source });
    } else this.joined.set(k, n);
  }

  /**
   * The checks before an ANNOUNCE opens a session: room for one more (a flood of forged ANNOUNCEs cannot exhaust
   * memory), a well-formed ANNOUNCE, a robustness factor. Undefined (dropped, logged) if one fails.
   */
  protected admitAnnounce(tag: string, from: Endpoint, data: Uint8Array): AnnounceView | undefined {
    if (this.sessions.size >= MAX_SESSIONS) {
      this.drop(1, `${tag}: ${MAX_SESSIONS} sessions open; ANNOUNCE from ${endpointText(from)} dropped`);
      return undefined;
    }
    const a = AnnounceView.check(data);
    if (!a.ok) {
      this.drop(2, `${tag}: malformed ANNOUNCE from ${endpointText(from)}: ${a.error.message}`);
      return undefined;
    }
    if (a.value.robust === 0) {
      this.drop(2, `${tag}: malformed ANNOUNCE from ${endpointText(from)}: ANNOUNCE: robustness factor 0`);
      return undefined;
    }
    return a.value;
  }

  protected addSession(s: S): void {
    this.sessions.set(s.key, s);
    const list = this.byGroup.get(s.groupId);
    if (list) list.push(s);
    else this.byGroup.set(s.groupId, [s]);
    this.timers.set(s, s.lastHeard + idleMs(s));
  }

  protected removeSession(s: S): void {
    this.sessions.delete(s.key);
    this.timers.delete(s);
    const list = this.byGroup.get(s.groupId);
    if (list) {
      const rest = list.filter((x) => x !== s);
      if (rest.length) this.byGroup.set(s.groupId, rest);
      else this.byGroup.delete(s.groupId);
    }
  }

  /**
   * The idle timer of a session fired. Timers are not moved on every datagram (that would cost a heap operation
   * per FILESEG): the timer set at the start fires, and is moved to lastHeard + idle if the session was heard
   * since. Returns true if the session is idle now.
   */
  protected idleDue(now: number, s: S, busy: boolean): boolean {
    const due = s.lastHeard + idleMs(s);
    if (due <= now && !busy) return true;
    this.timers.set(s, Math.max(due, now + 1));
    return false;
  }

  /** (Re)arm the sweep of time-limited tables for `at` unless it is armed earlier. */
  protected armSweep(at: number): void {
    const cur = this.timers.get(SWEEP);
    if (cur === undefined || at < cur) this.timers.set(SWEEP, at);
  }

  private sweepNow(now: number): void {
    const next = this.sweep(now);
    if (next !== undefined) this.timers.set(SWEEP, next);
  }

  // --- heartbeats to upstream proxies (-H) ------------------------------------------------------------------

  private sendHeartbeats(now: number): void {
    const hb = this.base.heartbeats;
    if (!hb) return;
    this.timers.set(HEARTBEAT, now + hb.intervalMs);
    const req = buildHbReq(this.base.uid, 0);
    for (const s of hb.servers) {
      this.send(s, req);
      this.log(4, `Sent HB_REQ to ${endpointText(s)}`);
    }
  }

  /** An HB_RESP: true if it came from one of our heartbeat servers (then it was ours to handle). */
  protected heartbeatResponse(from: Endpoint, data: Uint8Array): boolean {
    const hb = this.base.heartbeats;
    if (!hb || hb.servers.length === 0) return false;
    const server = hb.servers.find((s) => sameEndpoint(s, from));
    const who = endpointText(from);
    if (!server) {
      this.log(3, `HB_RESP from ${who}, which is not a heartbeat server; ignored`);
      return false;
    }
    const r = readHbResp(data);
    if (!r.ok) {
      this.log(2, `Malformed HB_RESP from ${who}: ${r.error.message}`);
      return true;
    }
    const prev = this.heartbeatState.get(who);
    if (r.value.auth === HbAuth.CHALLENGE) {
      this.log(3, `Heartbeat authentication required by ${who}`);
      if (!hb.key) {
        this.log(1, `Cannot answer the heartbeat challenge of ${who}: no key (-k)`);
        this.heartbeatState.set(who, 'failed');
        return true;
      }
      this.heartbeatState.set(who, 'challenged');
      this.send(server, buildHbReq(this.base.uid, r.value.nonce, hb.key));
      this.log(4, `Sent authenticated HB_REQ to ${who}`);
    } else if (r.value.auth === HbAuth.OK) {
      if (prev === 'challenged') this.log(2, `Heartbeat authentication with ${who} successful`);
      this.heartbeatState.set(who, 'ok');
    } else {
      this.log(1, `Heartbeat authentication with ${who} failed`);
      this.heartbeatState.set(who, 'failed');
    }
    return true;
  }
}
