// One planner decision per interval, without I/O: observe -> predict -> propose ->
// constrain. The caller (services/planner live, the replay in virtual time) gathers the
// observation and applies the counts through its connector; the same object decides in
// both, so the replay's numbers are the live planner's.
//
// Proposals. Throughput mode (Dynamo's SLA planner): a prefill pool needs the predicted
// prompt tokens per second (after prefix-cache hits) over one worker's prompt tokens per
// second at the TTFT target; a decode pool the predicted output tokens per second over one
// worker's at the ITL target and context ISL + OSL/2; an aggregated pool does both, so it
// needs the sum of the two fractions of a worker. When the observed latency missed its
// target the demand is scaled by observed / target (at most 2×): the profile was too
// optimistic. Load mode: a fitted step-time model estimates each worker's next TTFT
// (its queued prompt tokens plus one more prompt) and ITL (its KV tokens plus one more
// sequence); up one when every worker is past the SLO, down one when every worker, with
// the load of one fewer replica, would stay under a fraction of it. Both: throughput sets
// the floor and load may hold or add above it.
//
// Constraints: each pool's min and max, at most maxStep added and one removed per decision,
// cooldowns, no removal while replicas of that pool are still starting, and a GPU budget
// over all pools (a proportional shrink that keeps each pool's minimum). Missing metrics
// hold the current counts, and say so.
import type { Pool, PlannerConfig } from './config.js';
import { POOLS } from './config.js';
import { createPredictor, type Predictor } from './predictors/index.js';
import type { ProfileModel } from './profile.js';
import { StepRegression } from './step-regression.js';

export interface WorkerObservation {
  id: string;
  pool: Pool;
  /** Prompt tokens queued or being computed on the worker now. */
  activePrefillTokens: number;
  /** KV tokens of the sequences it is decoding now. */
  activeKvTokens: number;
  /** Its forward passes over the interval, when it reported any. */
  passes?: { count: number; meanMs: number; meanPrefillTokens: number; meanKvTokens: number };
}

export interface PoolReplicas {
  /** What the planner (or the graph) last asked for. */
  desired: number;
  /** Replicas serving now. */
  ready: number;
  /** Replicas asked for and not ready yet. */
  starting: number;
}

/** What one interval looked like; a field is undefined when its metric could not be read. */
export interface Observation {
  /** End of the interval, ms (wall clock live, virtual in the replay). */
  atMs: number;
  /** Length of the interval, ms. */
  durationMs: number;
  /** Requests that arrived in the interval. */
  requests: number | undefined;
  /** Mean prompt tokens of those requests. */
  isl: number | undefined;
  /** Mean output tokens. */
  osl: number | undefined;
  /** Mean TTFT and ITL over the interval, ms. */
  ttftMs: number | undefined;
  itlMs: number | undefined;
  /** Prompt tokens served from prefix caches / all prompt tokens, [0, 1]. */
  kvHitRate: number | undefined;
  workers: WorkerObservation[];
  replicas: Partial<Record<Pool, PoolReplicas>>;
  /** Why something is missing (Prometheus down, no metrics yet), reported with the decision. */
  missing?: string[];
}

export interface PoolDecision {
  pool: Pool;
  from: number;
  to: number;
  /** What each mode proposed before the constraints (undefined: it had no proposal). */
  throughput?: number;
  load?: number;
  /** Why `to`, in words: the proposal and every constraint that changed it. */
  reason: string;
  /** Load mode's estimates: the lowest over the pool's workers, ms. */
  estimatedTtftMs?: number;
  estimatedItlMs?: number;
}

export interface Plan {
  atMs: number;
  observed: { requests?: number; isl?: number; osl?: number; ttftMs?: number; itlMs?: number; kvHitRate?: number };
  predicted: { requests?: number; isl?: number; osl?: number };
  decisions: PoolDecision[];
  /** Set when the planner held every count (missing metrics, no traffic yet). */
  held?: string;
}

export interface PlannerOptions {
  /** The profile (required by throughput mode). */
  profile?: ProfileModel;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const round = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));

export class Planner {
  private readonly predictors: Record<'requests' | 'isl' | 'osl', Predictor>;
  private readonly regression = { prefill: new StepRegression(), decode: new StepRegression() };
  private readonly lastUpAt: Partial<Record<Pool, number>> = {};
  private readonly lastChangeAt: Partial<Record<Pool, number>> = {};
  private lastIsl: number | undefined;
  private lastOsl: number | undefined;
  private seenTraffic = false;

  constructor(
    readonly config: PlannerConfig,
    private readonly options: PlannerOptions = {},
  ) {
    if (config.mode !== 'load' && !options.profile) throw new Error(`planner mode ${config.mode} needs a profile`);
    this.predictors = {
      requests: createPredictor(config.predictor),
      isl: createPredictor(config.predictor),
      osl: createPredictor(config.predictor),
    };
  }

  /** Pools the planner scales, prefill first. */
  get pools(): Pool[] {
    return POOLS.filter((p) => this.config.pools[p] !== undefined);
  }

  /** True when prefill runs on its own pool (then decode workers only decode). */
  get disaggregated(): boolean {
    return this.config.pools.prefill !== undefined;
  }

  /** Decides the next counts from one interval's observation. */
  plan(obs: Observation): Plan {
    const plan: Plan = {
      atMs: obs.atMs,
      observed: {
        requests: obs.requests,
        isl: obs.isl,
        osl: obs.osl,
        ttftMs: obs.ttftMs,
        itlMs: obs.itlMs,
        kvHitRate: obs.kvHitRate,
      },
      predicted: {},
      decisions: [],
    };
    const hold = (why: string): Plan => {
      plan.held = why;
      for (const pool of this.pools) {
        const current = obs.replicas[pool]?.desired ?? this.config.pools[pool]!.min;
        plan.decisions.push({ pool, from: current, to: current, reason: `hold: ${why}` });
      }
      return plan;
    };
    for (const pool of this.pools) if (!obs.replicas[pool]) return hold(`the ${pool} pool's replica count is unknown`);
    if (obs.requests === undefined) return hold(`metrics missing (${(obs.missing ?? ['request count']).join('; ')})`);

    this.observe(obs);
    const predicted = {
      requests: this.predictors.requests.predict() ?? obs.requests,
      isl: this.predictors.isl.predict() ?? this.lastIsl,
      osl: this.predictors.osl.predict() ?? this.lastOsl,
    };
    plan.predicted = predicted;
    if (!this.seenTraffic) return hold('no traffic yet');

    const throughput = this.config.mode === 'load' ? undefined : this.throughputProposal(obs, predicted);
    const load = this.config.mode === 'throughput' ? undefined : this.loadProposal(obs, predicted);
    const proposals: Partial<Record<Pool, PoolDecision>> = {};
    for (const pool of this.pools) {
      const current = obs.replicas[pool]!.desired;
      const t = throughput?.[pool];
      const l = load?.[pool];
      let to = current;
      const why: string[] = [];
      if (t && l) {
        to = Math.max(t.replicas, l.replicas);
        why.push(
          t.replicas >= l.replicas ? `throughput floor ${t.replicas} (${t.why})` : `load ${l.replicas} (${l.why})`,
        );
      } else if (t) {
        to = t.replicas;
        why.push(`throughput ${t.why}`);
      } else if (l) {
        to = l.replicas;
        why.push(`load ${l.why}`);
      } else why.push('no proposal');
      proposals[pool] = {
        pool,
        from: current,
        to,
        throughput: t?.replicas,
        load: l?.replicas,
        reason: why.join('; '),
        estimatedTtftMs: l?.ttftMs,
        estimatedItlMs: l?.itlMs,
      };
    }
    plan.decisions = this.constrain(obs, proposals);
    for (const d of plan.decisions) {
      if (d.to > d.from) this.lastUpAt[d.pool] = obs.atMs;
      if (d.to !== d.from) this.lastChangeAt[d.pool] = obs.atMs;
    }
    return plan;
  }

  private observe(obs: Observation): void {
    const requests = obs.requests!;
    if (requests > 0) this.seenTraffic = true;
    this.predictors.requests.observe(requests);
    // An interval without requests says nothing about their lengths.
    if (requests > 0 && obs.isl !== undefined) {
      this.predictors.isl.observe(obs.isl);
      this.lastIsl = obs.isl;
    }
    if (requests > 0 && obs.osl !== undefined) {
      this.predictors.osl.observe(obs.osl);
      this.lastOsl = obs.osl;
    }
    for (const w of obs.workers) {
      if (!w.passes || w.passes.count === 0) continue;
      this.regression[w.pool].add({
        prefillTokens: w.passes.meanPrefillTokens,
        kvTokens: w.passes.meanKvTokens,
        stepMs: w.passes.meanMs,
      });
    }
  }

  private throughputProposal(
    obs: Observation,
    predicted: { requests: number; isl?: number; osl?: number },
  ): Partial<Record<Pool, { replicas: number; why: string }>> {
    const profile = this.options.profile!;
    const { isl, osl } = predicted;
    if (isl === undefined || osl === undefined) return {};
    const rate = Math.max(0, predicted.requests) / (obs.durationMs / 1000);
    const effectiveIsl = Math.max(1, isl * (1 - clamp(obs.kvHitRate ?? 0, 0, 1)));
    const correction = (observed: number | undefined, target: number): number =>
      this.config.correction && observed !== undefined && observed > target ? Math.min(2, observed / target) : 1;
    const ttftCorr = correction(obs.ttftMs, this.config.sloTtftMs);
    const itlCorr = correction(obs.itlMs, this.config.sloItlMs);
    const prefillCap = profile.prefillCapacity(effectiveIsl, this.config.sloTtftMs);
    const decodeCap = profile.decodeCapacity(isl + osl / 2, this.config.sloItlMs);
    const prefillNeed = prefillCap > 0 ? (rate * effectiveIsl * ttftCorr) / prefillCap : Infinity;
    const decodeNeed = decodeCap > 0 ? (rate * osl * itlCorr) / decodeCap : Infinity;
    const describe = (need: number, demand: number, cap: number, unit: string, corr: number): string =>
      `${round(demand)} ${unit}/s predicted${corr > 1 ? ` ×${corr.toFixed(2)} (latency missed)` : ''} / ${round(cap)} per worker = ${need === Infinity ? 'unmeetable' : need.toFixed(2)}`;
    const at = ` at ${this.config.utilization} busy`;
    const replicasOf = (need: number, pool: Pool): number =>
      need === Infinity ? this.config.pools[pool]!.max : Math.ceil(need / this.config.utilization - 1e-9);
    const out: Partial<Record<Pool, { replicas: number; why: string }>> = {};
    const prefillWhy = describe(prefillNeed, rate * effectiveIsl, prefillCap, 'prompt tokens', ttftCorr);
    const decodeWhy = describe(decodeNeed, rate * osl, decodeCap, 'output tokens', itlCorr);
    if (this.disaggregated) {
      out.prefill = { replicas: replicasOf(prefillNeed, 'prefill'), why: prefillWhy + at };
      out.decode = { replicas: replicasOf(decodeNeed, 'decode'), why: decodeWhy + at };
    } else {
      const need = prefillNeed + decodeNeed;
      out.decode = { replicas: replicasOf(need, 'decode'), why: `${prefillWhy} + ${decodeWhy}${at}` };
    }
    // The profile was too optimistic while a target is missed: the pool that answers for it
    // grows by the ratio observed / target (at most 2×, at least one replica) until it is met.
    const missed: Partial<Record<Pool, number>> = this.disaggregated
      ? { prefill: ttftCorr, decode: itlCorr }
      : { decode: Math.max(ttftCorr, itlCorr) };
    for (const pool of this.pools) {
      const ratio = missed[pool] ?? 1;
      const proposal = out[pool];
      if (ratio <= 1 || !proposal) continue;
      const floor = Math.ceil(obs.replicas[pool]!.desired * ratio);
      if (floor > proposal.replicas) {
        proposal.replicas = floor;
        proposal.why += `, at least ${floor}: latency missed ×${ratio.toFixed(2)}`;
      }
    }
    return out;
  }

  private loadProposal(
    obs: Observation,
    predicted: { isl?: number; osl?: number },
  ): Partial<Record<Pool, { replicas: number; why: string; ttftMs?: number; itlMs?: number }>> {
    const isl = predicted.isl ?? this.lastIsl;
    const osl = predicted.osl ?? this.lastOsl;
    if (isl === undefined || osl === undefined) return {};
    const effectiveIsl = isl * (1 - clamp(obs.kvHitRate ?? 0, 0, 1));
    const { sloTtftMs, sloItlMs, scaleDownFraction } = this.config;
    const out: Partial<Record<Pool, { replicas: number; why: string; ttftMs?: number; itlMs?: number }>> = {};
    for (const pool of this.pools) {
      const workers = obs.workers.filter((w) => w.pool === pool);
      const regression = this.regression[pool];
      const current = obs.replicas[pool]!.desired;
      if (workers.length === 0 || regression.fit() === undefined) continue;
      const checksTtft = pool === 'prefill' || !this.disaggregated;
      const checksItl = pool === 'decode';
      // Each worker's estimates with its load now (scale 1) or spread over one replica fewer.
      const estimates = (scale: number): { ttft: number; itl: number }[] =>
        workers.map((w) => {
          const prefill = w.activePrefillTokens * scale;
          const kv = w.activeKvTokens * scale;
          const meanPrefill = (w.passes?.meanPrefillTokens ?? 0) * scale;
          return {
            ttft: regression.estimate(prefill + effectiveIsl, kv)!,
            itl: regression.estimate(this.disaggregated ? 0 : meanPrefill, kv + isl + osl / 2)!,
          };
        });
      const now = estimates(1);
      const over = (e: { ttft: number; itl: number }, f: number): boolean =>
        (checksTtft && e.ttft > sloTtftMs * f) || (checksItl && e.itl > sloItlMs * f);
      const minTtft = Math.min(...now.map((e) => e.ttft));
      const minItl = Math.min(...now.map((e) => e.itl));
      const shown = `TTFT ≥ ${round(minTtft)} ms, ITL ≥ ${round(minItl)} ms estimated`;
      let replicas = current;
      let why = `hold: ${shown}`;
      if (now.every((e) => over(e, 1))) {
        replicas = current + 1;
        why = `every worker past the SLO: ${shown}`;
      } else if (current > 1 && estimates(current / (current - 1)).every((e) => !over(e, scaleDownFraction))) {
        replicas = current - 1;
        why = `every worker under ${scaleDownFraction} of the SLO with one fewer: ${shown}`;
      }
      out[pool] = {
        replicas,
        why,
        ...(checksTtft ? { ttftMs: minTtft } : {}),
        ...(checksItl ? { itlMs: minItl } : {}),
      };
    }
    return out;
  }

  private constrain(obs: Observation, proposals: Partial<Record<Pool, PoolDecision>>): PoolDecision[] {
    const decisions = this.pools.map((pool) => proposals[pool]!);
    for (const d of decisions) {
      const limits = this.config.pools[d.pool]!;
      const replicas = obs.replicas[d.pool]!;
      const notes: string[] = [];
      let to = d.to;
      const limit = (when: boolean, value: number, note: string): void => {
        if (!when) return;
        to = value;
        notes.push(note);
      };
      limit(to > limits.max, limits.max, `max ${limits.max}`);
      limit(to < limits.min, limits.min, `min ${limits.min}`);
      limit(to > d.from + this.config.maxStep, d.from + this.config.maxStep, `step ${this.config.maxStep}`);
      limit(to < d.from - 1, d.from - 1, 'one removal per decision');
      const upAt = this.lastUpAt[d.pool];
      limit(
        to > d.from && upAt !== undefined && obs.atMs - upAt < this.config.scaleUpCooldownMs,
        d.from,
        'scale-up cooldown',
      );
      const changedAt = this.lastChangeAt[d.pool];
      limit(
        to < d.from && changedAt !== undefined && obs.atMs - changedAt < this.config.scaleDownCooldownMs,
        d.from,
        'scale-down cooldown',
      );
      limit(to < d.from && replicas.starting > 0, d.from, `${replicas.starting} still starting`);
      d.to = to;
      if (notes.length > 0) d.reason += ` [${notes.join(', ')}]`;
    }
    // The GPU budget: shrink the pools above their minimum in proportion to their surplus.
    const gpus = (d: PoolDecision): number => d.to * this.config.pools[d.pool]!.gpus;
    let total = decisions.reduce((s, d) => s + gpus(d), 0);
    if (total > this.config.gpuBudget) {
      const over = total - this.config.gpuBudget;
      const surplus = decisions.map((d) => (d.to - this.config.pools[d.pool]!.min) * this.config.pools[d.pool]!.gpus);
      const sum = surplus.reduce((s, v) => s + v, 0);
      decisions.forEach((d, i) => {
        const pool = this.config.pools[d.pool]!;
        const cut = Math.ceil((over * surplus[i]!) / sum / pool.gpus);
        d.to = Math.max(pool.min, d.to - cut);
      });
      total = decisions.reduce((s, d) => s + gpus(d), 0);
      for (const d of decisions) d.reason += ` [GPU budget ${this.config.gpuBudget}: ${total} used]`;
    }
    return decisions;
  }
}
