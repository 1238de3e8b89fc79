// Reduces per-request records to BenchResults with AIPerf's metric definitions, so a
// live run and a replay of the same schedule are compared number for number.
import { distribution, percentile, quantilePoints, sortedFinite } from './distribution.js';
import { computeTimeline } from './timeline.js';
import type { BenchResults, RequestRecord, Slo } from './types.js';

/** p99 schedule lag above this marks a run as degraded. */
export const DEGRADED_LAG_MS = 500;
/** Most CDF points kept per sample in `BenchResults.samples`. */
export const MAX_SAMPLE_POINTS = 2000;

export interface ComputeResultsOptions {
  label: string;
  mode: string;
  /** SLOs for goodput; default none (every completed request is good). */
  slo?: Slo;
  /** Free-form run description; default {}. */
  config?: Record<string, unknown>;
  /** Wall-clock start; default the epoch, so results stay a pure function of records. */
  startedAt?: Date;
}

/** A request completed when it has no error and its last byte arrived. */
export function isCompleted(r: RequestRecord): boolean {
  return r.error === undefined && r.endMs !== undefined;
}

/** The failure class of a request that did not complete ("incomplete" when no error is set). */
function failureType(r: RequestRecord): string {
  return r.error?.type ?? 'incomplete';
}

/** Per-request latencies per AIPerf; undefined where the metric does not apply. */
export function requestLatencies(r: RequestRecord): { ttftMs?: number; itlMs?: number; e2eMs?: number } {
  const ttftMs = r.firstTokenMs !== undefined ? r.firstTokenMs - r.startMs : undefined;
  const e2eMs = r.endMs !== undefined ? r.endMs - r.startMs : undefined;
  const itlMs =
    ttftMs !== undefined && e2eMs !== undefined && r.outputTokens > 1
      ? (e2eMs - ttftMs) / (r.outputTokens - 1)
      : undefined;
  return { ttftMs, itlMs, e2eMs };
}

/**
 * True when a completed request meets every SLO that is set (inclusive). A missing TTFT
 * fails a TTFT SLO; ITL does not apply to requests with one output token.
 */
export function meetsSlo(r: RequestRecord, slo: Slo): boolean {
  const { ttftMs, itlMs, e2eMs } = requestLatencies(r);
  if (slo.ttftMs !== undefined && (ttftMs === undefined || ttftMs > slo.ttftMs)) return false;
  if (slo.itlMs !== undefined && itlMs !== undefined && itlMs > slo.itlMs) return false;
  if (slo.e2eMs !== undefined && (e2eMs === undefined || e2eMs > slo.e2eMs)) return false;
  return true;
}

/**
 * Results of one run. Failed requests count in `failed` and `errors_by_type` only,
 * except schedule lag (a property of the generator) and duration, which cover all.
 */
export function computeResults(records: readonly RequestRecord[], opts: ComputeResultsOptions): BenchResults {
  const slo = opts.slo ?? {};
  const completed = records.filter(isCompleted);
  const errorsByType: Record<string, number> = {};
  for (const r of records) {
    if (isCompleted(r)) continue;
    const type = failureType(r);
    errorsByType[type] = (errorsByType[type] ?? 0) + 1;
  }

  const ttft: number[] = [];
  const itl: number[] = [];
  const e2e: number[] = [];
  const interChunk: number[] = [];
  let inputTokens = 0;
  let outputTokens = 0;
  let good = 0;
  let cachedKnown = 0;
  let inputOfCachedKnown = 0;
  let cachedReported = false;
  for (const r of completed) {
    const lat = requestLatencies(r);
    if (lat.ttftMs !== undefined) ttft.push(lat.ttftMs);
    if (lat.itlMs !== undefined) itl.push(lat.itlMs);
    if (lat.e2eMs !== undefined) e2e.push(lat.e2eMs);
    for (let i = 1; i < r.chunkMs.length; i++) interChunk.push(r.chunkMs[i]! - r.chunkMs[i - 1]!);
    inputTokens += r.inputTokens;
    outputTokens += r.outputTokens;
    if (meetsSlo(r, slo)) good++;
    if (r.cachedTokens !== undefined) {
      cachedReported = true;
      cachedKnown += r.cachedTokens;
      inputOfCachedKnown += r.inputTokens;
    }
  }

  let firstStartMs = Infinity;
  let lastEndMs = -Infinity;
  for (const r of records) {
    firstStartMs = Math.min(firstStartMs, r.startMs);
    if (r.endMs !== undefined) lastEndMs = Math.max(lastEndMs, r.endMs);
  }
  const durationMs =
    Number.isFinite(firstStartMs) && Number.isFinite(lastEndMs) ? Math.max(0, lastEndMs - firstStartMs) : 0;
  const durationS = durationMs / 1000;
  const perSecond = (n: number): number => (durationS > 0 ? n / durationS : 0);

  const lag = records.map((r) => r.startMs - r.scheduledMs);
  const sortedLag = sortedFinite(lag);
  const lagP99 = sortedLag.length > 0 ? percentile(sortedLag, 0.99) : 0;

  return {
    label: opts.label,
    mode: opts.mode,
    started_at: (opts.startedAt ?? new Date(0)).toISOString(),
    completed: completed.length,
    failed: records.length - completed.length,
    errors_by_type: errorsByType,
    duration_s: durationS,
    ttft_ms: distribution(ttft),
    itl_ms: distribution(itl),
    e2e_ms: distribution(e2e),
    inter_chunk_ms: distribution(interChunk),
    schedule_lag_ms: distribution(lag),
    input_tokens: distribution(completed.map((r) => r.inputTokens)),
    output_tokens: distribution(completed.map((r) => r.outputTokens)),
    requests_per_s: perSecond(completed.length),
    output_tokens_per_s: perSecond(outputTokens),
    total_tokens_per_s: perSecond(inputTokens + outputTokens),
    goodput_rps: perSecond(good),
    good_fraction: completed.length > 0 ? good / completed.length : 0,
    slo: { ...slo },
    kv_hit_rate: cachedReported && inputOfCachedKnown > 0 ? cachedKnown / inputOfCachedKnown : null,
    degraded: lagP99 > DEGRADED_LAG_MS,
    config: opts.config ?? {},
    timeline: Number.isFinite(firstStartMs) ? computeTimeline(records, firstStartMs, durationMs, isCompleted) : [],
    samples: { ttft_ms: quantilePoints(ttft, MAX_SAMPLE_POINTS), itl_ms: quantilePoints(itl, MAX_SAMPLE_POINTS) },
  };
}
