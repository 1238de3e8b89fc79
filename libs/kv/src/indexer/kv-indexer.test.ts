// KvIndexer: each semantic rule on its own (schemes, orphans, tiers, clearing, worker slots
// past one and two bitset words, table growth). The property tests against a naive
// reference index are in kv-indexer.property.test.ts.
import { describe, expect, it } from 'vitest';
import type { KvEvent, KvMedium } from '../events.js';
import { hashSalt, hashesFromLimbs, limbsFromHashes, sequenceHashLimbs } from '../hashing.js';
import { KvIndexer } from './kv-indexer.js';
import type { KvHashScheme } from './types.js';
import { MASK64, overlap, ours, range, removed, sorted, stored } from '../testing/indexer-fixtures.js';

describe('KvIndexer: armature scheme', () => {
  it('keys on event hashes as they are and matches the longest held prefix', () => {
    const index = new KvIndexer();
    index.setHashScheme('w1', 'armature');
    index.setHashScheme('w2', 'armature');
    const chain = ours(range(0, 40));
    expect(index.applyEvent('w1', 0, stored(chain.slice(0, 6)))).toBe(true);
    expect(index.applyEvent('w2', 0, stored(chain.slice(0, 3)))).toBe(true);
    const query = limbsFromHashes(chain);
    expect(sorted(index.findMatches(query))).toEqual([overlap('w1', 6), overlap('w2', 3)]);
    expect(index.findMatches(query).queryBlocks).toBe(10);
    expect(sorted(index.findMatches(query, 2))).toEqual([overlap('w1', 2), overlap('w2', 2)]);
    expect(index.findMatches(limbsFromHashes([123n, ...chain])).workers).toEqual([]);
    expect(index.findMatches(new Uint32Array(0)).workers).toEqual([]);
    expect(index.nodeCount).toBe(6);
    expect(index.blocksOf('w1')).toBe(6);
    expect(index.counters).toMatchObject({ eventsApplied: 2, blocksStored: 9 });
  });

  it('stops a worker at its first missing block even when it holds later ones', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    const chain = ours(range(0, 40));
    index.applyEvent('w', 0, stored([chain[0]!, chain[1]!, chain[3]!, chain[4]!]));
    expect(sorted(index.findMatches(limbsFromHashes(chain)))).toEqual([overlap('w', 2)]);
  });

  it('ignores the parent and token ids', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    expect(index.applyEvent('w', 0, stored([5n, 6n], { parentBlockHash: 999n, tokenIds: [], blockSize: 0 }))).toBe(
      true,
    );
    expect(index.findMatches(limbsFromHashes([5n, 6n])).workers[0]!.depth).toBe(2);
  });

  it('rejects an unknown scheme name', () => {
    expect(() => new KvIndexer().setHashScheme('w', 'vllm' as KvHashScheme)).toThrow(RangeError);
  });

  it('reads the rank from the batch, null meaning 0', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    index.applyBatch('w', { ts: 0, dpRank: null, events: [stored([1n, 2n])] });
    index.applyBatch('w', { ts: 0, dpRank: 3, events: [stored([1n]), stored([9n])] });
    expect(sorted(index.findMatches(limbsFromHashes([1n, 2n])))).toEqual([overlap('w', 2), overlap('w', 1, {}, 3)]);
    expect(index.blocksOf('w', 0)).toBe(2);
    expect(index.blocksOf('w', 3)).toBe(2);
    expect(index.blocksOf('w')).toBe(4);
    expect(index.workers()).toEqual([
      { instanceId: 'w', dpRank: 0 },
      { instanceId: 'w', dpRank: 3 },
    ]);
  });
});

describe('KvIndexer: opaque scheme', () => {
  const tokens = range(100, 4 * 8);
  const chain = ours(tokens);

  it('is the default, recomputing our hashes from token ids and chaining through the parent', () => {
    const index = new KvIndexer();
    expect(index.hashScheme('vllm')).toBe('opaque');
    expect(index.applyEvent('vllm', 0, stored([11n, 12n, 13n], { tokenIds: tokens.slice(0, 12) }))).toBe(true);
    const second = stored([14n, 15n], { parentBlockHash: 13n, tokenIds: [...tokens.slice(12, 20), 1, 2, 3] });
    expect(index.applyEvent('vllm', 0, second)).toBe(true);
    expect(sorted(index.findMatches(sequenceHashLimbs(tokens, 4)))).toEqual([overlap('vllm', 5)]);
    expect(hashesFromLimbs(sequenceHashLimbs(tokens, 4))).toEqual(chain);
    expect(index.nodeCount).toBe(5);
  });

  it('skips and counts an event whose parent the worker does not hold', () => {
    const index = new KvIndexer();
    index.applyEvent('vllm', 0, stored([11n], { tokenIds: tokens.slice(0, 4) }));
    const orphan = stored([12n], { parentBlockHash: 99n, tokenIds: tokens.slice(4, 8) });
    expect(index.applyEvent('vllm', 0, orphan)).toBe(false);
    expect(index.applyEvent('other', 0, stored([12n], { parentBlockHash: 11n, tokenIds: tokens.slice(4, 8) }))).toBe(
      false,
    );
    expect(index.counters).toMatchObject({ orphanEvents: 2, eventsApplied: 1, blocksStored: 1 });
    expect(index.nodeCount).toBe(1);
    expect(index.workers()).toEqual([{ instanceId: 'vllm', dpRank: 0 }]);
  });

  it('skips and counts malformed events', () => {
    const index = new KvIndexer();
    expect(index.applyEvent('vllm', 0, stored([1n, 2n], { tokenIds: tokens.slice(0, 7) }))).toBe(false);
    expect(index.applyEvent('vllm', 0, stored([1n], { tokenIds: tokens.slice(0, 4), blockSize: 0 }))).toBe(false);
    expect(index.applyEvent('vllm', -1, stored([1n], { tokenIds: tokens.slice(0, 4) }))).toBe(false);
    expect(index.applyEvent('vllm', 0, stored([1n], { tokenIds: tokens, medium: 'tape' as KvMedium }))).toBe(false);
    expect(index.counters.malformedEvents).toBe(4);
    expect(index.nodeCount).toBe(0);
  });

  it('counts an event of the wrong shape as malformed instead of throwing', () => {
    const index = new KvIndexer();
    index.setHashScheme('ours', 'armature');
    const numberHash = stored([5 as unknown as bigint]);
    expect(index.applyEvent('ours', 0, numberHash)).toBe(false);
    expect(index.applyEvent('vllm', 0, { type: 'Bogus' } as unknown as KvEvent)).toBe(false);
    expect(index.applyEvent('vllm', 0, { type: 'BlockRemoved' } as unknown as KvEvent)).toBe(false);
    expect(index.counters).toMatchObject({ malformedEvents: 3, eventsApplied: 0 });
  });

  it('salts with the LoRA name', () => {
    const index = new KvIndexer();
    index.applyEvent('vllm', 0, stored([1n, 2n], { tokenIds: tokens.slice(0, 8), loraName: 'sql' }));
    expect(index.findMatches(sequenceHashLimbs(tokens, 4)).workers).toEqual([]);
    const salted = sequenceHashLimbs(tokens, 4, hashSalt({ loraName: 'sql' }));
    expect(sorted(index.findMatches(salted))).toEqual([overlap('vllm', 2)]);
    index.applyEvent('vllm', 0, stored([3n], { tokenIds: tokens.slice(0, 4), loraName: '' }));
    expect(sorted(index.findMatches(sequenceHashLimbs(tokens, 4)))).toEqual([overlap('vllm', 1)]);
  });

  it('translates removals, counts unknown ones and forgets a hash once no tier holds it', () => {
    const index = new KvIndexer();
    index.applyEvent('vllm', 0, stored([11n, 12n], { tokenIds: tokens.slice(0, 8) }));
    index.applyEvent('vllm', 0, stored([12n], { parentBlockHash: 11n, tokenIds: tokens.slice(4, 8), medium: 'host' }));
    index.applyEvent('vllm', 0, removed([12n, 77n]));
    expect(index.counters).toMatchObject({ unknownRemovals: 1, blocksRemoved: 1 });
    expect(sorted(index.findMatches(sequenceHashLimbs(tokens, 4)))).toEqual([
      overlap('vllm', 2, { device: 1, host: 1 }),
    ]);
    index.applyEvent('vllm', 0, removed([12n], 'host'));
    expect(index.blocksOf('vllm')).toBe(1);
    // 12 is forgotten now: a child of it is an orphan.
    const child = stored([13n], { parentBlockHash: 12n, tokenIds: tokens.slice(8, 12) });
    expect(index.applyEvent('vllm', 0, child)).toBe(false);
    index.applyEvent('vllm', 0, removed([12n], 'host'));
    expect(index.counters.unknownRemovals).toBe(2);
  });

  it('keeps engine hash spaces apart per worker', () => {
    const index = new KvIndexer();
    index.applyEvent('a', 0, stored([1n], { tokenIds: tokens.slice(0, 4) }));
    index.applyEvent('b', 0, stored([1n], { tokenIds: tokens.slice(4, 8) }));
    index.applyEvent('a', 0, stored([2n], { parentBlockHash: 1n, tokenIds: tokens.slice(4, 8) }));
    expect(sorted(index.findMatches(sequenceHashLimbs(tokens, 4)))).toEqual([overlap('a', 2)]);
    index.applyEvent('b', 0, removed([1n]));
    expect(index.blocksOf('a')).toBe(2);
    expect(index.nodeCount).toBe(2);
  });

  it('still clears a block whose engine hash was re-pointed', () => {
    const index = new KvIndexer();
    index.applyEvent('e', 0, stored([7n], { tokenIds: tokens.slice(0, 4) }));
    index.applyEvent('e', 0, stored([7n], { tokenIds: tokens.slice(4, 8) }));
    expect(index.blocksOf('e')).toBe(2);
    index.applyEvent('e', 0, { type: 'AllBlocksCleared' });
    expect(index.blocksOf('e')).toBe(0);
    expect(index.nodeCount).toBe(0);
  });
});

describe('KvIndexer: tiers', () => {
  const chain = ours(range(0, 40));

  it('credits a block held only in host after device eviction to host, and walks through it', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    index.applyEvent('w', 0, stored(chain.slice(0, 4)));
    index.applyEvent('w', 0, stored(chain.slice(1, 2), { medium: 'host' }));
    index.applyEvent('w', 0, removed(chain.slice(1, 2)));
    expect(sorted(index.findMatches(limbsFromHashes(chain)))).toEqual([overlap('w', 4, { device: 3, host: 1 })]);
  });

  it('credits each block to the fastest tier holding it', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    index.setHashScheme('v', 'armature');
    index.applyEvent('w', 0, stored(chain.slice(0, 1), { medium: 'remote' }));
    index.applyEvent('w', 0, stored(chain.slice(0, 2), { medium: 'disk' }));
    index.applyEvent('w', 0, stored(chain.slice(0, 3), { medium: 'host' }));
    index.applyEvent('w', 0, stored(chain.slice(3, 4), { medium: 'remote' }));
    index.applyEvent('w', 0, stored(chain.slice(0, 1)));
    index.applyEvent('v', 0, stored(chain.slice(0, 5), { medium: 'disk' }));
    expect(sorted(index.findMatches(limbsFromHashes(chain)))).toEqual([
      overlap('v', 5, { disk: 5 }),
      overlap('w', 4, { device: 1, host: 2, remote: 1 }),
    ]);
    expect(index.blocksOf('w')).toBe(4);
    // Credits are per call: a second walk gives the same answer.
    expect(sorted(index.findMatches(limbsFromHashes(chain)))[1]).toEqual(
      overlap('w', 4, { device: 1, host: 2, remote: 1 }),
    );
    index.applyEvent('w', 0, removed(chain.slice(0, 3), 'host'));
    expect(sorted(index.findMatches(limbsFromHashes(chain)))[1]).toEqual(overlap('w', 2, { device: 1, disk: 1 }));
  });
});

describe('KvIndexer: clearing and removing workers', () => {
  const chain = ours(range(0, 40));

  it('clears one rank, all ranks, or on AllBlocksCleared', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    for (const rank of [0, 1, 2]) index.applyEvent('w', rank, stored(chain.slice(0, 3 + rank)));
    index.applyEvent('w', 1, { type: 'AllBlocksCleared' });
    expect(index.blocksOf('w')).toBe(3 + 5);
    index.clearWorker('w', 0);
    expect(sorted(index.findMatches(limbsFromHashes(chain)))).toEqual([overlap('w', 5, {}, 2)]);
    index.applyEvent('w', 0, stored(chain.slice(0, 1), { medium: 'host' }));
    index.clearWorker('w');
    expect(index.blocksOf('w')).toBe(0);
    expect(index.nodeCount).toBe(0);
    expect(index.workers()).toHaveLength(3);
    index.clearWorker('nobody');
    index.applyEvent('nobody', 0, { type: 'AllBlocksCleared' });
    expect(index.counters.eventsApplied).toBe(6);
  });

  it('frees the slots of a removed instance for reuse and forgets its scheme', () => {
    const index = new KvIndexer();
    index.setHashScheme('old', 'armature');
    index.applyEvent('old', 0, stored(chain.slice(0, 4)));
    index.applyEvent('old', 1, stored(chain.slice(0, 2), { medium: 'host' }));
    index.setHashScheme('keep', 'armature');
    index.applyEvent('keep', 0, stored(chain.slice(0, 1)));
    index.removeWorker('old');
    expect(index.hashScheme('old')).toBe('opaque');
    expect(index.blocksOf('old')).toBe(0);
    expect(index.nodeCount).toBe(1);
    index.setHashScheme('new', 'armature');
    index.applyEvent('new', 0, stored(chain.slice(0, 3)));
    expect(sorted(index.findMatches(limbsFromHashes(chain)))).toEqual([overlap('keep', 1), overlap('new', 3)]);
    expect(
      index
        .workers()
        .map((w) => w.instanceId)
        .sort(),
    ).toEqual(['keep', 'new']);
    index.removeWorker('nobody');
  });

  it('counts removals for a worker it has never seen as unknown', () => {
    const index = new KvIndexer();
    expect(index.applyEvent('ghost', 0, removed([1n, 2n]))).toBe(true);
    expect(index.counters).toMatchObject({ unknownRemovals: 2, eventsApplied: 1 });
    expect(index.workers()).toEqual([]);
  });
});

describe('KvIndexer: per-worker block records', () => {
  const chain = ours(range(0, 4 * 64));

  it('keeps an armature worker exact through heavy churn (its log is compacted)', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    index.setHashScheme('other', 'armature');
    index.applyEvent('other', 0, stored(chain.slice(0, 2)));
    index.applyEvent('w', 0, stored(chain.slice(0, 10)));
    for (let round = 0; round < 500; round++) {
      index.applyEvent('w', 0, removed(chain.slice(5, 10)));
      index.applyEvent('w', 0, stored(chain.slice(5, 10 + (round % 7))));
      index.applyEvent('w', 0, removed(chain.slice(10, 17)));
    }
    expect(index.blocksOf('w')).toBe(10);
    // Each round removes blocks 10..16 of which it stored round % 7.
    const unknown = range(0, 500).reduce((sum, round) => sum + 7 - (round % 7), 0);
    expect(index.counters.unknownRemovals).toBe(unknown);
    expect(sorted(index.findMatches(limbsFromHashes(chain)))).toEqual([overlap('other', 2), overlap('w', 10)]);
    index.clearWorker('w');
    expect(index.nodeCount).toBe(2);
    expect(index.blocksOf('w')).toBe(0);
  });

  it('turns an armature worker into a mapped one when an opaque event arrives', () => {
    const tokens = range(0, 4 * 6);
    const plain = ours(tokens);
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    index.applyEvent('w', 0, stored(plain.slice(0, 3)));
    index.setHashScheme('w', 'opaque');
    // Under 'opaque' the worker's own hashes still name its blocks, as parents and removals.
    const child = stored([901n, 902n], { parentBlockHash: plain[2]!, tokenIds: tokens.slice(12, 20) });
    expect(index.applyEvent('w', 0, child)).toBe(true);
    expect(sorted(index.findMatches(limbsFromHashes(plain)))).toEqual([overlap('w', 5)]);
    index.applyEvent('w', 0, removed([plain[1]!, 902n, 555n]));
    expect(index.counters).toMatchObject({ blocksRemoved: 2, unknownRemovals: 1 });
    expect(sorted(index.findMatches(limbsFromHashes(plain)))).toEqual([overlap('w', 1)]);
    index.applyEvent('w', 0, { type: 'AllBlocksCleared' });
    expect(index.nodeCount).toBe(0);
  });
});

describe('KvIndexer: growth', () => {
  it('grows worker slots past 32 and 64 workers, keeping every bit', () => {
    const index = new KvIndexer();
    const chain = ours(range(0, 4 * 100));
    const workerCount = 100;
    for (let w = 0; w < workerCount; w++) {
      index.setHashScheme(`w${w}`, 'armature');
      // Worker w holds the first (w % 40) + 1 blocks, the odd ones also on host.
      index.applyEvent(`w${w}`, 0, stored(chain.slice(0, (w % 40) + 1)));
      if (w % 2 === 1) index.applyEvent(`w${w}`, 0, stored(chain.slice(0, 2), { medium: 'host' }));
      if (w === 31 || w === 63 || w === 99) {
        const scores = index.findMatches(limbsFromHashes(chain));
        expect(scores.workers).toHaveLength(w + 1);
        for (const match of scores.workers) expect(match.depth).toBe((Number(match.instanceId.slice(1)) % 40) + 1);
      }
    }
    for (let w = 0; w < workerCount; w += 3) index.removeWorker(`w${w}`);
    for (let w = 0; w < 10; w++) {
      index.setHashScheme(`late${w}`, 'armature');
      index.applyEvent(`late${w}`, 0, stored(chain.slice(0, 50)));
    }
    const depths = new Map(index.findMatches(limbsFromHashes(chain)).workers.map((m) => [m.instanceId, m.depth]));
    expect(depths.size).toBe(workerCount - 34 + 10);
    expect(depths.get('w1')).toBe(2);
    expect(depths.get('w3')).toBeUndefined();
    expect(depths.get('w98')).toBe(19);
    expect(depths.get('late9')).toBe(50);
  });

  it('grows and shrinks the node table', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    const hashes = Array.from({ length: 20_000 }, (_, i) => (BigInt(i + 1) * 0x9e3779b97f4a7c15n) & MASK64);
    for (let i = 0; i < hashes.length; i += 100) index.applyEvent('w', 0, stored(hashes.slice(i, i + 100)));
    expect(index.nodeCount).toBe(20_000);
    expect(index.findMatches(limbsFromHashes(hashes)).workers[0]!.depth).toBe(20_000);
    index.applyEvent('w', 0, removed(hashes.filter((_, i) => i % 2 === 1)));
    expect(index.nodeCount).toBe(10_000);
    expect(index.findMatches(limbsFromHashes(hashes)).workers[0]!.depth).toBe(1);
    const evens = hashes.filter((_, i) => i % 2 === 0);
    expect(index.findMatches(limbsFromHashes(evens)).workers[0]!.depth).toBe(10_000);
    index.applyEvent('w', 0, removed(evens));
    expect(index.nodeCount).toBe(0);
    expect(index.blocksOf('w')).toBe(0);
  });

  it('checks blockCount', () => {
    expect(() => new KvIndexer().findMatches(new Uint32Array(4), 3)).toThrow(RangeError);
  });
});
