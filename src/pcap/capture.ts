/**
 * Capture file reader: classic pcap and pcapng, as a push parser that never needs the whole file.
 *
 * Classic pcap (https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/): both byte orders,
 * microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) timestamps, and the "modified" Kuznetzov
 * format (0xa1b2cd34, 24-byte record headers) that old Linux tcpdump builds wrote.
 *
 * pcapng (https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcapng/): any number of sections,
 * each with its own byte order; Interface Description Blocks carry the link type and timestamp
 * resolution (if_tsresol) and offset (if_tsoffset) per interface; packets come from Enhanced
 * Packet Blocks, Simple Packet Blocks and the obsolete Packet Block. Other blocks are skipped.
 *
 * Frames are numbered from 1 in file order, counting only packet records: the same numbers
 * Wireshark and tshark show in `frame.number`.
 *
 * Errors are values: `push` and `finish` return a `Result` whose error is one line naming the
 * offset and the problem. After an error the parser refuses further input.
 */

export interface CaptureFrame {
  /** 1-based position among the packet records of the file (Wireshark's frame.number). */
  readonly number: number;
  /** Link-layer header type (LINKTYPE_* number, https://www.tcpdump.org/linktypes.html). */
  readonly linkType: number;
  /** Capture time in nanoseconds since the Unix epoch. */
  readonly timeNs: bigint;
  /** Bytes of the frame that were captured (may be fewer than `originalLength` with a snaplen). */
  readonly data: Uint8Array;
  /** Length of the frame on the wire. */
  readonly originalLength: number;
  /** pcapng interface ID (0 for classic pcap). */
  readonly interfaceId: number;
}

export type CaptureFormat = 'pcap' | 'pcapng';

export type CaptureResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** A record larger than this is taken as a sign of a corrupt file rather than buffered. */
export const MAX_RECORD = 64 * 1024 * 1024;

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;
const PCAPNG_IDB = 0x00000001;
const PCAPNG_PB = 0x00000002;
const PCAPNG_SPB = 0x00000003;
const PCAPNG_EPB = 0x00000006;

interface PcapngInterface {
  readonly linkType: number;
  readonly snapLen: number;
  /** Timestamp units per second. */
  readonly unitsPerSecond: bigint;
  /** if_tsoffset, seconds. */
  readonly offsetSeconds: bigint;
}

const NS_PER_S = 1_000_000_000n;

function okv<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}
function bad(error: string): { readonly ok: false; readonly error: string } {
  return { ok: false, error };
}

/** Converts `ticks` at `unitsPerSecond` to nanoseconds, exactly when the unit divides 1 ns. */
function ticksToNs(ticks: bigint, unitsPerSecond: bigint): bigint {
  if (unitsPerSecond === NS_PER_S) return ticks;
  if (NS_PER_S % unitsPerSecond === 0n) return ticks * (NS_PER_S / unitsPerSecond);
  return (ticks * NS_PER_S) / unitsPerSecond;
}

/**
 * Push parser. Feed it chunks in file order with `push`; call `finish` at end of input.
 * Returned frames' `data` are views into the pushed chunks (no copy); chunks must not be
 * modified afterwards.
 */
export class CaptureParser {
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;
  /** Absolute file offset of buf[0]. */
  private base = 0;
  private failed: string | null = null;
  private frameCount = 0;
  private fmt: CaptureFormat | null = null;
  // classic pcap state
  private little = true;
  private nano = false;
  private recHeaderLen = 16;
  private linkType = 0;
  // pcapng state
  private interfaces: PcapngInterface[] = [];
  private sawShb = false;

  /** The format, once the first bytes have been seen. */
  get format(): CaptureFormat | null {
    return this.fmt;
  }

  /** Number of frames returned so far. */
  get frames(): number {
    return this.frameCount;
  }

  push(chunk: Uint8Array): CaptureResult<CaptureFrame[]> {
    if (this.failed !== null) return bad(this.failed);
    if (chunk.length === 0) return okv([]);
    if (this.off >= this.buf.length) {
      this.base += this.buf.length;
      this.buf = chunk;
      this.off = 0;
    } else {
      const rest = this.buf.length - this.off;
      const joined = new Uint8Array(rest + chunk.length);
      joined.set(this.buf.subarray(this.off), 0);
      joined.set(chunk, rest);
      this.base += this.off;
      this.buf = joined;
      this.off = 0;
    }
    const out: CaptureFrame[] = [];
    const r = this.parse(out);
    if (!r.ok) {
      this.failed = r.error;
      return r;
    }
    return okv(out);
  }

  /** Call at end of input: fails if the file is empty, not a capture, or cut short inside a record. */
  finish(): CaptureResult<void> {
    if (this.failed !== null) return bad(this.failed);
    const rest = this.buf.length - this.off;
    if (this.fmt === null) {
      if (this.base + this.buf.length === 0) return this.fail('empty file: not a pcap or pcapng capture');
      if (rest < 4) return this.fail(`file of ${rest} bytes is too short to be a pcap or pcapng capture`);
      return this.fail('capture file header is cut short');
    }
    if (rest > 0) {
      return this.fail(
        `file ends inside a ${this.fmt === 'pcap' ? 'packet record' : 'block'} at offset ${this.base + this.off} ` +
          `(${rest} trailing bytes): the capture was cut short`,
      );
    }
    return okv(undefined);
  }

  private fail(error: string): { readonly ok: false; readonly error: string } {
    this.failed = error;
    return bad(error);
  }

  private u16(at: number, little: boolean): number {
    const b = this.buf;
    return little ? b[at] | (b[at + 1] << 8) : (b[at] << 8) | b[at + 1];
  }

  private u32(at: number, little: boolean): number {
    const b = this.buf;
    return little
      ? (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0
      : ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
  }

  private avail(): number {
    return this.buf.length - this.off;
  }

  private parse(out: CaptureFrame[]): CaptureResult<void> {
    if (this.fmt === null) {
      if (this.avail() < 4) return okv(undefined);
      const be = this.u32(this.off, false);
      const le = this.u32(this.off, true);
      if (be === PCAPNG_SHB) {
        this.fmt = 'pcapng';
      } else if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS || le === PCAP_MAGIC_MODIFIED) {
        this.fmt = 'pcap';
        this.little = true;
      } else if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS || be === PCAP_MAGIC_MODIFIED) {
        this.fmt = 'pcap';
        this.little = false;
      } else {
        const hex = Array.from(this.buf.subarray(this.off, this.off + 4), (x) => x.toString(16).padStart(2, '0')).join('');
        return bad(`not a pcap or pcapng capture (starts with 0x${hex})`);
      }
      if (this.fmt === 'pcap') {
        const magic = this.u32(this.off, this.little);
        this.nano = magic === PCAP_MAGIC_NS;
        this.recHeaderLen = magic === PCAP_MAGIC_MODIFIED ? 24 : 16;
      }
    }
    return this.fmt === 'pcap' ? this.parsePcap(out) : this.parsePcapng(out);
  }

  // ---- classic pcap ----

  private pcapHeaderDone = false;

  private parsePcap(out: CaptureFrame[]): CaptureResult<void> {
    const le = this.little;
    if (!this.pcapHeaderDone) {
      if (this.avail() < 24) return okv(undefined);
      const major = this.u16(this.off + 4, le);
      if (major !== 2) return bad(`pcap header: version ${major}.${this.u16(this.off + 6, le)} is not 2.x`);
      // Link type in the low 16 bits; the upper bits may carry an FCS length (IETF pcap draft, 4).
      this.linkType = this.u32(this.off + 20, le) & 0xffff;
      this.off += 24;
      this.pcapHeaderDone = true;
    }
    const hl = this.recHeaderLen;
    while (this.avail() >= hl) {
      const at = this.off;
      const incl = this.u32(at + 8, le);
      const orig = this.u32(at + 12, le);
      if (incl > MAX_RECORD) {
        return bad(`pcap record at offset ${this.base + at}: captured length ${incl} is implausible (corrupt file?)`);
      }
      if (this.avail() < hl + incl) return okv(undefined);
      const sec = this.u32(at, le);
      const frac = this.u32(at + 4, le);
      const timeNs = BigInt(sec) * NS_PER_S + BigInt(this.nano ? frac : frac * 1000);
      const data = this.buf.subarray(at + hl, at + hl + incl);
      this.off = at + hl + incl;
      out.push({
        number: ++this.frameCount,
        linkType: this.linkType,
        timeNs,
        data,
        originalLength: Math.max(orig, incl),
        interfaceId: 0,
      });
    }
    return okv(undefined);
  }

  // ---- pcapng ----

  private parsePcapng(out: CaptureFrame[]): CaptureResult<void> {
    while (this.avail() >= 12) {
      const at = this.off;
      const typeBE = this.u32(at, false);
      if (typeBE === PCAPNG_SHB) {
        // The byte-order magic decides how to read everything in this section, its length included.
        const bomLE = this.u32(at + 8, true);
        if (bomLE === PCAPNG_BOM) this.little = true;
        else if (this.u32(at + 8, false) === PCAPNG_BOM) this.little = false;
        else return bad(`pcapng section header at offset ${this.base + at}: bad byte-order magic`);
      } else if (!this.sawShb) {
        return bad('pcapng: first block is not a Section Header Block');
      }
      const le = this.little;
      const type = this.u32(at, le);
      const len = this.u32(at + 4, le);
      if (len < 12 || len % 4 !== 0) {
        return bad(`pcapng block at offset ${this.base + at}: total length ${len} is not a multiple of 4 >= 12`);
      }
      if (len > MAX_RECORD) return bad(`pcapng block at offset ${this.base + at}: length ${len} is implausible (corrupt file?)`);
      if (this.avail() < len) return okv(undefined);
      const trailer = this.u32(at + len - 4, le);
      if (trailer !== len) {
        return bad(`pcapng block at offset ${this.base + at}: trailing length ${trailer} != leading length ${len}`);
      }
      const body = at + 8;
      const bodyEnd = at + len - 4;
      const r = this.pcapngBlock(type, body, bodyEnd, at, out);
      if (!r.ok) return r;
      this.off = at + len;
    }
    return okv(undefined);
  }

  private pcapngBlock(type: number, body: number, end: number, at: number, out: CaptureFrame[]): CaptureResult<void> {
    const le = this.little;
    const where = `pcapng block at offset ${this.base + at}`;
    switch (type) {
      case PCAPNG_SHB: {
        if (end - body < 16) return bad(`${where}: Section Header Block too short`);
        const major = this.u16(body + 4, le);
        if (major !== 1) return bad(`${where}: pcapng version ${major} is not 1`);
        this.sawShb = true;
        this.interfaces = [];
        return okv(undefined);
      }
      case PCAPNG_IDB: {
        if (end - body < 8) return bad(`${where}: Interface Description Block too short`);
        const linkType = this.u16(body, le);
        const snapLen = this.u32(body + 4, le);
        let unitsPerSecond = 1_000_000n;
        let offsetSeconds = 0n;
        let p = body + 8;
        while (p + 4 <= end) {
          const code = this.u16(p, le);
          const olen = this.u16(p + 2, le);
          if (code === 0) break;
          if (p + 4 + olen > end) return bad(`${where}: option ${code} runs past the block`);
          if (code === 9 && olen >= 1) {
            const v = this.buf[p + 4];
            unitsPerSecond = v & 0x80 ? 1n << BigInt(v & 0x7f) : 10n ** BigInt(v);
            if (unitsPerSecond === 0n) return bad(`${where}: if_tsresol ${v} is invalid`);
          } else if (code === 14 && olen >= 8) {
            const dv = new DataView(this.buf.buffer, this.buf.byteOffset + p + 4, 8);
            offsetSeconds = dv.getBigInt64(0, le);
          }
          p += 4 + ((olen + 3) & ~3);
        }
        this.interfaces.push({ linkType, snapLen, unitsPerSecond, offsetSeconds });
        return okv(undefined);
      }
      case PCAPNG_EPB:
      case PCAPNG_PB: {
        if (end - body < 20) return bad(`${where}: packet block too short`);
        const ifId = type === PCAPNG_EPB ? this.u32(body, le) : this.u16(body, le);
        const iface = this.interfaces[ifId];
        if (iface === undefined) return bad(`${where}: packet names interface ${ifId}, which has no description block`);
        const hi = this.u32(body + 4, le);
        const lo = this.u32(body + 8, le);
        const capLen = this.u32(body + 12, le);
        const origLen = this.u32(body + 16, le);
        if (body + 20 + capLen > end) return bad(`${where}: captured length ${capLen} runs past the block`);
        const ticks = (BigInt(hi) << 32n) | BigInt(lo);
        const timeNs = ticksToNs(ticks, iface.unitsPerSecond) + iface.offsetSeconds * NS_PER_S;
        out.push({
          number: ++this.frameCount,
          linkType: iface.linkType,
          timeNs,
          data: this.buf.subarray(body + 20, body + 20 + capLen),
          originalLength: Math.max(origLen, capLen),
          interfaceId: ifId,
        });
        return okv(undefined);
      }
      case PCAPNG_SPB: {
        if (end - body < 4) return bad(`${where}: Simple Packet Block too short`);
        const iface = this.interfaces[0];
        if (iface === undefined) return bad(`${where}: Simple Packet Block before any Interface Description Block`);
        const origLen = this.u32(body, le);
        let capLen = Math.min(origLen, end - body - 4);
        if (iface.snapLen > 0) capLen = Math.min(capLen, iface.snapLen);
        out.push({
          number: ++this.frameCount,
          linkType: iface.linkType,
          // A Simple Packet Block has no timestamp.
          timeNs: 0n,
          data: this.buf.subarray(body + 4, body + 4 + capLen),
          originalLength: Math.max(origLen, capLen),
          interfaceId: 0,
        });
        return okv(undefined);
      }
      default:
        return okv(undefined); // name resolution, statistics, custom, decryption secrets...: not needed
    }
  }
}

/**
 * Reads frames from a byte stream (a file stream, stdin, or any async iterable of chunks).
 * Yields each frame, and at most one error as the last item. Memory use is bounded by the
 * largest record plus one chunk, whatever the size of the capture.
 */
export async function* readCaptureFrames(
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<CaptureResult<CaptureFrame>, void, undefined> {
  const parser = new CaptureParser();
  for await (const chunk of source) {
    const r = parser.push(chunk);
    if (!r.ok) {
      yield r;
      return;
    }
    for (const f of r.value) yield okv(f);
  }
  const end = parser.finish();
  if (!end.ok) yield end;
}

/** Parses a whole capture held in memory. */
export function parseCapture(bytes: Uint8Array): CaptureResult<CaptureFrame[]> {
  const parser = new CaptureParser();
  const r = parser.push(bytes);
  if (!r.ok) return r;
  const end = parser.finish();
  if (!end.ok) return end;
  return r;
}
