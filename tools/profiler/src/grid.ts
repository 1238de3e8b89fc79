// The points a profile measures, for either way of measuring (virtual or live), from the
// engine's card: prompt lengths for the prefill sweep, and for the decode sweep contexts ×
// concurrencies that fit the KV cache without preemption. It measures nothing.
import { ArmatureError, type ModelCard } from '@armature/runtime';

/** The card fields the grid depends on. */
export type EngineShape = Pick<
  ModelCard,
  'blockSize' | 'totalKvBlocks' | 'maxNumSeqs' | 'maxNumBatchedTokens' | 'contextLength'
>;

export interface ProfileGridOptions {
  /** Prefill prompt lengths, ascending (default `islPoints` log-spaced 64 .. min(contextLength - 1, 32768)). */
  isls?: readonly number[];
  /** Points of the default prefill sweep (default 16). */
  islPoints?: number;
  /** Decode contexts, ascending (default `contextPoints` log-spaced 256 .. min(contextLength / 2, 16384)). */
  contexts?: readonly number[];
  /** Points of the default decode sweep (default 6). */
  contextPoints?: number;
  /** Highest decode concurrency (default the engine's maxNumSeqs). */
  maxConcurrency?: number;
  /** Decode steps measured at each point (default 32). */
  decodeSteps?: number;
}

export interface DecodeRow {
  context: number;
  /** 1, 2, 4, ... and the most that fit, ascending. */
  concurrencies: number[];
}

export interface ProfileGrid {
  isls: number[];
  decode: DecodeRow[];
  decodeSteps: number;
}

export const GRID_DEFAULTS = {
  islPoints: 16,
  minIsl: 64,
  maxIsl: 32_768,
  contextPoints: 6,
  minContext: 256,
  maxContext: 16_384,
  decodeSteps: 32,
} as const;

/** `n` integers log-spaced from `lo` to `hi` inclusive, ascending, without repeats. */
export function logSpaced(lo: number, hi: number, n: number): number[] {
  if (n <= 1 || hi <= lo) return [Math.round(Math.min(lo, hi))];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = Math.round(lo * (hi / lo) ** (i / (n - 1)));
    if (out.length === 0 || v > out[out.length - 1]!) out.push(v);
  }
  return out;
}

/**
 * Tokens each decode sequence adds before its measurement ends: the decode steps taken
 * while the others still prefill (chunked under the batch budget), the measured steps,
 * and a block of slack.
 */
export function decodeGrowth(shape: EngineShape, context: number, concurrency: number, steps: number): number {
  const budget = Math.max(1, shape.maxNumBatchedTokens - concurrency);
  return Math.ceil((concurrency * context) / budget) + steps + shape.blockSize;
}

/** Whether `concurrency` sequences of `context` tokens decode `steps` more without running out of KV blocks. */
export function fitsKv(shape: EngineShape, context: number, concurrency: number, steps: number): boolean {
  const tokens = context + decodeGrowth(shape, context, concurrency, steps);
  return tokens <= shape.contextLength && concurrency * Math.ceil(tokens / shape.blockSize) <= shape.totalKvBlocks;
}

/** The most sequences of `context` tokens that fit (0 when not even one does). */
export function maxFittingConcurrency(shape: EngineShape, context: number, limit: number, steps: number): number {
  let lo = 0;
  let hi = limit;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fitsKv(shape, context, mid, steps)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A grid no engine of this shape can run: the user's to fix. */
export function badGrid(message: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_profile_grid', message);
}

function checkedPoints(values: readonly number[], what: string): number[] {
  const out = [...values];
  out.forEach((v, i) => {
    if (!Number.isSafeInteger(v) || v <= 0) throw badGrid(`${what}: expected positive integers, got ${v}`);
    if (i > 0 && v <= out[i - 1]!) throw badGrid(`${what}: must increase`);
  });
  return out;
}

/** The sweep for an engine of this shape; throws when nothing fits. */
export function profileGrid(shape: EngineShape, options: ProfileGridOptions = {}): ProfileGrid {
  const d = GRID_DEFAULTS;
  const decodeSteps = options.decodeSteps ?? d.decodeSteps;
  // The first token must fit in the context: prompt + max_tokens 1.
  const topIsl = Math.min(shape.contextLength - 1, d.maxIsl, shape.totalKvBlocks * shape.blockSize);
  const isls = options.isls
    ? checkedPoints(options.isls, 'isls').filter((isl) => isl <= topIsl)
    : logSpaced(Math.min(d.minIsl, topIsl), topIsl, options.islPoints ?? d.islPoints);
  const topContext = Math.min(Math.floor(shape.contextLength / 2), d.maxContext);
  const contexts = options.contexts
    ? checkedPoints(options.contexts, 'contexts')
    : logSpaced(Math.min(d.minContext, topContext), topContext, options.contextPoints ?? d.contextPoints);
  const limit = Math.min(shape.maxNumSeqs, options.maxConcurrency ?? shape.maxNumSeqs);
  const decode: DecodeRow[] = [];
  for (const context of contexts) {
    const most = maxFittingConcurrency(shape, context, limit, decodeSteps);
    if (most === 0) continue;
    const concurrencies: number[] = [];
    for (let c = 1; c <= most; c *= 2) concurrencies.push(c);
    if (concurrencies[concurrencies.length - 1] !== most) concurrencies.push(most);
    decode.push({ context, concurrencies });
  }
  if (isls.length === 0) throw badGrid(`no prompt length fits the engine's context length ${shape.contextLength}`);
  if (decode.length === 0) throw badGrid('no decode context fits the engine: even one sequence runs out of KV blocks');
  return { isls, decode, decodeSteps };
}
