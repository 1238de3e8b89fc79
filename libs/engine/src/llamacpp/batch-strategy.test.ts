// The prefill chunking strategy: decodes first and whole, prompts in queue order, no
// prompt piece (or remainder) under the minimum chunk, and never more than the batch holds.
import { describe, expect, it } from 'vitest';
import type { BatchItem, Token } from 'node-llama-cpp';
import { prefillChunkStrategy } from './batch-strategy.js';

const item = (tokens: number, id = tokens): BatchItem => ({
  tokens: Array.from({ length: tokens }, () => id as Token),
  logits: Array.from({ length: tokens }, (_, i) => (i === tokens - 1 ? true : undefined)),
  evaluationPriority: 5,
});
const amounts = (items: BatchItem[], size: number, min = 64): number[] => {
  const chosen = prefillChunkStrategy(min)({ items, size });
  return items.map((it) => chosen.find((c) => c.item === it)?.processAmount ?? 0);
};

describe('prefillChunkStrategy', () => {
  it('gives whole prompts to the oldest first instead of 63-token slices to all', () => {
    const prompts = Array.from({ length: 8 }, () => item(255));
    expect(amounts(prompts, 512)).toEqual([255, 255, 0, 0, 0, 0, 0, 0]);
  });

  it('puts every decode in whole, ahead of the prompts', () => {
    const [d1, p, d2] = [item(1), item(1000), item(1)];
    expect(amounts([d1!, p!, d2!], 512)).toEqual([1, 510, 1]);
  });

  it('cuts a prompt so that at least the minimum chunk is left for the next batch', () => {
    expect(amounts([item(520)], 512)).toEqual([456]);
    expect(amounts([item(576)], 512)).toEqual([512]);
  });

  it('lets a prompt that would get a short piece wait, unless the batch would be empty', () => {
    expect(amounts([item(480), item(300)], 512)).toEqual([480, 0]);
    expect(amounts([item(100)], 32)).toEqual([32]);
    expect(amounts([item(1), item(300)], 160)).toEqual([1, 159]);
    expect(amounts([item(1), item(300)], 128)).toEqual([1, 127]);
    // A batch under twice the minimum: half the batch is enough for a prompt piece.
    expect(amounts([...Array.from({ length: 8 }, () => item(1)), item(300)], 32)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 24]);
  });

  it('keeps decodes first with a minimum of 1, and moves prompts when decodes fill most of the batch', () => {
    expect(amounts([item(2000), item(1)], 512, 1)).toEqual([511, 1]);
    const decodes = Array.from({ length: 40 }, () => item(1));
    expect(amounts([...decodes, item(300)], 64)).toEqual([...decodes.map(() => 1), 24]);
  });

  it('returns an empty batch when told to wait for decodes, with the count of decodes queued', () => {
    const seen: number[] = [];
    const strategy = prefillChunkStrategy(64, (decodes) => (seen.push(decodes), decodes < 2));
    const [d1, d2, p] = [item(1), item(1), item(300)];
    expect(strategy({ items: [p!, d1!], size: 512 })).toEqual([]);
    expect(strategy({ items: [p!, d1!, d2!], size: 512 }).map((c) => c.processAmount)).toEqual([1, 1, 300]);
    expect(seen).toEqual([1, 2]);
  });

  it('keeps every batch within its size and every piece within its item (random queues)', () => {
    let seed = 7;
    const rand = (n: number): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n) + 0;
    for (let round = 0; round < 500; round++) {
      const size = 16 + rand(600);
      const items = Array.from({ length: 1 + rand(10) }, () => item(rand(3) === 0 ? 1 : 1 + rand(1500)));
      const chosen = prefillChunkStrategy(64)({ items, size });
      const min = Math.min(64, Math.floor(size / 2));
      const total = chosen.reduce((a, c) => a + c.processAmount, 0);
      expect(total).toBeLessThanOrEqual(size);
      expect(total).toBeGreaterThan(0);
      for (const c of chosen) {
        expect(c.processAmount).toBeGreaterThanOrEqual(1);
        expect(c.processAmount).toBeLessThanOrEqual(c.item.tokens.length);
        const long = c.item.tokens.length >= Math.max(2, min);
        // A long prompt's piece is at least `min` and leaves 0 or at least `min`, unless it had
        // the batch alone, or decodes left less than `min`: then the oldest prompt takes the rest.
        if (long && chosen.length > 1) {
          const shorts = chosen.filter((x) => x.item.tokens.length < Math.max(2, min));
          const rest = size - shorts.reduce((a, x) => a + x.processAmount, 0);
          if (rest < min) {
            expect(chosen).toHaveLength(shorts.length + 1);
            expect(c.processAmount).toBe(Math.min(c.item.tokens.length, rest));
          } else {
            expect(c.processAmount).toBeGreaterThanOrEqual(min);
            const left = c.item.tokens.length - c.processAmount;
            expect(left === 0 || left >= min).toBe(true);
          }
        }
      }
      // Short items (decodes) are never left out while the batch has room for them.
      const shortsLeft = items.filter(
        (it) => it.tokens.length < Math.max(2, min) && !chosen.some((c) => c.item === it),
      );
      if (shortsLeft.length > 0) expect(total + shortsLeft[0]!.tokens.length).toBeGreaterThan(size);
    }
  });
});
