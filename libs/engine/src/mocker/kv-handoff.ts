// The mocker core's holders of blocks that are neither waiting nor running, which
// disaggregated serving adds: pinned prefills (a prefill-only request that produced its
// first token keeps its prompt's KV until the decode worker pulled it and release() is
// called) and import reservations (blocks held for a remote prefill's KV, from
// reserveImport() until a decode request takes them or cancelImport()). Also the offline
// simulator's importPrefix, which registers pulled blocks without bytes. It holds and frees
// blocks and checks imported bytes; the core (scheduler.ts) validates ids, queues the
// requests that take an import, and publishes events and load after each change.
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import { ArmatureError } from '@armature/runtime';
import type { ImportPlan } from '../types.js';
import type { BlockManager } from './block-manager.js';
import type { KvMemory } from './kv-memory.js';

/** Blocks held for a remote prefill's KV (reserveImport to the decode request). */
export interface ImportReservation {
  readonly tokens: readonly number[];
  /** Sequence hashes of the prompt's full blocks. */
  readonly hashes: readonly bigint[];
  /** Leading full blocks that were already in the prefix cache. */
  readonly cachedBlocks: number;
  /** The bytes are checked and the full blocks registered: a decode request may take it. */
  committed: boolean;
}

export class KvHandoff {
  /** Prefill-only requests done with their first token, holding their prompt's blocks. */
  readonly pins = new Set<string>();
  private readonly reservations = new Map<string, ImportReservation>();
  private prefixImports = 0;

  constructor(
    private readonly blocks: BlockManager,
    private readonly blockSize: number,
  ) {}

  /** Reservations not yet taken, by request id. */
  get imports(): ReadonlyMap<string, ImportReservation> {
    return this.reservations;
  }

  /** Whether the id holds blocks here: a pinned prefill or an import reservation. */
  holds(requestId: string): boolean {
    return this.pins.has(requestId) || this.reservations.has(requestId);
  }

  /** Frees a pinned prefill's blocks (they stay in the prefix cache, evictable); false when not pinned. */
  release(requestId: string): boolean {
    if (!this.pins.delete(requestId)) return false;
    this.blocks.free(requestId);
    return true;
  }

  /** Pinned prefills and the distinct blocks they hold. */
  pinned(): { requests: number; blocks: number } {
    const blocks = new Set<number>();
    for (const id of this.pins) for (const block of this.blocks.sequenceBlockIds(id)!) blocks.add(block);
    return { requests: this.pins.size, blocks: blocks.size };
  }

  /**
   * Holds the cached prefix of a validated prompt (every full block may match: the KV
   * arrives complete) plus fresh blocks for the rest; undefined when they do not fit.
   */
  reserve(requestId: string, tokenIds: readonly number[]): ImportPlan | undefined {
    const tokens = tokenIds.slice();
    const hashes = computeSequenceHashes(computeBlockHashes(tokens, this.blockSize));
    const cachedBlocks = this.blocks.matchPrefix(hashes);
    if (!this.blocks.allocate(requestId, tokens.length, hashes.slice(0, cachedBlocks))) return undefined;
    this.reservations.set(requestId, { tokens, hashes, cachedBlocks, committed: false });
    const held = this.blocks.sequenceBlockIds(requestId)!;
    const blockIndices: number[] = [];
    for (let i = cachedBlocks; i < held.length; i++) blockIndices.push(i);
    return { blockIndices, localBlockIds: blockIndices.map((i) => held[i]!), cachedBlocks };
  }

  /**
   * Checks a reservation's imported rows in `memory` (when attached) and registers its
   * full blocks: 'committed' (or 'already' when it was), 'failed' when a check fails (the
   * reservation stays: cancel it). Throws ArmatureError('not_found') without one.
   */
  commit(requestId: string, memory: KvMemory | undefined): 'committed' | 'already' | 'failed' {
    const reservation = this.reservations.get(requestId);
    if (!reservation) throw new ArmatureError('not_found', 'unknown_import', `no KV import reserved for ${requestId}`);
    if (reservation.committed) return 'already';
    const { tokens, hashes, cachedBlocks } = reservation;
    const held = this.blocks.sequenceBlockIds(requestId)!;
    const from = cachedBlocks * this.blockSize;
    if (memory && !memory.checkTokens(held, tokens, hashes, from, tokens.length)) return 'failed';
    this.blocks.commit(requestId, tokens, hashes, tokens.length);
    reservation.committed = true;
    return 'committed';
  }

  /** A committed reservation, for a decode request to take (see take). */
  committed(requestId: string): ImportReservation | undefined {
    const reservation = this.reservations.get(requestId);
    return reservation?.committed ? reservation : undefined;
  }

  /** Hands a reservation's blocks to the request of the same id (the block manager knows both by it). */
  take(requestId: string): void {
    this.reservations.delete(requestId);
  }

  /** Frees a reservation that no request has taken; false when unknown. */
  cancel(requestId: string): boolean {
    if (!this.reservations.delete(requestId)) return false;
    this.blocks.free(requestId);
    return true;
  }

  /**
   * Registers the full blocks of `tokenIds` as cached (see MockerCore.importPrefix): the
   * number newly registered, 0 when the free blocks do not suffice or all are cached.
   */
  importPrefix(tokenIds: readonly number[]): number {
    const { blockSize } = this;
    const hashes = computeSequenceHashes(computeBlockHashes(tokenIds, blockSize));
    if (hashes.length === 0) return 0;
    const held = this.blocks.matchPrefix(hashes);
    if (held === hashes.length) return 0;
    const importId = `\u0000import:${++this.prefixImports}`;
    const tokens = hashes.length * blockSize;
    if (!this.blocks.allocate(importId, tokens, hashes.slice(0, held))) return 0;
    this.blocks.commit(importId, tokenIds, hashes, tokens);
    this.blocks.free(importId);
    return hashes.length - held;
  }
}
