// KV block identity: how a prompt's tokens become the block and sequence hashes that the
// router's index, the engines' KV events and the tier managers all key on. The scheme is
// Dynamo's (XXH3-64 of little-endian u32 tokens, seed 1337, full blocks only, sequence
// hashes chained from the first block), so hashes agree with Dynamo-compatible engines.
import { XXH3_RESULT, u64FromLimbs, u64ToLimbs, xxh3_64, xxh3_64Limbs } from './xxh3.js';

/** Seed of every KV hash (Dynamo's XXH3_SEED). */
export const KV_HASH_SEED = 1337n;

/** Inputs to a block-hash salt: requests with different salts never share cached blocks. */
export interface HashSaltInput {
  /** LoRA adapter name; empty or absent means the base model. */
  loraName?: string | null;
  /**
   * Content hashes of the request's multimodal items, in prompt order. A bigint is taken
   * modulo 2^64; a string (e.g. vLLM's hex mm_hash) is first reduced with XXH3-64, seed 0.
   */
  mmHashes?: readonly (bigint | string)[] | null;
}

const MASK64 = (1n << 64n) - 1n;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();

// One reusable packing buffer for token blocks: grows to the largest block seen, never shrinks.
let packBuffer = new ArrayBuffer(64 * 4);
let packView = new DataView(packBuffer);
let packWords = new Uint32Array(packBuffer);

function ensurePackCapacity(tokenCount: number): void {
  if (tokenCount * 4 <= packBuffer.byteLength) return;
  let bytes = packBuffer.byteLength;
  while (bytes < tokenCount * 4) bytes *= 2;
  packBuffer = new ArrayBuffer(bytes);
  packView = new DataView(packBuffer);
  packWords = new Uint32Array(packBuffer);
}

/** Writes tokens[start, start + count) as little-endian u32 at the start of the pack buffer. */
function packTokens(tokens: ArrayLike<number>, start: number, count: number): void {
  if (LITTLE_ENDIAN) {
    const words = packWords;
    for (let i = 0; i < count; i++) words[i] = tokens[start + i]!; // ToUint32 on store
  } else {
    const view = packView;
    for (let i = 0; i < count; i++) view.setUint32(4 * i, tokens[start + i]! >>> 0, true);
  }
}

const SEED_LIMBS = new Uint32Array(2);

/** Loads the XXH3 seed for `salt` (KV_HASH_SEED + salt, mod 2^64) into SEED_LIMBS as [lo, hi]. */
function loadSeed(salt: bigint | undefined): void {
  blockSeedLimbs(salt, SEED_LIMBS);
}

/**
 * XXH3-64 of one block's token ids as little-endian u32 (ids taken modulo 2^32), seed 1337.
 * With a salt the seed is (1337 + salt) mod 2^64; for a LoRA-only salt from hashSalt that is
 * exactly Dynamo's LoRA seed, 1337 wrapping_add xxh3_64(lora_name).
 */
export function blockHash(tokens: ArrayLike<number>, salt?: bigint): bigint {
  loadSeed(salt);
  ensurePackCapacity(tokens.length);
  packTokens(tokens, 0, tokens.length);
  xxh3_64Limbs(packView, 0, tokens.length * 4, SEED_LIMBS[1]!, SEED_LIMBS[0]!);
  return u64FromLimbs(XXH3_RESULT[1]!, XXH3_RESULT[0]!);
}

/**
 * Salt for blockHash from a LoRA name and multimodal content hashes; undefined when neither
 * is present, so base-model text requests hash exactly as Dynamo does.
 *
 * - LoRA only: xxh3_64(utf8(loraName), seed 0), Dynamo's LoRA seed offset.
 * - With multimodal hashes: xxh3_64 over the hashes as little-endian u64 in prompt order,
 *   seeded with the LoRA salt (or 0). The salt covers every block of the request, which is
 *   coarser than Dynamo's per-block multimodal keys: two requests that share a text prefix
 *   but differ in an image do not share that prefix's blocks.
 */
export function hashSalt(input: HashSaltInput): bigint | undefined {
  const loraSalt = input.loraName ? xxh3_64(utf8.encode(input.loraName), 0n) : undefined;
  const mmHashes = input.mmHashes;
  if (!mmHashes || mmHashes.length === 0) return loraSalt;
  const packed = new Uint8Array(mmHashes.length * 8);
  const view = new DataView(packed.buffer);
  for (let i = 0; i < mmHashes.length; i++) {
    const item = mmHashes[i]!;
    const value = typeof item === 'string' ? xxh3_64(utf8.encode(item), 0n) : item & MASK64;
    view.setBigUint64(8 * i, value, true);
  }
  return xxh3_64(packed, loraSalt ?? 0n);
}

/**
 * Block hashes of every full block of `tokens` (blockSize tokens each, a positive integer);
 * a partial trailing block is not hashed. See blockHash for the salt.
 */
export function computeBlockHashes(tokens: ArrayLike<number>, blockSize: number, salt?: bigint): bigint[] {
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0) {
    throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
  }
  const blockCount = Math.floor(tokens.length / blockSize);
  const hashes = new Array<bigint>(blockCount);
  if (blockCount === 0) return hashes;
  loadSeed(salt);
  const seedHi = SEED_LIMBS[1]!;
  const seedLo = SEED_LIMBS[0]!;
  ensurePackCapacity(blockSize);
  const view = packView;
  const byteLength = blockSize * 4;
  for (let block = 0; block < blockCount; block++) {
    packTokens(tokens, block * blockSize, blockSize);
    xxh3_64Limbs(view, 0, byteLength, seedHi, seedLo);
    hashes[block] = u64FromLimbs(XXH3_RESULT[1]!, XXH3_RESULT[0]!);
  }
  return hashes;
}

const CHAIN_BYTES = new Uint8Array(16);
const CHAIN_VIEW = new DataView(CHAIN_BYTES.buffer);
const LOCAL_LIMBS = new Uint32Array(2);
const CHAIN_SEED_HI = 0;
const CHAIN_SEED_LO = Number(KV_HASH_SEED);

/**
 * Sequence hashes chained as Dynamo does: seq[0] = local[0]; seq[i] = XXH3-64, seed 1337, of
 * the 16 bytes seq[i-1] (LE u64) || local[i] (LE u64). Inputs are taken modulo 2^64.
 */
export function computeSequenceHashes(blockHashes: readonly bigint[]): bigint[] {
  const count = blockHashes.length;
  const sequence = new Array<bigint>(count);
  if (count === 0) return sequence;
  u64ToLimbs(blockHashes[0]!, LOCAL_LIMBS);
  let parentLo = LOCAL_LIMBS[0]!;
  let parentHi = LOCAL_LIMBS[1]!;
  sequence[0] = u64FromLimbs(parentHi, parentLo);
  for (let i = 1; i < count; i++) {
    u64ToLimbs(blockHashes[i]!, LOCAL_LIMBS);
    CHAIN_VIEW.setUint32(0, parentLo, true);
    CHAIN_VIEW.setUint32(4, parentHi, true);
    CHAIN_VIEW.setUint32(8, LOCAL_LIMBS[0]!, true);
    CHAIN_VIEW.setUint32(12, LOCAL_LIMBS[1]!, true);
    xxh3_64Limbs(CHAIN_VIEW, 0, 16, CHAIN_SEED_HI, CHAIN_SEED_LO);
    parentLo = XXH3_RESULT[0]!;
    parentHi = XXH3_RESULT[1]!;
    sequence[i] = u64FromLimbs(parentHi, parentLo);
  }
  return sequence;
}

// ---- Limb-level sequence hashing -------------------------------------------------------
// The indexer and the router hash every prompt on the request path; these helpers run the
// same scheme as computeSequenceHashes(computeBlockHashes(...)) but keep every u64 as a pair
// of u32 limbs, so no bigint is made per block.

/** Seed limbs of blockHash for `salt`, as [lo, hi]; internal to libs/kv. */
export function blockSeedLimbs(salt: bigint | undefined, out: Uint32Array): void {
  u64ToLimbs(salt === undefined ? KV_HASH_SEED : KV_HASH_SEED + salt, out);
}

/**
 * XXH3-64 of tokens[start, start + count) as little-endian u32 with the given seed limbs,
 * into XXH3_RESULT ([0] = lo, [1] = hi); internal to libs/kv.
 */
export function blockHashLimbs(
  tokens: ArrayLike<number>,
  start: number,
  count: number,
  seedHi: number,
  seedLo: number,
): void {
  ensurePackCapacity(count);
  packTokens(tokens, start, count);
  xxh3_64Limbs(packView, 0, count * 4, seedHi, seedLo);
}

/** One chaining step, H(parent LE u64 || local LE u64) with seed 1337, into XXH3_RESULT; internal. */
export function chainHashLimbs(parentLo: number, parentHi: number, localLo: number, localHi: number): void {
  CHAIN_VIEW.setUint32(0, parentLo, true);
  CHAIN_VIEW.setUint32(4, parentHi, true);
  CHAIN_VIEW.setUint32(8, localLo, true);
  CHAIN_VIEW.setUint32(12, localHi, true);
  xxh3_64Limbs(CHAIN_VIEW, 0, 16, CHAIN_SEED_HI, CHAIN_SEED_LO);
}

const BLOCK_SEED_LIMBS = new Uint32Array(2);

/**
 * Sequence hashes of the full blocks of `tokens` as u32 limb pairs [lo0, hi0, lo1, hi1, ...]:
 * the values of computeSequenceHashes(computeBlockHashes(tokens, blockSize, salt)), without
 * a bigint per block. A partial trailing block is not hashed.
 */
export function sequenceHashLimbs(tokens: ArrayLike<number>, blockSize: number, salt?: bigint): Uint32Array {
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0) {
    throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
  }
  const blockCount = Math.floor(tokens.length / blockSize);
  const limbs = new Uint32Array(2 * blockCount);
  if (blockCount === 0) return limbs;
  blockSeedLimbs(salt, BLOCK_SEED_LIMBS);
  const seedLo = BLOCK_SEED_LIMBS[0]!;
  const seedHi = BLOCK_SEED_LIMBS[1]!;
  blockHashLimbs(tokens, 0, blockSize, seedHi, seedLo);
  let parentLo = XXH3_RESULT[0]!;
  let parentHi = XXH3_RESULT[1]!;
  limbs[0] = parentLo;
  limbs[1] = parentHi;
  for (let block = 1; block < blockCount; block++) {
    blockHashLimbs(tokens, block * blockSize, blockSize, seedHi, seedLo);
    chainHashLimbs(parentLo, parentHi, XXH3_RESULT[0]!, XXH3_RESULT[1]!);
    parentLo = XXH3_RESULT[0]!;
    parentHi = XXH3_RESULT[1]!;
    limbs[2 * block] = parentLo;
    limbs[2 * block + 1] = parentHi;
  }
  return limbs;
}

/** u64 hashes (taken modulo 2^64) as u32 limb pairs [lo0, hi0, lo1, hi1, ...]. */
export function limbsFromHashes(hashes: readonly bigint[]): Uint32Array {
  const limbs = new Uint32Array(2 * hashes.length);
  for (let i = 0; i < hashes.length; i++) {
    u64ToLimbs(hashes[i]!, LOCAL_LIMBS);
    limbs[2 * i] = LOCAL_LIMBS[0]!;
    limbs[2 * i + 1] = LOCAL_LIMBS[1]!;
  }
  return limbs;
}

/** The first `count` (default: all) limb pairs of `limbs` as u64 bigints. */
export function hashesFromLimbs(limbs: Uint32Array, count: number = limbs.length >>> 1): bigint[] {
  if (!Number.isSafeInteger(count) || count < 0 || 2 * count > limbs.length) {
    throw new RangeError(`count must be an integer in [0, ${limbs.length >>> 1}], got ${count}`);
  }
  const hashes = new Array<bigint>(count);
  for (let i = 0; i < count; i++) hashes[i] = u64FromLimbs(limbs[2 * i + 1]!, limbs[2 * i]!);
  return hashes;
}
