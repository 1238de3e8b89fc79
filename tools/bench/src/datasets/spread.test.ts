import { describe, expect, it } from 'vitest';
import { spreadBursts } from './spread.js';
import type { WorkloadRequest } from './types.js';

const req = (id: string, arrivalMs: number): WorkloadRequest => ({
  id,
  arrivalMs,
  prompt: '',
  promptTokenIds: [],
  targetInputTokens: 0,
  outputTokens: 1,
});

describe('spreadBursts', () => {
  it('spreads equal timestamps evenly up to the next one, keeping order', () => {
    const out = spreadBursts([req('a', 0), req('b', 0), req('c', 0), req('d', 3000), req('e', 6000), req('f', 6000)]);
    // The last burst has no next timestamp: it spreads over the mean gap so far (6000 / 4).
    expect(out.map((r) => r.arrivalMs)).toEqual([0, 1000, 2000, 3000, 6000, 6750]);
    expect(out.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });
  it('leaves distinct timestamps alone and does not modify its input', () => {
    const input = [req('a', 0), req('b', 5), req('c', 9)];
    expect(spreadBursts(input).map((r) => r.arrivalMs)).toEqual([0, 5, 9]);
    const burst = [req('a', 0), req('b', 0)];
    spreadBursts(burst);
    expect(burst[1]!.arrivalMs).toBe(0);
  });
});
