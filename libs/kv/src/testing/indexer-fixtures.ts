// Helpers shared by the indexer's unit and property tests (not part of the build).
import type { BlockRemoved, BlockStored, KvMedium } from '../events.js';
import { computeBlockHashes, computeSequenceHashes } from '../hashing.js';
import type { OverlapScores, WorkerOverlap } from '../indexer/types.js';

export const MASK64 = (1n << 64n) - 1n;
export const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);

export function stored(blockHashes: bigint[], options: Partial<BlockStored> = {}): BlockStored {
  return {
    type: 'BlockStored',
    blockHashes,
    parentBlockHash: null,
    tokenIds: [],
    blockSize: 4,
    loraName: null,
    medium: 'device',
    ...options,
  };
}

export function removed(blockHashes: bigint[], medium: KvMedium = 'device'): BlockRemoved {
  return { type: 'BlockRemoved', blockHashes, medium };
}

/** Sorted, for comparing: findMatches promises no order. */
export function sorted(scores: OverlapScores): WorkerOverlap[] {
  return [...scores.workers].sort((a, b) => a.instanceId.localeCompare(b.instanceId) || a.dpRank - b.dpRank);
}

export function overlap(instanceId: string, depth: number, tiers: Partial<WorkerOverlap['tiers']> = {}, dpRank = 0) {
  const full = { device: 0, host: 0, disk: 0, remote: 0, ...tiers };
  if (Object.keys(tiers).length === 0) full.device = depth;
  return { instanceId, dpRank, depth, tiers: full };
}

/** Our sequence hashes of `tokens` in blocks of `blockSize`. */
export const ours = (tokens: number[], blockSize = 4, salt?: bigint): bigint[] =>
  computeSequenceHashes(computeBlockHashes(tokens, blockSize, salt));
