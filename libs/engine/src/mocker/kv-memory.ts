// The bytes of the mocker's KV cache, so that disaggregated serving moves something real.
// A real engine's KV for a token is a function of the token and everything before it; here
// each row (one layer, K or V, one token: kvHeads × headDim elements) is filled with one
// 32-bit value mixed from the token's id and position, the layer, K/V, and the sequence hash
// of the full block before the token's block. A block's bytes thus depend on its prefix as
// real KV does, identical blocks computed anywhere are byte-identical, and a transfer that
// moves the wrong block (or none) fails the check. It does not decide which block holds what
// (the block manager and the scheduler do) and does not move bytes between engines.
import type { KvCacheLayout } from '../types.js';

/** numLayers × 2 (K, V) × kvHeads × headDim × dtypeBytes × blockSize: one block's bytes. */
export function kvBlockBytes(layout: KvCacheLayout): number {
  return layout.numLayers * 2 * kvRowBytes(layout) * layout.blockSize;
}

/** kvHeads × headDim × dtypeBytes: one token's K (or V) in one layer. */
export function kvRowBytes(layout: KvCacheLayout): number {
  return layout.kvHeads * layout.headDim * layout.dtypeBytes;
}

const SEED = 0x6b76_6d6f; // "kvmo"
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const NO_PARENT = 2;

/** One MurmurHash3 x86_32 body round. */
function round(hash: number, word: number): number {
  let k = Math.imul(word, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  const h = hash ^ k;
  return (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's finalizer: every input bit reaches every output bit. */
function finalize(hash: number): number {
  let h = hash ^ 24; // six 4-byte words
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rowValue(
  parentLo: number,
  parentHi: number,
  parentTag: number,
  position: number,
  tokenId: number,
  layer: number,
  kv: number,
): number {
  let h = round(SEED, parentLo);
  h = round(h, parentHi);
  h = round(h, position);
  h = round(h, tokenId);
  h = round(h, layer);
  h = round(h, kv | parentTag);
  return finalize(h);
}

/**
 * The 32-bit value (stored little-endian, repeated across the row) of one KV row: MurmurHash3
 * x86_32 (seed 0x6b766d6f) over the words [parent low 32 bits, parent high 32 bits, position,
 * token id, layer, kv | 2 when there is no parent]. `parentHash` is the sequence hash of the
 * full block before the token's block (null in the first block); `position` the token's index
 * in the sequence; `kv` 0 for K, 1 for V.
 */
export function kvRowValue(
  parentHash: bigint | null,
  position: number,
  tokenId: number,
  layer: number,
  kv: 0 | 1,
): number {
  if (parentHash === null) return rowValue(0, 0, NO_PARENT, position, tokenId, layer, kv);
  return rowValue(
    Number(BigInt.asUintN(32, parentHash)),
    Number(BigInt.asUintN(32, parentHash >> 32n)),
    0,
    position,
    tokenId,
    layer,
    kv,
  );
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A KV cache's bytes in caller-provided memory, laid out as KvCacheLayout says. Callers name
 * a sequence's blocks, tokens and full-block sequence hashes; it writes or checks the rows of
 * a token range.
 */
export class KvMemory {
  readonly blockBytes: number;
  readonly rowBytes: number;
  private readonly blockSize: number;
  private readonly numLayers: number;
  /** 32-bit words of the memory when it allows (aligned, little-endian host): rows are filled whole. */
  private readonly words: Uint32Array | undefined;
  private readonly view: DataView;

  constructor(
    readonly layout: KvCacheLayout,
    readonly totalBlocks: number,
    readonly memory: Uint8Array,
  ) {
    this.blockBytes = kvBlockBytes(layout);
    this.rowBytes = kvRowBytes(layout);
    this.blockSize = layout.blockSize;
    this.numLayers = layout.numLayers;
    if (this.rowBytes % 4 !== 0) throw new RangeError(`a KV row of ${this.rowBytes} bytes is not whole 32-bit words`);
    const needed = totalBlocks * this.blockBytes;
    if (memory.byteLength < needed)
      throw new RangeError(`KV memory of ${memory.byteLength} bytes is below the ${needed} the cache needs`);
    this.view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
    this.words =
      LITTLE_ENDIAN && memory.byteOffset % 4 === 0
        ? new Uint32Array(memory.buffer, memory.byteOffset, Math.floor(memory.byteLength / 4))
        : undefined;
  }

  /** Byte offset of a token's row: block, layer, K (0) or V (1), slot in the block. */
  rowOffset(blockId: number, layer: number, kv: 0 | 1, slot: number): number {
    return blockId * this.blockBytes + ((layer * 2 + kv) * this.blockSize + slot) * this.rowBytes;
  }

  /**
   * Fills the rows of tokens[from, to) in the blocks that hold them. `blockIds` are the
   * sequence's blocks in token order; `hashes` the sequence hashes of its full blocks (those
   * before `to`'s block at least).
   */
  writeTokens(
    blockIds: readonly number[],
    tokens: ArrayLike<number>,
    hashes: readonly bigint[],
    from: number,
    to: number,
  ): void {
    this.visit(blockIds, tokens, hashes, from, to, (offset, value) => {
      const { words } = this;
      if (words) {
        const start = offset >>> 2;
        words.fill(value, start, start + (this.rowBytes >>> 2));
      } else {
        for (let at = offset, end = offset + this.rowBytes; at < end; at += 4) this.view.setUint32(at, value, true);
      }
      return true;
    });
  }

  /** Whether each row of tokens[from, to) starts with its expected value (the first word is enough to catch a misplaced block). */
  checkTokens(
    blockIds: readonly number[],
    tokens: ArrayLike<number>,
    hashes: readonly bigint[],
    from: number,
    to: number,
  ): boolean {
    return this.visit(blockIds, tokens, hashes, from, to, (offset, value) => {
      const stored = this.words ? this.words[offset >>> 2]! : this.view.getUint32(offset, true);
      return stored === value;
    });
  }

  /** Calls `row` for every row of tokens[from, to) with its offset and value; stops at the first false. */
  private visit(
    blockIds: readonly number[],
    tokens: ArrayLike<number>,
    hashes: readonly bigint[],
    from: number,
    to: number,
    row: (offset: number, value: number) => boolean,
  ): boolean {
    const { blockSize, numLayers } = this;
    let blockIndex = -1;
    let blockId = 0;
    let parentLo = 0;
    let parentHi = 0;
    let parentTag = NO_PARENT;
    for (let position = from; position < to; position++) {
      const slot = position % blockSize;
      if (blockIndex !== (position - slot) / blockSize) {
        blockIndex = (position - slot) / blockSize;
        const id = blockIds[blockIndex];
        if (id === undefined || id < 0 || id >= this.totalBlocks)
          throw new RangeError(`token ${position} has no KV block (block ${blockIndex} of ${blockIds.length})`);
        blockId = id;
        if (blockIndex === 0) {
          parentLo = parentHi = 0;
          parentTag = NO_PARENT;
        } else {
          const parent = hashes[blockIndex - 1];
          if (parent === undefined) throw new RangeError(`block ${blockIndex - 1} has no sequence hash`);
          parentLo = Number(BigInt.asUintN(32, parent));
          parentHi = Number(BigInt.asUintN(32, parent >> 32n));
          parentTag = 0;
        }
      }
      const tokenId = tokens[position]!;
      for (let layer = 0; layer < numLayers; layer++) {
        for (let kv = 0; kv < 2; kv++) {
          const value = rowValue(parentLo, parentHi, parentTag, position, tokenId, layer, kv);
          if (!row(this.rowOffset(blockId, layer, kv as 0 | 1, slot), value)) return false;
        }
      }
    }
    return true;
  }
}
