import { describe, expect, it } from 'vitest';
import { computeBlockHashes, computeSequenceHashes, KvIndexer, sequenceHashLimbs } from '@armature/kv';
import { KvTracker } from './kv-tracker.js';

const tokens = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);
const hashes = (t: number[]) => computeSequenceHashes(computeBlockHashes(t, 4));

describe('KvTracker', () => {
  it('reports the full blocks slots hold, once per block, and removes them when the last holder lets go', () => {
    const tracker = new KvTracker(4, 2);
    const a = tokens(0, 10); // 2 full blocks + 2 tokens
    tracker.update(0, a);
    expect(tracker.drain()).toEqual([
      expect.objectContaining({
        type: 'BlockStored',
        blockHashes: hashes(a),
        parentBlockHash: null,
        tokenIds: a.slice(0, 8),
      }),
    ]);
    // Slot 1 shares the first block, then diverges.
    const b = [...a.slice(0, 4), 90, 91, 92, 93, 94];
    tracker.update(1, b);
    const hb = hashes(b);
    expect(tracker.drain()).toEqual([
      expect.objectContaining({
        type: 'BlockStored',
        blockHashes: [hb[1]],
        parentBlockHash: hb[0],
        tokenIds: [90, 91, 92, 93],
      }),
    ]);
    expect(tracker.size).toBe(3);
    // Slot 0 is cut back to its first block: only its second block goes (the first is still slot 1's too).
    tracker.update(0, a.slice(0, 5));
    expect(tracker.drain()).toEqual([{ type: 'BlockRemoved', blockHashes: [hashes(a)[1]], medium: 'device' }]);
    tracker.update(1, []);
    expect(tracker.drain()).toEqual([{ type: 'BlockRemoved', blockHashes: [hb[1]], medium: 'device' }]);
    tracker.update(0, []);
    expect(tracker.drain()).toEqual([{ type: 'BlockRemoved', blockHashes: [hb[0]], medium: 'device' }]);
    expect(tracker.size).toBe(0);
  });

  it('feeds the router index the same prefix depth the slots hold, and snapshots parents first', () => {
    const tracker = new KvTracker(4, 3);
    tracker.update(0, tokens(0, 16));
    tracker.update(1, [...tokens(0, 8), ...tokens(50, 9)]);
    tracker.update(2, tokens(100, 3)); // no full block
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    index.applyBatch('w', { ts: 0, events: tracker.drain(), dpRank: null });
    const query = (t: number[]) => index.findMatches(sequenceHashLimbs(t, 4)).workers[0]?.depth ?? 0;
    expect(query(tokens(0, 16))).toBe(4);
    expect(query([...tokens(0, 8), ...tokens(50, 8)])).toBe(4);
    expect(query(tokens(100, 8))).toBe(0);
    const fresh = new KvIndexer();
    fresh.setHashScheme('w', 'armature');
    fresh.applyBatch('w', { ts: 0, events: tracker.snapshot(), dpRank: null });
    expect(fresh.findMatches(sequenceHashLimbs(tokens(0, 16), 4)).workers[0]?.depth).toBe(4);
    expect(fresh.findMatches(sequenceHashLimbs([...tokens(0, 8), ...tokens(50, 8)], 4)).workers[0]?.depth).toBe(4);
  });
});
