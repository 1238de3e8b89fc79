// Block and sequence hashing: the Dynamo scheme bit for bit (checked against hash-wasm's
// xxhash3 over hand-packed bytes), plus the partial-block, chaining and salting rules.
import { createXXHash3, type IHasher } from 'hash-wasm';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KV_HASH_SEED,
  blockHash,
  computeBlockHashes,
  computeSequenceHashes,
  hashSalt,
  hashesFromLimbs,
  limbsFromHashes,
  sequenceHashLimbs,
} from './hashing.js';

const MASK64 = (1n << 64n) - 1n;

function leU32(tokens: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(tokens.length * 4);
  const view = new DataView(bytes.buffer);
  tokens.forEach((token, i) => view.setUint32(4 * i, token, true));
  return bytes;
}

async function referenceHash(bytes: Uint8Array, seed: bigint): Promise<bigint> {
  const hasher: IHasher = await createXXHash3(Number(seed & 0xffffffffn), Number(seed >> 32n));
  hasher.init();
  hasher.update(bytes);
  return BigInt(`0x${hasher.digest('hex')}`);
}

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);

describe('blockHash', () => {
  it('matches golden vectors (XXH3-64 of LE u32 tokens, seed 1337)', () => {
    expect(KV_HASH_SEED).toBe(1337n);
    expect(blockHash(range(0, 16))).toBe(0xd47a8f41c833328an);
    expect(blockHash(range(16, 16))).toBe(0xd43939178abd00dbn);
    expect(blockHash(range(1000, 64))).toBe(0x65d2cf053f5d8363n);
  });

  it('equals xxh3 of the packed bytes for random blocks and salts', async () => {
    const cases = fc.sample(
      fc.record({
        tokens: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 130 }),
        salt: fc.option(fc.bigInt({ min: 0n, max: MASK64 }), { nil: undefined }),
      }),
      { numRuns: 200, seed: 7 },
    );
    for (const { tokens, salt } of cases) {
      const seed = salt === undefined ? 1337n : (1337n + salt) & MASK64;
      expect(blockHash(tokens, salt)).toBe(await referenceHash(leU32(tokens), seed));
    }
  });

  it('accepts typed arrays and plain arrays alike', () => {
    const tokens = range(500, 64);
    expect(blockHash(Uint32Array.from(tokens))).toBe(blockHash(tokens));
    expect(blockHash(Int32Array.from(tokens))).toBe(blockHash(tokens));
  });
});

describe('computeBlockHashes', () => {
  it('hashes full blocks only; a partial trailing block is not hashed', () => {
    const tokens = range(0, 16 * 3 + 5);
    const hashes = computeBlockHashes(tokens, 16);
    expect(hashes).toHaveLength(3);
    expect(hashes).toEqual([blockHash(range(0, 16)), blockHash(range(16, 16)), blockHash(range(32, 16))]);
    expect(computeBlockHashes(range(0, 15), 16)).toEqual([]);
    expect(computeBlockHashes([], 16)).toEqual([]);
  });

  it('is deterministic and reuses no state between calls', () => {
    const a = range(10, 64 * 4);
    const b = range(9000, 64 * 2 + 7);
    const first = computeBlockHashes(a, 64);
    computeBlockHashes(b, 64);
    computeBlockHashes(range(0, 300), 100);
    expect(computeBlockHashes(a, 64)).toEqual(first);
    expect(computeBlockHashes(a.slice(0, 128), 64)).toEqual(first.slice(0, 2));
  });

  it('grows its packing buffer for large blocks', async () => {
    const tokens = range(77, 4096);
    const [hash] = computeBlockHashes(tokens, 4096);
    expect(hash).toBe(await referenceHash(leU32(tokens), 1337n));
  });

  it('rejects a block size that is not a positive integer', () => {
    for (const bad of [0, -16, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => computeBlockHashes(range(0, 32), bad)).toThrow(RangeError);
    }
  });

  it('changes every block hash when salted', () => {
    const tokens = range(0, 64);
    const plain = computeBlockHashes(tokens, 16);
    const salted = computeBlockHashes(tokens, 16, hashSalt({ loraName: 'sql-lora' }));
    expect(salted).toHaveLength(4);
    salted.forEach((hash, i) => expect(hash).not.toBe(plain[i]));
    expect(computeBlockHashes(tokens, 16, 0n)).toEqual(plain);
  });
});

describe('hashSalt', () => {
  it('is undefined for base-model text requests', () => {
    expect(hashSalt({})).toBeUndefined();
    expect(hashSalt({ loraName: '', mmHashes: [] })).toBeUndefined();
    expect(hashSalt({ loraName: null, mmHashes: null })).toBeUndefined();
  });

  it("gives Dynamo's LoRA seed: 1337 wrapping_add xxh3_64(lora_name)", async () => {
    const salt = hashSalt({ loraName: 'sql-lora' });
    expect(salt).toBe(0x8b43147fe6fe0aa1n);
    expect(salt).toBe(await referenceHash(new TextEncoder().encode('sql-lora'), 0n));
    const tokens = range(0, 16);
    expect(blockHash(tokens, salt)).toBe(0x729ca4b87bd16855n);
    expect(blockHash(tokens, salt)).toBe(await referenceHash(leU32(tokens), (1337n + salt!) & MASK64));
  });

  it('separates LoRAs, multimodal content and their order', () => {
    const salts = [
      hashSalt({ loraName: 'a' }),
      hashSalt({ loraName: 'b' }),
      hashSalt({ mmHashes: [1n] }),
      hashSalt({ mmHashes: [2n] }),
      hashSalt({ mmHashes: [1n, 2n] }),
      hashSalt({ mmHashes: [2n, 1n] }),
      hashSalt({ loraName: 'a', mmHashes: [1n] }),
      hashSalt({ mmHashes: ['f00d'] }),
    ];
    expect(new Set(salts).size).toBe(salts.length);
    expect(salts.every((salt) => typeof salt === 'bigint')).toBe(true);
  });

  it('is deterministic and reduces bigint hashes modulo 2^64', () => {
    expect(hashSalt({ loraName: 'x', mmHashes: [5n, 'abc'] })).toBe(hashSalt({ loraName: 'x', mmHashes: [5n, 'abc'] }));
    expect(hashSalt({ mmHashes: [(1n << 64n) + 3n] })).toBe(hashSalt({ mmHashes: [3n] }));
  });
});

describe('computeSequenceHashes', () => {
  let locals: bigint[];
  beforeAll(() => {
    locals = computeBlockHashes(range(0, 48), 16);
  });

  it('chains as Dynamo does: seq[0] = local[0], seq[i] = H(seq[i-1] LE || local[i] LE)', async () => {
    const sequence = computeSequenceHashes(locals);
    expect(sequence).toEqual([0xd47a8f41c833328an, 0xbf15dffb16447f38n, 0xa4dda066f3c1e1a0n]);
    for (let i = 1; i < sequence.length; i++) {
      const bytes = new Uint8Array(16);
      const view = new DataView(bytes.buffer);
      view.setBigUint64(0, sequence[i - 1]!, true);
      view.setBigUint64(8, locals[i]!, true);
      expect(sequence[i]).toBe(await referenceHash(bytes, 1337n));
    }
  });

  it('depends on the whole prefix, not just the block', () => {
    const [a, b, c] = locals;
    const abc = computeSequenceHashes([a!, b!, c!]);
    const bbc = computeSequenceHashes([b!, b!, c!]);
    expect(abc[2]).not.toBe(bbc[2]);
    expect(computeSequenceHashes([a!, b!])).toEqual(abc.slice(0, 2));
    expect(computeSequenceHashes([])).toEqual([]);
  });

  it('matches the reference on random chains', async () => {
    const chains = fc.sample(fc.array(fc.bigInt({ min: 0n, max: MASK64 }), { minLength: 1, maxLength: 12 }), {
      numRuns: 50,
      seed: 3,
    });
    for (const chain of chains) {
      const sequence = computeSequenceHashes(chain);
      expect(sequence[0]).toBe(chain[0]);
      for (let i = 1; i < chain.length; i++) {
        const bytes = new Uint8Array(16);
        const view = new DataView(bytes.buffer);
        view.setBigUint64(0, sequence[i - 1]!, true);
        view.setBigUint64(8, chain[i]!, true);
        expect(sequence[i]).toBe(await referenceHash(bytes, 1337n));
      }
    }
  });
});

describe('sequenceHashLimbs', () => {
  it('equals the bigint path for random tokens, block sizes and salts', () => {
    const cases = fc.sample(
      fc.record({
        tokens: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 300 }),
        blockSize: fc.constantFrom(1, 2, 3, 4, 16, 32, 64, 100),
        salt: fc.option(fc.bigInt({ min: 0n, max: MASK64 }), { nil: undefined }),
      }),
      { numRuns: 300, seed: 11 },
    );
    for (const { tokens, blockSize, salt } of cases) {
      const expected = computeSequenceHashes(computeBlockHashes(tokens, blockSize, salt));
      const limbs = sequenceHashLimbs(tokens, blockSize, salt);
      expect(limbs).toHaveLength(2 * Math.floor(tokens.length / blockSize));
      expect(hashesFromLimbs(limbs)).toEqual(expected);
    }
  });

  it('matches the golden chain and salts with a LoRA', () => {
    expect(hashesFromLimbs(sequenceHashLimbs(range(0, 50), 16))).toEqual([
      0xd47a8f41c833328an,
      0xbf15dffb16447f38n,
      0xa4dda066f3c1e1a0n,
    ]);
    const salt = hashSalt({ loraName: 'sql-lora' });
    expect(hashesFromLimbs(sequenceHashLimbs(range(0, 16), 16, salt))).toEqual([0x729ca4b87bd16855n]);
  });

  it('hashes full blocks only and accepts typed arrays', () => {
    expect(sequenceHashLimbs(range(0, 15), 16)).toHaveLength(0);
    expect(sequenceHashLimbs(Uint32Array.from(range(7, 64)), 16)).toEqual(sequenceHashLimbs(range(7, 64), 16));
  });

  it('rejects a block size that is not a positive integer', () => {
    for (const bad of [0, -1, 2.5, Number.NaN]) expect(() => sequenceHashLimbs(range(0, 32), bad)).toThrow(RangeError);
  });
});

describe('limbsFromHashes / hashesFromLimbs', () => {
  it('round-trips u64 values as [lo, hi] pairs', () => {
    const hashes = fc.sample(fc.bigInt({ min: 0n, max: MASK64 }), { numRuns: 100, seed: 5 });
    const limbs = limbsFromHashes(hashes);
    expect(limbs).toHaveLength(200);
    hashes.forEach((hash, i) => {
      expect(limbs[2 * i]).toBe(Number(hash & 0xffffffffn));
      expect(limbs[2 * i + 1]).toBe(Number(hash >> 32n));
    });
    expect(hashesFromLimbs(limbs)).toEqual(hashes);
    expect(hashesFromLimbs(limbs, 3)).toEqual(hashes.slice(0, 3));
  });

  it('takes hashes modulo 2^64 and checks the count', () => {
    expect(hashesFromLimbs(limbsFromHashes([(1n << 64n) + 5n, -1n]))).toEqual([5n, MASK64]);
    expect(() => hashesFromLimbs(new Uint32Array(4), 3)).toThrow(RangeError);
  });
});
