/**
 * RFC 1350 netascii: on the wire a line ends in CR LF and a lone CR is CR NUL. These wrap a Source or a Sink
 * so that the transfer machines see wire bytes while the file holds local (LF) text.
 */
import type { FsResult, Sink, Source } from './fileops.js';

export function toNetascii(source: Source): Source {
  let pending = Buffer.alloc(0);
  let eof = false;
  return {
    size: null,
    onReadable: source.onReadable ? (cb: () => void) => source.onReadable!(cb) : undefined,
    read(max: number): FsResult<Buffer | null> {
      while (pending.length < max && !eof) {
        const r = source.read(max);
        if (!r.ok) return r;
        if (r.value === null) return { ok: true, value: null };
        if (r.value.length === 0) {
          eof = true;
          break;
        }
        const out: number[] = [];
        for (const c of r.value) {
          if (c === 0x0a) out.push(0x0d, 0x0a);
          else if (c === 0x0d) out.push(0x0d, 0x00);
          else out.push(c);
        }
        pending = Buffer.concat([pending, Buffer.from(out)]);
      }
      const n = Math.min(max, pending.length);
      const res = pending.subarray(0, n);
      pending = pending.subarray(n);
      return { ok: true, value: Buffer.from(res) };
    },
    close: () => source.close(),
  };
}

export function fromNetascii(sink: Sink): Sink {
  let cr = false;
  return {
    write(data: Uint8Array): FsResult<void> {
      const out: number[] = [];
      for (const c of data) {
        if (cr) {
          cr = false;
          if (c === 0x0a) {
            out.push(0x0a);
            continue;
          }
          if (c === 0x00) {
            out.push(0x0d);
            continue;
          }
          out.push(0x0d);
        }
        if (c === 0x0d) cr = true;
        else out.push(c);
      }
      return sink.write(Buffer.from(out));
    },
    commit(): FsResult<void> {
      if (cr) {
        cr = false;
        const w = sink.write(Buffer.from([0x0d]));
        if (!w.ok) return w;
      }
      return sink.commit();
    },
    abort: () => sink.abort(),
  };
}
