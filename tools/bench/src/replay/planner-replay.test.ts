import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePlannerConfig, parseProfile, Planner, ProfileModel } from '@armature/planner-core';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../load/schedule.js';
import { PlannerLoop } from './planner-loop.js';
import { parseStaticSize, runPlannerReplay } from './planner-replay.js';
import { simulate, type SimCluster, type SimRequest } from './simulator.js';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const MOCKER = { blockSize: 16, totalKvBlocks: 16384, maxNumSeqs: 256, maxNumBatchedTokens: 8192, contextLength: 8192 };

/** Requests at `rate(t)` per second for `seconds`, each a fresh prompt (no reuse). */
function workload(seconds: number, rate: (t: number) => number, isl = 1024, osl = 64, seed = 7): SimRequest[] {
  const random = mulberry32(seed);
  const out: SimRequest[] = [];
  let t = 0;
  while (t < seconds * 1000) {
    const r = Math.max(0.05, rate(t / 1000));
    t += (-Math.log(1 - random()) / r) * 1000;
    out.push({
      id: `r${out.length}`,
      arrivalMs: t,
      promptTokenIds: Array.from({ length: isl }, () => 256 + Math.floor(random() * 90_000)),
      outputTokens: osl,
    });
  }
  return out;
}

describe('simulator pools that change', () => {
  it('adds a worker that serves after its start-up delay and drains one without losing a request', () => {
    const requests = workload(60, () => 20);
    const events: string[] = [];
    let cluster!: SimCluster;
    const sim = simulate(requests, {
      workers: 2,
      policy: 'kv',
      mocker: MOCKER,
      control: {
        start(c) {
          cluster = c;
          c.at(10_000, () => events.push(`added ${c.addWorker('decode', 15_000)}`));
          c.at(30_000, () => {
            c.drainWorker('decode-0');
            events.push('drain decode-0');
          });
        },
      },
    });
    expect(events).toEqual(['added decode-2', 'drain decode-0']);
    expect(sim.records).toHaveLength(requests.length);
    expect(sim.records.filter((r) => r.error || r.endMs === undefined)).toEqual([]);
    // The new worker got requests only once ready; the drained one none that arrived after the drain.
    const onNew = sim.records.filter((r) => r.worker === 'decode-2');
    expect(onNew.length).toBeGreaterThan(0);
    expect(Math.min(...onNew.map((r) => r.startMs))).toBeGreaterThanOrEqual(15_000);
    expect(sim.records.filter((r) => r.worker === 'decode-0' && r.startMs > 30_001)).toEqual([]);
    expect(cluster.workers('decode').map((w) => w.id)).toEqual(['decode-1', 'decode-2']);
    // Worker time: decode-0 from 0 until it left (just after 30 s), decode-1 the whole run, decode-2 from 10 s.
    const end = sim.virtualMs;
    expect(sim.workerMs.decode).toBeGreaterThan(30_000 + end + (end - 10_000) - 1);
    expect(sim.workerMs.decode).toBeLessThan(32_000 + end + (end - 10_000));
  });
});

describe('the planner in the replay', () => {
  // Low, then 8× higher for two minutes, then low again.
  const rate = (t: number): number => (t < 120 || t > 300 ? 3 : 24);
  const requests = workload(420, rate);
  const slo = { ttftMs: 300, itlMs: 40 };

  it('load mode grows the pool under the surge and shrinks it after, with a reason for each change', () => {
    const config = compilePlannerConfig({
      mode: 'load',
      intervalMs: 5_000,
      sloTtftMs: slo.ttftMs,
      sloItlMs: slo.itlMs,
      predictor: 'constant',
      pools: { decode: { min: 1, max: 8 } },
      limits: { scaleDownCooldownMs: 20_000 },
    });
    const loop = new PlannerLoop({ planner: new Planner(config), startupDelayMs: 10_000 });
    const sim = simulate(requests, { workers: 1, policy: 'kv', mocker: MOCKER, control: loop });
    expect(sim.records.filter((r) => r.error)).toEqual([]);
    const decode = loop.replicas.filter((s) => s.pool === 'decode');
    const peak = Math.max(...decode.filter((s) => s.atMs > 120_000 && s.atMs < 320_000).map((s) => s.ready));
    expect(peak).toBeGreaterThanOrEqual(2);
    expect(decode[decode.length - 1]!.desired).toBeLessThan(peak);
    const changes = loop.plans.flatMap((p) => p.decisions.filter((d) => d.to !== d.from));
    expect(changes.length).toBeGreaterThanOrEqual(2);
    for (const d of changes) expect(d.reason).toMatch(/every worker/);
  });

  const profilePath = resolve(ROOT, 'infra/profiles/mocker.json');
  it.runIf(existsSync(profilePath))(
    'throughput mode with the shipped profile meets the SLO for less worker time than the static size that does',
    () => {
      const profile = new ProfileModel(parseProfile(JSON.parse(readFileSync(profilePath, 'utf8'))));
      const config = compilePlannerConfig({
        mode: 'both',
        intervalMs: 5_000,
        sloTtftMs: slo.ttftMs,
        sloItlMs: slo.itlMs,
        predictor: 'kalman',
        profile: profilePath,
        pools: { decode: { min: 1, max: 6 } },
      });
      const results = runPlannerReplay(requests, {
        config,
        profile,
        mocker: MOCKER,
        policy: 'kv',
        slo,
        startupDelayMs: 10_000,
        statics: [parseStaticSize('1'), parseStaticSize('6')],
      });
      const planner = results.runs.find((r) => r.kind === 'planner')!;
      const big = results.runs.find((r) => r.label === 'static 6')!;
      const small = results.runs.find((r) => r.label === 'static 1')!;
      const oracle = results.runs.find((r) => r.kind === 'oracle')!;
      expect(small.slo_attainment).toBeLessThan(0.9); // one worker cannot take the surge
      expect(planner.slo_attainment).toBeGreaterThan(0.9);
      expect(planner.worker_seconds.total).toBeLessThan(big.worker_seconds.total * 0.8);
      expect(oracle.worker_seconds.total).toBeLessThanOrEqual(planner.worker_seconds.total);
      expect(results.ratios.planner_vs_oracle).toBeGreaterThanOrEqual(1);
      expect(
        planner.plans!.some((p) => p.decisions.some((d) => d.to > d.from && /throughput|load/.test(d.reason))),
      ).toBe(true);
    },
  );
});

describe('static sizes', () => {
  it('parses n and p:d, and refuses the rest', () => {
    expect(parseStaticSize('4')).toEqual({ decode: 4 });
    expect(parseStaticSize('2:6')).toEqual({ prefill: 2, decode: 6 });
    expect(() => parseStaticSize('0')).toThrow(/--static/);
    expect(() => parseStaticSize('a:b')).toThrow(/--static/);
  });
});
