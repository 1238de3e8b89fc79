// Checks our XXH3-64 against two independent references: xxHash's own sanity vectors
// (cli/xsum_sanity_check.c) and hash-wasm's WebAssembly build of xxhash, on every length
// class and on seeds below and above 2^32.
import { createXXHash3, type IHasher } from 'hash-wasm';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { xxh3_64 } from './xxh3.js';

const PRIME32 = 2654435761n;
const PRIME64 = 11400714785074694797n;
const MASK64 = (1n << 64n) - 1n;

/** xxHash's XSUM_fillTestBuffer: byteGen = PRIME32; buf[i] = byteGen >> 56; byteGen *= PRIME64. */
function sanityBuffer(len: number): Uint8Array {
  const out = new Uint8Array(len);
  let byteGen = PRIME32;
  for (let i = 0; i < len; i++) {
    out[i] = Number(byteGen >> 56n);
    byteGen = (byteGen * PRIME64) & MASK64;
  }
  return out;
}

/** Deterministic bytes (xorshift32) so failures reproduce. */
function seededBytes(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const referenceHashers = new Map<bigint, IHasher>();

async function hasherFor(seed: bigint): Promise<IHasher> {
  let hasher = referenceHashers.get(seed);
  if (!hasher) {
    hasher = await createXXHash3(Number(seed & 0xffffffffn), Number(seed >> 32n));
    referenceHashers.set(seed, hasher);
  }
  return hasher;
}

function reference(hasher: IHasher, data: Uint8Array): bigint {
  hasher.init();
  hasher.update(data);
  return BigInt(`0x${hasher.digest('hex')}`);
}

const SEEDS: bigint[] = [
  0n,
  1n,
  1337n,
  0xffffffffn,
  (1n << 32n) + 5n,
  0x9e3779b185ebca87n,
  (1n << 63n) + 12345n,
  MASK64,
];

describe('xxh3_64', () => {
  beforeAll(async () => {
    for (const seed of SEEDS) await hasherFor(seed);
  });

  it('matches the xxHash sanity vectors (every length class, seed 0 and PRIME64)', () => {
    const buffer = sanityBuffer(2367);
    const vectors: Array<[number, bigint, bigint]> = [
      [0, 0n, 0x2d06800538d394c2n],
      [0, PRIME64, 0xa8a6b918b2f0364an],
      [1, 0n, 0xc44bdff4074eecdbn],
      [1, PRIME64, 0x032be332dd766ef8n],
      [6, 0n, 0x27b56a84cd2d7325n],
      [6, PRIME64, 0x84589c116ab59ab9n],
      [12, 0n, 0xa713daf0dfbb77e7n],
      [12, PRIME64, 0xe7303e1b2336de0en],
      [24, 0n, 0xa3fe70bf9d3510ebn],
      [24, PRIME64, 0x850e80fc35bdd690n],
      [48, 0n, 0x397da259ecba1f11n],
      [48, PRIME64, 0xadc2cbaa44acc616n],
      [80, 0n, 0xbcdefbbb2c47c90an],
      [80, PRIME64, 0xc6dd0cb699532e73n],
      [195, 0n, 0xcd94217ee362ec3an],
      [195, PRIME64, 0xba68003d370cb3d9n],
      [403, 0n, 0xcdeb804d65c6dea4n],
      [403, PRIME64, 0x6259f6ecfd6443fdn],
      [512, 0n, 0x617e49599013cb6bn],
      [512, PRIME64, 0x3ce457de14c27708n],
      [2048, 0n, 0xdd59e2c3a5f038e0n],
      [2048, PRIME64, 0x66f81670669ababcn],
      [2240, 0n, 0x6e73a90539cf2948n],
      [2240, PRIME64, 0x757ba8487d1b5247n],
      [2367, 0n, 0xcb37aeb9e5d361edn],
      [2367, PRIME64, 0xd2db3415b942b42an],
    ];
    for (const [len, seed, expected] of vectors) {
      expect(xxh3_64(buffer.subarray(0, len), seed), `len ${len} seed ${seed}`).toBe(expected);
    }
  });

  it('matches fixed vectors with the KV seed 1337', () => {
    // Values produced by hash-wasm's xxhash3 (the C reference compiled to wasm).
    const buffer = sanityBuffer(256);
    expect(xxh3_64(new Uint8Array(0), 1337n)).toBe(0xd1f3e77444430ab9n);
    expect(xxh3_64(buffer.subarray(0, 64), 1337n)).toBe(
      reference(referenceHashers.get(1337n)!, buffer.subarray(0, 64)),
    );
    expect(xxh3_64(buffer, 1337n)).toBe(reference(referenceHashers.get(1337n)!, buffer));
  });

  it('matches hash-wasm on every length 0..1100 for several seeds', () => {
    const data = seededBytes(1100, 0xc0ffee);
    for (const seed of SEEDS) {
      const hasher = referenceHashers.get(seed)!;
      for (let len = 0; len <= 1100; len++) {
        const input = data.subarray(0, len);
        const got = xxh3_64(input, seed);
        const want = reference(hasher, input);
        if (got !== want) {
          expect.fail(`len ${len} seed ${seed}: got ${got.toString(16)}, want ${want.toString(16)}`);
        }
      }
    }
  });

  it('matches hash-wasm on lengths spanning several 1 KiB blocks', () => {
    const data = seededBytes(5000, 7);
    const hasher = referenceHashers.get(1337n)!;
    for (const len of [1023, 1024, 1025, 2047, 2048, 2049, 3072, 4096, 4097, 5000]) {
      expect(xxh3_64(data.subarray(0, len), 1337n), `len ${len}`).toBe(reference(hasher, data.subarray(0, len)));
    }
  });

  it('matches hash-wasm on random data, lengths and seeds', async () => {
    const cases = fc.sample(
      fc.record({
        data: fc.uint8Array({ minLength: 0, maxLength: 600 }),
        seed: fc.bigInt({ min: 0n, max: MASK64 }),
      }),
      { numRuns: 300, seed: 42 },
    );
    for (const { data, seed } of cases) {
      const hasher = await createXXHash3(Number(seed & 0xffffffffn), Number(seed >> 32n));
      expect(xxh3_64(data, seed), `len ${data.length} seed ${seed}`).toBe(reference(hasher, data));
    }
  });

  it('reads a subarray at a non-zero, unaligned offset correctly', () => {
    const data = seededBytes(600, 99);
    const hasher = referenceHashers.get(1337n)!;
    for (const [start, len] of [
      [1, 3],
      [3, 7],
      [5, 15],
      [7, 64],
      [9, 200],
      [13, 256],
      [3, 500],
    ] as const) {
      const view = data.subarray(start, start + len);
      expect(xxh3_64(view, 1337n)).toBe(reference(hasher, view.slice()));
    }
  });

  it('takes the seed modulo 2^64 and defaults to 0', () => {
    const data = seededBytes(300, 1);
    expect(xxh3_64(data)).toBe(xxh3_64(data, 0n));
    expect(xxh3_64(data, -1n)).toBe(xxh3_64(data, MASK64));
    expect(xxh3_64(data, (1n << 64n) + 1337n)).toBe(xxh3_64(data, 1337n));
  });
});
