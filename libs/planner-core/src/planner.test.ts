import { describe, expect, it } from 'vitest';
import { compilePlannerConfig } from './config.js';
import { Planner, type Observation, type WorkerObservation } from './planner.js';
import { ProfileModel, PROFILE_SCHEMA, type Profile } from './profile.js';

/** A profile with round numbers: prefill 10 000 prompt tokens/s at any length (TTFT = isl / 10 ms); decode ITL 10 ms + 1 ms per sequence. */
function roundProfile(): Profile {
  const isls = [100, 1000, 4000, 8000];
  const contexts = [512, 4096];
  return {
    schema: PROFILE_SCHEMA,
    model: 'm',
    engine: 'mocker',
    createdAt: '2026-12-03T00:00:00Z',
    source: 'virtual',
    prefill: { points: isls.map((isl) => ({ isl, ttftMs: isl / 10, tokensPerSecond: 10_000 })) },
    decode: {
      maxKvTokens: 1 << 20,
      points: contexts.flatMap((context) =>
        [1, 10, 40, 100].map((concurrency) => {
          const itlMs = 10 + concurrency;
          return { context, concurrency, kvUsage: 0, itlMs, tokensPerSecond: (concurrency * 1000) / itlMs };
        }),
      ),
    },
  };
}

function observation(partial: Partial<Observation> & { decode?: number; prefill?: number }): Observation {
  const { decode = 1, prefill, ...rest } = partial;
  return {
    atMs: 10_000,
    durationMs: 10_000,
    requests: 100,
    isl: 1000,
    osl: 100,
    ttftMs: 100,
    itlMs: 20,
    kvHitRate: 0,
    workers: [],
    replicas: {
      decode: { desired: decode, ready: decode, starting: 0 },
      ...(prefill !== undefined ? { prefill: { desired: prefill, ready: prefill, starting: 0 } } : {}),
    },
    ...rest,
  };
}

const profile = new ProfileModel(roundProfile());

describe('planner config', () => {
  it.each([
    [{ predictor: 'crystal-ball' }, /planner\.predictor.*unknown predictor "crystal-ball"/],
    [{ pools: { decode: { min: 5, max: 2 } } }, /planner\.pools\.decode\.min: min 5 is above max 2/],
    [{ intervalMs: 0 }, /planner\.intervalMs: must be > 0/],
    [{ intervalMs: -5 }, /planner\.intervalMs: must be > 0/],
    [
      { pools: { decode: { min: 4 } }, limits: { gpuBudget: 2 } },
      /planner\.limits\.gpuBudget: budget 2 is below the pools' minimum footprint of 4/,
    ],
    [{ mode: 'psychic' }, /planner\.mode: unknown mode "psychic"/],
    [{ mode: 'throughput', profile: '' }, /planner\.profile: mode throughput needs a profile/],
    [{ pools: { encode: {} } }, /planner\.pools\.encode: unknown pool/],
    [{ limits: { scaleDownFraction: 1.5 } }, /planner\.limits\.scaleDownFraction/],
    [{ limits: { utilization: 0 } }, /planner\.limits\.utilization: expected a number in \(0, 1\]/],
    [{ sloTtft: 5 }, /planner\.sloTtft: unknown field/],
  ])('refuses %j naming the field', (raw, message) => {
    expect(() => compilePlannerConfig({ profile: 'p.json', ...raw })).toThrow(message);
  });

  it('fills the documented defaults', () => {
    const c = compilePlannerConfig({ profile: 'p.json' });
    expect(c).toMatchObject({ mode: 'both', intervalMs: 10_000, sloTtftMs: 500, sloItlMs: 50, maxStep: 2 });
    expect(c.pools).toEqual({ decode: { min: 1, max: 8, gpus: 1 } });
    expect(c.gpuBudget).toBe(8);
  });
});

describe('throughput mode', () => {
  const config = (extra: Record<string, unknown> = {}) =>
    compilePlannerConfig({
      mode: 'throughput',
      profile: 'p.json',
      predictor: 'constant',
      sloTtftMs: 500,
      sloItlMs: 50,
      pools: { prefill: { min: 1, max: 16 }, decode: { min: 1, max: 16 } },
      limits: { maxStep: 16, scaleDownCooldownMs: 0, utilization: 1 },
      ...extra,
    });

  it('sizes prefill from prompt tokens per second and decode from output tokens per second', () => {
    const planner = new Planner(config(), { profile });
    // 100 requests / 10 s = 10 req/s; × 1000 tokens = 10 000 prompt tokens/s over 10 000 per worker = 1 ... make it 35 000.
    const plan = planner.plan(observation({ requests: 350, isl: 1000, osl: 100, prefill: 1, decode: 1 }));
    const byPool = Object.fromEntries(plan.decisions.map((d) => [d.pool, d]));
    expect(byPool.prefill!.to).toBe(4); // 35 000 / 10 000 = 3.5 -> 4
    // Decode: 35 req/s × 100 = 3 500 output tokens/s; at ITL 50 ms one worker does 40 seqs -> 40 000/50 = 800 tok/s -> 4.375 -> 5.
    expect(byPool.decode!.to).toBe(5);
    expect(byPool.prefill!.reason).toMatch(/35000 prompt tokens\/s predicted/);
  });

  it('discounts prefix-cache hits and scales by a missed TTFT', () => {
    const planner = new Planner(config(), { profile });
    const hit = planner.plan(observation({ requests: 400, kvHitRate: 0.5, prefill: 1, decode: 1 }));
    expect(hit.decisions.find((d) => d.pool === 'prefill')!.to).toBe(2); // 40 000 × 0.5 / 10 000
    const missed = new Planner(config(), { profile }).plan(
      observation({ requests: 400, kvHitRate: 0.5, ttftMs: 1000, prefill: 1, decode: 1 }),
    );
    expect(missed.decisions.find((d) => d.pool === 'prefill')!.to).toBe(4); // × 1000 / 500
  });

  it('grows the pool that answers for a missed target by observed / target, at least one replica', () => {
    const planner = new Planner(config(), { profile });
    // Tiny demand, so the profile alone says 1; ITL 150 ms against 50 ms: decode ×2 (capped).
    const plan = planner.plan(observation({ requests: 10, itlMs: 150, prefill: 2, decode: 3 }));
    const byPool = Object.fromEntries(plan.decisions.map((d) => [d.pool, d]));
    expect(byPool.decode).toMatchObject({ from: 3, to: 6 });
    expect(byPool.decode!.reason).toMatch(/at least 6: latency missed ×2\.00/);
    expect(byPool.prefill!.to).toBe(1); // its target (TTFT) was met
    const slightly = new Planner(config(), { profile }).plan(
      observation({ requests: 10, ttftMs: 510, prefill: 2, decode: 1 }),
    );
    expect(slightly.decisions.find((d) => d.pool === 'prefill')!.to).toBe(3); // ceil(2 × 1.02)
  });

  it('an aggregated pool needs the sum of both fractions of a worker', () => {
    const agg = (utilization: number) =>
      compilePlannerConfig({
        mode: 'throughput',
        profile: 'p',
        predictor: 'constant',
        limits: { maxStep: 8, utilization },
      });
    const plan = new Planner(agg(1), { profile }).plan(observation({ requests: 150, isl: 1000, osl: 100 }));
    // prefill 15 000 / 10 000 = 1.5; decode 1 500 / 800 = 1.875; sum 3.375 -> 4.
    expect(plan.decisions[0]!.to).toBe(4);
    // Sized for workers busy 80% of the time: 3.375 / 0.8 = 4.2 -> 5.
    const headroom = new Planner(agg(0.8), { profile }).plan(observation({ requests: 150, isl: 1000, osl: 100 }));
    expect(headroom.decisions[0]!.to).toBe(5);
    expect(headroom.decisions[0]!.reason).toMatch(/at 0\.8 busy/);
  });
});

describe('constraints', () => {
  const base = { mode: 'throughput', profile: 'p', predictor: 'constant' } as const;

  it('clamps to max and to the step, removes one at a time, and holds removals while replicas start', () => {
    const c = compilePlannerConfig({
      ...base,
      pools: { decode: { min: 2, max: 6 } },
      limits: { maxStep: 2, scaleDownCooldownMs: 0 },
    });
    const up = new Planner(c, { profile }).plan(observation({ requests: 2000, decode: 2 }));
    expect(up.decisions[0]).toMatchObject({ from: 2, to: 4 });
    expect(up.decisions[0]!.reason).toMatch(/step 2/);
    const down = new Planner(c, { profile }).plan(observation({ requests: 1, decode: 6 }));
    expect(down.decisions[0]).toMatchObject({ from: 6, to: 5 });
    const starting = new Planner(c, { profile }).plan(
      observation({ requests: 1, replicas: { decode: { desired: 6, ready: 4, starting: 2 } } }),
    );
    expect(starting.decisions[0]).toMatchObject({ from: 6, to: 6 });
    expect(starting.decisions[0]!.reason).toMatch(/2 still starting/);
  });

  it('keeps a scale-down cooldown after a change', () => {
    const c = compilePlannerConfig({ ...base, limits: { scaleDownCooldownMs: 30_000, maxStep: 8 } });
    const planner = new Planner(c, { profile });
    expect(planner.plan(observation({ atMs: 10_000, requests: 400, decode: 1 })).decisions[0]!.to).toBeGreaterThan(1);
    const after = planner.plan(observation({ atMs: 20_000, requests: 1, decode: 8 }));
    expect(after.decisions[0]).toMatchObject({ from: 8, to: 8 });
    expect(after.decisions[0]!.reason).toMatch(/scale-down cooldown/);
    expect(planner.plan(observation({ atMs: 50_000, requests: 1, decode: 8 })).decisions[0]!.to).toBe(7);
  });

  it('shrinks the pools in proportion to their surplus to fit the GPU budget, keeping each minimum', () => {
    const c = compilePlannerConfig({
      ...base,
      pools: { prefill: { min: 1, max: 16 }, decode: { min: 2, max: 16, gpus: 2 } },
      limits: { gpuBudget: 12, maxStep: 16 },
    });
    const plan = new Planner(c, { profile }).plan(observation({ requests: 1000, prefill: 1, decode: 2 }));
    const gpus = plan.decisions.reduce((s, d) => s + d.to * (d.pool === 'decode' ? 2 : 1), 0);
    expect(gpus).toBeLessThanOrEqual(12);
    expect(plan.decisions.find((d) => d.pool === 'decode')!.to).toBeGreaterThanOrEqual(2);
    expect(plan.decisions[0]!.reason).toMatch(/GPU budget 12/);
  });
});

describe('missing metrics and no traffic', () => {
  const c = compilePlannerConfig({ mode: 'both', profile: 'p', predictor: 'constant' });

  it('holds the current counts when the request count cannot be read, and says why', () => {
    const plan = new Planner(c, { profile }).plan(
      observation({ requests: undefined, decode: 3, missing: ['prometheus: connection refused'] }),
    );
    expect(plan.held).toMatch(/prometheus: connection refused/);
    expect(plan.decisions[0]).toMatchObject({ from: 3, to: 3 });
  });

  it('never scales to zero or down before the first request', () => {
    const plan = new Planner(c, { profile }).plan(observation({ requests: 0, decode: 3 }));
    expect(plan.held).toBe('no traffic yet');
    expect(plan.decisions[0]!.to).toBe(3);
  });
});

describe('load mode', () => {
  const c = compilePlannerConfig({
    mode: 'load',
    predictor: 'constant',
    sloTtftMs: 500,
    sloItlMs: 50,
    pools: { decode: { min: 1, max: 8 } },
    limits: { scaleDownCooldownMs: 0 },
  });
  // Step time = 5 ms + 0.01 ms per prefill token + 0.0001 ms per KV token.
  const worker = (id: string, prefillTokens: number, kvTokens: number): WorkerObservation => ({
    id,
    pool: 'decode',
    activePrefillTokens: prefillTokens,
    activeKvTokens: kvTokens,
    passes: {
      count: 50,
      meanMs: 5 + 0.01 * prefillTokens + 0.0001 * kvTokens,
      meanPrefillTokens: prefillTokens,
      meanKvTokens: kvTokens,
    },
  });
  const train = (planner: Planner, replicas: number): void => {
    for (let i = 0; i < 8; i++)
      planner.plan(
        observation({
          requests: 10,
          isl: 1000,
          osl: 100,
          decode: replicas,
          workers: [worker('a', 500 * i, 20_000 * i), worker('b', 300 * i, 50_000 * (i % 3))],
        }),
      );
  };

  it('adds one when every worker is past the SLO and removes one when every worker would stay well under it', () => {
    const planner = new Planner(c);
    train(planner, 2);
    const hot = planner.plan(
      observation({ requests: 10, decode: 2, workers: [worker('a', 60_000, 100_000), worker('b', 80_000, 100_000)] }),
    );
    expect(hot.decisions[0]).toMatchObject({ from: 2, to: 3 });
    expect(hot.decisions[0]!.reason).toMatch(/every worker past the SLO/);
    expect(hot.decisions[0]!.estimatedTtftMs).toBeGreaterThan(500);
    const mixed = planner.plan(
      observation({ requests: 10, decode: 2, workers: [worker('a', 60_000, 100_000), worker('b', 0, 1000)] }),
    );
    expect(mixed.decisions[0]).toMatchObject({ from: 2, to: 2 });
    const cold = planner.plan(
      observation({
        requests: 10,
        decode: 3,
        workers: [worker('a', 0, 1000), worker('b', 0, 1000), worker('c', 0, 0)],
      }),
    );
    expect(cold.decisions[0]).toMatchObject({ from: 3, to: 2 });
  });

  it('makes no load proposal before it has fitted the step time', () => {
    const plan = new Planner(c).plan(observation({ requests: 10, decode: 2, workers: [worker('a', 60_000, 100_000)] }));
    expect(plan.decisions[0]).toMatchObject({ from: 2, to: 2, reason: 'no proposal' });
  });
});
