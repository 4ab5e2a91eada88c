/**
 * 5.2.16 ABORT (either direction; plain before the group key exists, else inside ENCRYPTED).
 *
 *  0 function(1)  1 header length  2 flags (0x01 CURRENT_FILE)  3 reserved
 *  4 host (32): the client to abort (server), 0, or the aborting client's ID (proxy)
 *  8 message: 300 bytes of text, NUL padded
 *308 header extensions up to header length
 */
import { ABORT_MESSAGE_LEN, MessageType, UFTP_HEADER_LEN } from './constants.js';
import { cBytes, cString, headerBytes, hlenWords, isU32, isU8, need, put32, textBytes, u32 } from './fields.js';
import { decodeExtensions, encodeExtensionsInto, extensionsLength, type Extension } from './extensions.js';
import { err, ok, type Result } from './result.js';

const FUNC = 0;
const HLEN = 1;
const FLAGS = 2;
const HOST = 4;
const MESSAGE = 8;
const FIXED = MESSAGE + ABORT_MESSAGE_LEN;

export interface Abort {
  type: 'ABORT';
  flags: number;
  host: number;
  /** The reason text (UTF-8 up to the first NUL; encode cuts it to 300 bytes at a character boundary). */
  message: string;
  extensions: Extension[];
}

export function decodeAbort(b: Uint8Array): Result<Abort> {
  const N = 'ABORT';
  const h = headerBytes(b, N, FIXED);
  if (!h.ok) return h;
  if (b.length !== h.value) return err('inconsistent', `${N}: ${b.length - h.value} bytes after the header; ABORT has no body`);
  const exts = decodeExtensions(b, FIXED, h.value, N);
  if (!exts.ok) return exts;
  return ok({ type: 'ABORT', flags: b[FLAGS], host: u32(b, HOST), message: cString(b, MESSAGE, FIXED), extensions: exts.value });
}

/**
 * The message as sent: UTF-8, cut at a NUL and to at most 300 bytes (never inside a character), so that
 * any decoded ABORT (whose text may hold U+FFFD for invalid bytes) can be re-encoded without error.
 */
function abortText(s: string): Uint8Array {
  const nul = s.indexOf('\0');
  let t = textBytes(nul >= 0 ? s.slice(0, nul) : s);
  if (t.length > ABORT_MESSAGE_LEN) {
    let end = ABORT_MESSAGE_LEN;
    while (end > 0 && (t[end] & 0xc0) === 0x80) end--; // back up to a character boundary
    t = t.subarray(0, end);
  }
  return t;
}

export function abortLength(m: Abort): number {
  return FIXED + extensionsLength(m.extensions);
}

export function encodeAbortInto(m: Abort, out: Uint8Array, off: number): number {
  need(isU8(m.flags) && isU32(m.host), 'ABORT: field out of range');
  const text = abortText(m.message);
  const hlen = FIXED + extensionsLength(m.extensions);
  out[off + FUNC] = MessageType.ABORT;
  out[off + HLEN] = hlenWords(hlen, 'ABORT');
  out[off + FLAGS] = m.flags;
  out[off + 3] = 0;
  put32(out, off + HOST, m.host);
  out.fill(0, off + MESSAGE, off + FIXED);
  out.set(text, off + MESSAGE);
  encodeExtensionsInto(m.extensions, out, off + FIXED);
  return hlen;
}

/**
 * A checked view of a whole ABORT datagram, for a proxy that passes a client's ABORT upstream with the Host field
 * set to that client (and its own ID and sequence number in the header, see HeaderView).
 */
export class AbortView {
  private constructor(readonly bytes: Uint8Array) {}

  /** Only the flags and Host need to be there (the real programs' text may be cut short). */
  static check(d: Uint8Array): Result<AbortView> {
    if (d.length < UFTP_HEADER_LEN + MESSAGE) return err('truncated', `ABORT: ${d.length - UFTP_HEADER_LEN} bytes, need at least ${MESSAGE}`);
    return ok(new AbortView(d));
  }

  get flags(): number {
    return this.bytes[UFTP_HEADER_LEN + FLAGS];
  }
  get host(): number {
    return u32(this.bytes, UFTP_HEADER_LEN + HOST);
  }
  setHost(id: number): void {
    put32(this.bytes, UFTP_HEADER_LEN + HOST, id >>> 0);
  }
  /** The reason text as Latin-1 up to the first NUL (what a log line shows). */
  get text(): string {
    const from = UFTP_HEADER_LEN + MESSAGE;
    const end = Math.min(this.bytes.length, from + ABORT_MESSAGE_LEN);
    return Buffer.from(cBytes(this.bytes, from, end)).toString('latin1');
  }
}
