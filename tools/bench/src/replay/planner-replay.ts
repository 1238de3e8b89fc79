// `armature replay --planner <planner.yaml>`: the planner drives the simulated cluster in
// virtual time, beside static deployments and an oracle measured in the same run, so its
// cost can be compared with the best possible. For each run: SLO attainment (the fraction
// of requests meeting both the TTFT and the ITL target; a failed request misses), worker
// time per pool (from when a worker was asked for until it left), replica counts over
// time and, for the planner, every decision with its reason.
//
// The oracle is computed in hindsight from static replays: for every adjustment interval,
// the cheapest static deployment under which the requests that arrived in that interval
// met the SLO (each at least `oracleTarget`, default 0.99); its worker time is the sum
// over intervals of that deployment's size, with no start-up delay. It is a lower bound
// in spirit, not exact: a static replay's queues at an interval's start differ from what a
// per-interval deployment would have had.
import {
  compilePlannerConfig,
  Planner,
  ProfileModel,
  type Plan,
  type PlannerConfig,
  type Pool,
} from '@armature/planner-core';
import type { MockerOptions } from '@armature/engine';
import { meetsSlo } from '../results/metrics.js';
import type { RequestRecord, Slo } from '../results/types.js';
import { PlannerLoop, type ReplicaSample } from './planner-loop.js';
import { simulate, type DisaggSimOptions, type SimRequest, type SimulationResult } from './simulator.js';

/** A static deployment: decode workers, and prefill workers when disaggregated. */
export interface StaticSize {
  prefill?: number;
  decode: number;
}

export interface PlannerReplayOptions {
  config: PlannerConfig;
  profile?: ProfileModel;
  mocker: MockerOptions;
  policy: string;
  policyParams?: Record<string, unknown>;
  /** Disaggregated replays: the prefill pool's settings (its size comes from the planner or the static size). */
  disagg?: Omit<DisaggSimOptions, 'prefillWorkers'>;
  slo: Required<Pick<Slo, 'ttftMs' | 'itlMs'>>;
  startupDelayMs: number;
  statics: StaticSize[];
  /** Compute the oracle over static sizes up to the pools' maxima (default true). */
  oracle?: boolean;
  oracleTarget?: number;
  onRun?: (label: string, index: number, total: number) => void;
  onProgress?: (done: number, total: number, virtualMs: number) => void;
}

export interface PlannerRun {
  label: string;
  kind: 'planner' | 'static' | 'oracle';
  slo_attainment: number;
  worker_seconds: { prefill: number; decode: number; total: number };
  requests: number;
  failed: number;
  /** Latency percentiles (not for the oracle, which is assembled from other runs). */
  ttft_p50_ms?: number;
  ttft_p99_ms?: number;
  itl_p50_ms?: number;
  itl_p99_ms?: number;
  /** Replica counts over time (the planner's samples; one flat line for a static run; per interval for the oracle). */
  replicas: ReplicaSample[];
  /** The planner's plans (observed, predicted, decisions with reasons). */
  plans?: Plan[];
  size?: StaticSize;
  wall_s: number;
}

export interface PlannerReplayResults {
  mode: 'planner-replay';
  slo: { ttftMs: number; itlMs: number };
  intervalMs: number;
  startupDelayMs: number;
  planner: PlannerConfig;
  runs: PlannerRun[];
  /** Worker-seconds of the planner over the oracle's, and over the cheapest static run meeting 99%. */
  ratios: { planner_vs_oracle?: number; planner_vs_static?: number; static_meeting_slo?: string };
}

const percentile = (values: number[], q: number): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};

function summarize(records: readonly RequestRecord[], slo: Slo) {
  let good = 0;
  let failed = 0;
  const ttft: number[] = [];
  const itl: number[] = [];
  for (const r of records) {
    if (r.error || r.endMs === undefined) {
      failed++;
      continue;
    }
    if (meetsSlo(r, slo)) good++;
    if (r.firstTokenMs !== undefined) ttft.push(r.firstTokenMs - r.startMs);
    if (r.firstTokenMs !== undefined && r.outputTokens > 1) itl.push((r.endMs - r.firstTokenMs) / (r.outputTokens - 1));
  }
  return {
    slo_attainment: records.length > 0 ? good / records.length : 1,
    requests: records.length,
    failed,
    ttft_p50_ms: percentile(ttft, 0.5),
    ttft_p99_ms: percentile(ttft, 0.99),
    itl_p50_ms: percentile(itl, 0.5),
    itl_p99_ms: percentile(itl, 0.99),
  };
}

const sizeLabel = (s: StaticSize): string => (s.prefill !== undefined ? `${s.prefill}P+${s.decode}D` : `${s.decode}`);
const gpusOf = (s: StaticSize, config: PlannerConfig): number =>
  (s.prefill ?? 0) * (config.pools.prefill?.gpus ?? 1) + s.decode * (config.pools.decode?.gpus ?? 1);

/** Parses `--static 4` (decode workers) or `--static 2:6` (prefill:decode). */
export function parseStaticSize(text: string): StaticSize {
  const m = /^(?:(\d+):)?(\d+)$/.exec(text.trim());
  if (!m || Number(m[2]) < 1 || (m[1] !== undefined && Number(m[1]) < 1))
    throw new Error(`--static must be <decode> or <prefill>:<decode> (each >= 1), got ${JSON.stringify(text)}`);
  return m[1] !== undefined ? { prefill: Number(m[1]), decode: Number(m[2]) } : { decode: Number(m[2]) };
}

/** Builds a planner from a raw config (a planner.yaml's mapping); `profile` is the loaded profile file, if any. */
export function plannerFrom(raw: unknown, profile?: ProfileModel): { config: PlannerConfig; planner: Planner } {
  const config = compilePlannerConfig(raw);
  return { config, planner: new Planner(config, { profile }) };
}

/** Runs the planner, the static sizes and the oracle over `requests`. */
export function runPlannerReplay(requests: readonly SimRequest[], options: PlannerReplayOptions): PlannerReplayResults {
  const { config, slo } = options;
  const disaggregated = config.pools.prefill !== undefined;
  if (disaggregated && !options.disagg) throw new Error('a planner with a prefill pool needs a disaggregated replay');
  const runs: PlannerRun[] = [];
  const oracleSizes = options.oracle === false ? [] : oracleGrid(config);
  const staticSizes = dedupe([...options.statics, ...oracleSizes]);
  const total = 1 + staticSizes.length;
  let index = 0;

  const simulateSize = (size: StaticSize | undefined, loop?: PlannerLoop): SimulationResult =>
    simulate(requests, {
      workers: size?.decode ?? config.pools.decode!.min,
      policy: options.policy,
      policyParams: options.policyParams,
      mocker: options.mocker,
      ...(disaggregated
        ? { disagg: { ...options.disagg, prefillWorkers: size?.prefill ?? config.pools.prefill!.min } }
        : {}),
      ...(loop ? { control: loop } : {}),
      onProgress: options.onProgress,
    });
  const workerSeconds = (sim: SimulationResult) => ({
    prefill: sim.workerMs.prefill / 1000,
    decode: sim.workerMs.decode / 1000,
    total: (sim.workerMs.prefill + sim.workerMs.decode) / 1000,
  });

  // The planner.
  options.onRun?.('planner', index++, total);
  const planner = new Planner(config, { profile: options.profile });
  const loop = new PlannerLoop({ planner, startupDelayMs: options.startupDelayMs });
  let started = performance.now();
  const sim = simulateSize(undefined, loop);
  runs.push({
    label: `planner (${config.mode}, ${config.predictor.id}, ${config.intervalMs / 1000} s)`,
    kind: 'planner',
    ...summarize(sim.records, slo),
    worker_seconds: workerSeconds(sim),
    replicas: loop.replicas,
    plans: loop.plans,
    wall_s: (performance.now() - started) / 1000,
  });

  // Static sizes, keeping each one's records for the oracle.
  const byInterval = new Map<string, { good: number[]; all: number[] }>();
  const intervals = Math.ceil(Math.max(1, ...requests.map((r) => r.arrivalMs)) / config.intervalMs) + 1;
  for (const size of staticSizes) {
    options.onRun?.(`static ${sizeLabel(size)}`, index++, total);
    started = performance.now();
    const s = simulateSize(size);
    const good = new Array<number>(intervals).fill(0);
    const all = new Array<number>(intervals).fill(0);
    for (const r of s.records) {
      const i = Math.floor(r.startMs / config.intervalMs);
      all[i]!++;
      if (!r.error && r.endMs !== undefined && meetsSlo(r, slo)) good[i]!++;
    }
    byInterval.set(sizeLabel(size), { good, all });
    if (!options.statics.some((x) => sizeLabel(x) === sizeLabel(size))) continue;
    const flat = (pool: Pool, n: number): ReplicaSample[] => [
      { atMs: 0, pool, desired: n, ready: n },
      { atMs: s.virtualMs, pool, desired: n, ready: n },
    ];
    runs.push({
      label: `static ${sizeLabel(size)}`,
      kind: 'static',
      ...summarize(s.records, slo),
      worker_seconds: workerSeconds(s),
      replicas: [...(size.prefill !== undefined ? flat('prefill', size.prefill) : []), ...flat('decode', size.decode)],
      size,
      wall_s: (performance.now() - started) / 1000,
    });
  }

  if (oracleSizes.length > 0)
    runs.push(oracleRun(config, oracleSizes, byInterval, intervals, options.oracleTarget ?? 0.99, requests.length));

  const plannerRun = runs[0]!;
  const oracle = runs.find((r) => r.kind === 'oracle');
  const meeting = runs
    .filter((r) => r.kind === 'static' && r.slo_attainment >= 0.99)
    .sort((a, b) => a.worker_seconds.total - b.worker_seconds.total)[0];
  return {
    mode: 'planner-replay',
    slo,
    intervalMs: config.intervalMs,
    startupDelayMs: options.startupDelayMs,
    planner: config,
    runs,
    ratios: {
      ...(oracle ? { planner_vs_oracle: plannerRun.worker_seconds.total / oracle.worker_seconds.total } : {}),
      ...(meeting
        ? {
            planner_vs_static: plannerRun.worker_seconds.total / meeting.worker_seconds.total,
            static_meeting_slo: meeting.label,
          }
        : {}),
    },
  };
}

function dedupe(sizes: StaticSize[]): StaticSize[] {
  const seen = new Set<string>();
  return sizes.filter((s) => !seen.has(sizeLabel(s)) && seen.add(sizeLabel(s)));
}

/** Every static size between the pools' minima and maxima (the oracle's candidates). */
function oracleGrid(config: PlannerConfig): StaticSize[] {
  const d = config.pools.decode!;
  const p = config.pools.prefill;
  const sizes: StaticSize[] = [];
  for (let decode = Math.max(1, d.min); decode <= d.max; decode++) {
    if (!p) sizes.push({ decode });
    else for (let prefill = Math.max(1, p.min); prefill <= p.max; prefill++) sizes.push({ prefill, decode });
  }
  return sizes.filter((s) => gpusOf(s, config) <= config.gpuBudget);
}

function oracleRun(
  config: PlannerConfig,
  sizes: StaticSize[],
  byInterval: Map<string, { good: number[]; all: number[] }>,
  intervals: number,
  target: number,
  requests: number,
): PlannerRun {
  const bySize = [...sizes].sort((a, b) => gpusOf(a, config) - gpusOf(b, config));
  const biggest = bySize[bySize.length - 1]!;
  let good = 0;
  const seconds = { prefill: 0, decode: 0, total: 0 };
  const replicas: ReplicaSample[] = [];
  const step = config.intervalMs / 1000;
  for (let i = 0; i < intervals; i++) {
    // The cheapest size meeting the target in this interval (the biggest when none does).
    const chosen =
      bySize.find((s) => {
        const { good: g, all } = byInterval.get(sizeLabel(s))!;
        return all[i] === 0 || g[i]! >= target * all[i]!;
      }) ?? biggest;
    good += byInterval.get(sizeLabel(chosen))!.good[i]!;
    seconds.decode += chosen.decode * step;
    seconds.prefill += (chosen.prefill ?? 0) * step;
    const atMs = i * config.intervalMs;
    if (chosen.prefill !== undefined)
      replicas.push({ atMs, pool: 'prefill', desired: chosen.prefill, ready: chosen.prefill });
    replicas.push({ atMs, pool: 'decode', desired: chosen.decode, ready: chosen.decode });
  }
  seconds.total = seconds.prefill + seconds.decode;
  return {
    label: 'oracle (per-interval static, hindsight)',
    kind: 'oracle',
    slo_attainment: requests > 0 ? good / requests : 1,
    worker_seconds: seconds,
    requests,
    failed: 0,
    replicas,
    wall_s: 0,
  };
}
