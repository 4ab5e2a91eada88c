/**
 * The inspector's core, shared by `uftp_inspect` and the demo: UDP datagrams on the UFTP port, decoded
 * by the wire codec (src/wire, never a second decoder), as human-readable lines, JSON records and a summary.
 *
 * JSON record (one per datagram), keys in this order:
 *   type, seq, src_id, group_id,            the UFTP header; IDs as "0x" + 8 lowercase hex digits; grtt in
 *   group_inst, grtt, gsize                 seconds and gsize in clients (both unquantized)
 *   src, dst, time, frame                   "ip:port" ("[v6]:port"); ISO 8601 UTC with microseconds; the
 *                                           capture frame number (as tshark numbers frames)
 *   version, grtt_q, gsize_q, reserved      the rest of the header, quantized bytes as sent
 *   ...                                     the message's own fields, camelCase -> snake_case
 *   error                                   when the datagram does not decode (header fields kept if the
 *                                           16-byte header itself was readable)
 * Value mapping: Uint8Array -> lowercase hex string; bigint -> number when a safe integer, else decimal
 * string; client/destination/proxy IDs -> "0x%08x"; file and link names -> UTF-8 text; TFMCC rates and
 * CONG_CTRL item RTTs decoded, with the value as sent under name + "_q"; nested objects (extensions, key
 * blobs, timestamps) recurse with the same rules.
 */

import { hex32 } from '../core/ids.js';
import {
  bytesText, decodeHeader, decodePacket, describePacket, MESSAGE_NAMES, unquantizeGroupSize, unquantizeGrtt,
  unquantizeRate, type Message, type UftpHeader,
} from '../wire/index.js';
import type { DatagramEvent, DatagramStats } from './datagrams.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** "0x" + 8 lowercase hex digits (src/core/ids.ts). */
export const hexId = hex32;

/** camelCase -> snake_case ("ivCtr" -> "iv_ctr", "publicMcast" -> "public_mcast", "clientIds" -> "client_ids"). */
export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

/** Keys whose numbers are 32-bit member IDs, shown as hex like the header's src_id (ABORT's `host` is one). */
const ID_KEY = /^(?:(?:client|dest|src|source|group|proxy|server|member)Ids?|host)$/;

function bytesHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Generic mapping of a decoded value to JSON (see the module comment). */
export function toJsonValue(v: unknown, key = ''): JsonValue | undefined {
  if (v === null) return null;
  switch (typeof v) {
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'boolean':
    case 'string':
      return v;
    case 'number':
      return ID_KEY.test(key) && Number.isInteger(v) ? hexId(v) : v;
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case 'object':
      break;
  }
  if (v instanceof Uint8Array) return bytesHex(v);
  if (Array.isArray(v)) {
    const out: JsonValue[] = [];
    for (const x of v) {
      const j = toJsonValue(x, key);
      out.push(j === undefined ? null : j);
    }
    return out;
  }
  return objectFields(v as Record<string, unknown>, new Set());
}

/**
 * Quantized fields inside messages and extensions, shown like the header's grtt/gsize: the decoded value
 * under the field's name, the byte(s) as sent under name + "_q". TFMCC rates are NORM floats
 * (unquantizeRate); a CONG_CTRL item's RTT is GRTT-encoded (seconds).
 */
const QUANTIZED: ReadonlyMap<string, (q: number) => number> = new Map([
  ['sendRate', unquantizeRate],
  ['ccRate', unquantizeRate],
  ['rtt', unquantizeGrtt],
]);

function objectFields(v: Record<string, unknown>, skip: ReadonlySet<string>): JsonObject {
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (skip.has(k)) continue;
    const name = snakeCase(k);
    const unq = QUANTIZED.get(k);
    if (unq !== undefined && typeof x === 'number') {
      out[name] = unq(x);
      out[`${name}_q`] = x;
      continue;
    }
    const j = TEXT_KEYS.has(k) && x instanceof Uint8Array ? bytesText(x) : toJsonValue(x, k);
    if (j !== undefined) out[name] = j;
  }
  return out;
}

/** ISO 8601 UTC with microseconds, from nanoseconds since the epoch. */
export function isoTime(timeNs: bigint): string {
  const us = timeNs / 1000n;
  const ms = Number(us / 1000n);
  const frac = (us % 1_000_000n).toString().padStart(6, '0');
  const base = new Date(ms).toISOString(); // 2026-11-22T20:07:43.328Z
  return `${base.slice(0, 19)}.${frac}Z`;
}

/** Time of day, UTC, with microseconds: "20:07:43.328304". */
export function clockTime(timeNs: bigint): string {
  return isoTime(timeNs).slice(11, 26);
}

/** Header fields in the record's key order: the ones the issue names first. */
function headerFields(h: UftpHeader, place: JsonObject): JsonObject {
  return {
    type: MESSAGE_NAMES.get(h.func) ?? `UNKNOWN(${h.func})`,
    seq: h.seq,
    src_id: hexId(h.srcId),
    group_id: hexId(h.groupId),
    group_inst: h.groupInst,
    grtt: unquantizeGrtt(h.grtt),
    gsize: unquantizeGroupSize(h.gsize),
    ...place,
    version: h.version,
    grtt_q: h.grtt,
    gsize_q: h.gsize,
    reserved: h.reserved,
  };
}

/** Byte fields that hold text (file and link names): shown as UTF-8 text, not hex. */
const TEXT_KEYS = new Set(['name', 'linkName']);

/** The message's own fields, snake_cased, without `type` (the record's `type` comes first). */
function messageFields(m: Message): JsonObject {
  return objectFields(m as unknown as Record<string, unknown>, new Set(['type']));
}

/** One decoded (or undecodable) datagram on the UFTP port. */
export interface Inspected {
  readonly frame: number;
  readonly timeNs: bigint;
  readonly src: string;
  readonly dst: string;
  /** Message type name ("ANNOUNCE", "ENCRYPTED"...) when known, even if the message body failed. */
  readonly type: string | null;
  readonly header: UftpHeader | null;
  /** The JSON record. */
  readonly json: JsonObject;
  /** The human-readable line (without a trailing newline). */
  readonly line: string;
  readonly error: string | null;
}

/** What to build besides the counts: the JSON record, the text line (both by default). */
export interface InspectWant {
  readonly json?: boolean;
  readonly line?: boolean;
}

/**
 * Decodes one event from readUdpDatagrams into the inspector's record. With `want` false for json or
 * line, that part is left empty ({} or ''), which saves most of the time when only a summary is wanted.
 */
export function inspectEvent(ev: DatagramEvent, want: InspectWant = {}): Inspected {
  const wantJson = want.json !== false;
  const wantLine = want.line !== false;
  const place: JsonObject = wantJson ? { src: ev.src ?? null, dst: ev.dst ?? null, time: isoTime(ev.timeNs), frame: ev.frame } : {};
  const where = wantLine ? `${clockTime(ev.timeNs)} ${ev.src ?? '?'} -> ${ev.dst ?? '?'}` : '';
  if (ev.kind === 'error') {
    return {
      frame: ev.frame, timeNs: ev.timeNs, src: ev.src ?? '?', dst: ev.dst ?? '?', type: null, header: null,
      json: { type: null, ...place, error: ev.message }, line: `${where} ERROR ${ev.message}`, error: ev.message,
    };
  }
  const bytes = ev.datagram.payload;
  const r = decodePacket(bytes);
  if (!r.ok) {
    const h = decodeHeader(bytes);
    const hdr = h.ok ? h.value : null;
    const json = hdr ? headerFields(hdr, place) : { type: null, ...place };
    json.error = r.error.message;
    return {
      frame: ev.frame, timeNs: ev.timeNs, src: ev.src, dst: ev.dst, type: hdr ? (MESSAGE_NAMES.get(hdr.func) ?? null) : null,
      header: hdr, json, line: `${where} ERROR ${r.error.message}`, error: r.error.message,
    };
  }
  const p = r.value;
  let json: JsonObject = {};
  if (wantJson) {
    json = headerFields(p.header, place);
    for (const [k, v] of Object.entries(messageFields(p.message))) json[k in json ? `msg_${k}` : k] = v;
    json.type = p.message.type;
  }
  return {
    frame: ev.frame, timeNs: ev.timeNs, src: ev.src, dst: ev.dst, type: p.message.type, header: p.header,
    json, line: wantLine ? `${where} ${describePacket(p)}` : '', error: null,
  };
}

interface GroupSummary {
  messages: number;
  instances: Set<number>;
  sources: Set<number>;
}

/** Counts for the closing summary. */
export class InspectSummary {
  datagrams = 0;
  errors = 0;
  readonly byType = new Map<string, number>();
  readonly byGroup = new Map<number, GroupSummary>();
  readonly firstErrors: string[] = [];
  firstNs: bigint | null = null;
  lastNs: bigint | null = null;

  add(x: Inspected): void {
    this.datagrams++;
    if (this.firstNs === null || x.timeNs < this.firstNs) this.firstNs = x.timeNs;
    if (this.lastNs === null || x.timeNs > this.lastNs) this.lastNs = x.timeNs;
    if (x.error !== null) {
      this.errors++;
      if (this.firstErrors.length < 5) this.firstErrors.push(`frame ${x.frame}: ${x.error}`);
    } else if (x.type !== null) {
      this.byType.set(x.type, (this.byType.get(x.type) ?? 0) + 1);
    }
    if (x.header !== null) {
      let g = this.byGroup.get(x.header.groupId);
      if (g === undefined) {
        g = { messages: 0, instances: new Set(), sources: new Set() };
        this.byGroup.set(x.header.groupId, g);
      }
      g.messages++;
      g.instances.add(x.header.groupInst);
      g.sources.add(x.header.srcId);
    }
  }

  toJson(stats: DatagramStats, port: number): JsonObject {
    const byType: JsonObject = {};
    for (const [k, v] of [...this.byType].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) byType[k] = v;
    const byGroup: JsonObject = {};
    for (const [id, g] of this.byGroup) {
      byGroup[hexId(id)] = {
        messages: g.messages,
        instances: [...g.instances].sort((a, b) => a - b),
        sources: [...g.sources].sort((a, b) => a - b).map(hexId),
      };
    }
    return {
      port,
      frames: stats.frames,
      udp_datagrams: stats.udpDatagrams,
      datagrams: this.datagrams,
      decoded: this.datagrams - this.errors,
      errors: this.errors,
      by_type: byType,
      by_group: byGroup,
      first_time: this.firstNs === null ? null : isoTime(this.firstNs),
      last_time: this.lastNs === null ? null : isoTime(this.lastNs),
      reassembled: stats.reassembled,
      malformed_frames: stats.malformedFrames,
      incomplete_fragment_sets: stats.incompleteFragmentSets,
    };
  }

  toText(stats: DatagramStats, port: number): string {
    const lines: string[] = [];
    const span =
      this.firstNs !== null && this.lastNs !== null
        ? `, ${isoTime(this.firstNs)} .. ${isoTime(this.lastNs)} (${(Number(this.lastNs - this.firstNs) / 1e9).toFixed(3)} s)`
        : '';
    lines.push(
      `${stats.frames} frames, ${stats.udpDatagrams} UDP datagrams, ${this.datagrams} on port ${port}: ` +
        `${this.datagrams - this.errors} decoded, ${this.errors} errors${span}`,
    );
    if (this.byType.size > 0) {
      const types = [...this.byType].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      lines.push(`by type: ${types.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
    for (const [id, g] of this.byGroup) {
      const inst = [...g.instances].sort((a, b) => a - b).join(',');
      const srcs = [...g.sources].sort((a, b) => a - b).map(hexId).join(' ');
      lines.push(`group ${hexId(id)} (instance ${inst}): ${g.messages} messages from ${g.sources.size} source${g.sources.size === 1 ? '' : 's'}: ${srcs}`);
    }
    for (const e of this.firstErrors) lines.push(`error: ${e}`);
    if (this.errors > this.firstErrors.length) lines.push(`... and ${this.errors - this.firstErrors.length} more errors`);
    if (stats.reassembled > 0) lines.push(`${stats.reassembled} datagrams reassembled from IP fragments`);
    if (stats.incompleteFragmentSets > 0) lines.push(`${stats.incompleteFragmentSets} IP fragment sets never completed`);
    if (stats.malformedFrames > 0) lines.push(`${stats.malformedFrames} frames with malformed link/IP/UDP headers`);
    return lines.join('\n');
  }
}
