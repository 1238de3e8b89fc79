import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import { describe, expect, it } from 'vitest';
import type { KvCacheLayout } from '../types.js';
import { KvMemory, kvBlockBytes, kvRowBytes, kvRowValue } from './kv-memory.js';

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);
const LAYOUT: KvCacheLayout = { numLayers: 3, kvHeads: 2, headDim: 4, dtypeBytes: 2, blockSize: 4 };

/** Every 32-bit word of every row of tokens[0, end) holds its kvRowValue. */
function expectRows(memory: KvMemory, blockIds: number[], tokens: number[], hashes: bigint[], end: number): void {
  const view = new DataView(memory.memory.buffer, memory.memory.byteOffset, memory.memory.byteLength);
  const { blockSize, numLayers } = memory.layout;
  for (let position = 0; position < end; position++) {
    const block = Math.floor(position / blockSize);
    const parent = block === 0 ? null : hashes[block - 1]!;
    for (let layer = 0; layer < numLayers; layer++) {
      for (const kv of [0, 1] as const) {
        const expected = kvRowValue(parent, position, tokens[position]!, layer, kv);
        const offset = memory.rowOffset(blockIds[block]!, layer, kv, position % blockSize);
        for (let word = 0; word < memory.rowBytes; word += 4)
          expect(view.getUint32(offset + word, true)).toBe(expected);
      }
    }
  }
}

describe('kvRowValue', () => {
  it('is a deterministic unsigned 32-bit value that every input changes', () => {
    const base = kvRowValue(0x0123456789abcdefn, 17, 500, 1, 0);
    expect(Number.isInteger(base) && base >= 0 && base < 2 ** 32).toBe(true);
    expect(kvRowValue(0x0123456789abcdefn, 17, 500, 1, 0)).toBe(base);
    const variants = [
      kvRowValue(0x0123456789abcdeen, 17, 500, 1, 0), // low half of the parent
      kvRowValue(0x1123456789abcdefn, 17, 500, 1, 0), // high half of the parent
      kvRowValue(null, 17, 500, 1, 0),
      kvRowValue(0n, 17, 500, 1, 0), // 0n is a parent, unlike null
      kvRowValue(0x0123456789abcdefn, 18, 500, 1, 0),
      kvRowValue(0x0123456789abcdefn, 17, 501, 1, 0),
      kvRowValue(0x0123456789abcdefn, 17, 500, 0, 0),
      kvRowValue(0x0123456789abcdefn, 17, 500, 1, 1),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });

  it('spreads: a thousand neighbouring inputs give a thousand values', () => {
    const values = new Set(range(0, 1000).map((p) => kvRowValue(null, p, 7, 0, 0)));
    expect(values.size).toBe(1000);
  });
});

describe('KvMemory', () => {
  it('sizes blocks as layers × K/V × heads × dim × dtype × block size', () => {
    expect(kvRowBytes(LAYOUT)).toBe(16);
    expect(kvBlockBytes(LAYOUT)).toBe(3 * 2 * 16 * 4);
    expect(kvBlockBytes({ numLayers: 2, kvHeads: 2, headDim: 64, dtypeBytes: 2, blockSize: 16 })).toBe(16 * 1024);
    const memory = new KvMemory(LAYOUT, 8, new Uint8Array(8 * kvBlockBytes(LAYOUT)));
    // block 2, layer 1, V, slot 3: [layer][K then V][slot][row]
    expect(memory.rowOffset(2, 1, 1, 3)).toBe(2 * 384 + (3 * 4 + 3) * 16);
  });

  it.each([
    ['aligned', 0],
    ['misaligned (byte-wise path)', 1],
  ])('writes each token row in the block holding it and checks it back: %s', (_, byteOffset) => {
    const buffer = new SharedArrayBuffer(byteOffset + 8 * kvBlockBytes(LAYOUT));
    const memory = new KvMemory(LAYOUT, 8, new Uint8Array(buffer, byteOffset));
    const tokens = range(300, 10); // blocks of 4: 4 + 4 + 2
    const hashes = computeSequenceHashes(computeBlockHashes(tokens, 4));
    const blockIds = [5, 0, 3];
    memory.writeTokens(blockIds, tokens, hashes, 0, 7);
    memory.writeTokens(blockIds, tokens, hashes, 7, 10); // in pieces, as prefill chunks
    expectRows(memory, blockIds, tokens, hashes, 10);
    expect(memory.checkTokens(blockIds, tokens, hashes, 0, 10)).toBe(true);
    expect(memory.checkTokens([5, 0, 2], tokens, hashes, 0, 10)).toBe(false); // the wrong block
    expect(memory.checkTokens(blockIds, tokens, hashes, 0, 4)).toBe(true);
    // Another prefix makes other bytes: the second block's parent differs.
    const other = [...range(900, 4), ...tokens.slice(4)];
    expect(memory.checkTokens(blockIds, other, computeSequenceHashes(computeBlockHashes(other, 4)), 4, 8)).toBe(false);
    // One flipped byte at the start of a row fails the check.
    const bytes = new Uint8Array(buffer, byteOffset);
    bytes[memory.rowOffset(3, 2, 1, 1)]! ^= 0x40;
    expect(memory.checkTokens(blockIds, tokens, hashes, 0, 10)).toBe(false);
    expect(memory.checkTokens(blockIds, tokens, hashes, 0, 8)).toBe(true);
  });

  it('refuses memory that is too small and a token without a block', () => {
    expect(() => new KvMemory(LAYOUT, 8, new Uint8Array(8 * kvBlockBytes(LAYOUT) - 1))).toThrow(/below/);
    const memory = new KvMemory(LAYOUT, 2, new Uint8Array(2 * kvBlockBytes(LAYOUT)));
    expect(() => memory.writeTokens([0], range(1, 5), [], 0, 5)).toThrow(/no KV block/);
    expect(() => memory.writeTokens([0, 2], range(1, 5), [1n], 0, 5)).toThrow(/no KV block/);
  });
});
