import { describe, expect, it } from 'vitest';
import { computeResults } from './metrics.js';
import type { BenchResults, Distribution, RequestRecord } from './types.js';

function rec(r: Partial<RequestRecord> & Pick<RequestRecord, 'id' | 'scheduledMs' | 'startMs'>): RequestRecord {
  return { chunkMs: [], inputTokens: 0, outputTokens: 0, ...r };
}

// Hand-built run. Per request: TTFT, E2E, ITL = (E2E - TTFT) / (out - 1), lag.
const A = rec({
  id: 'a',
  scheduledMs: 0,
  startMs: 0,
  firstTokenMs: 100,
  endMs: 500,
  chunkMs: [100, 200, 300, 500],
  inputTokens: 10,
  outputTokens: 5,
}); // 100, 500, 100, 0
const B = rec({
  id: 'b',
  scheduledMs: 100,
  startMs: 110,
  firstTokenMs: 410,
  endMs: 1010,
  chunkMs: [410, 710, 1010],
  inputTokens: 20,
  outputTokens: 3,
}); // 300, 900, 300, 10
const C = rec({
  id: 'c',
  scheduledMs: 200,
  startMs: 200,
  firstTokenMs: 250,
  endMs: 260,
  chunkMs: [250],
  inputTokens: 30,
  outputTokens: 1,
}); // 50, 60, n/a, 0
const D = rec({
  id: 'd',
  scheduledMs: 300,
  startMs: 330,
  endMs: 400,
  inputTokens: 40,
  error: { type: 'http_503', message: 'overloaded' },
}); // failed, lag 30
const E = rec({
  id: 'e',
  scheduledMs: 400,
  startMs: 400,
  inputTokens: 50,
  error: { type: 'timeout', message: 'timed out' },
}); // failed, lag 0
const F = rec({
  id: 'f',
  scheduledMs: 500,
  startMs: 500,
  firstTokenMs: 600,
  endMs: 1000,
  chunkMs: [600, 1000],
  inputTokens: 5,
  outputTokens: 2,
}); // 100, 500, 400, 0
const RUN = [A, B, C, D, E, F];

/** Field by field to 1e-9: interpolation is exact only up to floating point. */
function expectDistribution(actual: Distribution, expected: Distribution): void {
  for (const key of Object.keys(expected) as (keyof Distribution)[]) {
    expect(actual[key], key).toBeCloseTo(expected[key], 9);
  }
}

function allNumbersFinite(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(allNumbersFinite);
  if (value !== null && typeof value === 'object') return Object.values(value).every(allNumbersFinite);
  return true;
}

describe('computeResults on a hand-built run', () => {
  const res: BenchResults = computeResults(RUN, {
    label: 'hand',
    mode: 'test',
    slo: { ttftMs: 200, itlMs: 200 },
    config: { rate: 5 },
    startedAt: new Date('2025-01-02T03:04:05.000Z'),
  });

  it('carries the description', () => {
    expect(res).toMatchObject({
      label: 'hand',
      mode: 'test',
      started_at: '2025-01-02T03:04:05.000Z',
      config: { rate: 5 },
    });
    expect(res.slo).toEqual({ ttftMs: 200, itlMs: 200 });
  });

  it('counts failures by type and keeps them out of latencies', () => {
    expect(res.completed).toBe(4);
    expect(res.failed).toBe(2);
    expect(res.errors_by_type).toEqual({ http_503: 1, timeout: 1 });
    expect(res.e2e_ms.count).toBe(4); // D's 70 ms is not there
    expect(res.e2e_ms.min).toBe(60);
    expect(res.input_tokens.count).toBe(4);
    expect(res.input_tokens.max).toBe(30); // D (40) and E (50) excluded
  });

  it('computes TTFT = first token - start', () => {
    // [50, 100, 100, 300]
    expectDistribution(res.ttft_ms, {
      mean: 137.5,
      p50: 100,
      p90: 240,
      p95: 270,
      p99: 294,
      max: 300,
      min: 50,
      count: 4,
    });
  });

  it('computes ITL = (E2E - TTFT) / (out - 1), leaving out the one-token request', () => {
    // A 400/4 = 100, B 600/2 = 300, F 400/1 = 400; C (1 token) excluded
    expect(res.itl_ms.count).toBe(3);
    expect(res.itl_ms.mean).toBeCloseTo(800 / 3, 12);
    expect(res.itl_ms.p50).toBe(300);
    expect(res.itl_ms.p90).toBeCloseTo(380, 12);
    expect([res.itl_ms.min, res.itl_ms.max]).toEqual([100, 400]);
  });

  it('computes E2E = end - start', () => {
    // [60, 500, 500, 900]
    expect(res.e2e_ms).toMatchObject({ mean: 490, p50: 500, min: 60, max: 900, count: 4 });
    expect(res.e2e_ms.p90).toBeCloseTo(780, 12);
  });

  it('computes inter-chunk gaps as a separate distribution', () => {
    // A 100,100,200; B 300,300; C none; F 400
    expect(res.inter_chunk_ms).toMatchObject({ p50: 250, min: 100, max: 400, count: 6 });
    expect(res.inter_chunk_ms.mean).toBeCloseTo(1400 / 6, 12);
  });

  it('computes schedule lag = start - scheduled over every request', () => {
    // [0, 10, 0, 30, 0, 0]
    expect(res.schedule_lag_ms).toMatchObject({ p50: 0, max: 30, min: 0, count: 6 });
    expect(res.schedule_lag_ms.mean).toBeCloseTo(40 / 6, 12);
    expect(res.schedule_lag_ms.p90).toBeCloseTo(20, 12);
    expect(res.degraded).toBe(false);
  });

  it('computes duration = last response - first request and throughputs over it', () => {
    expect(res.duration_s).toBeCloseTo(1.01, 12);
    expect(res.requests_per_s).toBeCloseTo(4 / 1.01, 12);
    expect(res.output_tokens_per_s).toBeCloseTo(11 / 1.01, 12);
    expect(res.total_tokens_per_s).toBeCloseTo((65 + 11) / 1.01, 12);
  });

  it('counts goodput: B misses TTFT, F misses ITL, C has no ITL', () => {
    expect(res.good_fraction).toBe(0.5);
    expect(res.goodput_rps).toBeCloseTo(2 / 1.01, 12);
  });

  it('has no KV hit rate when nothing reports cached tokens', () => {
    expect(res.kv_hit_rate).toBeNull();
  });

  it('builds a 1 s timeline from the first request', () => {
    expect(res.timeline).toHaveLength(2);
    const [b0, b1] = res.timeline;
    expect(b0).toMatchObject({ t_s: 0, completed: 2, output_tokens_per_s: 9, ttft_p50_ms: 100 });
    expect(b1).toMatchObject({ t_s: 1, completed: 2, output_tokens_per_s: 2, ttft_p50_ms: null });
    // in flight: A 500 + B 890 + C 60 + D 70 + F 500 ms in bucket 0; B 10 ms in bucket 1
    expect(b0!.inflight).toBeCloseTo(2.02, 12);
    expect(b1!.inflight).toBeCloseTo(0.01, 12);
  });

  it('keeps sorted samples for CDFs', () => {
    expect(res.samples).toEqual({ ttft_ms: [50, 100, 100, 300], itl_ms: [100, 300, 400] });
  });

  it('is JSON-safe', () => {
    expect(allNumbersFinite(res)).toBe(true);
    expect(JSON.parse(JSON.stringify(res))).toEqual(res);
  });
});

describe('goodput SLOs', () => {
  const good = (slo: { ttftMs?: number; itlMs?: number; e2eMs?: number }): number =>
    computeResults(RUN, { label: 'x', mode: 'test', slo }).good_fraction * 4;

  it('counts every completed request when no SLO is set', () => {
    expect(good({})).toBe(4);
  });
  it('treats SLOs as inclusive bounds', () => {
    expect(good({ ttftMs: 100 })).toBe(3); // B (300) misses
    expect(good({ e2eMs: 500 })).toBe(3); // B (900) misses
    expect(good({ itlMs: 300 })).toBe(3); // F (400) misses
  });
  it('requires every SLO that is set', () => {
    expect(good({ ttftMs: 100, itlMs: 300, e2eMs: 500 })).toBe(2); // A, C
    expect(good({ e2eMs: 10 })).toBe(0);
  });
});

describe('KV hit rate', () => {
  it('is sum cached / sum input over completed requests that report it', () => {
    const res = computeResults(
      [
        { ...A, cachedTokens: 5 },
        { ...B, cachedTokens: 20 },
        C,
        { ...D, cachedTokens: 40 }, // failed: ignored
      ],
      { label: 'kv', mode: 'test' },
    );
    expect(res.kv_hit_rate).toBeCloseTo(25 / 30, 12);
  });
});

describe('degraded flag', () => {
  const lagged = (late: number): RequestRecord[] =>
    Array.from({ length: 100 }, (_, i) =>
      rec({
        id: `r${i}`,
        scheduledMs: i * 10,
        startMs: i * 10 + (i < late ? 1000 : 0),
        firstTokenMs: i * 10 + 1100,
        endMs: i * 10 + 1200,
        outputTokens: 1,
      }),
    );

  it('is false when p99 lag is at most 500 ms', () => {
    // one of 100 late by 1 s: p99 = 0 + 0.01 * 1000 = 10 ms
    const res = computeResults(lagged(1), { label: 'x', mode: 'test' });
    expect(res.schedule_lag_ms.p99).toBeCloseTo(10, 9);
    expect(res.degraded).toBe(false);
  });

  it('is true when p99 lag exceeds 500 ms', () => {
    const res = computeResults(lagged(2), { label: 'x', mode: 'test' });
    expect(res.schedule_lag_ms.p99).toBe(1000);
    expect(res.degraded).toBe(true);
  });
});

describe('edge cases', () => {
  it('gives zeroed, JSON-safe results for no records', () => {
    const res = computeResults([], { label: 'empty', mode: 'test' });
    expect(res).toMatchObject({
      completed: 0,
      failed: 0,
      duration_s: 0,
      requests_per_s: 0,
      goodput_rps: 0,
      good_fraction: 0,
      kv_hit_rate: null,
      degraded: false,
      timeline: [],
      started_at: '1970-01-01T00:00:00.000Z',
      config: {},
    });
    expect(res.ttft_ms.count).toBe(0);
    expect(allNumbersFinite(res)).toBe(true);
  });

  it('counts a request with neither error nor end as failed "incomplete"', () => {
    const res = computeResults([A, rec({ id: 'z', scheduledMs: 0, startMs: 5, firstTokenMs: 50 })], {
      label: 'x',
      mode: 'test',
    });
    expect(res.completed).toBe(1);
    expect(res.errors_by_type).toEqual({ incomplete: 1 });
    expect(res.ttft_ms.count).toBe(1);
  });

  it('gives all-failed runs zero throughput', () => {
    const res = computeResults([E], { label: 'x', mode: 'test' });
    expect(res).toMatchObject({ completed: 0, failed: 1, duration_s: 0, output_tokens_per_s: 0 });
    expect(allNumbersFinite(res)).toBe(true);
  });

  it('widens timeline buckets so long runs stay under ~600 points', () => {
    const long = Array.from({ length: 2001 }, (_, i) =>
      rec({
        id: `r${i}`,
        scheduledMs: i * 1000,
        startMs: i * 1000,
        firstTokenMs: i * 1000 + 10,
        endMs: i * 1000 + 20,
        chunkMs: [i * 1000 + 10],
        outputTokens: 1,
      }),
    );
    const res = computeResults(long, { label: 'long', mode: 'test' });
    expect(res.duration_s).toBeCloseTo(2000.02, 9);
    expect(res.timeline.length).toBeLessThanOrEqual(600);
    expect(res.timeline[1]!.t_s).toBe(4); // ceil(2000.02 / 600) = 4 s buckets
    expect(res.timeline[0]).toMatchObject({ completed: 4, output_tokens_per_s: 1 });
    expect(res.timeline.reduce((s, p) => s + p.completed, 0)).toBe(2001);
  });

  it('downsamples CDF samples to at most 2000 points', () => {
    const many = Array.from({ length: 5000 }, (_, i) =>
      rec({ id: `r${i}`, scheduledMs: i, startMs: i, firstTokenMs: i + 1 + (i % 97), endMs: i + 200, outputTokens: 3 }),
    );
    const res = computeResults(many, { label: 'many', mode: 'test' });
    expect(res.ttft_ms.count).toBe(5000);
    expect(res.samples!.ttft_ms).toHaveLength(2000);
    expect(res.samples!.ttft_ms[0]).toBe(res.ttft_ms.min);
    expect(res.samples!.ttft_ms[1999]).toBe(res.ttft_ms.max);
  });
});
