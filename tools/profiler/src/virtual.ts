// The mocker's profile in virtual time: the same MockerCore a live mocker worker runs,
// stepped by hand with the clock advanced by each pass's simulated duration, so a whole
// sweep takes milliseconds and gives exactly the timing the live engine sleeps through
// (speedup included). Each point gets a fresh core and fresh random prompts: no prefix reuse.
import { compileMockerOptions, MockerCore, mockerCard, type MockerConfig, type MockerOptions } from '@armature/engine';
import { PROFILE_SCHEMA, type DecodePoint, type PrefillPoint, type Profile } from '@armature/planner-core';
import { profileGrid, type DecodeRow, type ProfileGridOptions } from './grid.js';
import { randomPrompt, seededRandom } from './prompts.js';

/** Passes a point may take before it counts as stuck (a scheduler that makes no progress). */
const MAX_PASSES = 1_000_000;

function request(id: string, tokenIds: number[], maxTokens: number) {
  return {
    requestId: id,
    tokenIds,
    sampling: { seed: 0 },
    stop: { maxTokens, ignoreEos: true, stopTokenIds: [] as number[] },
  };
}

/** TTFT of one `isl`-token prompt alone on an idle engine: the passes until its first token. */
export function virtualPrefillPoint(config: MockerConfig, isl: number, random: () => number): PrefillPoint {
  const core = new MockerCore(config);
  core.add(request('prefill', randomPrompt(isl, random), 1), 0);
  let ttftMs = 0;
  for (let pass = 0; pass < MAX_PASSES && core.hasWork(); pass++) {
    const step = core.step(ttftMs);
    ttftMs += step.durationMs;
    if (step.outputs.length > 0) return { isl, ttftMs, tokensPerSecond: (isl * 1000) / ttftMs };
  }
  throw new Error(`the mocker produced no first token for a ${isl}-token prompt`);
}

/**
 * `concurrency` sequences of `context` prompt tokens: once every one has its first token,
 * the mean duration of `steps` passes (each decodes one token of every sequence) and the
 * mean KV usage they ran at.
 */
export function virtualDecodePoint(
  config: MockerConfig,
  context: number,
  concurrency: number,
  steps: number,
  random: () => number,
): DecodePoint {
  const core = new MockerCore(config);
  const maxTokens = config.contextLength - context;
  for (let i = 0; i < concurrency; i++) core.add(request(`decode-${i}`, randomPrompt(context, random), maxTokens), 0);
  let now = 0;
  const started = new Set<string>();
  for (let pass = 0; started.size < concurrency; pass++) {
    if (pass >= MAX_PASSES || !core.hasWork()) throw new Error(`decode point ${context}×${concurrency} never started`);
    const step = core.step(now);
    now += step.durationMs;
    for (const out of step.outputs) started.add(out.requestId);
  }
  let totalMs = 0;
  let kvUsage = 0;
  for (let i = 0; i < steps; i++) {
    // The usage the pass is timed at: taken before it commits its tokens.
    kvUsage += core.load().kvUsage;
    const step = core.step(now);
    if (step.decodeSequences !== concurrency || step.preempted.length > 0)
      throw new Error(`decode point ${context}×${concurrency}: a pass decoded ${step.decodeSequences} sequences`);
    totalMs += step.durationMs;
    now += step.durationMs;
  }
  const itlMs = totalMs / steps;
  return { context, concurrency, kvUsage: kvUsage / steps, itlMs, tokensPerSecond: (concurrency * 1000) / itlMs };
}

export interface VirtualProfileOptions extends ProfileGridOptions {
  /** Seed of the random prompts (default 1): the same options give the same profile. */
  seed?: number;
  /** createdAt (default now). */
  createdAt?: Date;
}

/** Batch-1 TTFT at each prompt length, in virtual time. */
export function virtualPrefillPoints(
  config: MockerConfig,
  isls: readonly number[],
  random: () => number,
): PrefillPoint[] {
  return isls.map((isl) => virtualPrefillPoint(config, isl, random));
}

/** The decode sweep, in virtual time. */
export function virtualDecodePoints(
  config: MockerConfig,
  rows: readonly DecodeRow[],
  steps: number,
  random: () => number,
): DecodePoint[] {
  return rows.flatMap(({ context, concurrencies }) =>
    concurrencies.map((c) => virtualDecodePoint(config, context, c, steps, random)),
  );
}

/** The mocker's profile over the grid (defaults: profileGrid's), measured in virtual time. */
export function profileMockerVirtual(mockerOptions: MockerOptions = {}, grid: VirtualProfileOptions = {}): Profile {
  const config = compileMockerOptions(mockerOptions);
  const card = mockerCard(config);
  const { isls, decode, decodeSteps } = profileGrid(card, grid);
  const random = seededRandom(grid.seed ?? 1);
  return {
    schema: PROFILE_SCHEMA,
    model: config.model,
    engine: 'mocker',
    engineArgs: { ...mockerOptions },
    createdAt: (grid.createdAt ?? new Date()).toISOString(),
    source: 'virtual',
    prefill: { points: virtualPrefillPoints(config, isls, random) },
    decode: {
      maxKvTokens: card.totalKvBlocks * card.blockSize,
      points: virtualDecodePoints(config, decode, decodeSteps, random),
    },
  };
}
