import { loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadWorkload, parseWorkloadSpec } from './index.js';
import { findTrace } from './trace-files.js';

describe('parseWorkloadSpec', () => {
  it('parses trace specs, keeping colons in the path', () => {
    expect(parseWorkloadSpec('mooncake:/data/trace.jsonl')).toEqual({ kind: 'mooncake', path: '/data/trace.jsonl' });
    expect(parseWorkloadSpec('azure:C:/traces/code.csv')).toEqual({ kind: 'azure', path: 'C:/traces/code.csv' });
  });

  it('parses shared-prefix and synthetic params in any order', () => {
    expect(parseWorkloadSpec('shared-prefix:groups=8,prompts=16,system=1024,question=128,output=64')).toEqual({
      kind: 'shared-prefix',
      groups: 8,
      promptsPerGroup: 16,
      systemPromptTokens: 1024,
      questionTokens: 128,
      outputTokens: 64,
    });
    expect(parseWorkloadSpec('synthetic:output=64, input=512 ,count=100,seed=9')).toEqual({
      kind: 'synthetic',
      count: 100,
      inputTokens: 512,
      outputTokens: 64,
      seed: 9,
    });
    expect(parseWorkloadSpec('synthetic:count=5,input=256..1024,output=128~32.5')).toMatchObject({
      inputTokens: { min: 256, max: 1024 },
      outputTokens: { mean: 128, stddev: 32.5 },
    });
  });

  it.each([
    ['mooncake', /expected <kind>:<path or params>/],
    ['mooncake:', /missing trace path/],
    ['sharegpt:x.json', /unknown kind "sharegpt"/],
    ['synthetic:count=100,input=512', /missing output/],
    ['synthetic:count=100,input=512,output=64,extra=1', /unknown key "extra"/],
    ['synthetic:count=1,count=2,input=5,output=5', /duplicate key "count"/],
    ['synthetic:count=ten,input=5,output=5', /count must be a non-negative integer/],
    ['synthetic:count=1,input=5..2,output=5', /input: max must be an integer >= min/],
    ['synthetic:count=1,input=0,output=5', /input: must be an integer >= 1/],
    ['synthetic:count=1,input=5-9,output=5', /input must be N, A\.\.B or MEAN~STDDEV/],
    ['shared-prefix:groups=8,prompts=16,system=1024,question', /expected key=value/],
    ['shared-prefix:groups=-8,prompts=16,system=1024,question=1,output=1', /groups must be a non-negative integer/],
  ])('rejects %j', (spec, message) => {
    expect(() => parseWorkloadSpec(spec)).toThrow(message);
    expect(() => parseWorkloadSpec(spec)).toThrow(/^bad workload spec/);
  });
});

describe('loadWorkload', () => {
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
  });

  it('loads every kind', async () => {
    const mooncake = await loadWorkload(`mooncake:${findTrace('mooncake_conversation.jsonl').path}`, {
      tokenizer,
      limit: 5,
    });
    expect(mooncake.requests).toHaveLength(5);
    const azure = await loadWorkload(`azure:${findTrace('azure2023_code.csv').path}`, { tokenizer, limit: 5 });
    expect(azure.requests[0]!.targetInputTokens).toBe(4808);
    const shared = await loadWorkload('shared-prefix:groups=2,prompts=3,system=64,question=8,output=4', { tokenizer });
    expect(shared.requests).toHaveLength(6);
    const synthetic = await loadWorkload('synthetic:count=10,input=100..200,output=16,seed=2', { tokenizer, seed: 7 });
    expect(synthetic.name).toBe('synthetic:count=10,input=100..200,output=16,seed=2');
    for (const workload of [mooncake, azure, shared, synthetic]) {
      expect(workload.promptLengthError.maxAbs).toBe(0);
      expect(workload.promptLengthError.mismatched).toBe(0);
    }
  });

  it('rejects a missing trace file and a bad spec', async () => {
    await expect(loadWorkload('azure:/nonexistent/trace.csv', { tokenizer })).rejects.toThrow(/ENOENT/);
    await expect(loadWorkload('nope', { tokenizer })).rejects.toThrow(/bad workload spec/);
  });
});
