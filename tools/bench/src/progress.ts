// A progress line on stderr: a bar on a terminal, a plain line every few seconds otherwise.

export interface ProgressState {
  done: number;
  total: number;
  failed?: number;
  inflight?: number;
  note?: string;
}

export class ProgressBar {
  private lastPlain = 0;
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();

  constructor(private readonly label: string) {}

  update(s: ProgressState): void {
    const elapsed = (performance.now() - this.started) / 1000;
    const frac = s.total > 0 ? Math.min(1, s.done / s.total) : 0;
    const parts = [
      `${s.done}/${s.total}`,
      s.inflight !== undefined ? `${s.inflight} in flight` : '',
      s.failed ? `${s.failed} failed` : '',
      `${elapsed.toFixed(1)} s`,
      s.note ?? '',
    ].filter(Boolean);
    if (this.tty) {
      const width = 30;
      const filled = Math.round(frac * width);
      process.stderr.write(
        `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${parts.join(', ')}\x1b[K`,
      );
    } else if (performance.now() - this.lastPlain > 5_000 || s.done === s.total) {
      this.lastPlain = performance.now();
      process.stderr.write(`${this.label}: ${parts.join(', ')}\n`);
    }
  }

  finish(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
