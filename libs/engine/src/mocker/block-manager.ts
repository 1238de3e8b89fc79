// A paged KV block manager with prefix caching, as vLLM's: fixed-size blocks, reference
// counts, full blocks registered under their sequence hash so later requests share them,
// free cached blocks kept for reuse and evicted least-recently-freed first. It records the
// KV events a real engine would publish; it does not decide who runs (the scheduler does)
// and does not hash tokens (callers pass the sequence hashes of their full blocks).
import { LruList } from './lru-list.js';
import type { BlockRemoved, BlockStored, KvEvent, KvMedium } from '@armature/kv';

export interface BlockManagerOptions {
  /** Tokens per block. */
  blockSize: number;
  /** Blocks in the pool. */
  totalBlocks: number;
  /** Tier the blocks live in, as reported in events (default 'device'). */
  medium?: KvMedium;
  /** Register full blocks for reuse and report them (default true). */
  enablePrefixCaching?: boolean;
  /**
   * Record KV events and each block's tokens (default true). Off in the offline simulator,
   * which has nobody to tell: it skips the allocations, and snapshot() is then empty.
   */
  recordEvents?: boolean;
}

interface SequenceBlocks {
  /** Block ids in token order. */
  readonly blocks: number[];
  /** Leading blocks already full and computed (registered, or deduplicated onto a registered one). */
  committed: number;
}

const NO_POSITION = -1;

export class BlockManager {
  readonly blockSize: number;
  readonly totalBlocks: number;
  readonly medium: KvMedium;
  readonly prefixCaching: boolean;

  private readonly refCounts: Int32Array;
  /** Registered hash of each block; undefined for a private (partial or uncached) block. */
  private readonly hashOf: (bigint | undefined)[];
  private readonly parentOf: (bigint | null)[];
  private readonly tokensOf: (number[] | undefined)[];
  /** Block index within the sequence that registered it; orders snapshots parent-first. */
  private readonly positionOf: Int32Array;
  private readonly registry = new Map<bigint, number>();
  /** Free blocks holding nothing reusable; taken first. */
  private readonly emptyFree: number[] = [];
  /** Free blocks still registered, in the order they were freed: the first is evicted first. */
  private readonly evictable: LruList;
  private readonly sequences = new Map<string, SequenceBlocks>();
  private used = 0;
  private pending: KvEvent[] = [];
  private readonly recordEvents: boolean;

  constructor(options: BlockManagerOptions) {
    const { blockSize, totalBlocks } = options;
    if (!Number.isSafeInteger(blockSize) || blockSize <= 0)
      throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
    if (!Number.isSafeInteger(totalBlocks) || totalBlocks <= 0)
      throw new RangeError(`totalBlocks must be a positive integer, got ${totalBlocks}`);
    this.blockSize = blockSize;
    this.totalBlocks = totalBlocks;
    this.medium = options.medium ?? 'device';
    this.prefixCaching = options.enablePrefixCaching ?? true;
    this.recordEvents = options.recordEvents ?? true;
    this.refCounts = new Int32Array(totalBlocks);
    this.positionOf = new Int32Array(totalBlocks).fill(NO_POSITION);
    this.hashOf = new Array<bigint | undefined>(totalBlocks).fill(undefined);
    this.parentOf = new Array<bigint | null>(totalBlocks).fill(null);
    this.evictable = new LruList(totalBlocks);
    this.tokensOf = new Array<number[] | undefined>(totalBlocks).fill(undefined);
    // Popped from the end: block 0 is handed out first.
    for (let id = totalBlocks - 1; id >= 0; id--) this.emptyFree.push(id);
  }

  /** Blocks needed to hold `tokenCount` tokens. */
  blocksFor(tokenCount: number): number {
    return Math.ceil(tokenCount / this.blockSize);
  }

  /** Blocks with no holder (empty or cached-but-evictable). */
  get freeBlocks(): number {
    return this.totalBlocks - this.used;
  }

  /** Blocks held by at least one sequence. */
  get usedBlocks(): number {
    return this.used;
  }

  /** Registered (reusable) blocks, held or not. */
  get cachedBlocks(): number {
    return this.registry.size;
  }

  hasSequence(sequenceId: string): boolean {
    return this.sequences.has(sequenceId);
  }

  /** Sequences holding blocks (for invariant checks). */
  sequenceIds(): IterableIterator<string> {
    return this.sequences.keys();
  }

  /** Block ids a sequence holds, in token order (for tests and diagnostics). */
  sequenceBlockIds(sequenceId: string): readonly number[] | undefined {
    return this.sequences.get(sequenceId)?.blocks;
  }

  /** Whether a sequence hash is registered. */
  isCached(sequenceHash: bigint): boolean {
    return this.registry.has(sequenceHash);
  }

  /** How many leading hashes (at most `limit`) name registered blocks. */
  matchPrefix(sequenceHashes: readonly bigint[], limit: number = sequenceHashes.length): number {
    if (!this.prefixCaching) return 0;
    const end = Math.min(limit, sequenceHashes.length);
    let matched = 0;
    while (matched < end && this.registry.has(sequenceHashes[matched]!)) matched++;
    return matched;
  }

  /**
   * Makes a sequence hold enough blocks for `tokenCount` tokens. A new sequence first takes
   * the registered blocks named by `cachedPrefix` (found with matchPrefix). Returns false,
   * changing nothing, when the free blocks do not suffice.
   */
  allocate(sequenceId: string, tokenCount: number, cachedPrefix: readonly bigint[] = []): boolean {
    const existing = this.sequences.get(sequenceId);
    if (existing) {
      if (cachedPrefix.length > 0)
        throw new Error(
          `sequence ${sequenceId} already holds blocks; a cached prefix attaches only on the first allocation`,
        );
      const needed = this.blocksFor(tokenCount) - existing.blocks.length;
      if (needed <= 0) return true;
      if (needed > this.freeBlocks) return false;
      for (let i = 0; i < needed; i++) existing.blocks.push(this.takeEmptyBlock());
      return true;
    }
    const prefixIds = cachedPrefix.map((hash) => {
      const id = this.registry.get(hash);
      if (id === undefined) throw new Error(`cached prefix hash ${hash} is not registered`);
      return id;
    });
    const fresh = Math.max(0, this.blocksFor(tokenCount) - prefixIds.length);
    // Free prefix blocks leave the free pool when taken, so they cannot also serve as fresh ones.
    let reclaimed = 0;
    for (const id of prefixIds) if (this.refCounts[id] === 0) reclaimed++;
    if (fresh > this.freeBlocks - reclaimed) return false;
    const blocks: number[] = [];
    for (const id of prefixIds) {
      this.acquire(id);
      blocks.push(id);
    }
    for (let i = 0; i < fresh; i++) blocks.push(this.takeEmptyBlock());
    this.sequences.set(sequenceId, { blocks, committed: prefixIds.length });
    return true;
  }

  /**
   * Records that the sequence's first `computedTokens` tokens are computed. Each block that
   * became full is registered under `sequenceHashes[i]` (reported as BlockStored), or, when
   * another sequence registered the same hash first, swapped for that block.
   */
  commit(
    sequenceId: string,
    tokens: ArrayLike<number>,
    sequenceHashes: readonly bigint[],
    computedTokens: number,
  ): void {
    const seq = this.sequences.get(sequenceId);
    if (!seq) throw new Error(`unknown sequence ${sequenceId}`);
    const fullBlocks = Math.floor(computedTokens / this.blockSize);
    if (fullBlocks > seq.blocks.length)
      throw new Error(`sequence ${sequenceId} computed ${computedTokens} tokens without blocks for them`);
    if (fullBlocks > sequenceHashes.length)
      throw new Error(`sequence ${sequenceId} has ${sequenceHashes.length} hashes for ${fullBlocks} full blocks`);
    if (!this.prefixCaching) {
      seq.committed = Math.max(seq.committed, fullBlocks);
      return;
    }
    let run: BlockStored | undefined;
    for (let i = seq.committed; i < fullBlocks; i++) {
      const hash = sequenceHashes[i]!;
      const own = seq.blocks[i]!;
      const registered = this.registry.get(hash);
      if (registered !== undefined) {
        if (registered !== own) {
          this.acquire(registered);
          seq.blocks[i] = registered;
          this.release(own);
        }
        run = undefined;
        continue;
      }
      const parent = i > 0 ? sequenceHashes[i - 1]! : null;
      this.hashOf[own] = hash;
      this.parentOf[own] = parent;
      this.positionOf[own] = i;
      this.registry.set(hash, own);
      if (!this.recordEvents) continue;
      const blockTokens = new Array<number>(this.blockSize);
      for (let k = 0, at = i * this.blockSize; k < this.blockSize; k++) blockTokens[k] = tokens[at + k]!;
      this.tokensOf[own] = blockTokens;
      if (run) {
        run.blockHashes.push(hash);
        run.tokenIds.push(...blockTokens);
      } else {
        run = this.storedEvent(hash, parent, blockTokens.slice());
        this.pending.push(run);
      }
    }
    seq.committed = fullBlocks;
  }

  /** Releases every block of a sequence (last block first, so tails are evicted before prefixes). */
  free(sequenceId: string): boolean {
    const seq = this.sequences.get(sequenceId);
    if (!seq) return false;
    for (let i = seq.blocks.length - 1; i >= 0; i--) this.release(seq.blocks[i]!);
    this.sequences.delete(sequenceId);
    return true;
  }

  /** KV events recorded since the last drain, consecutive removals merged. */
  drainEvents(): KvEvent[] {
    const events = this.pending;
    this.pending = [];
    return events;
  }

  /** BlockStored events for every registered block, parents before children. */
  snapshot(): BlockStored[] {
    if (!this.recordEvents) return [];
    const ids = [...this.registry.values()].sort((a, b) => this.positionOf[a]! - this.positionOf[b]!);
    return ids.map((id) => this.storedEvent(this.hashOf[id]!, this.parentOf[id]!, this.tokensOf[id]!.slice()));
  }

  /** Throws if the bookkeeping is inconsistent (tests call it after every operation). */
  checkInvariants(): void {
    const holders = new Int32Array(this.totalBlocks);
    for (const [sid, seq] of this.sequences) {
      const seen = new Set<number>();
      for (const id of seq.blocks) {
        if (seen.has(id)) fail(`sequence ${sid} holds block ${id} twice`);
        seen.add(id);
        holders[id]!++;
      }
      if (seq.committed > seq.blocks.length)
        fail(`sequence ${sid} committed ${seq.committed} of ${seq.blocks.length} blocks`);
      if (this.prefixCaching) {
        for (let i = 0; i < seq.committed; i++) {
          if (this.hashOf[seq.blocks[i]!] === undefined)
            fail(`sequence ${sid} committed block ${seq.blocks[i]} is unregistered`);
        }
      }
    }
    let used = 0;
    for (let id = 0; id < this.totalBlocks; id++) {
      if (this.refCounts[id] !== holders[id])
        fail(`block ${id} refcount ${this.refCounts[id]} but ${holders[id]} holders`);
      if (this.refCounts[id]! > 0) used++;
    }
    if (used !== this.used) fail(`used count ${this.used}, counted ${used}`);
    const inEmpty = new Set(this.emptyFree);
    if (inEmpty.size !== this.emptyFree.length) fail('a block is in the empty free list twice');
    for (const id of inEmpty) {
      if (this.refCounts[id] !== 0) fail(`block ${id} is free and referenced`);
      if (this.hashOf[id] !== undefined) fail(`empty free block ${id} is registered`);
      if (this.evictable.has(id)) fail(`block ${id} is in both free lists`);
    }
    for (const id of this.evictable) {
      if (this.refCounts[id] !== 0) fail(`evictable block ${id} is referenced`);
      if (this.hashOf[id] === undefined) fail(`evictable block ${id} is unregistered`);
    }
    const free = inEmpty.size + this.evictable.size;
    if (free + used !== this.totalBlocks) fail(`free ${free} + used ${used} != total ${this.totalBlocks}`);
    let registered = 0;
    for (let id = 0; id < this.totalBlocks; id++) {
      const hash = this.hashOf[id];
      if (hash === undefined) continue;
      registered++;
      if (this.registry.get(hash) !== id)
        fail(`block ${id} claims hash ${hash} registered to ${this.registry.get(hash)}`);
    }
    if (registered !== this.registry.size)
      fail(`registry has ${this.registry.size} hashes for ${registered} registered blocks`);
  }

  private storedEvent(hash: bigint, parent: bigint | null, tokenIds: number[]): BlockStored {
    return {
      type: 'BlockStored',
      blockHashes: [hash],
      parentBlockHash: parent,
      tokenIds,
      blockSize: this.blockSize,
      loraName: null,
      medium: this.medium,
    };
  }

  private acquire(id: number): void {
    if (this.refCounts[id] === 0) {
      this.evictable.delete(id);
      this.used++;
    }
    this.refCounts[id]!++;
  }

  private release(id: number): void {
    const count = --this.refCounts[id]!;
    if (count > 0) return;
    if (count < 0) throw new Error(`block ${id} released more often than taken`);
    this.used--;
    if (this.hashOf[id] !== undefined) this.evictable.add(id);
    else this.emptyFree.push(id);
  }

  /** A block for new tokens: an empty one if any, else the least recently freed cached one. */
  private takeEmptyBlock(): number {
    let id = this.emptyFree.pop();
    if (id === undefined) {
      id = this.evictable.shift();
      if (id === undefined) throw new Error('no free KV block');
      this.evict(id);
    }
    this.refCounts[id] = 1;
    this.used++;
    return id;
  }

  private evict(id: number): void {
    const hash = this.hashOf[id]!;
    this.registry.delete(hash);
    this.hashOf[id] = undefined;
    this.parentOf[id] = null;
    this.tokensOf[id] = undefined;
    this.positionOf[id] = NO_POSITION;
    if (!this.recordEvents) return;
    const last = this.pending[this.pending.length - 1];
    if (last?.type === 'BlockRemoved') last.blockHashes.push(hash);
    else this.pending.push({ type: 'BlockRemoved', blockHashes: [hash], medium: this.medium } satisfies BlockRemoved);
  }
}

function fail(message: string): never {
  throw new Error(`block manager invariant violated: ${message}`);
}
