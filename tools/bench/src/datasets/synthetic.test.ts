import { loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from './random.js';
import { generateSynthetic, sampleLength } from './synthetic.js';

describe('generateSynthetic', () => {
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
  });

  it('builds fixed-length unique prompts of exactly the asked length', async () => {
    const workload = await generateSynthetic({ tokenizer, count: 100, inputTokens: 512, outputTokens: 64 });
    expect(workload.name).toBe('synthetic:count=100,input=512,output=64,seed=0');
    expect(workload.requests).toHaveLength(100);
    expect(workload.requests[7]!.id).toBe('synthetic-00007');
    expect(workload.promptLengthError).toEqual({ meanAbs: 0, maxAbs: 0, meanRel: 0, sampled: 50, mismatched: 0 });
    for (const request of workload.requests) {
      expect(request).toMatchObject({ targetInputTokens: 512, outputTokens: 64 });
      expect(request.arrivalMs).toBeUndefined();
      expect(tokenizer.encode(request.prompt)).toEqual(request.promptTokenIds);
    }
    expect(new Set(workload.requests.map((r) => r.prompt)).size).toBe(100);
  });

  it('draws uniform and normal lengths from the seed', async () => {
    const uniform = await generateSynthetic({
      tokenizer,
      count: 200,
      inputTokens: { min: 10, max: 20 },
      outputTokens: { min: 1, max: 3 },
      seed: 5,
    });
    const inputs = uniform.requests.map((r) => r.targetInputTokens);
    expect(Math.min(...inputs)).toBe(10);
    expect(Math.max(...inputs)).toBe(20);
    expect(new Set(uniform.requests.map((r) => r.outputTokens))).toEqual(new Set([1, 2, 3]));
    uniform.requests.forEach((r) => expect(r.promptTokenIds).toHaveLength(r.targetInputTokens));

    const again = await generateSynthetic({
      tokenizer,
      count: 200,
      inputTokens: { min: 10, max: 20 },
      outputTokens: { min: 1, max: 3 },
      seed: 5,
    });
    expect(again.requests).toEqual(uniform.requests);

    const normal = await generateSynthetic({
      tokenizer,
      count: 300,
      inputTokens: { mean: 20, stddev: 30 },
      outputTokens: { mean: 8 },
      seed: 1,
    });
    const lengths = normal.requests.map((r) => r.targetInputTokens);
    expect(Math.min(...lengths)).toBe(1);
    expect(lengths.filter((n) => n === 1).length).toBeGreaterThan(30);
    expect(Math.max(...lengths)).toBeGreaterThan(60);
    expect(normal.requests.every((r) => r.outputTokens === 8)).toBe(true);
    expect(normal.promptLengthError.maxAbs).toBe(0);
  });

  it('samples a normal with about the asked mean and spread', () => {
    const rng = createRng(9);
    const draws = Array.from({ length: 20_000 }, () => sampleLength({ mean: 1000, stddev: 100 }, rng));
    const mean = draws.reduce((s, x) => s + x, 0) / draws.length;
    const sd = Math.sqrt(draws.reduce((s, x) => s + (x - mean) ** 2, 0) / draws.length);
    expect(mean).toBeGreaterThan(995);
    expect(mean).toBeLessThan(1005);
    expect(sd).toBeGreaterThan(97);
    expect(sd).toBeLessThan(103);
  });

  it('rejects bad counts and lengths', async () => {
    await expect(generateSynthetic({ tokenizer, count: 0, inputTokens: 5, outputTokens: 5 })).rejects.toThrow(/count/);
    await expect(generateSynthetic({ tokenizer, count: 1, inputTokens: 0, outputTokens: 5 })).rejects.toThrow(
      /inputTokens/,
    );
    await expect(
      generateSynthetic({ tokenizer, count: 1, inputTokens: { min: 5, max: 4 }, outputTokens: 5 }),
    ).rejects.toThrow(/inputTokens: max must be/);
    await expect(
      generateSynthetic({ tokenizer, count: 1, inputTokens: 5, outputTokens: { mean: 5, stddev: -1 } }),
    ).rejects.toThrow(/outputTokens: stddev/);
    await expect(
      generateSynthetic({ tokenizer, count: 1, inputTokens: 5, outputTokens: 5, limit: -1 }),
    ).rejects.toThrow(/limit/);
  });
});
