/**
 * The live progress line of uftp on a terminal (stderr is a TTY and no -L): file n/N, bytes sent of the file,
 * the rate over the last second and the receivers done, redrawn in place at most 4 times a second.
 */
import type { ServerEffect } from '../../session/server/machine.js';
import type { SourceFile } from './files.js';

type ProgressEffect = Extract<ServerEffect, { type: 'progress' }>;

function human(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

export class Progress {
  private last = 0;
  private lastBytes = 0;
  private lastFile = -1;
  private shown = false;

  constructor(private readonly files: readonly SourceFile[], private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(e: ProgressEffect): void {
    const now = performance.now();
    if (now - this.last < 250 && e.file === this.lastFile) return;
    const dt = (now - this.last) / 1000;
    const rate = e.file === this.lastFile && dt > 0 ? (e.sentBytes - this.lastBytes) / dt : 0;
    this.last = now;
    this.lastBytes = e.sentBytes;
    this.lastFile = e.file;
    const f = this.files[e.file];
    const line = `file ${e.file + 1}/${this.files.length} ${f?.displayName ?? ''}: ${human(e.sentBytes)}/${human(f?.size ?? 0)} ` +
      `${human(rate)}/s, ${e.doneReceivers}/${e.receivers} receivers done`;
    this.out.write(`\r${line.slice(0, (this.out.columns || 100) - 1)}\x1b[K`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
