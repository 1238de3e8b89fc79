// A registered memory region: a run of equally sized KV blocks in one buffer that peers
// may read from and write into by block id. The buffer is POSIX shared memory when the
// native addon is loaded (so agents on the same host map it directly), else a
// SharedArrayBuffer. A region does not know about peers or transfers.
import { TransferError } from './errors.js';
import { validateBlockBytes } from './layout.js';

/** Largest region id (ids travel as u32 on the wire). */
export const MAX_REGION_ID = 0xffffffff;

/** `blocks` blocks of `blockBytes` bytes each, block `i` at byte offset `i * blockBytes`. */
export class MemoryRegion {
  /** The whole region as bytes. */
  readonly bytes: Uint8Array;

  constructor(
    readonly id: number,
    readonly blocks: number,
    readonly blockBytes: number,
    readonly buffer: ArrayBuffer | SharedArrayBuffer,
    /** POSIX shm object name when the buffer is shared memory other processes can open. */
    readonly shmName?: string,
  ) {
    validateRegionShape(id, blocks, blockBytes);
    if (buffer.byteLength < blocks * blockBytes) {
      throw new TransferError(
        'bad_request',
        `region ${id}: buffer of ${buffer.byteLength} bytes is smaller than ${blocks} × ${blockBytes}`,
      );
    }
    this.bytes = new Uint8Array(buffer, 0, blocks * blockBytes);
  }

  /** The bytes of block `blockId` (a view, not a copy). Throws `bad_request` when out of range. */
  view(blockId: number): Uint8Array {
    if (!Number.isInteger(blockId) || blockId < 0 || blockId >= this.blocks) {
      throw new TransferError('bad_request', `region ${this.id}: block ${blockId} is out of range [0, ${this.blocks})`);
    }
    return this.bytes.subarray(blockId * this.blockBytes, (blockId + 1) * this.blockBytes);
  }

  /** Total bytes. */
  get byteLength(): number {
    return this.blocks * this.blockBytes;
  }
}

/** A region in a fresh SharedArrayBuffer (zero-filled), not registered with any agent. */
export function createMemoryRegion(id: number, blocks: number, blockBytes: number): MemoryRegion {
  validateRegionShape(id, blocks, blockBytes);
  return new MemoryRegion(id, blocks, blockBytes, new SharedArrayBuffer(blocks * blockBytes));
}

/** Throws `bad_request` unless id, block count and block size are usable. */
export function validateRegionShape(id: number, blocks: number, blockBytes: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_REGION_ID) {
    throw new TransferError('bad_request', `region id must be an integer in [0, ${MAX_REGION_ID}], got ${id}`);
  }
  if (!Number.isSafeInteger(blocks) || blocks <= 0 || blocks > 0xffffffff) {
    throw new TransferError('bad_request', `region ${id}: blocks must be a positive integer, got ${blocks}`);
  }
  validateBlockBytes(blockBytes, `region ${id}: blockBytes`);
}

/**
 * Checks a list of block ids against a region of `blocks` blocks and returns it as a
 * Uint32Array (the input itself when it already is one). Throws `bad_request`.
 */
export function toBlockIds(ids: ArrayLike<number>, blocks: number, what: string): Uint32Array {
  const out = ids instanceof Uint32Array ? ids : new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= blocks) {
      throw new TransferError('bad_request', `${what}[${i}] = ${id} is out of range [0, ${blocks})`);
    }
    if (out !== ids) out[i] = id;
  }
  return out;
}
