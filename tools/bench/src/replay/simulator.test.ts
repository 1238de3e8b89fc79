import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '@armature/tokenizer';
import { POLICY_IDS } from '@armature/router-core';
import { replayMockerDefaults } from '../commands.js';
import { findTrace, loadWorkload, spreadBursts } from '../datasets/index.js';
import { computeResults } from '../results/index.js';
import { simulate, type SimRequest } from './simulator.js';
import { EventQueue } from './event-queue.js';

const mocker = { blockSize: 16, totalKvBlocks: 4096, contextLength: 8192, speedup: 1 };

function requests(n: number, gapMs: number, promptLen = 512, out = 16, shared = 0): SimRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    arrivalMs: i * gapMs,
    promptTokenIds: Array.from({ length: promptLen }, (_, k) => (k < shared ? 1000 + k : 5000 + i * promptLen + k)),
    outputTokens: out,
  }));
}

describe('simulate', () => {
  it('completes every request with consistent timings and exact output lengths', () => {
    const res = simulate(requests(50, 20), { workers: 4, policy: 'round-robin', mocker });
    expect(res.records).toHaveLength(50);
    for (const r of res.records) {
      expect(r.error).toBeUndefined();
      expect(r.outputTokens).toBe(16);
      expect(r.firstTokenMs!).toBeGreaterThan(r.startMs);
      expect(r.endMs!).toBeGreaterThanOrEqual(r.firstTokenMs!);
      expect(r.chunkMs).toHaveLength(16);
    }
    // Round-robin spreads evenly.
    expect(Object.values(res.decisions)).toEqual([13, 13, 12, 12]);
  });

  it('is deterministic', () => {
    const a = simulate(requests(30, 5), { workers: 3, policy: 'least-loaded', mocker });
    const b = simulate(requests(30, 5), { workers: 3, policy: 'least-loaded', mocker });
    expect(a.records.map((r) => [r.worker, r.firstTokenMs, r.endMs])).toEqual(
      b.records.map((r) => [r.worker, r.firstTokenMs, r.endMs]),
    );
  });

  it('charges the perf model: a lone request takes one prefill pass then one decode pass per token', () => {
    const [r] = simulate(requests(1, 0, 1000, 3), {
      workers: 1,
      policy: 'round-robin',
      mocker: { ...mocker, speedup: 1 },
    }).records;
    const prefill = 4.209989e-7 * 1000 ** 2 + 1.518344e-2 * 1000 + 16.50142;
    expect(r!.firstTokenMs! - r!.startMs).toBeCloseTo(prefill, 6);
    expect(r!.endMs! - r!.firstTokenMs!).toBeGreaterThan(2 * 1); // two decode passes, each >= 1 ms
  });

  it('reports prefix-cache hits when prompts share a prefix on one worker', () => {
    const res = simulate(requests(5, 200, 512, 4, 256), { workers: 1, policy: 'round-robin', mocker });
    const cached = res.records.map((r) => r.cachedTokens);
    expect(cached[0]).toBe(0);
    for (const c of cached.slice(1)) expect(c).toBe(256);
  });

  it('queues when overloaded: TTFT grows under a burst', () => {
    const calm = simulate(requests(20, 500), { workers: 1, policy: 'round-robin', mocker });
    const burst = simulate(requests(20, 0), { workers: 1, policy: 'round-robin', mocker });
    const mean = (rs: typeof calm.records) => rs.reduce((s, r) => s + r.firstTokenMs! - r.startMs, 0) / rs.length;
    expect(mean(burst.records)).toBeGreaterThan(3 * mean(calm.records));
  });
});

describe('simulate, disaggregated', () => {
  it('prefills long prompts on the prefill pool, moves their KV, and completes every request exactly', () => {
    const long = requests(20, 50, 4096, 8);
    const short = requests(10, 50, 256, 8).map((r) => ({ ...r, id: `s${r.id}` }));
    const res = simulate([...long, ...short], {
      workers: 2,
      policy: 'least-loaded',
      mocker,
      disagg: { prefillWorkers: 2, options: { minRemotePrefillTokens: 2048 }, kvBytesPerToken: 1000, bandwidthGBps: 1 },
    });
    expect(res.records.filter((r) => r.error)).toEqual([]);
    for (const r of res.records) {
      expect(r.outputTokens).toBe(8);
      expect(r.chunkMs).toHaveLength(8);
    }
    expect(res.disagg).toMatchObject({ remote: 20, local: 10, aggregated: 0 });
    // Each remote request pulls its whole prompt (the decode workers cache none of it): 4096 tokens x 1000 B.
    expect(res.disagg!.transferredBytes).toBe(20 * 4096 * 1000);
    expect(res.disagg!.transferMs).toBeCloseTo(((20 * 4096 * 1000) / 1e9) * 1000, 6);
    expect(Object.keys(res.decisions).some((id) => id.startsWith('prefill-'))).toBe(true);
    // The first token comes from the prefill pass; the second only after the transfer (4.1 ms here).
    for (const r of res.records.filter((x) => !x.id.startsWith('s'))) {
      expect(r.chunkMs[1]! - r.chunkMs[0]!).toBeGreaterThanOrEqual(4.096);
    }
  });

  it('serves aggregated when the prefill pool is empty', () => {
    const res = simulate(requests(5, 10, 4096, 4), { workers: 2, policy: 'kv', mocker, disagg: { prefillWorkers: 0 } });
    expect(res.disagg).toMatchObject({ remote: 0, local: 0, aggregated: 5 });
    expect(res.records.every((r) => r.outputTokens === 4)).toBe(true);
  });
});

describe('policies on a Mooncake slice', () => {
  it('kv routing beats round-robin on KV hit rate and TTFT; every policy replays', async () => {
    const tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
    const loaded = await loadWorkload(`mooncake:${findTrace('mooncake_conversation.jsonl').path}`, {
      tokenizer,
      limit: 500, // the committed fixture slice: CI has no full traces
    });
    const sims = spreadBursts(loaded.requests).map((r) => ({
      id: r.id,
      arrivalMs: r.arrivalMs! * 0.25, // compressed: load makes routing matter
      promptTokenIds: r.promptTokenIds,
      outputTokens: r.outputTokens,
    }));
    const run = (policy: string) => {
      const sim = simulate(sims, { workers: 4, policy, mocker: replayMockerDefaults() });
      return { sim, results: computeResults(sim.records, { label: policy, mode: 'replay' }) };
    };
    const runs = Object.fromEntries(POLICY_IDS.map((p) => [p, run(p)]));
    for (const { sim } of Object.values(runs)) {
      expect(sim.records.filter((r) => r.error)).toEqual([]);
    }
    const kv = runs['kv']!;
    const rr = runs['round-robin']!;
    expect(kv.results.kv_hit_rate!).toBeGreaterThan(rr.results.kv_hit_rate! * 1.3);
    expect(kv.sim.routerHitRate).toBeGreaterThan(rr.sim.routerHitRate);
    expect(kv.results.ttft_ms.mean).toBeLessThan(rr.results.ttft_ms.mean * 0.7);
    // The router's view of the cache matches what the workers report.
    expect(Math.abs(kv.sim.routerHitRate - kv.results.kv_hit_rate!)).toBeLessThan(0.05);
  }, 60_000);
});

describe('EventQueue', () => {
  it('pops in time order, ties in insertion order', () => {
    const q = new EventQueue<string>();
    q.push(5, 'a');
    q.push(1, 'b');
    q.push(5, 'c');
    q.push(0, 'd');
    q.push(1, 'e');
    const out: string[] = [];
    for (let e = q.pop(); e; e = q.pop()) out.push(e.value);
    expect(out).toEqual(['d', 'b', 'e', 'a', 'c']);
  });
});
