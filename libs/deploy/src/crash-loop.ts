// Tells a replica that cannot start from one that crashed once: a bad setting (an engine
// option out of range, a port taken) fails the same way within seconds of every start, and
// restarting it with backoff forever only fills the log. The supervisor gives up on it once
// this says so, and reports why.

export interface CrashLoopOptions {
  /** Consecutive quick exits with the same last error line that end the restarts (default 3). */
  exits?: number;
  /** How soon after its start an exit counts as quick, ms (default 10 000). */
  withinMs?: number;
}

/** Signals someone else sends: not the replica failing on its own. */
const EXTERNAL_SIGNALS: ReadonlySet<string> = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP']);
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T[\d:.]+Z\s+/;
const MAX_LINE = 300;

/**
 * The line of a run's output that says why it ended: the last one naming an error (a log
 * record at ERROR, Node's `Error: ...` of an uncaught throw), else the last line; without
 * its timestamp, cut at the first escaped newline of a logged stack and at 300 characters.
 */
export function lastErrorLine(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const line = lines.findLast((l) => /\berror\b/i.test(l) && !l.startsWith('at ')) ?? lines.at(-1) ?? '';
  const cut = line.replace(ISO_TIME, '').split('\\n')[0]!;
  return cut.length > MAX_LINE ? `${cut.slice(0, MAX_LINE - 3)}...` : cut;
}

/** One replica's run of quick exits that end the same way. */
export class CrashLoop {
  private readonly exits: number;
  private readonly withinMs: number;
  private count = 0;
  private line: string | undefined;

  constructor(options: CrashLoopOptions = {}) {
    this.exits = options.exits ?? 3;
    this.withinMs = options.withinMs ?? 10_000;
    if (!Number.isInteger(this.exits) || this.exits < 1) throw new RangeError(`crashLoop.exits must be >= 1`);
    if (!(this.withinMs >= 0)) throw new RangeError(`crashLoop.withinMs must be >= 0`);
  }

  /** Records one exit; true once the replica should not be restarted again. */
  exited(ranMs: number, signal: string | null, line: string): boolean {
    const quick = ranMs <= this.withinMs && (signal === null || !EXTERNAL_SIGNALS.has(signal));
    if (!quick) {
      this.reset();
      return false;
    }
    this.count = this.count > 0 && line === this.line ? this.count + 1 : 1;
    this.line = line;
    return this.count >= this.exits;
  }

  /** Exits in the current run (for the report). */
  get quickExits(): number {
    return this.count;
  }

  /** How soon after a start an exit counts as quick, ms. */
  get windowMs(): number {
    return this.withinMs;
  }

  reset(): void {
    this.count = 0;
    this.line = undefined;
  }
}
