/**
 * KTFTP wire codec: TFTP (RFC 1350) packets, option negotiation (RFC 2347), and the KTFTP additions
 * (PUSH and DELETE requests, the sealed envelope, the AUTH message). Pure: bytes in, values out.
 * See docs/ktftp-protocol.md for the layout of every packet.
 *
 *   RRQ/WRQ/PUSH/DELETE  | opcode u16 | tag NUL | mode NUL | (optname NUL optvalue NUL)* |
 *   DATA                 | 3 u16 | block u16 | data (0..blksize) |
 *   ACK                  | 4 u16 | block u16 |
 *   ERROR                | 5 u16 | code u16 | message NUL |
 *   OACK                 | 6 u16 | (optname NUL optvalue NUL)* |
 *   AUTH (sealed only)   | 12 u16 | method u8 | len u16 | credential | len u16 | proof |
 *   SEALED               | 16 u16 | seq u64 | AEAD ciphertext of an inner packet | tag 16 |
 */
import { err, ok, type Result } from '../wire/result.js';

export const Op = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
  PUSH: 10,
  DELETE: 11,
  AUTH: 12,
  SEALED: 16,
} as const;

/** TFTP error codes (RFC 1350 + RFC 2347 code 8). The ktftp exit code is code + 1 (see exitCodeForError). */
export const ErrCode = {
  UNDEF: 0,
  NOTFOUND: 1,
  ACCESS: 2,
  NOSPACE: 3,
  BADOP: 4,
  BADID: 5,
  EXISTS: 6,
  NOUSER: 7,
  OPTION: 8,
} as const;

export type RequestOp = 'RRQ' | 'WRQ' | 'PUSH' | 'DELETE';
export type Option = readonly [name: string, value: string];

export type Packet =
  | { readonly type: 'REQUEST'; readonly op: RequestOp; readonly tag: string; readonly mode: string; readonly options: readonly Option[] }
  | { readonly type: 'DATA'; readonly block: number; readonly data: Uint8Array }
  | { readonly type: 'ACK'; readonly block: number }
  | { readonly type: 'ERROR'; readonly code: number; readonly message: string }
  | { readonly type: 'OACK'; readonly options: readonly Option[] }
  | { readonly type: 'AUTH'; readonly method: AuthMethod; readonly credential: Uint8Array; readonly proof: Uint8Array };

export const AuthMethodCode = { none: 0, key: 1, krb5: 2 } as const;
export type AuthMethod = keyof typeof AuthMethodCode;

export interface SealedEnvelope {
  readonly seq: number;
  /** Ciphertext followed by the 16-byte AEAD tag. */
  readonly body: Uint8Array;
  /** The 10 header bytes (opcode and seq), the AEAD's additional data. */
  readonly header: Uint8Array;
}

export const SEALED_HEADER_LEN = 10;
export const AEAD_TAG_LEN = 16;
/** Longest tag name accepted on the wire (the `~` included). */
export const MAX_TAG_LEN = 128;
/** A request must fit in 512 bytes per RFC 2347 unless it is ours; we allow more for the key exchange. */
export const MAX_REQUEST_LEN = 1024;

const REQ_OPS: Record<number, RequestOp> = { 1: 'RRQ', 2: 'WRQ', 10: 'PUSH', 11: 'DELETE' };
const REQ_CODES: Record<RequestOp, number> = { RRQ: 1, WRQ: 2, PUSH: 10, DELETE: 11 };

/** Splits NUL-terminated strings; fails when the last one has no terminator. */
function cstrings(b: Uint8Array, from: number, what: string): Result<string[]> {
  const out: string[] = [];
  let i = from;
  while (i < b.length) {
    const end = b.indexOf(0, i);
    if (end < 0) return err('truncated', `${what}: string at offset ${i} has no NUL terminator`);
    out.push(Buffer.from(b.buffer, b.byteOffset + i, end - i).toString('latin1'));
    i = end + 1;
  }
  return ok(out);
}

function pairs(list: string[], what: string): Result<Option[]> {
  if (list.length % 2 !== 0) return err('inconsistent', `${what}: option "${list[list.length - 1]}" has no value`);
  const out: Option[] = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i].toLowerCase(), list[i + 1]]);
  return ok(out);
}

export function decode(b: Uint8Array): Result<Packet> {
  if (b.length < 2) return err('truncated', `packet of ${b.length} bytes has no opcode`);
  const op = (b[0] << 8) | b[1];
  switch (op) {
    case Op.RRQ:
    case Op.WRQ:
    case Op.PUSH:
    case Op.DELETE: {
      const reqOp = REQ_OPS[op];
      if (b.length > MAX_REQUEST_LEN) return err('oversized', `${reqOp}: ${b.length} bytes > ${MAX_REQUEST_LEN}`);
      const s = cstrings(b, 2, reqOp);
      if (!s.ok) return s;
      if (s.value.length < 2) return err('truncated', `${reqOp}: missing tag or mode`);
      const opts = pairs(s.value.slice(2), reqOp);
      if (!opts.ok) return opts;
      return ok({ type: 'REQUEST', op: reqOp, tag: s.value[0], mode: s.value[1].toLowerCase(), options: opts.value });
    }
    case Op.DATA:
      if (b.length < 4) return err('truncated', `DATA: ${b.length} bytes < 4`);
      return ok({ type: 'DATA', block: (b[2] << 8) | b[3], data: b.subarray(4) });
    case Op.ACK:
      if (b.length < 4) return err('truncated', `ACK: ${b.length} bytes < 4`);
      return ok({ type: 'ACK', block: (b[2] << 8) | b[3] });
    case Op.ERROR: {
      if (b.length < 4) return err('truncated', `ERROR: ${b.length} bytes < 4`);
      // Some servers omit the final NUL; accept the message to the end then.
      let end = b.indexOf(0, 4);
      if (end < 0) end = b.length;
      return ok({ type: 'ERROR', code: (b[2] << 8) | b[3], message: Buffer.from(b.subarray(4, end)).toString('latin1') });
    }
    case Op.OACK: {
      const s = cstrings(b, 2, 'OACK');
      if (!s.ok) return s;
      const opts = pairs(s.value, 'OACK');
      if (!opts.ok) return opts;
      return ok({ type: 'OACK', options: opts.value });
    }
    case Op.AUTH: {
      if (b.length < 7) return err('truncated', `AUTH: ${b.length} bytes < 7`);
      const m = b[2];
      const method = (Object.keys(AuthMethodCode) as AuthMethod[]).find((k) => AuthMethodCode[k] === m);
      if (method === undefined) return err('bad-value', `AUTH: unknown method ${m}`);
      const l1 = (b[3] << 8) | b[4];
      if (5 + l1 + 2 > b.length) return err('truncated', `AUTH: credential length ${l1} runs past the packet`);
      const credential = b.subarray(5, 5 + l1);
      const l2 = (b[5 + l1] << 8) | b[6 + l1];
      if (7 + l1 + l2 !== b.length) return err('inconsistent', `AUTH: proof length ${l2} disagrees with packet length`);
      return ok({ type: 'AUTH', method, credential, proof: b.subarray(7 + l1) });
    }
    default:
      return err('bad-type', `unknown opcode ${op}`);
  }
}

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'latin1'), Buffer.alloc(1)]);
}

function encodeOptions(options: readonly Option[]): Buffer[] {
  const parts: Buffer[] = [];
  for (const [n, v] of options) parts.push(cstr(n), cstr(v));
  return parts;
}

function u16(op: number): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(op);
  return h;
}

export function encode(p: Packet): Buffer {
  switch (p.type) {
    case 'REQUEST':
      return Buffer.concat([u16(REQ_CODES[p.op]), cstr(p.tag), cstr(p.mode), ...encodeOptions(p.options)]);
    case 'DATA': {
      const out = Buffer.allocUnsafe(4 + p.data.length);
      out.writeUInt16BE(Op.DATA, 0);
      out.writeUInt16BE(p.block & 0xffff, 2);
      out.set(p.data, 4);
      return out;
    }
    case 'ACK': {
      const out = Buffer.alloc(4);
      out.writeUInt16BE(Op.ACK, 0);
      out.writeUInt16BE(p.block & 0xffff, 2);
      return out;
    }
    case 'ERROR': {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(Op.ERROR, 0);
      h.writeUInt16BE(p.code, 2);
      return Buffer.concat([h, cstr(p.message)]);
    }
    case 'OACK':
      return Buffer.concat([u16(Op.OACK), ...encodeOptions(p.options)]);
    case 'AUTH': {
      if (p.credential.length > 0xffff || p.proof.length > 0xffff) throw new Error('AUTH: field over 65535 bytes');
      const h = Buffer.alloc(5);
      h.writeUInt16BE(Op.AUTH, 0);
      h[2] = AuthMethodCode[p.method];
      h.writeUInt16BE(p.credential.length, 3);
      return Buffer.concat([h, p.credential, u16(p.proof.length), p.proof]);
    }
  }
}

/** Reads the outer sealed envelope; the body is still ciphertext. */
export function decodeSealed(b: Uint8Array): Result<SealedEnvelope> {
  if (b.length < SEALED_HEADER_LEN + AEAD_TAG_LEN) return err('truncated', `SEALED: ${b.length} bytes < ${SEALED_HEADER_LEN + AEAD_TAG_LEN}`);
  if (((b[0] << 8) | b[1]) !== Op.SEALED) return err('bad-type', 'not a SEALED packet');
  const hi = (b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5];
  const lo = ((b[6] << 24) | (b[7] << 16) | (b[8] << 8) | b[9]) >>> 0;
  if (hi >>> 0 > 0x1fffff) return err('bad-value', 'SEALED: sequence number beyond 2^53');
  return ok({ seq: (hi >>> 0) * 0x100000000 + lo, header: b.subarray(0, SEALED_HEADER_LEN), body: b.subarray(SEALED_HEADER_LEN) });
}

export function sealedHeader(seq: number): Buffer {
  const h = Buffer.alloc(SEALED_HEADER_LEN);
  writeSealedHeader(h, seq);
  return h;
}

/** Writes the SEALED header for `seq` into the first SEALED_HEADER_LEN bytes of `b`. */
export function writeSealedHeader(b: Buffer, seq: number): void {
  b.writeUInt16BE(Op.SEALED, 0);
  b.writeUInt32BE(Math.floor(seq / 0x100000000), 2);
  b.writeUInt32BE(seq >>> 0, 6);
}

export function opcodeOf(b: Uint8Array): number {
  return b.length < 2 ? -1 : (b[0] << 8) | b[1];
}

export function getOption(options: readonly Option[], name: string): string | undefined {
  for (const [n, v] of options) if (n === name) return v;
  return undefined;
}

/** A tag name as it may appear on the wire: a name, never a path. Returns the reason it is refused. */
export function checkTagName(tag: string): string | null {
  if (tag.length === 0) return 'empty tag name';
  if (tag.length > MAX_TAG_LEN) return `tag name longer than ${MAX_TAG_LEN} characters`;
  const base = tag.endsWith('~') ? tag.slice(0, -1) : tag;
  if (!/^[A-Za-z0-9_][A-Za-z0-9._+@=,-]*$/.test(base)) return 'tag name has a character outside [A-Za-z0-9._+@=,-] or starts with one';
  if (base.includes('..')) return 'tag name contains ".."';
  return null;
}

/**
 * Block numbers are 16 bits on the wire and roll over to 0 (as tftp-hpa does by default).
 * Returns the full block number nearest to `near` whose low 16 bits are `wire`.
 */
export function unwrapBlock(wire: number, near: number): number {
  const diff = ((wire - (near & 0xffff) + 0x8000) & 0xffff) - 0x8000;
  return near + diff;
}
