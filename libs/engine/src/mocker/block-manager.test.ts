import {
  computeBlockHashes,
  computeSequenceHashes,
  type BlockRemoved,
  type BlockStored,
  type KvEvent,
} from '@armature/kv';
import { describe, expect, it } from 'vitest';
import { BlockManager } from './block-manager.js';

const BS = 4;
const hashesOf = (tokens: number[]): bigint[] => computeSequenceHashes(computeBlockHashes(tokens, BS));
const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);
const stored = (events: KvEvent[]): BlockStored[] => events.filter((e): e is BlockStored => e.type === 'BlockStored');
const removed = (events: KvEvent[]): bigint[] =>
  events.filter((e): e is BlockRemoved => e.type === 'BlockRemoved').flatMap((e) => e.blockHashes);

/** Allocates and computes a whole token list for a new sequence, reusing what is cached. */
function fill(bm: BlockManager, id: string, tokens: number[]): number {
  const hashes = hashesOf(tokens);
  const cached = bm.matchPrefix(hashes);
  if (!bm.allocate(id, tokens.length, hashes.slice(0, cached))) throw new Error('no room');
  bm.commit(id, tokens, hashes, tokens.length);
  bm.checkInvariants();
  return cached;
}

describe('BlockManager', () => {
  it('allocates whole blocks and refuses, unchanged, when the pool is short', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 4 });
    expect(bm.allocate('a', 9)).toBe(true); // 3 blocks
    expect(bm.usedBlocks).toBe(3);
    expect(bm.freeBlocks).toBe(1);
    expect(bm.allocate('b', 5)).toBe(false);
    expect(bm.hasSequence('b')).toBe(false);
    expect(bm.allocate('a', 12)).toBe(true); // still 3 blocks
    expect(bm.allocate('a', 13)).toBe(true); // grows to 4
    expect(bm.freeBlocks).toBe(0);
    expect(bm.allocate('a', 17)).toBe(false);
    expect(bm.sequenceBlockIds('a')).toHaveLength(4);
    bm.checkInvariants();
    expect(bm.free('a')).toBe(true);
    expect(bm.free('a')).toBe(false);
    expect(bm.freeBlocks).toBe(4);
    bm.checkInvariants();
  });

  it('registers full computed blocks under their sequence hash, keeps partial blocks private', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 8 });
    const tokens = range(100, 10); // 2 full blocks + 2 tokens
    const hashes = hashesOf(tokens);
    expect(bm.allocate('a', tokens.length)).toBe(true);
    bm.commit('a', tokens, hashes, 5); // first block full, second partial
    let events = stored(bm.drainEvents());
    expect(events).toEqual([
      {
        type: 'BlockStored',
        blockHashes: [hashes[0]],
        parentBlockHash: null,
        tokenIds: range(100, 4),
        blockSize: BS,
        loraName: null,
        medium: 'device',
      },
    ]);
    bm.commit('a', tokens, hashes, 10);
    events = stored(bm.drainEvents());
    expect(events).toHaveLength(1);
    expect(events[0]!.blockHashes).toEqual([hashes[1]]);
    expect(events[0]!.parentBlockHash).toBe(hashes[0]);
    expect(events[0]!.tokenIds).toEqual(range(104, 4));
    expect(bm.cachedBlocks).toBe(2);
    bm.checkInvariants();
  });

  it('batches consecutive newly stored blocks into one event', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 8 });
    const tokens = range(1, 12);
    const hashes = hashesOf(tokens);
    bm.allocate('a', 12);
    bm.commit('a', tokens, hashes, 12);
    const events = bm.drainEvents();
    expect(events).toHaveLength(1);
    expect(stored(events)[0]!.blockHashes).toEqual(hashes);
    expect(stored(events)[0]!.tokenIds).toEqual(tokens);
    expect(bm.drainEvents()).toEqual([]);
  });

  it('shares cached prefix blocks between sequences with reference counts', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 8 });
    const prefix = range(1, 8);
    expect(fill(bm, 'a', [...prefix, 50, 51])).toBe(0);
    bm.drainEvents();
    const b = [...prefix, 60, 61, 62, 63, 64];
    expect(fill(bm, 'b', b)).toBe(2);
    // b took a's two prefix blocks and two of its own
    expect(bm.usedBlocks).toBe(3 + 2);
    expect(bm.sequenceBlockIds('b')!.slice(0, 2)).toEqual(bm.sequenceBlockIds('a')!.slice(0, 2));
    // only b's new full block is reported, chained to the shared prefix
    const events = stored(bm.drainEvents());
    expect(events.map((e) => e.blockHashes)).toEqual([[hashesOf(b)[2]]]);
    expect(events[0]!.parentBlockHash).toBe(hashesOf(b)[1]);
    bm.free('a');
    expect(bm.usedBlocks).toBe(4);
    bm.checkInvariants();
  });

  it('keeps freed blocks cached and evicts the least recently freed, tail first', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 4 });
    const a = range(1, 8);
    const b = range(101, 8);
    fill(bm, 'a', a);
    bm.free('a');
    fill(bm, 'b', b);
    bm.free('b');
    bm.drainEvents();
    expect(bm.cachedBlocks).toBe(4);
    expect(bm.matchPrefix(hashesOf(a))).toBe(2);
    // One new block must evict: a's tail block (freed first, tail before prefix).
    expect(bm.allocate('c', 1)).toBe(true);
    expect(removed(bm.drainEvents())).toEqual([hashesOf(a)[1]]);
    expect(bm.matchPrefix(hashesOf(a))).toBe(1);
    // Two more blocks evict a's head, then b's tail.
    expect(bm.allocate('d', 8)).toBe(true);
    expect(removed(bm.drainEvents())).toEqual([hashesOf(a)[0], hashesOf(b)[1]]);
    expect(bm.matchPrefix(hashesOf(b))).toBe(1);
    bm.checkInvariants();
  });

  it('reports consecutive evictions as one BlockRemoved', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 3 });
    fill(bm, 'a', range(1, 12));
    bm.free('a');
    bm.drainEvents();
    bm.allocate('b', 12);
    const events = bm.drainEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toEqual({
      type: 'BlockRemoved',
      blockHashes: hashesOf(range(1, 12)).reverse(),
      medium: 'device',
    });
  });

  it('does not evict a cached prefix it is attaching', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 3 });
    const a = range(1, 8);
    fill(bm, 'a', a);
    bm.free('a');
    bm.drainEvents();
    // 2 cached free blocks + 1 empty: a prefix hit of 2 plus 1 fresh block fits exactly.
    expect(bm.allocate('b', 12, hashesOf(a))).toBe(true);
    expect(bm.drainEvents()).toEqual([]);
    bm.free('b');
    // 2 cached + 2 fresh does not fit: refused without side effects.
    expect(bm.allocate('c', 16, hashesOf(a))).toBe(false);
    expect(bm.cachedBlocks).toBe(2);
    bm.checkInvariants();
  });

  it('swaps a block computed twice concurrently for the registered one', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 8 });
    const tokens = range(1, 8);
    const hashes = hashesOf(tokens);
    bm.allocate('a', 8);
    bm.allocate('b', 8);
    expect(bm.usedBlocks).toBe(4);
    bm.commit('a', tokens, hashes, 8);
    bm.commit('b', tokens, hashes, 8);
    expect(bm.usedBlocks).toBe(2);
    expect(bm.sequenceBlockIds('b')).toEqual(bm.sequenceBlockIds('a'));
    expect(stored(bm.drainEvents())).toHaveLength(1);
    bm.checkInvariants();
    bm.free('a');
    bm.free('b');
    expect(bm.freeBlocks).toBe(8);
    bm.checkInvariants();
  });

  it('snapshots every cached block, parents before children', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 16 });
    const a = range(1, 12);
    const b = [...range(1, 4), ...range(200, 8)];
    fill(bm, 'a', a);
    fill(bm, 'b', b);
    bm.free('a');
    const snapshot = bm.snapshot();
    const hashes = snapshot.map((e) => e.blockHashes[0]!);
    expect(new Set(hashes)).toEqual(new Set([...hashesOf(a), ...hashesOf(b)]));
    expect(hashes).toHaveLength(5);
    const seen = new Set<bigint>();
    for (const event of snapshot) {
      if (event.parentBlockHash !== null) expect(seen.has(event.parentBlockHash)).toBe(true);
      seen.add(event.blockHashes[0]!);
    }
    const lastOfB = snapshot.find((e) => e.blockHashes[0] === hashesOf(b)[2])!;
    expect(lastOfB.tokenIds).toEqual(range(204, 4));
  });

  it('with prefix caching off registers nothing and matches nothing', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 4, enablePrefixCaching: false });
    const tokens = range(1, 8);
    fill(bm, 'a', tokens);
    bm.free('a');
    expect(bm.drainEvents()).toEqual([]);
    expect(bm.matchPrefix(hashesOf(tokens))).toBe(0);
    expect(bm.snapshot()).toEqual([]);
    bm.checkInvariants();
  });

  it('checkInvariants catches corrupted bookkeeping', () => {
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 4 });
    fill(bm, 'a', range(1, 8));
    const internals = bm as unknown as { refCounts: Int32Array; emptyFree: number[]; registry: Map<bigint, number> };
    internals.refCounts[0]!++;
    expect(() => bm.checkInvariants()).toThrow(/refcount/);
    internals.refCounts[0]!--;
    bm.checkInvariants();
    internals.emptyFree.push(0);
    expect(() => bm.checkInvariants()).toThrow(/invariant/);
    internals.emptyFree.pop();
    internals.registry.set(12345n, 3);
    expect(() => bm.checkInvariants()).toThrow(/invariant/);
  });

  it('rejects nonsense sizes and unknown prefixes', () => {
    expect(() => new BlockManager({ blockSize: 0, totalBlocks: 4 })).toThrow(RangeError);
    expect(() => new BlockManager({ blockSize: 4, totalBlocks: 1.5 })).toThrow(RangeError);
    const bm = new BlockManager({ blockSize: BS, totalBlocks: 4 });
    expect(() => bm.allocate('a', 4, [42n])).toThrow(/not registered/);
    expect(() => bm.commit('zz', [], [], 0)).toThrow(/unknown sequence/);
  });
});
