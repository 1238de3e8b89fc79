// The live planner's loop: every adjustment interval, read the cluster's metrics (a
// MetricsSource) and the pools' counts (the connector), turn them into one interval's
// observation, let planner-core decide, export what it saw and decided, and apply each
// change through the connector in the background, retried with back-off (a scale-up waits
// for readiness and a scale-down for drains, which can outlast an interval). The loop never
// throws: a failed read holds the counts and is reported; a failed apply is counted.
import type { MetricsRegistry } from '@armature/metrics';
import type { Plan, Planner, Pool, PoolReplicas } from '@armature/planner-core';
import { createLogger } from '@armature/runtime';
import type { Connector } from './connectors.js';
import { observe } from './observe.js';
import type { ClusterSnapshot, MetricsSource } from './sources.js';

const log = createLogger('planner');

export interface PlannerRunnerOptions {
  planner: Planner;
  source: MetricsSource;
  connector: Connector;
  metrics: MetricsRegistry;
  /** Plans kept for ListPlans (default 500). */
  history?: number;
  /** First retry delay of a failed apply, ms (default 500; doubles up to the interval). */
  retryBaseMs?: number;
  /** Attempts per change (default 5). */
  attempts?: number;
}

export interface PlanWithApply extends Plan {
  /** Per pool: whether the connector took the change (advisory: never). */
  applied: Partial<Record<Pool, boolean>>;
}

const SERIES = ['requests_per_second', 'isl', 'osl'] as const;

export class PlannerRunner {
  readonly plans: PlanWithApply[] = [];
  connectorErrors = 0;
  private previous: ClusterSnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private lastTickAt: number | undefined;
  private replicas: Partial<Record<Pool, PoolReplicas>> = {};
  private readonly applying = new Map<Pool, { target: number; running: Promise<void> }>();
  private closed = false;
  private lastHeld: string | undefined;

  constructor(readonly options: PlannerRunnerOptions) {
    this.zeroSeries();
  }

  get pools(): Pool[] {
    return this.options.planner.pools;
  }

  /** Each pool's counts at the last decision. */
  get lastReplicas(): Partial<Record<Pool, PoolReplicas>> {
    return this.replicas;
  }

  /** Starts the loop: a first snapshot now, a decision every interval after it. */
  start(): void {
    const interval = this.options.planner.config.intervalMs;
    const run = (): void => {
      if (this.closed) return;
      this.ticking = this.tick()
        .then(
          () => undefined,
          (err: unknown) => log.error('planner step failed', { err }),
        )
        .finally(() => {
          this.ticking = undefined;
          if (!this.closed) this.timer = setTimeout(run, interval);
        });
    };
    run();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.ticking;
  }

  /** One step of the loop (exported for tests): snapshot, decide, export, apply. */
  async tick(): Promise<PlanWithApply | undefined> {
    const { planner, source, connector, metrics } = this.options;
    const now = Date.now();
    const snapshot = await source.snapshot();
    if (snapshot.errors.length > 0)
      metrics.get('armature_planner_observe_errors_total').inc({ source: source.name }, snapshot.errors.length);
    let replicas: Partial<Record<Pool, PoolReplicas>>;
    try {
      replicas = await connector.status(this.pools);
    } catch (err) {
      this.connectorFailed(`status: ${(err as Error).message}`);
      replicas = {};
    }
    this.countWorkerSeconds(now, replicas);
    const before = this.previous;
    this.previous = snapshot;
    if (!before) return undefined; // the first snapshot is the baseline of the first interval
    const plan = planner.plan(observe(before, snapshot, replicas));
    const record: PlanWithApply = { ...plan, applied: {} };
    this.export(record, replicas);
    for (const d of plan.decisions) {
      // A hold that a constraint made (the reason ends in [notes]) counts as the constraint's.
      const cause = plan.held ? 'held' : d.to === d.from && d.reason.includes(' [') ? 'constraint' : causeOf(d.reason);
      const direction = d.to > d.from ? 'up' : d.to < d.from ? 'down' : 'hold';
      metrics.get('armature_planner_decisions_total').inc({ pool: d.pool, direction, cause });
      if (d.to !== d.from) {
        log.info('planner decision', {
          pool: d.pool,
          from: d.from,
          to: d.to,
          reason: d.reason,
          connector: connector.name,
        });
        record.applied[d.pool] = connector.applies;
        this.apply(d.pool, d.to);
      }
    }
    // Once per reason, not every interval (an idle deployment would log 'no traffic yet' forever).
    if (plan.held && plan.held !== this.lastHeld) log.info('planner held', { reason: plan.held });
    this.lastHeld = plan.held;
    this.plans.push(record);
    if (this.plans.length > (this.options.history ?? 500)) this.plans.shift();
    return record;
  }

  /** Waits until every change in flight has been applied or given up (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.applying.size > 0) await Promise.all([...this.applying.values()].map((a) => a.running));
  }

  private apply(pool: Pool, target: number): void {
    const inFlight = this.applying.get(pool);
    if (inFlight) {
      inFlight.target = target; // the running attempt picks the newest target up when it ends
      return;
    }
    const entry = { target, running: Promise.resolve() };
    entry.running = (async () => {
      let applied: number | undefined;
      while (applied !== entry.target && !this.closed) {
        const want = entry.target;
        if (await this.applyWithRetry(pool, want)) applied = want;
        else break;
      }
      this.applying.delete(pool);
    })();
    this.applying.set(pool, entry);
  }

  private async applyWithRetry(pool: Pool, replicas: number): Promise<boolean> {
    const { connector, planner } = this.options;
    const attempts = this.options.attempts ?? 5;
    let delay = this.options.retryBaseMs ?? 500;
    for (let attempt = 1; attempt <= attempts && !this.closed; attempt++) {
      try {
        await connector.scale(pool, replicas);
        this.options.metrics.get('armature_planner_desired_replicas').set({ pool }, replicas);
        return true;
      } catch (err) {
        this.connectorFailed(
          `scale ${pool} to ${replicas} (attempt ${attempt}/${attempts}): ${(err as Error).message}`,
        );
        if (attempt === attempts) break;
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, planner.config.intervalMs);
      }
    }
    return false;
  }

  private connectorFailed(message: string): void {
    this.connectorErrors++;
    this.options.metrics.get('armature_planner_connector_errors_total').inc({ connector: this.options.connector.name });
    log.warn('planner connector failed', { connector: this.options.connector.name, error: message });
  }

  private countWorkerSeconds(now: number, replicas: Partial<Record<Pool, PoolReplicas>>): void {
    const last = this.lastTickAt;
    this.lastTickAt = now;
    if (last !== undefined)
      for (const pool of this.pools) {
        const r = this.replicas[pool];
        if (r)
          this.options.metrics
            .get('armature_planner_worker_seconds_total')
            .inc({ pool }, ((r.ready + r.starting) * (now - last)) / 1000);
      }
    this.replicas = { ...this.replicas, ...replicas };
  }

  private export(plan: Plan, replicas: Partial<Record<Pool, PoolReplicas>>): void {
    const m = this.options.metrics;
    const seconds = this.options.planner.config.intervalMs / 1000;
    const set = (
      name: 'armature_planner_observed_load' | 'armature_planner_predicted_load',
      series: string,
      v: number | undefined,
    ): void => {
      if (v !== undefined && Number.isFinite(v)) m.get(name).set({ series }, v);
    };
    set(
      'armature_planner_observed_load',
      'requests_per_second',
      plan.observed.requests !== undefined ? plan.observed.requests / seconds : undefined,
    );
    set('armature_planner_observed_load', 'isl', plan.observed.isl);
    set('armature_planner_observed_load', 'osl', plan.observed.osl);
    set('armature_planner_observed_load', 'kv_hit_rate', plan.observed.kvHitRate);
    set(
      'armature_planner_predicted_load',
      'requests_per_second',
      plan.predicted.requests !== undefined ? plan.predicted.requests / seconds : undefined,
    );
    set('armature_planner_predicted_load', 'isl', plan.predicted.isl);
    set('armature_planner_predicted_load', 'osl', plan.predicted.osl);
    if (plan.observed.ttftMs !== undefined)
      m.get('armature_planner_observed_latency_seconds').set({ kind: 'ttft' }, plan.observed.ttftMs / 1000);
    if (plan.observed.itlMs !== undefined)
      m.get('armature_planner_observed_latency_seconds').set({ kind: 'itl' }, plan.observed.itlMs / 1000);
    for (const d of plan.decisions) {
      const pool = d.pool;
      if (d.throughput !== undefined)
        m.get('armature_planner_proposed_replicas').set({ pool, mode: 'throughput' }, d.throughput);
      if (d.load !== undefined) m.get('armature_planner_proposed_replicas').set({ pool, mode: 'load' }, d.load);
      m.get('armature_planner_proposed_replicas').set({ pool, mode: 'final' }, d.to);
      if (d.estimatedTtftMs !== undefined)
        m.get('armature_planner_estimated_latency_seconds').set({ pool, kind: 'ttft' }, d.estimatedTtftMs / 1000);
      if (d.estimatedItlMs !== undefined)
        m.get('armature_planner_estimated_latency_seconds').set({ pool, kind: 'itl' }, d.estimatedItlMs / 1000);
      const r = replicas[pool];
      if (r) {
        m.get('armature_planner_ready_replicas').set({ pool }, r.ready);
        if (d.to === d.from) m.get('armature_planner_desired_replicas').set({ pool }, r.desired);
      }
    }
  }

  /** Every planner family from start, at zero, over the label values the code uses. */
  private zeroSeries(): void {
    const m = this.options.metrics;
    for (const series of [...SERIES, 'kv_hit_rate']) m.get('armature_planner_observed_load').set({ series }, 0);
    for (const series of SERIES) m.get('armature_planner_predicted_load').set({ series }, 0);
    for (const kind of ['ttft', 'itl']) m.get('armature_planner_observed_latency_seconds').set({ kind }, 0);
    for (const pool of this.pools) {
      for (const kind of ['ttft', 'itl']) m.get('armature_planner_estimated_latency_seconds').set({ pool, kind }, 0);
      for (const mode of ['throughput', 'load', 'final'])
        m.get('armature_planner_proposed_replicas').set({ pool, mode }, 0);
      m.get('armature_planner_desired_replicas').set({ pool }, 0);
      m.get('armature_planner_ready_replicas').set({ pool }, 0);
      m.zero('armature_planner_worker_seconds_total', { pool });
      for (const direction of ['up', 'down', 'hold'])
        for (const cause of ['throughput', 'load', 'constraint', 'held'])
          m.zero('armature_planner_decisions_total', { pool, direction, cause });
    }
    m.zero('armature_planner_observe_errors_total', { source: this.options.source.name });
    m.zero('armature_planner_connector_errors_total', { connector: this.options.connector.name });
  }
}

/** Which mode's proposal a changing decision followed (its reason starts with it). */
function causeOf(reason: string): 'throughput' | 'load' | 'constraint' {
  if (reason.startsWith('throughput')) return 'throughput';
  if (reason.startsWith('load')) return 'load';
  return 'constraint';
}
