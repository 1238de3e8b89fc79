// Public surface of @armature/kv: KV block identity (XXH3-64 block and sequence hashes) and
// the KV event types with their vLLM-compatible msgpack codec. Internal limb-level hashing
// helpers stay private to the package.
export { xxh3_64 } from './xxh3.js';
export { KV_HASH_SEED, blockHash, computeBlockHashes, computeSequenceHashes, hashSalt } from './hashing.js';
export type { HashSaltInput } from './hashing.js';
export { KV_MEDIUMS } from './events.js';
export type { AllBlocksCleared, BlockRemoved, BlockStored, KvEvent, KvEventBatch, KvMedium } from './events.js';
export { KvCodecError, decodeKvEventBatch, encodeKvEventBatch, mediumFromWire, mediumToWire } from './codec.js';
export type { WireMedium } from './codec.js';
