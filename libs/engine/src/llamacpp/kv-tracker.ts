// What a llama.cpp worker holds in its KV cache, as KV events. llama.cpp keeps one token
// list per context sequence (a slot); the router wants the worker's full blocks of
// `blockSize` tokens, each named by its chained sequence hash. A block is held while any
// slot holds it: the tracker counts holders per hash and reports BlockStored when the
// first slot takes a block and BlockRemoved when the last one lets it go. It reads token
// lists; it does not talk to llama.cpp.
import {
  computeBlockHashes,
  computeSequenceHashes,
  type BlockRemoved,
  type BlockStored,
  type KvEvent,
} from '@armature/kv';

interface HeldBlock {
  holders: number;
  parent: bigint | null;
  tokens: number[];
  /** Block index in the sequence: orders snapshots parents first. */
  position: number;
}

export class KvTracker {
  private readonly held = new Map<bigint, HeldBlock>();
  /** Block hashes per slot, in token order. */
  private readonly slots: bigint[][];
  private pending: KvEvent[] = [];

  constructor(
    readonly blockSize: number,
    slotCount: number,
  ) {
    this.slots = Array.from({ length: slotCount }, () => []);
  }

  /** Blocks held by at least one slot. */
  get size(): number {
    return this.held.size;
  }

  /** Records that slot `slot` now holds exactly `tokens` (its context tokens) and queues the events. */
  update(slot: number, tokens: readonly number[]): void {
    const hashes = computeSequenceHashes(computeBlockHashes(tokens, this.blockSize));
    const old = this.slots[slot]!;
    let same = 0;
    while (same < old.length && same < hashes.length && old[same] === hashes[same]) same++;
    const removed: bigint[] = [];
    // Children before parents, so a reader never sees an orphan.
    for (let i = old.length - 1; i >= same; i--) {
      const block = this.held.get(old[i]!)!;
      if (--block.holders === 0) {
        this.held.delete(old[i]!);
        removed.push(old[i]!);
      }
    }
    if (removed.length > 0)
      this.pending.push({ type: 'BlockRemoved', blockHashes: removed, medium: 'device' } satisfies BlockRemoved);
    let run: BlockStored | undefined;
    for (let i = same; i < hashes.length; i++) {
      const hash = hashes[i]!;
      const block = this.held.get(hash);
      if (block) {
        block.holders++;
        run = undefined;
        continue;
      }
      const blockTokens = tokens.slice(i * this.blockSize, (i + 1) * this.blockSize) as number[];
      const parent = i > 0 ? hashes[i - 1]! : null;
      this.held.set(hash, { holders: 1, parent, tokens: blockTokens, position: i });
      if (run) {
        run.blockHashes.push(hash);
        run.tokenIds.push(...blockTokens);
      } else {
        run = {
          type: 'BlockStored',
          blockHashes: [hash],
          parentBlockHash: parent,
          tokenIds: blockTokens.slice(),
          blockSize: this.blockSize,
          loraName: null,
          medium: 'device',
        };
        this.pending.push(run);
      }
    }
    this.slots[slot] = hashes;
  }

  /** Events queued since the last drain. */
  drain(): KvEvent[] {
    const events = this.pending;
    this.pending = [];
    return events;
  }

  /** BlockStored for every held block, parents before children. */
  snapshot(): BlockStored[] {
    return [...this.held.entries()]
      .sort((a, b) => a[1].position - b[1].position)
      .map(([hash, b]) => ({
        type: 'BlockStored',
        blockHashes: [hash],
        parentBlockHash: b.parent,
        tokenIds: b.tokens.slice(),
        blockSize: this.blockSize,
        loraName: null,
        medium: 'device',
      }));
  }
}
