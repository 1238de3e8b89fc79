// Deterministic stand-in for sampling: a hash of (seed, position) per token picks
// "ordinary" token ids and, with a fixed chance per token, EOS. The same seed gives the same
// tokens however the request is batched, chunked, preempted, disaggregated or migrated,
// which is what makes mocker runs reproducible.
import { computeBlockHashes } from '@armature/kv';

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

/** MurmurHash3's 32-bit finalizer: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Draws keyed by (seed, absolute position in the sequence) rather than by a running PRNG
 * state: the token at position p is the same whether the request ran from its prompt, was
 * continued after a prefill worker's first token, or was migrated mid-stream with the
 * prompt plus what was generated so far (same seed, same positions). Unseeded requests are
 * seeded by their prompt, so their continuation draws from another seed.
 */
export class TokenSampler {
  private readonly lo: number;
  private readonly hi: number;

  constructor(
    seed: bigint,
    private readonly options: TokenSamplerOptions,
    /** Absolute position of the first token `next()` draws (the prompt's length). */
    private position = 0,
  ) {
    const s = BigInt.asUintN(64, seed);
    this.lo = Number(s & 0xffffffffn) | 0;
    this.hi = Number(s >> 32n) | 0;
  }

  /** A uniform float in [0, 1) for draw `k` at `position`. */
  private uniform(position: number, k: number): number {
    let h = fmix32(this.lo ^ Math.imul(k + 1, 0x9e3779b9));
    h = fmix32(h ^ this.hi);
    h = fmix32(h ^ position);
    return h / 4294967296;
  }

  /** The next generated token id. */
  next(): number {
    const { vocabRange, eosTokenId, eosProbability, ignoreEos } = this.options;
    const p = this.position++;
    if (!ignoreEos && eosProbability > 0 && this.uniform(p, 0) < eosProbability) return eosTokenId;
    return vocabRange[0] + Math.floor(this.uniform(p, 1) * (vocabRange[1] - vocabRange[0]));
  }
}
