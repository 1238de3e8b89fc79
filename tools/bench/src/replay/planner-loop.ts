// The planner driving a replay: every adjustment interval of virtual time it builds the
// observation a live planner would read from the services' metrics (requests that arrived,
// their ISL; OSL, TTFT and ITL of what finished; prefix-cache hits; each worker's load and
// passes), asks @armature/planner-core's Planner for counts, and applies them to the
// simulated pools: a new worker counts from when it was asked for and serves after the
// start-up delay; a removed one is drained (it stops getting requests and leaves once its
// requests are done). It records every plan and the replica counts over time.
import type { Plan, Planner, Pool, WorkerObservation } from '@armature/planner-core';
import type { RequestRecord } from '../results/types.js';
import type { SimCluster, SimControl, SimRole, SimStep } from './simulator.js';

export interface PlannerLoopOptions {
  planner: Planner;
  /** From asking for a worker to its first request, ms (default 30 000). */
  startupDelayMs?: number;
}

/** One sample of a pool's size. */
export interface ReplicaSample {
  atMs: number;
  pool: Pool;
  desired: number;
  ready: number;
}

interface PassTotals {
  count: number;
  ms: number;
  prefillTokens: number;
  kvTokens: number;
}

export class PlannerLoop implements SimControl {
  readonly plans: Plan[] = [];
  readonly replicas: ReplicaSample[] = [];
  private cluster!: SimCluster;
  private readonly desired: Partial<Record<Pool, number>> = {};
  private readonly passes = new Map<string, PassTotals>();
  private arrivals = { count: 0, promptTokens: 0 };
  /** Requests not yet counted as finished, and those whose first token is not counted yet. */
  private open: RequestRecord[] = [];
  private readonly ttftCounted = new WeakSet<RequestRecord>();
  private readonly startupDelayMs: number;

  constructor(private readonly options: PlannerLoopOptions) {
    this.startupDelayMs = options.startupDelayMs ?? 30_000;
  }

  start(cluster: SimCluster): void {
    this.cluster = cluster;
    const planner = this.options.planner;
    for (const pool of planner.pools) {
      const have = cluster.workers(pool).length;
      const min = planner.config.pools[pool]!.min;
      for (let i = have; i < min; i++) cluster.addWorker(pool);
      this.desired[pool] = Math.max(have, min);
    }
    cluster.onStep((step) => this.onStep(step));
    cluster.onArrival((request, record) => {
      this.arrivals.count++;
      this.arrivals.promptTokens += request.promptTokenIds.length;
      this.open.push(record);
    });
    this.sample();
    cluster.at(planner.config.intervalMs, () => this.tick());
  }

  private onStep(step: SimStep): void {
    const totals = this.passes.get(step.worker) ?? { count: 0, ms: 0, prefillTokens: 0, kvTokens: 0 };
    totals.count++;
    totals.ms += step.durationMs;
    totals.prefillTokens += step.prefillTokens;
    totals.kvTokens += step.kvTokens;
    this.passes.set(step.worker, totals);
  }

  private tick(): void {
    const cluster = this.cluster;
    const planner = this.options.planner;
    const now = cluster.now();
    const intervalMs = planner.config.intervalMs;
    // What finished and what got its first token in the interval.
    let finished = 0;
    let outputTokens = 0;
    let itlSum = 0;
    let itlCount = 0;
    let ttftSum = 0;
    let ttftCount = 0;
    let cached = 0;
    let prompt = 0;
    const stillOpen: RequestRecord[] = [];
    for (const r of this.open) {
      if (!this.ttftCounted.has(r) && r.firstTokenMs !== undefined && r.firstTokenMs <= now) {
        this.ttftCounted.add(r);
        ttftSum += r.firstTokenMs - r.startMs;
        ttftCount++;
        cached += r.cachedTokens ?? 0;
        prompt += r.inputTokens;
      }
      if (r.endMs !== undefined && r.endMs <= now) {
        finished++;
        outputTokens += r.outputTokens;
        if (r.firstTokenMs !== undefined && r.outputTokens > 1) {
          itlSum += (r.endMs - r.firstTokenMs) / (r.outputTokens - 1);
          itlCount++;
        }
        continue;
      }
      stillOpen.push(r);
    }
    this.open = stillOpen;
    const workers: WorkerObservation[] = [];
    for (const pool of planner.pools) {
      for (const w of cluster.workers(pool)) {
        if (w.state === 'starting') continue;
        const p = this.passes.get(w.id);
        workers.push({
          id: w.id,
          pool,
          activePrefillTokens: w.load.activePrefillTokens,
          activeKvTokens: w.kvTokens,
          ...(p && p.count > 0
            ? {
                passes: {
                  count: p.count,
                  meanMs: p.ms / p.count,
                  meanPrefillTokens: p.prefillTokens / p.count,
                  meanKvTokens: p.kvTokens / p.count,
                },
              }
            : {}),
        });
      }
    }
    this.passes.clear();
    const replicas: Partial<Record<Pool, { desired: number; ready: number; starting: number }>> = {};
    for (const pool of planner.pools) {
      const ws = cluster.workers(pool);
      replicas[pool] = {
        desired: this.desired[pool]!,
        ready: ws.filter((w) => w.state === 'ready').length,
        starting: ws.filter((w) => w.state === 'starting').length,
      };
    }
    const plan = planner.plan({
      atMs: now,
      durationMs: intervalMs,
      requests: this.arrivals.count,
      isl: this.arrivals.count > 0 ? this.arrivals.promptTokens / this.arrivals.count : undefined,
      osl: finished > 0 ? outputTokens / finished : undefined,
      ttftMs: ttftCount > 0 ? ttftSum / ttftCount : undefined,
      itlMs: itlCount > 0 ? itlSum / itlCount : undefined,
      kvHitRate: prompt > 0 ? cached / prompt : undefined,
      workers,
      replicas,
    });
    this.arrivals = { count: 0, promptTokens: 0 };
    this.plans.push(plan);
    for (const d of plan.decisions) this.apply(d.pool, d.to);
    this.sample();
    if (!cluster.finished()) cluster.at(now + intervalMs, () => this.tick());
  }

  /** Grows or shrinks `pool` to `to` replicas (starting ones count; draining ones do not). */
  private apply(pool: SimRole, to: number): void {
    const cluster = this.cluster;
    this.desired[pool] = to;
    const live = cluster.workers(pool).filter((w) => w.state !== 'draining');
    for (let n = live.length; n < to; n++) cluster.addWorker(pool, cluster.now() + this.startupDelayMs);
    if (live.length <= to) return;
    // Cancel the newest starting workers first, then drain the highest-numbered ready ones.
    const order = [
      ...live.filter((w) => w.state === 'starting').reverse(),
      ...live.filter((w) => w.state === 'ready').reverse(),
    ];
    for (const w of order.slice(0, live.length - to)) cluster.drainWorker(w.id);
  }

  private sample(): void {
    const now = this.cluster.now();
    for (const pool of this.options.planner.pools) {
      const ready = this.cluster.workers(pool).filter((w) => w.state === 'ready').length;
      this.replicas.push({ atMs: now, pool, desired: this.desired[pool]!, ready });
    }
  }
}
