// KV cache events as the router and tier managers see them: engine-neutral shapes with
// camelCase fields, u64 hashes as bigint and memory tiers by name. The wire forms (vLLM's
// msgpack, positional or tagged maps) live in codec.ts; nothing here knows about bytes.

/** Where a block lives: device (G1, GPU), host memory (G2), local disk (G3), remote store (G4). */
export type KvMedium = 'device' | 'host' | 'disk' | 'remote';

/** Every medium, fastest tier first. */
export const KV_MEDIUMS: readonly KvMedium[] = ['device', 'host', 'disk', 'remote'];

/** An engine stored consecutive full blocks, the first a child of parentBlockHash. */
export interface BlockStored {
  type: 'BlockStored';
  /** Engine block hashes, one per block, in prompt order (opaque u64s). */
  blockHashes: bigint[];
  /** Engine hash of the block before the first stored one; null at the start of a sequence. */
  parentBlockHash: bigint | null;
  /** Token ids of all stored blocks, concatenated. */
  tokenIds: number[];
  /** Tokens per block. */
  blockSize: number;
  /** LoRA adapter the blocks were computed with; null for the base model. */
  loraName: string | null;
  medium: KvMedium;
}

/** An engine evicted blocks from one medium. */
export interface BlockRemoved {
  type: 'BlockRemoved';
  blockHashes: bigint[];
  medium: KvMedium;
}

/** An engine dropped its whole cache (reset, restart, weight reload). */
export interface AllBlocksCleared {
  type: 'AllBlocksCleared';
}

export type KvEvent = BlockStored | BlockRemoved | AllBlocksCleared;

/** Every event type (metric label values). */
export const KV_EVENT_TYPES: readonly KvEvent['type'][] = ['BlockStored', 'BlockRemoved', 'AllBlocksCleared'];

/** The events one engine published together, as one message. */
export interface KvEventBatch {
  /** Publisher wall clock, seconds since the Unix epoch (vLLM's time.time()). */
  ts: number;
  events: KvEvent[];
  /** Data-parallel rank of the publishing engine; null when it does not say. */
  dpRank: number | null;
}
