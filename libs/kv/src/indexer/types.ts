// What the KV indexer answers: for a prompt's sequence hashes, how deep each worker's cached
// prefix goes and in which storage tier each matched block lives. Shared by the precise
// indexer (fed by KV events) and the approximate one (fed by the router's own decisions).
import type { KvMedium } from '../events.js';

/**
 * How a worker's KV events name blocks.
 * - `armature`: block hashes are our sequence hashes (computeSequenceHashes over
 *   computeBlockHashes), so the indexer keys on them as they are (our engines).
 * - `opaque`: engine-private hashes (vLLM, SGLang); the indexer recomputes ours from each
 *   event's token ids and parent, and keeps a per-worker map engine hash -> our hash.
 */
export type KvHashScheme = 'armature' | 'opaque';

/** Matched blocks per tier; each matched block is credited to the fastest tier holding it. */
export interface TierOverlap {
  device: number;
  host: number;
  disk: number;
  remote: number;
}

/** One worker's (instance, data-parallel rank) cached prefix of a query. */
export interface WorkerOverlap {
  instanceId: string;
  dpRank: number;
  /** Leading query blocks the worker holds in any tier (device + host + disk + remote). */
  depth: number;
  tiers: TierOverlap;
}

export interface OverlapScores {
  /** Blocks in the query. */
  queryBlocks: number;
  /** Workers with depth >= 1, in no particular order. */
  workers: WorkerOverlap[];
}

/** Counters an indexer keeps from its creation. */
export interface IndexerCounters {
  /** Events applied (BlockStored, BlockRemoved, AllBlocksCleared), skipped ones excluded. */
  eventsApplied: number;
  blocksStored: number;
  blocksRemoved: number;
  /** BlockStored events skipped because an opaque parent hash was unknown. */
  orphanEvents: number;
  /** Events skipped as malformed (too few token ids for the blocks, bad block size). */
  malformedEvents: number;
  /** BlockRemoved hashes the worker was not known to hold. */
  unknownRemovals: number;
}

export type { KvMedium };
