// How a request's sampling settings reach node-llama-cpp's evaluate(). Left without a seed,
// node-llama-cpp seeds each evaluation with the time in whole seconds, so unseeded requests
// of the same second sampled the same text; each unseeded request draws its own seed here.
import { randomInt } from 'node:crypto';
import type { EngineRequest } from '../types.js';

/** The sampling part of LlamaContextSequence.evaluate's options. */
export interface EvaluationSampling {
  temperature: number;
  topP?: number;
  topK?: number;
  seed: number;
}

/** llama.cpp seeds are uint32; 0xFFFFFFFF (LLAMA_DEFAULT_SEED) would ask it to pick one itself. */
const SEED_LIMIT = 0xffff_ffff;

/** A seed for an unseeded request: uniform in [0, 2^32 - 1). */
export const randomSeed = (): number => randomInt(SEED_LIMIT);

/**
 * The evaluation's sampling: temperature (default 1), topP and topK when given, and the
 * request's seed, else a fresh one from `drawSeed` (default randomSeed).
 */
export function evaluationSampling(
  sampling: EngineRequest['sampling'],
  drawSeed: () => number = randomSeed,
): EvaluationSampling {
  const { temperature, topP, topK, seed } = sampling;
  return {
    temperature: temperature ?? 1,
    ...(topP === undefined ? {} : { topP }),
    ...(topK === undefined ? {} : { topK }),
    seed: seed ?? drawSeed(),
  };
}
