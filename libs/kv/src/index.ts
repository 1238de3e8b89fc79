// Public surface of @armature/kv: KV block identity (XXH3-64 block and sequence hashes, also
// as u32 limb pairs for the hot paths), the KV event types with their vLLM-compatible msgpack
// codec, and the KV indexers (precise, from events; approximate, from routing decisions).
// Internal limb-level hashing helpers stay private to the package.
export { xxh3_64 } from './xxh3.js';
export {
  KV_HASH_SEED,
  blockHash,
  computeBlockHashes,
  computeSequenceHashes,
  hashSalt,
  hashesFromLimbs,
  limbsFromHashes,
  sequenceHashLimbs,
} from './hashing.js';
export type { HashSaltInput } from './hashing.js';
export { KV_EVENT_TYPES, KV_MEDIUMS } from './events.js';
export type { AllBlocksCleared, BlockRemoved, BlockStored, KvEvent, KvEventBatch, KvMedium } from './events.js';
export { KvCodecError, decodeKvEventBatch, encodeKvEventBatch, mediumFromWire, mediumToWire } from './codec.js';
export type { WireMedium } from './codec.js';
export { KvIndexer } from './indexer/kv-indexer.js';
export { ApproxKvIndexer } from './indexer/approx-indexer.js';
export type { ApproxIndexerOptions } from './indexer/approx-indexer.js';
export type { IndexerCounters, KvHashScheme, OverlapScores, TierOverlap, WorkerOverlap } from './indexer/types.js';
