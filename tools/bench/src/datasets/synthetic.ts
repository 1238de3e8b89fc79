// Synthetic workload: `count` unique prompts with input and output lengths drawn from a
// fixed value, a uniform range, or a normal clipped at 1, all from one seed.
import { ArmatureError } from '@armature/runtime';
import { PromptBuilder } from './prompt-builder.js';
import { createRng, deriveSeed, hashString, type Rng } from './random.js';
import type { Workload, WorkloadRequest } from './types.js';
import { finishWorkload, requestId, resolveDatasetOptions, type DatasetOptions } from './workload.js';

/**
 * A token length: a fixed number, `{ mean, stddev }` (normal, rounded, clipped at 1;
 * stddev 0 or absent means fixed) or `{ min, max }` (uniform integer, both inclusive).
 */
export type LengthDistribution = number | { mean: number; stddev?: number } | { min: number; max: number };

export interface SyntheticOptions extends DatasetOptions {
  count: number;
  inputTokens: LengthDistribution;
  outputTokens: LengthDistribution;
}

/** Throws unless `dist` can only yield lengths >= 1. */
export function validateLengthDistribution(dist: LengthDistribution, name: string): void {
  const bad = (why: string): never => {
    throw new ArmatureError('invalid_argument', 'bad_option', `${name}: ${why}`);
  };
  if (typeof dist === 'number') {
    if (!Number.isSafeInteger(dist) || dist < 1) bad(`must be an integer >= 1, got ${dist}`);
  } else if ('min' in dist) {
    if (!Number.isSafeInteger(dist.min) || dist.min < 1) bad(`min must be an integer >= 1, got ${dist.min}`);
    if (!Number.isSafeInteger(dist.max) || dist.max < dist.min) bad(`max must be an integer >= min, got ${dist.max}`);
  } else {
    if (!Number.isFinite(dist.mean) || dist.mean < 1) bad(`mean must be a number >= 1, got ${dist.mean}`);
    const stddev = dist.stddev ?? 0;
    if (!Number.isFinite(stddev) || stddev < 0) bad(`stddev must be a number >= 0, got ${stddev}`);
  }
}

/** Draws one length from `dist`. */
export function sampleLength(dist: LengthDistribution, rng: Rng): number {
  if (typeof dist === 'number') return dist;
  if ('min' in dist) return rng.int(dist.min, dist.max);
  return Math.max(1, Math.round(dist.mean + (dist.stddev ?? 0) * rng.normal()));
}

/** Builds `count` requests (fewer with `limit`) with seeded lengths and unique prompts. */
export async function generateSynthetic(options: SyntheticOptions): Promise<Workload> {
  const resolved = resolveDatasetOptions(options);
  if (!Number.isSafeInteger(options.count) || options.count < 1) {
    throw new ArmatureError('invalid_argument', 'bad_option', `count must be an integer >= 1, got ${options.count}`);
  }
  validateLengthDistribution(options.inputTokens, 'inputTokens');
  validateLengthDistribution(options.outputTokens, 'outputTokens');
  const builder = await PromptBuilder.create(options.tokenizer, { seed: resolved.seed });
  const rng = createRng(deriveSeed(resolved.seed, hashString('synthetic-lengths')));
  const count = Math.min(options.count, resolved.limit);
  const requests: WorkloadRequest[] = [];
  for (let index = 0; index < count; index++) {
    const inputTokens = sampleLength(options.inputTokens, rng);
    const outputTokens = sampleLength(options.outputTokens, rng);
    requests.push({
      id: requestId('synthetic', index, count),
      ...builder.compose([builder.text('synthetic', index, inputTokens)]),
      targetInputTokens: inputTokens,
      outputTokens: Math.min(resolved.outputCap, outputTokens),
    });
  }
  const name = `synthetic:count=${options.count},input=${formatLength(options.inputTokens)},output=${formatLength(
    options.outputTokens,
  )},seed=${resolved.seed}`;
  return finishWorkload(name, requests, options.tokenizer, resolved);
}

/** The spec form of a length: `512`, `256..1024` or `512~128`. */
export function formatLength(dist: LengthDistribution): string {
  if (typeof dist === 'number') return String(dist);
  if ('min' in dist) return `${dist.min}..${dist.max}`;
  return dist.stddev ? `${dist.mean}~${dist.stddev}` : String(dist.mean);
}
