/**
 * The receiver side of TFMCC (RFC 4654) as UFTP 4 carries it (protocol.txt 3.3, 5.2.11.1, 5.2.13.1): per session,
 * the loss event rate from gaps in the server's sequence numbers (and ECN CE marks), the RTT the server measured
 * for us (CONG_CTRL items), the receive rate, and from them the TCP-friendly rate we report in EXT_TFMCC_ACK_INFO
 * (on CC_ACK and on every STATUS). Pure: times in ms, no I/O.
 *
 * Feedback (CC_ACK) goes out: at each CONG_CTRL while we are the current limiting receiver (CLR); once per
 * feedback round (cc sequence) when our rate is below the server's suppression rate (cc rate); and at a
 * CONG_CTRL while the server has no RTT for us (so it can measure one). The rate follows the TFRC throughput
 * equation of RFC 5348 3.1 with t_RTO = 4 R and the average loss interval of RFC 5348 5.4 (8 intervals); before
 * the first loss event we are in slow start and report twice the receive rate (CC_START).
 */
import { CcFlag } from '../../wire/constants.js';
import { unquantizeGrtt, unquantizeRate } from '../../wire/quantize.js';
import type { CongCtrl } from '../../wire/congestion.js';

const WEIGHTS = [1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2];

export class TfmccReceiver {
  rttMs: number;
  hasRtt = false;
  clr = false;
  /** The server's latest feedback round and suppression rate (bytes/s). */
  ccSeq = 0;
  ccRate = Infinity;
  private answeredSeq = -1;
  private expectSeq: number | undefined;
  private readonly intervals: number[] = [];
  private current = 0;
  private lossEvents = 0;
  private lastEventAt = -Infinity;
  private winStart = -1;
  private winBytes = 0;
  recvRate = 0;

  constructor(
    grttMs: number,
    private readonly blockSize: number,
  ) {
    this.rttMs = Math.max(1, grttMs);
  }

  /** Any datagram of the session: its header sequence number (gaps are losses) and whether it was CE-marked. */
  onSeq(now: number, seq: number, bytes: number, ce: boolean): void {
    if (this.expectSeq !== undefined) {
      const gap = (seq - this.expectSeq) & 0xffff;
      if (gap > 0 && gap < 0x8000) this.loss(now, gap);
      else if (gap >= 0x8000) return; // late or duplicate: not counted
    }
    this.expectSeq = (seq + 1) & 0xffff;
    if (ce) this.loss(now, 0);
    this.current++;
    if (this.winStart < 0) this.winStart = now;
    this.winBytes += bytes;
    const span = now - this.winStart;
    if (span >= Math.max(this.rttMs, 50)) {
      const r = (this.winBytes * 1000) / span;
      this.recvRate = this.recvRate === 0 ? r : 0.75 * this.recvRate + 0.25 * r;
      this.winStart = now;
      this.winBytes = 0;
    }
  }

  private loss(now: number, _lost: number): void {
    // losses within one RTT of the start of a loss event belong to it (RFC 5348 5.2)
    if (now - this.lastEventAt < this.rttMs) return;
    this.lastEventAt = now;
    this.lossEvents++;
    this.intervals.unshift(Math.max(1, this.current));
    if (this.intervals.length > WEIGHTS.length) this.intervals.length = WEIGHTS.length;
    this.current = 0;
  }

  /** The loss event rate p (0 before the first loss event). */
  lossRate(): number {
    if (this.lossEvents === 0 || this.intervals.length === 0) return 0;
    const mean = (xs: number[]): number => {
      let num = 0;
      let den = 0;
      xs.forEach((x, i) => {
        num += WEIGHTS[i] * x;
        den += WEIGHTS[i];
      });
      return num / den;
    };
    const closed = mean(this.intervals);
    const withOpen = mean([this.current, ...this.intervals].slice(0, WEIGHTS.length));
    return 1 / Math.max(closed, withOpen);
  }

  /** The rate we would receive at, bytes/s. */
  rate(): number {
    const p = this.lossRate();
    if (p === 0) return Math.max(2 * this.recvRate, this.blockSize * 1000 / this.rttMs);
    const r = this.rttMs / 1000;
    const s = this.blockSize;
    return s / (r * Math.sqrt((2 * p) / 3) + 4 * r * (3 * Math.sqrt((3 * p) / 8)) * p * (1 + 32 * p * p));
  }

  flags(): number {
    return (this.clr ? CcFlag.CLR : 0) | (this.hasRtt ? CcFlag.RTT : 0) | (this.lossEvents === 0 ? CcFlag.START : 0);
  }

  /** EXT_TFMCC_DATA_INFO of a FILESEG: a new round may call for feedback. */
  onDataInfo(ccSeq: number, ccRate: number): boolean {
    this.ccSeq = ccSeq;
    this.ccRate = unquantizeRate(ccRate);
    return this.wantsFeedback();
  }

  /** A CONG_CTRL: our RTT if the server measured it, whether we are the CLR; true when a CC_ACK should go now. */
  onCongCtrl(m: CongCtrl, uid: number): boolean {
    this.ccSeq = m.ccSeq;
    this.ccRate = unquantizeRate(m.ccRate);
    const me = m.items.find((i) => i.clientId === uid);
    this.clr = me !== undefined && (me.flags & CcFlag.CLR) !== 0;
    if (me && (me.flags & CcFlag.RTT) !== 0) {
      this.rttMs = Math.max(1, unquantizeGrtt(me.rtt) * 1000);
      this.hasRtt = true;
    }
    if (this.clr || !this.hasRtt) {
      this.answeredSeq = this.ccSeq;
      return true;
    }
    return this.wantsFeedback();
  }

  private wantsFeedback(): boolean {
    if (this.answeredSeq === this.ccSeq) return false;
    if (this.rate() < this.ccRate) {
      this.answeredSeq = this.ccSeq;
      return true;
    }
    return false;
  }
}
