// What every loader shares: common options, request ids, and the prompt-length check
// that closes each workload (lengths from the ids, plus a re-encoded sample so a
// builder bug shows up as a measured error instead of silently wrong prompts).
import { ArmatureError } from '@armature/runtime';
import type { Tokenizer } from '@armature/tokenizer';
import { createRng } from './random.js';
import type { PromptLengthError, Workload, WorkloadRequest } from './types.js';

export interface DatasetOptions {
  tokenizer: Tokenizer;
  /** Keep only the first `limit` requests; default all. */
  limit?: number;
  /** Cap every request's output tokens; default no cap. */
  outputCap?: number;
  /** Seed for prompt text (and lengths or order where generated); default 0. */
  seed?: number;
  /** Requests whose prompt is re-encoded to check the ids; default 50. */
  verifySample?: number;
}

/** Validated `DatasetOptions` numbers, with defaults filled in. */
export interface ResolvedDatasetOptions {
  limit: number;
  outputCap: number;
  seed: number;
  verifySample: number;
}

export function resolveDatasetOptions(options: DatasetOptions): ResolvedDatasetOptions {
  const check = (name: string, value: number | undefined, min: number, fallback: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new ArmatureError('invalid_argument', 'bad_option', `${name} must be an integer >= ${min}, got ${value}`);
    }
    return value;
  };
  return {
    limit: check('limit', options.limit, 0, Number.MAX_SAFE_INTEGER),
    outputCap: check('outputCap', options.outputCap, 1, Number.MAX_SAFE_INTEGER),
    seed: check('seed', options.seed, 0, 0),
    verifySample: check('verifySample', options.verifySample, 0, 50),
  };
}

/** `prefix-00042`: zero-padded to at least five digits so ids sort in order. */
export function requestId(prefix: string, index: number, total: number): string {
  return `${prefix}-${String(index).padStart(Math.max(5, String(Math.max(0, total - 1)).length), '0')}`;
}

/**
 * Compares each prompt's length with its target; for up to `sample` requests (chosen by
 * `seed`) re-encodes the prompt and uses that length instead, counting id mismatches.
 */
export function measurePromptLengthError(
  requests: readonly WorkloadRequest[],
  tokenizer: Tokenizer,
  sample = 50,
  seed = 0,
): PromptLengthError {
  const sampled = new Set(sampleIndices(requests.length, sample, seed));
  let sumAbs = 0;
  let maxAbs = 0;
  let sumRel = 0;
  let mismatched = 0;
  requests.forEach((request, index) => {
    let actual = request.promptTokenIds.length;
    if (sampled.has(index)) {
      const encoded = tokenizer.encode(request.prompt);
      if (!sameIds(encoded, request.promptTokenIds)) mismatched++;
      actual = encoded.length;
    }
    const abs = Math.abs(actual - request.targetInputTokens);
    sumAbs += abs;
    maxAbs = Math.max(maxAbs, abs);
    sumRel += abs / Math.max(1, request.targetInputTokens);
  });
  const n = Math.max(1, requests.length);
  return { meanAbs: sumAbs / n, maxAbs, meanRel: sumRel / n, sampled: sampled.size, mismatched };
}

export function finishWorkload(
  name: string,
  requests: WorkloadRequest[],
  tokenizer: Tokenizer,
  options: ResolvedDatasetOptions,
): Workload {
  return {
    name,
    requests,
    tokenizer: tokenizer.id,
    promptLengthError: measurePromptLengthError(requests, tokenizer, options.verifySample, options.seed),
  };
}

function sampleIndices(total: number, sample: number, seed: number): number[] {
  const count = Math.min(total, sample);
  const rng = createRng(seed ^ 0x5eed);
  const picked = new Map<number, number>(); // sparse partial Fisher-Yates
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const j = rng.int(i, total - 1);
    const atJ = picked.get(j) ?? j;
    picked.set(j, picked.get(i) ?? i);
    out.push(atJ);
  }
  return out;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
