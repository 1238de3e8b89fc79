// Deterministic stand-in for sampling: a seeded PRNG per request picks "ordinary" token ids
// and, with a fixed chance per token, EOS. The same seed gives the same tokens however the
// request is batched, chunked or preempted, which is what makes mocker runs reproducible.
import { computeBlockHashes } from '@armature/kv';

const MASK64 = (1n << 64n) - 1n;

export interface TokenSamplerOptions {
  /** [first, end) of ordinary ids. */
  vocabRange: readonly [number, number];
  /** Emitted as EOS. */
  eosTokenId: number;
  /** Chance per token of EOS; ignored when ignoreEos. */
  eosProbability: number;
  ignoreEos: boolean;
}

/** Seed of a request: its sampling seed, else the XXH3 hash of its prompt tokens. */
export function requestSeed(promptTokens: readonly number[], seed: number | undefined): bigint {
  if (seed !== undefined) return BigInt.asUintN(64, BigInt(Math.trunc(seed)));
  return computeBlockHashes(promptTokens, promptTokens.length)[0] ?? 0n;
}

function splitMix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

/** xoshiro128** seeded through SplitMix64: small, fast, good enough for a simulator. */
export class TokenSampler {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(
    seed: bigint,
    private readonly options: TokenSamplerOptions,
  ) {
    const [state, a] = splitMix64(BigInt.asUintN(64, seed));
    const [, b] = splitMix64(state);
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** A uniform float in [0, 1). */
  uniform(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result / 4294967296;
  }

  /** The next generated token id. */
  next(): number {
    const { vocabRange, eosTokenId, eosProbability, ignoreEos } = this.options;
    if (!ignoreEos && eosProbability > 0 && this.uniform() < eosProbability) return eosTokenId;
    return vocabRange[0] + Math.floor(this.uniform() * (vocabRange[1] - vocabRange[0]));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
