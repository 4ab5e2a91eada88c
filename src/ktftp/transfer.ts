/**
 * The data phase of a transfer as two state machines with no I/O: DataSender (sends DATA, takes ACKs) and
 * DataReceiver (takes DATA, sends ACKs). Lock-step RFC 1350 is windowsize 1; RFC 7440 windows otherwise:
 * the sender sends `windowsize` blocks from the first unacknowledged one, the receiver ACKs the last block of
 * each window (or the last in-order block when it sees a gap or a duplicate), and the sender restarts from
 * the block after the ACKed one. Duplicate ACKs are ignored (no Sorcerer's Apprentice). Both sides
 * retransmit after `rexmt` ms of silence and give up after `timeout` ms without progress.
 *
 * Inputs are (now, packet) and (now) for timeouts; outputs are inner packets to send. Block numbers roll
 * over from 65535 to 0.
 */
import type { Sink, Source, WriteBehindSink } from './fileops.js';
import { ErrCode, unwrapBlock, type Packet } from './wire.js';

export interface TransferParams {
  readonly blksize: number;
  readonly windowsize: number;
  /** Retransmission interval, ms. */
  readonly rexmt: number;
  /** Give up after this long without progress, ms. */
  readonly timeout: number;
}

export type Outcome =
  | { readonly ok: true; readonly bytes: number }
  /** A TFTP error: sent by the peer (remote) or by us (local side refused or failed). */
  | { readonly ok: false; readonly kind: 'tftp'; readonly code: number; readonly message: string; readonly remote: boolean }
  | { readonly ok: false; readonly kind: 'timeout'; readonly message: string }
  | { readonly ok: false; readonly kind: 'local'; readonly message: string };

/**
 * Most bytes a receiver lets wait for its WriteBehindSink (a slow disk, a slow reader on standard output): above
 * it, the ACK that ends a window waits until the writes catch up, so the sender waits too. No unbounded queue.
 */
export const MAX_WRITE_BACKLOG = 4 * 1024 * 1024;

/** Most bytes of one window a sender reads ahead (peekNext). */
export const LOOKAHEAD_BYTES = 512 * 1024;

export function errorPacket(code: number, message: string): Packet {
  return { type: 'ERROR', code, message };
}

export class DataSender {
  /** First unacknowledged block. */
  private base = 1;
  /** Blocks base.. read from the source and not yet acknowledged. */
  private blocks: Buffer[] = [];
  private lastBlock: number | null = null;
  /** Highest block number sent so far. */
  private sentUpTo = 0;
  private lastProgress: number;
  private next: number;
  private sentBytes = 0;
  /** A read failure met while reading ahead; reported when the window needs that block. */
  private readError: { code: number; message: string } | null = null;
  outcome: Outcome | null = null;

  constructor(private readonly source: Source, private readonly p: TransferParams, now: number) {
    this.lastProgress = now;
    this.next = now + p.rexmt;
  }

  get deadline(): number | null {
    return this.outcome === null ? this.next : null;
  }

  get bytes(): number {
    return this.sentBytes;
  }

  /** Reads blocks until `limit` are held (the current window and, for peekNext, the one after it). */
  private readMore(limit: number): void {
    while (this.lastBlock === null && this.readError === null && this.blocks.length < limit) {
      const r = this.source.read(this.p.blksize);
      if (!r.ok) {
        this.readError = { code: r.code, message: r.message };
        break;
      }
      if (r.value === null) break; // a pipe with nothing more yet: poke() sends the rest when it comes
      this.blocks.push(r.value);
      if (r.value.length < this.p.blksize) this.lastBlock = this.base + this.blocks.length - 1;
    }
  }

  private fill(): Packet | null {
    this.readMore(this.p.windowsize);
    const e = this.readError;
    if (e !== null && this.lastBlock === null && this.blocks.length < this.p.windowsize) {
      this.outcome = { ok: false, kind: 'tftp', code: e.code, message: e.message, remote: false };
      return errorPacket(e.code, e.message);
    }
    return null;
  }

  /** Blocks of the current window (blocks.length may exceed it by what peekNext read ahead). */
  private get inWindow(): number {
    return Math.min(this.blocks.length, this.p.windowsize);
  }

  private window(now: number): Packet[] {
    const e = this.fill();
    if (e !== null) return [e];
    this.next = now + this.p.rexmt;
    const out: Packet[] = [];
    const w = this.inWindow;
    for (let i = 0; i < w; i++) out.push({ type: 'DATA', block: (this.base + i) & 0xffff, data: this.blocks[i] });
    this.sentUpTo = this.base + w - 1;
    return out;
  }

  /**
   * The window that will be sent next if the whole current window is acknowledged (reading it ahead, at most
   * LOOKAHEAD_BYTES), so the session can seal it while the peer is busy; [] when there is none.
   */
  peekNext(): Packet[] {
    const w = this.p.windowsize;
    if (this.outcome !== null || this.blocks.length < w || w * this.p.blksize > LOOKAHEAD_BYTES) return [];
    if (this.lastBlock !== null && this.lastBlock < this.base + w) return [];
    this.readMore(2 * w);
    const out: Packet[] = [];
    for (let i = w; i < this.blocks.length && i < 2 * w; i++) out.push({ type: 'DATA', block: (this.base + i) & 0xffff, data: this.blocks[i] });
    return out;
  }

  /** The source has more data: sends the blocks of the current window not sent yet. */
  poke(now: number): Packet[] {
    if (this.outcome !== null) return [];
    const e = this.fill();
    if (e !== null) return [e];
    const out: Packet[] = [];
    for (let n = Math.max(this.sentUpTo + 1, this.base); n < this.base + this.inWindow; n++)
      out.push({ type: 'DATA', block: n & 0xffff, data: this.blocks[n - this.base] });
    if (out.length > 0) {
      this.sentUpTo = this.base + this.inWindow - 1;
      this.next = now + this.p.rexmt;
    }
    return out;
  }

  start(now: number): Packet[] {
    return this.window(now);
  }

  onAck(now: number, wireBlock: number): Packet[] {
    if (this.outcome !== null) return [];
    const a = unwrapBlock(wireBlock, this.base);
    if (a < this.base || a > this.sentUpTo) return []; // duplicate, bogus or not sent yet: ignore
    const n = a - this.base + 1;
    for (let i = 0; i < n; i++) this.sentBytes += this.blocks[i].length;
    this.blocks.splice(0, n);
    this.base = a + 1;
    this.lastProgress = now;
    if (this.lastBlock !== null && a >= this.lastBlock) {
      this.outcome = { ok: true, bytes: this.sentBytes };
      this.source.close();
      return [];
    }
    return this.window(now);
  }

  onTimeout(now: number): Packet[] {
    if (this.outcome !== null || now < this.next) return [];
    if (now - this.lastProgress >= this.p.timeout) {
      this.outcome = { ok: false, kind: 'timeout', message: 'Transfer timed out' };
      this.source.close();
      return [];
    }
    return this.window(now);
  }

  /** Sends the current window again now (the peer showed it has not seen it). */
  resend(now: number): Packet[] {
    return this.outcome === null ? this.window(now) : [];
  }

  abort(): void {
    this.source.close();
  }
}

export class DataReceiver {
  private expected = 1;
  private sinceAck = 0;
  private gapAcked = false;
  private lastProgress: number;
  private next: number;
  private received = 0;
  /** The last block while the driver commits (a WriteBehindSink): its ACK waits for the commit's result. */
  private committing: number | null = null;
  /** The block ending a window whose ACK waits for the writes to catch up (back-pressure, MAX_WRITE_BACKLOG). */
  private held: number | null = null;
  outcome: Outcome | null = null;

  /**
   * `later` is the file under `sink` when the driver writes it (a WriteBehindSink; `sink` may be a netascii
   * wrapper around it): the window's end lets it write, and the last block is acknowledged once it is committed.
   */
  constructor(
    private readonly sink: Sink,
    private readonly p: TransferParams,
    now: number,
    private readonly later: WriteBehindSink | null = null,
  ) {
    this.lastProgress = now;
    this.next = now + p.rexmt;
  }

  /** While finished successfully, the receiver still answers duplicates (the session decides how long). */
  get deadline(): number | null {
    return this.outcome === null ? this.next : null;
  }

  get bytes(): number {
    return this.received;
  }

  /** The ACK this receiver sends next if the coming blocks arrive in order and full; [] when finished. */
  peekNext(): Packet[] {
    if (this.outcome !== null) return [];
    return [{ type: 'ACK', block: (this.expected - 1 + this.p.windowsize - this.sinceAck) & 0xffff }];
  }

  private ack(now: number, block: number): Packet {
    this.next = now + this.p.rexmt;
    return { type: 'ACK', block: block & 0xffff };
  }

  onData(now: number, wireBlock: number, data: Uint8Array): Packet[] {
    if (this.outcome !== null) {
      // Finished: re-acknowledge a retransmitted final block so the sender can stop.
      if (this.outcome.ok && unwrapBlock(wireBlock, this.expected) === this.expected - 1) return [this.ack(now, this.expected - 1)];
      return [];
    }
    if (this.committing !== null || this.held !== null) return []; // the ACK waits for the commit / the writes
    const n = unwrapBlock(wireBlock, this.expected);
    if (n !== this.expected) {
      // Duplicate or gap: tell the sender where we are, once per burst.
      if (this.gapAcked) return [];
      this.gapAcked = true;
      this.sinceAck = 0;
      return [this.ack(now, this.expected - 1)];
    }
    if (data.length > this.p.blksize) {
      const m = `DATA block ${n} has ${data.length} bytes > blksize ${this.p.blksize}`;
      this.fail(ErrCode.BADOP, m);
      return [errorPacket(ErrCode.BADOP, m)];
    }
    const w = this.sink.write(data);
    if (!w.ok) {
      this.fail(w.code, w.message);
      return [errorPacket(w.code, w.message)];
    }
    this.received += data.length;
    this.expected++;
    this.sinceAck++;
    this.gapAcked = false;
    this.lastProgress = now;
    if (data.length < this.p.blksize) {
      const c = this.sink.commit();
      if (!c.ok) {
        this.fail(c.code, c.message);
        return [errorPacket(c.code, c.message)];
      }
      if (this.later !== null) {
        this.committing = n;
        return this.fileProgress(now);
      }
      this.outcome = { ok: true, bytes: this.received };
      return [this.ack(now, n)];
    }
    if (this.sinceAck >= this.p.windowsize) {
      this.sinceAck = 0;
      const f = this.later;
      if (f !== null) {
        f.flush();
        if (f.backlog > MAX_WRITE_BACKLOG) {
          this.held = n;
          return [];
        }
      }
      return [this.ack(now, n)];
    }
    return [];
  }

  /**
   * A write or the commit the driver did came back: a failure becomes the ERROR the client gets (nothing is
   * committed); a commit that succeeded acknowledges the last block.
   */
  fileProgress(now: number): Packet[] {
    const f = this.later;
    if (this.outcome !== null || f === null) return [];
    if (f.error !== null) {
      const { code, message } = f.error;
      this.fail(code, message);
      return [errorPacket(code, message)];
    }
    if (this.committing !== null && f.committed) {
      this.outcome = { ok: true, bytes: this.received };
      return [this.ack(now, this.committing)];
    }
    if (this.held !== null) {
      this.lastProgress = now; // the writes move on
      if (f.backlog <= MAX_WRITE_BACKLOG) {
        const n = this.held;
        this.held = null;
        return [this.ack(now, n)];
      }
    }
    return [];
  }

  private fail(code: number, message: string): void {
    this.sink.abort();
    this.outcome = { ok: false, kind: 'tftp', code, message, remote: false };
  }

  onTimeout(now: number): Packet[] {
    if (this.outcome !== null || now < this.next) return [];
    if (this.committing !== null) {
      // the driver is committing: nothing to repeat, the client repeats its last block meanwhile
      this.next = now + this.p.rexmt;
      return [];
    }
    if (this.held !== null && now - this.lastProgress < this.p.timeout) {
      // the writes are behind: the window's ACK waits for them (the sender repeats its window meanwhile)
      this.next = now + this.p.rexmt;
      return [];
    }
    if (now - this.lastProgress >= this.p.timeout) {
      this.sink.abort();
      this.outcome = { ok: false, kind: 'timeout', message: 'Transfer timed out' };
      return [];
    }
    this.sinceAck = 0;
    return [this.ack(now, this.expected - 1)];
  }

  abort(): void {
    this.sink.abort();
  }
}
