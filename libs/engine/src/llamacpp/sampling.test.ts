// Sampling options for node-llama-cpp: a seeded request keeps its seed, an unseeded one gets
// a fresh random seed (node-llama-cpp's own default, the time in seconds, repeats).
import { describe, expect, it } from 'vitest';
import { evaluationSampling, randomSeed } from './sampling.js';

describe('evaluationSampling', () => {
  it('keeps a given seed and the other settings', () => {
    expect(evaluationSampling({ temperature: 0.7, topP: 0.9, topK: 40, seed: 42 })).toEqual({
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      seed: 42,
    });
    expect(evaluationSampling({ seed: 0 }).seed).toBe(0);
  });

  it('draws a different seed for each unseeded request, in llama.cpp seed range', () => {
    const seeds = Array.from({ length: 8 }, () => evaluationSampling({ temperature: 1 }).seed);
    expect(new Set(seeds).size).toBe(8);
    for (const s of seeds) expect(Number.isInteger(s) && s >= 0 && s < 0xffff_ffff).toBe(true);
    expect(evaluationSampling({}, () => 7)).toEqual({ temperature: 1, seed: 7 });
    expect(randomSeed()).not.toBe(randomSeed());
  });
});
