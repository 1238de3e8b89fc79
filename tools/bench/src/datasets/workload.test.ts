import { loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSynthetic } from './synthetic.js';
import { measurePromptLengthError, requestId, resolveDatasetOptions } from './workload.js';

describe('measurePromptLengthError', () => {
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
  });

  it('measures length errors and counts re-encoding mismatches without throwing', async () => {
    const { requests } = await generateSynthetic({ tokenizer, count: 4, inputTokens: 100, outputTokens: 1 });
    requests[0]!.targetInputTokens = 110; // 10 short of its target
    requests[1]!.promptTokenIds = requests[1]!.promptTokenIds.slice(0, 80); // ids lie about the prompt
    requests[2]!.promptTokenIds = [...requests[2]!.promptTokenIds].reverse(); // right length, wrong ids

    const unchecked = measurePromptLengthError(requests, tokenizer, 0);
    expect(unchecked).toEqual({
      meanAbs: 30 / 4,
      maxAbs: 20,
      meanRel: (10 / 110 + 20 / 100) / 4,
      sampled: 0,
      mismatched: 0,
    });

    const checked = measurePromptLengthError(requests, tokenizer, 10);
    expect(checked).toEqual({ meanAbs: 10 / 4, maxAbs: 10, meanRel: 10 / 110 / 4, sampled: 4, mismatched: 2 });
  });

  it('is zero for an empty workload', () => {
    expect(measurePromptLengthError([], tokenizer)).toEqual({
      meanAbs: 0,
      maxAbs: 0,
      meanRel: 0,
      sampled: 0,
      mismatched: 0,
    });
  });
});

describe('options and ids', () => {
  it('pads ids to five digits or the width of the largest index', () => {
    expect(requestId('azure', 42, 8819)).toBe('azure-00042');
    expect(requestId('x', 7, 1_000_001)).toBe('x-0000007');
  });

  it('fills defaults and rejects bad values', () => {
    expect(resolveDatasetOptions({} as never)).toEqual({
      limit: Number.MAX_SAFE_INTEGER,
      outputCap: Number.MAX_SAFE_INTEGER,
      seed: 0,
      verifySample: 50,
    });
    expect(() => resolveDatasetOptions({ outputCap: 0 } as never)).toThrow(/outputCap must be an integer >= 1/);
    expect(() => resolveDatasetOptions({ seed: 1.5 } as never)).toThrow(/seed/);
  });
});
