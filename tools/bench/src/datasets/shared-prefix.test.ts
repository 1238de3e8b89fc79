import { loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSharedPrefix, type SharedPrefixOptions } from './shared-prefix.js';

describe('generateSharedPrefix', () => {
  let tokenizer: Tokenizer;
  let options: SharedPrefixOptions;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
    options = {
      tokenizer,
      groups: 4,
      promptsPerGroup: 5,
      systemPromptTokens: 300,
      questionTokens: 40,
      outputTokens: 64,
      seed: 3,
    };
  });

  it('shares a system prompt within a group and nowhere else', async () => {
    const workload = await generateSharedPrefix(options);
    expect(workload.requests).toHaveLength(20);
    const system = new Map<string, string>();
    for (const request of workload.requests) {
      expect(request.prefixGroup).toMatch(/^shared-prefix-g0[0-3]$/);
      expect(request.id.startsWith(`${request.prefixGroup}-p`)).toBe(true);
      expect(request).toMatchObject({ targetInputTokens: 340, outputTokens: 64 });
      const head = request.promptTokenIds.slice(0, 300).join();
      expect(system.get(request.prefixGroup!) ?? head).toBe(head);
      system.set(request.prefixGroup!, head);
    }
    expect(new Set(system.values()).size).toBe(4);
    expect(new Set(workload.requests.map((r) => r.promptTokenIds.slice(300).join())).size).toBe(20);
    expect(new Set(workload.requests.map((r) => r.id)).size).toBe(20);
  });

  it('builds prompts of exactly the asked length', async () => {
    const workload = await generateSharedPrefix(options);
    expect(workload.promptLengthError).toEqual({ meanAbs: 0, maxAbs: 0, meanRel: 0, sampled: 20, mismatched: 0 });
    for (const request of workload.requests) expect(tokenizer.encode(request.prompt)).toEqual(request.promptTokenIds);
  });

  it('interleaves groups in an order fixed by the seed', async () => {
    const a = await generateSharedPrefix(options);
    const b = await generateSharedPrefix(options);
    const c = await generateSharedPrefix({ ...options, seed: 4 });
    const order = (w: typeof a): string[] => w.requests.map((r) => r.id);
    expect(order(b)).toEqual(order(a));
    expect(order(c)).not.toEqual(order(a));
    expect(a.requests.map((r) => r.prompt)).toEqual(b.requests.map((r) => r.prompt));
    const groups = a.requests.map((r) => r.prefixGroup);
    expect(groups).not.toEqual([...groups].sort());
    expect(new Set(groups.slice(0, 8)).size).toBeGreaterThan(1);
  });

  it('honours limit and outputCap, and allows an empty question', async () => {
    const limited = await generateSharedPrefix({ ...options, limit: 7, outputCap: 10, questionTokens: 0 });
    expect(limited.requests).toHaveLength(7);
    expect(limited.requests.every((r) => r.outputTokens === 10 && r.promptTokenIds.length === 300)).toBe(true);
  });

  it('rejects bad sizes', async () => {
    await expect(generateSharedPrefix({ ...options, groups: 0 })).rejects.toThrow(/groups must be an integer >= 1/);
    await expect(generateSharedPrefix({ ...options, systemPromptTokens: 0, questionTokens: 0 })).rejects.toThrow(
      /questionTokens must be an integer >= 1/,
    );
    await expect(generateSharedPrefix({ ...options, outputTokens: 2.5 })).rejects.toThrow(/outputTokens/);
  });
});
