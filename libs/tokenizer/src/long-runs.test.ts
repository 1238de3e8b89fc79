// Where long runs are cut: only inside runs longer than the bound, never inside a surrogate
// pair, and the parts always join back to the text.
import { describe, expect, it } from 'vitest';
import { longRunCuts, MAX_RUN_LENGTH, splitLongPiece } from './long-runs.js';

const isLoneSurrogateAt = (text: string, at: number): boolean => {
  const code = text.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff;
};

describe('splitLongPiece', () => {
  it('leaves a piece of up to MAX_RUN_LENGTH whole', () => {
    const piece = 'a'.repeat(MAX_RUN_LENGTH);
    expect(splitLongPiece(piece)).toEqual([piece]);
  });

  it('cuts a longer piece into parts of at most the bound that join back', () => {
    for (const unit of ['a', ' ', '🦙', 'a🦙', '漢']) {
      const piece = unit.repeat(1000);
      const parts = splitLongPiece(piece, 100);
      expect(parts.join('')).toBe(piece);
      for (const part of parts) {
        expect(part.length).toBeLessThanOrEqual(100);
        expect(part.length).toBeGreaterThan(0);
        expect(/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(part)).toBe(false); // whole code points only
      }
    }
  });

  it('refuses a bound that could not hold one surrogate pair', () => {
    expect(() => splitLongPiece('🦙🦙🦙', 1)).toThrow(RangeError);
  });
});

describe('longRunCuts', () => {
  it('cuts nothing in text whose runs are all within the bound', () => {
    const text = 'The quick brown fox\n\njumps over   the lazy dog. 🦙🦙 漢字 '.repeat(2000);
    expect(longRunCuts(text)).toEqual([]);
  });

  it('cuts inside long runs of whitespace and of non-whitespace only, at code points', () => {
    const text = `hello ${'🦙'.repeat(300)} world${'\n'.repeat(600)}end ${'x'.repeat(257)}`;
    const cuts = longRunCuts(text);
    expect(cuts.length).toBe(2 + 2 + 1);
    const runs = [...text.matchAll(/\s+|\S+/g)].filter((r) => r[0].length > MAX_RUN_LENGTH);
    for (const cut of cuts) {
      expect(isLoneSurrogateAt(text, cut)).toBe(false);
      expect(runs.some((r) => cut > r.index && cut < r.index + r[0].length)).toBe(true);
    }
    expect([...cuts].sort((a, b) => a - b)).toEqual(cuts);
  });
});
