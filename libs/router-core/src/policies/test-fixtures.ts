// Builders shared by the policy tests: worker views with every field filled in, route
// inputs, and reproducible random sources. Test support only; not exported by the package.
import { mulberry32, type ModelCard } from '@armature/runtime';
import type { KvOverlap, PolicyEnv, PublishedLoad, RouteInput, TrackedLoad, WorkerView } from '../types.js';

type TierOverlap = Omit<KvOverlap, 'blocks'>;

export const BLOCK_SIZE = 16;

export const testCard: ModelCard = {
  model: 'm',
  blockSize: BLOCK_SIZE,
  totalKvBlocks: 1000,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 512,
  contextLength: 4096,
  tokenizer: 't',
  chatTemplate: 'chatml',
  eosTokenIds: [0],
  engine: 'mocker',
};

export interface WorkerOptions {
  dpRank?: number;
  /** Fields of the published load (the rest 0); pass `published: undefined` for none. */
  published?: Partial<PublishedLoad> | undefined;
  tracked?: Partial<TrackedLoad>;
  /** Cached prefix per tier (the rest 0); `blocks` is their sum. */
  overlap?: Partial<TierOverlap>;
  activePrefixBlocks?: number;
  indexedBlocks?: number;
}

/** A worker view with every field filled in: idle, nothing cached, unless `options` say otherwise. */
export function worker(instanceId: string, options: WorkerOptions = {}): WorkerView {
  const tiers: TierOverlap = { device: 0, host: 0, disk: 0, remote: 0, ...options.overlap };
  const published =
    'published' in options && options.published === undefined
      ? undefined
      : {
          activeDecodeBlocks: 0,
          activePrefillTokens: 0,
          waitingRequests: 0,
          runningRequests: 0,
          kvUsage: 0,
          ...options.published,
        };
  return {
    instanceId,
    grpcAddress: '127.0.0.1:1',
    dpRank: options.dpRank ?? 0,
    card: testCard,
    published,
    tracked: { requests: 0, prefillTokens: 0, decodeBlocks: 0, ...options.tracked },
    overlap: { ...tiers, blocks: tiers.device + tiers.host + tiers.disk + tiers.remote },
    activePrefixBlocks: options.activePrefixBlocks ?? 0,
    indexedBlocks: options.indexedBlocks ?? 0,
  };
}

/**
 * A route input of `promptBlocks` blocks. `prefix` seeds the block hashes: two inputs with
 * the same prefix share their hashes (a full block each; the last block is partial).
 */
export function routeInput(promptBlocks: number, prefix = 1, requestId = 'r'): RouteInput {
  const fullBlocks = Math.max(0, promptBlocks - 1);
  const blockHashes = new Uint32Array(fullBlocks * 2);
  for (let i = 0; i < fullBlocks; i++) {
    blockHashes[2 * i] = (prefix * 0x9e3779b1 + i * 0x85ebca6b) >>> 0;
    blockHashes[2 * i + 1] = prefix;
  }
  const tokenCount = fullBlocks * BLOCK_SIZE + (promptBlocks > 0 ? 1 : 0);
  return {
    requestId,
    model: 'm',
    tokenIds: Array.from({ length: tokenCount }, (_, i) => i),
    promptBlocks,
    blockHashes,
  };
}

/** A seeded uniform source in [0, 1), so sampling tests are reproducible. */
export const seededRandom = mulberry32;

/** A policy env with a seeded random source and a clock the test moves by hand. */
export function testEnv(seed = 1): PolicyEnv & { clock: { ms: number } } {
  const clock = { ms: 1_000_000 };
  return { random: seededRandom(seed), now: () => clock.ms, clock };
}

/** How many times each instance id was chosen in `draws` calls. */
export function tally(draws: number, chooseOne: () => WorkerView): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < draws; i++) {
    const id = chooseOne().instanceId;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}
