// Workers left out of routing for a while: one a request just failed on, or one failing
// its health checks, before discovery's lease notices it is gone. Time is the caller's
// clock, so the replay and the tests run it in virtual time; nothing here runs a timer.
import { ArmatureError } from '@armature/runtime';

/** Default inhibition, ms. */
export const DEFAULT_INHIBIT_MS = 5_000;

/** Why a worker is inhibited: a request failed on it, it failed its health checks, or it is draining. */
export const INHIBIT_REASONS = ['request_failed', 'health', 'draining'] as const;

export type InhibitReason = (typeof INHIBIT_REASONS)[number];

export class Inhibitions {
  /** Inhibited workers and when their inhibition ends (ms on `now`). */
  private readonly until = new Map<string, number>();

  constructor(
    /** How long one lasts, ms (0: never inhibit). */
    private readonly ms: number,
    private readonly now: () => number,
    /** A worker became inhibited (`reason`) or stopped being (undefined); `count`: inhibited now. */
    private readonly changed: (worker: string, reason: string | undefined, count: number) => void,
  ) {
    if (!Number.isFinite(ms) || ms < 0)
      throw new ArmatureError('invalid_argument', 'bad_config', `inhibitMs must be >= 0, got ${ms}`);
  }

  /** Inhibits the worker from now for `ms` (extending a running inhibition). */
  add(worker: string, reason: InhibitReason): void {
    if (this.ms === 0) return;
    const fresh = !this.has(worker);
    this.until.set(worker, this.now() + this.ms);
    if (fresh) this.changed(worker, reason, this.count());
  }

  /** Ends an inhibition early; false when the worker was not inhibited. */
  remove(worker: string): boolean {
    if (!this.until.delete(worker)) return false;
    this.changed(worker, undefined, this.count());
    return true;
  }

  /** Forgets a worker that left (no event: it is gone). */
  forget(worker: string): void {
    this.until.delete(worker);
  }

  has(worker: string): boolean {
    const until = this.until.get(worker);
    return until !== undefined && until > this.now();
  }

  count(): number {
    let n = 0;
    for (const id of this.until.keys()) if (this.has(id)) n++;
    return n;
  }

  /** Ends the inhibitions whose time is up, saying so. */
  lapse(): void {
    for (const [id, until] of this.until) {
      if (until > this.now()) continue;
      this.until.delete(id);
      this.changed(id, undefined, this.count());
    }
  }

  /** The workers not inhibited; all of them when every one is (an inhibited worker beats none). */
  spare<W extends { instanceId: string }>(workers: W[]): W[] {
    if (this.until.size === 0) return workers;
    const fine = workers.filter((w) => !this.has(w.instanceId));
    return fine.length > 0 ? fine : workers;
  }
}
