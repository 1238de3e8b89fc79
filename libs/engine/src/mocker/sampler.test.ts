// The mocker's draws are keyed by (seed, position): a continuation of a seeded request
// (after a prefill worker's first token, or migrated mid-stream) draws what an
// uninterrupted run would have, and the draws are spread evenly.
import { describe, expect, it } from 'vitest';
import { createMockerEngine } from './engine.js';
import { requestSeed, TokenSampler } from './sampler.js';
import type { EngineOutput } from '../types.js';

const OPTIONS = { vocabRange: [100, 50_100] as const, eosTokenId: 7, eosProbability: 0.05, ignoreEos: false };

describe('TokenSampler', () => {
  it('draws the same token at the same position, whatever came before', () => {
    const full = new TokenSampler(42n, OPTIONS, 10);
    const run = Array.from({ length: 50 }, () => full.next());
    const resumed = new TokenSampler(42n, OPTIONS, 30);
    expect(Array.from({ length: 30 }, () => resumed.next())).toEqual(run.slice(20));
    const other = new TokenSampler(43n, OPTIONS, 10);
    expect(Array.from({ length: 50 }, () => other.next())).not.toEqual(run);
  });

  it('spreads ids over the vocabulary and ends with EOS at about its probability', () => {
    const s = new TokenSampler(requestSeed([1, 2, 3], undefined), OPTIONS, 3);
    const draws = Array.from({ length: 20_000 }, () => s.next());
    const eos = draws.filter((t) => t === 7).length / draws.length;
    expect(eos).toBeGreaterThan(0.04);
    expect(eos).toBeLessThan(0.06);
    const ids = draws.filter((t) => t !== 7);
    expect(Math.min(...ids)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...ids)).toBeLessThan(50_100);
    const buckets = new Array(10).fill(0);
    for (const t of ids) buckets[Math.floor(((t - 100) / 50_000) * 10)]++;
    for (const b of buckets) expect(b / ids.length).toBeGreaterThan(0.08);
  });
});

describe('mocker continuation', () => {
  it('a seeded request resent with prompt + its first k tokens generates exactly the rest', async () => {
    const engine = createMockerEngine({ speedup: 1e6 });
    try {
      const collect = async (tokenIds: number[], maxTokens: number): Promise<number[]> => {
        const out: number[] = [];
        const stream = engine.generate(
          {
            requestId: `r${tokenIds.length}`,
            tokenIds,
            sampling: { seed: 9 },
            stop: { maxTokens, ignoreEos: false, stopTokenIds: [] },
          },
          new AbortController().signal,
        );
        for await (const o of stream as AsyncIterable<EngineOutput>) out.push(...o.tokenIds);
        return out;
      };
      const prompt = Array.from({ length: 40 }, (_, i) => 500 + i);
      const full = await collect(prompt, 30);
      const k = Math.min(12, full.length - 1);
      const rest = await collect([...prompt, ...full.slice(0, k)], 30 - k);
      expect(rest).toEqual(full.slice(k));
    } finally {
      await engine.close();
    }
  });
});
