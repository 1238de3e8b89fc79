// The shapes shared by `armature bench` (live) and `armature replay` (virtual time):
// both emit one RequestRecord per request and reduce them with computeResults, so their
// results JSON and reports are the same function of the same records.

/** One request as observed by the load generator. Times are ms since benchmark start. */
export interface RequestRecord {
  id: string;
  /** When the schedule wanted it sent. */
  scheduledMs: number;
  /** When it was actually sent. */
  startMs: number;
  /** Arrival of the first non-empty chunk. */
  firstTokenMs?: number;
  /** Arrival of the last byte. */
  endMs?: number;
  /** Arrival time of every non-empty chunk (for inter-chunk gaps). */
  chunkMs: number[];
  inputTokens: number;
  /** From usage when known, else counted. */
  outputTokens: number;
  /** Prompt tokens served from cache, when known. */
  cachedTokens?: number;
  worker?: string;
  /** Set when the request failed; `type` e.g. "http_503", "timeout", "connection". */
  error?: { type: string; message: string };
}

/** Service-level objectives; a request is good when it meets every one that is set (<=). */
export interface Slo {
  ttftMs?: number;
  itlMs?: number;
  e2eMs?: number;
}

/**
 * Summary of a sample. Percentiles interpolate linearly between closest ranks (numpy's
 * default). An empty sample is all zeros with `count: 0`, so JSON never holds NaN.
 */
export interface Distribution {
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
  count: number;
}

/** One timeline bucket; `t_s` is the bucket start in seconds after the first request. */
export interface TimelinePoint {
  t_s: number;
  /** Requests that completed (endMs) in this bucket. */
  completed: number;
  /** Output tokens arriving in this bucket (spread over each request's chunks) / bucket width. */
  output_tokens_per_s: number;
  /** Median TTFT of completed requests sent in this bucket; null when none. */
  ttft_p50_ms: number | null;
  /** Time-averaged number of requests in flight during this bucket. */
  inflight: number;
}

export interface BenchResults {
  label: string;
  mode: string;
  /** ISO 8601. */
  started_at: string;
  completed: number;
  failed: number;
  errors_by_type: Record<string, number>;
  /** Last response - first request, over all requests. */
  duration_s: number;
  ttft_ms: Distribution;
  itl_ms: Distribution;
  e2e_ms: Distribution;
  inter_chunk_ms: Distribution;
  schedule_lag_ms: Distribution;
  input_tokens: Distribution;
  output_tokens: Distribution;
  requests_per_s: number;
  output_tokens_per_s: number;
  total_tokens_per_s: number;
  goodput_rps: number;
  good_fraction: number;
  slo: Slo;
  /** Sum cached / sum input over completed requests that report cachedTokens; null when none do. */
  kv_hit_rate: number | null;
  /** p99 schedule lag > 500 ms: the generator could not keep to its schedule. */
  degraded: boolean;
  /** Free-form run description. */
  config: Record<string, unknown>;
  /** Per 1 s bucket, coarser for long runs (at most ~600 points). */
  timeline: TimelinePoint[];
  /** Sorted samples (at most ~2,000 evenly spaced quantile points each) for CDF plots. */
  samples?: { ttft_ms: number[]; itl_ms: number[] };
}
