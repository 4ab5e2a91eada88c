/** The queues every KTFTP machine hands out through (src/core/machine.ts): datagrams to send and effects. */
import type { Endpoint, Transmit } from '../core/machine.js';
import { fileEffects, type ReadAheadSource, type WriteBehindSink } from './fileops.js';
import type { KtftpEffect } from './machine.js';
import type { Outcome } from './transfer.js';

export abstract class Outbox<E> {
  protected readonly tx: Transmit[] = [];
  protected readonly fx: E[] = [];

  pollTransmit(): Transmit | undefined {
    return this.tx.shift();
  }

  pollEffect(): E | undefined {
    return this.fx.shift();
  }
}

/** A transfer's queues (ServerSession, ClientSession): what a step sends, and the effects its state asks for. */
export abstract class TransferOutbox extends Outbox<KtftpEffect> {
  /** The `done` effect was given: nothing more is asked of the driver. */
  private ended = false;
  private prepareAsked = false;

  /**
   * Queues `out` to `to`, then the effects: `done` once the transfer is `finished`, else the reads and writes its
   * file wants now, and `prepare` (once until the driver called prepare()) when sealing ahead is worth it.
   */
  protected emit(to: Endpoint, out: readonly Buffer[], finished: boolean, src: ReadAheadSource | null, sink: WriteBehindSink | null, wantsPrepare: boolean): void {
    for (const data of out) this.tx.push({ to, data });
    if (this.ended) return;
    if (finished) {
      this.ended = true;
      this.fx.push({ kind: 'done', outcome: this.outcome });
      return;
    }
    fileEffects(src, sink, (e) => this.fx.push(e));
    if (!this.prepareAsked && wantsPrepare) {
      this.prepareAsked = true;
      this.fx.push({ kind: 'prepare' });
    }
  }

  /** The driver called prepare(): a later idle moment may ask again. */
  protected prepared(): void {
    this.prepareAsked = false;
  }

  /** How the transfer ended (null while it runs): what the `done` effect reports. */
  abstract outcome: Outcome | null;
}
