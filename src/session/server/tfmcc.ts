/**
 * The sending side of TFMCC (RFC 4654) as UFTP 4 carries it (protocol.txt 3.3, 5.2.11.1, 5.2.13.1, 5.2.21): a pure
 * sub-machine of the server that owns the sending rate.
 *
 * - Feedback rounds: each round (one GRTT, at least 10 ms) gets a new CC sequence number and a suppression rate
 *   (the lowest rate reported so far in the round; "infinite" at the start) sent in every FILESEG's
 *   EXT_TFMCC_DATA_INFO and in a CONG_CTRL. Receivers whose calculated rate is below the suppression rate answer
 *   with a CC_ACK (or an EXT_TFMCC_ACK_INFO in a STATUS): their rate, whether they are still in slow start (no loss
 *   yet), and the CONG_CTRL timestamp echoed, from which the server measures their RTT.
 * - The current limiting receiver (CLR) is the one with the lowest reported rate; its RTT and the RTTs measured
 *   this round go back to the receivers in the CONG_CTRL items (flags CLR and RTT).
 * - Rate: a report below the current rate takes effect at once (a new or the same CLR), but no lower than half the
 *   rate at the start of the round (a deliberate bound, see feedback()); otherwise the rate rises
 *   towards the CLR's rate by at most one doubling per round (slow start, while every report says START) or by one
 *   block per RTT per round once losses have been seen (RFC 4654 4.3). No report from the CLR for 10 rounds halves
 *   the rate (4.5). The rate is kept within -C tfmcc's min and max.
 */
import { CcFlag, quantizeGrtt, quantizeRate, unquantizeRate, type CcItem, type ExtTfmccAckInfo, type Timestamp } from '../../wire/index.js';

export interface TfmccOptions {
  /** Bytes per second. */
  readonly min: number;
  readonly init: number;
  readonly max: number;
  readonly blockSize: number;
}

interface Report {
  rate: number;
  rttSec: number;
  start: boolean;
  rttMeasured: boolean;
  at: number;
}

/** The suppression rate of a fresh round: larger than any receiver's rate (as the real uftp's 0x481e). */
const NO_SUPPRESSION = 0x481e;

export class TfmccSender {
  /** Current sending rate, bytes/s. */
  rate: number;
  ccSeq = 0;
  private suppress = Infinity;
  private roundEnd = 0;
  private clr: number | undefined;
  private clrSeenRound = 0;
  private round = 0;
  private lossSeen = false;
  /** The lowest rate this round may go to (half the rate at its start). */
  private roundFloor = 0;
  private readonly reports = new Map<number, Report>();
  /** Clients whose RTT was measured this round (told in the next CONG_CTRL). */
  private readonly measured = new Set<number>();

  constructor(private readonly o: TfmccOptions) {
    this.rate = Math.min(o.max, Math.max(o.min, o.init));
  }

  /** The EXT_TFMCC_DATA_INFO fields of a FILESEG. */
  dataInfo(): { sendRate: number; ccSeq: number; ccRate: number } {
    return { sendRate: quantizeRate(this.rate), ccSeq: this.ccSeq & 0xffff, ccRate: this.suppressQ() };
  }

  private suppressQ(): number {
    return Number.isFinite(this.suppress) ? quantizeRate(this.suppress) : NO_SUPPRESSION;
  }

  /** The current limiting receiver, if any. */
  get limiting(): number | undefined {
    return this.clr;
  }

  /** Why the rate last changed (for the log). */
  lastChange = '';

  /** When the current round ends (ms). */
  get nextRound(): number {
    return this.roundEnd;
  }

  /**
   * Starts a new round when the current one is over; returns the CONG_CTRL fields to send, or undefined.
   * `grtt` in seconds.
   */
  tick(now: number, grtt: number, timestamp: Timestamp): { ccSeq: number; ccRate: number; timestamp: Timestamp; items: CcItem[] } | undefined {
    if (now < this.roundEnd) return undefined;
    this.round++;
    this.ccSeq = (this.ccSeq + 1) & 0xffff;
    this.suppress = Infinity;
    this.roundEnd = now + Math.max(10, grtt * 1000);
    this.roundFloor = this.rate / 2;
    if (this.clr !== undefined && this.round - this.clrSeenRound > 10) {
      // no feedback from the CLR for 10 rounds: halve (RFC 4654 4.5)
      this.rate = Math.max(this.o.min, this.rate / 2);
      this.clrSeenRound = this.round;
      this.lastChange = `no feedback from the CLR for 10 rounds: halved to ${Math.round(this.rate)} B/s`;
    }
    const items: CcItem[] = [];
    const add = (id: number, clr: boolean): void => {
      const r = this.reports.get(id);
      items.push({ clientId: id, flags: (clr ? CcFlag.CLR : 0) | (r?.rttMeasured ? CcFlag.RTT : 0) | (this.lossSeen ? 0 : CcFlag.START), rtt: quantizeGrtt(r?.rttSec ?? grtt) });
    };
    if (this.clr !== undefined) add(this.clr, true);
    for (const id of this.measured) if (id !== this.clr && items.length < 100) add(id, false);
    this.measured.clear();
    return { ccSeq: this.ccSeq, ccRate: NO_SUPPRESSION, timestamp, items };
  }

  /** Feedback from a receiver (CC_ACK or STATUS extension). `echoMs`: the echoed timestamp in ms, if any. */
  feedback(now: number, ack: ExtTfmccAckInfo, echoMs: number | undefined): void {
    const id = ack.clientId >>> 0;
    const reported = unquantizeRate(ack.ccRate);
    const start = (ack.flags & CcFlag.START) !== 0;
    const prev = this.reports.get(id);
    let rttSec = prev?.rttSec ?? 0.01;
    let measured = prev?.rttMeasured ?? false;
    if (echoMs !== undefined && echoMs > 0) {
      const rtt = (now - echoMs) / 1000;
      if (rtt > 0 && rtt < 60) {
        rttSec = measured ? 0.9 * rttSec + 0.1 * rtt : rtt;
        measured = true;
        this.measured.add(id);
      }
    }
    this.reports.set(id, { rate: reported, rttSec, start, rttMeasured: measured, at: now });
    if (!start) this.lossSeen = true;
    if (reported < this.suppress) this.suppress = reported;
    if (reported <= 0) return;
    if (this.clr === undefined || reported < this.rate || id === this.clr) {
      if (reported < this.rate) {
        // at most a halving per round: a receiver's rate measured over a quiet spell (the gap before the data, a
        // rewind) must not take the session down to a few blocks a second, from where slow start never climbs back
        // (seen with the real uftpd: a report of 1951 B/s at 5.6 MB/s)
        this.rate = Math.max(this.o.min, reported, this.roundFloor);
        this.clr = id;
        this.lastChange = `${id.toString(16)} reports ${Math.round(reported)} B/s${start ? ' (slow start)' : ''}: rate down`;
      } else if (id === this.clr || this.clr === undefined) {
        // increase towards the CLR's rate: a doubling per round in slow start, one block per RTT after losses
        const cap = this.lossSeen ? this.rate + this.o.blockSize / Math.max(0.001, rttSec) : this.rate * 2;
        this.rate = Math.min(this.o.max, reported, cap);
        this.clr = id;
      }
      this.clrSeenRound = this.round;
    }
    this.rate = Math.min(this.o.max, Math.max(this.o.min, this.rate));
  }

  /** A receiver left or was dropped: forget it (a new CLR comes with the next reports). */
  forget(id: number): void {
    this.reports.delete(id);
    if (this.clr === id) this.clr = undefined;
  }
}
