// The byte size of one KV block, derived from the model's shape. Every region an agent
// registers holds whole blocks of one size, and a transfer moves whole blocks, so both
// sides of a transfer must agree on this number before any byte moves.
import { TransferError } from './errors.js';

/** Shape of one paged KV block: keys and values for every layer and KV head. */
export interface KvBlockLayout {
  numLayers: number;
  kvHeads: number;
  headDim: number;
  /** Bytes per element: 2 for fp16/bf16, 1 for fp8, 4 for fp32. */
  dtypeBytes: number;
  /** Tokens per block. */
  blockSize: number;
}

/** Largest block the transfer library moves (64 MiB); KV blocks are typically 16–256 KiB. */
export const MAX_BLOCK_BYTES = 64 * 1024 * 1024;

const FIELDS = ['numLayers', 'kvHeads', 'headDim', 'dtypeBytes', 'blockSize'] as const;

/** Throws `bad_request` unless every field is a positive integer and the block fits MAX_BLOCK_BYTES. */
export function validateLayout(layout: KvBlockLayout): void {
  for (const field of FIELDS) {
    const value = layout[field];
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TransferError('bad_request', `KV block layout: ${field} must be a positive integer, got ${value}`);
    }
  }
  const bytes = layout.numLayers * 2 * layout.kvHeads * layout.headDim * layout.dtypeBytes * layout.blockSize;
  if (bytes > MAX_BLOCK_BYTES) {
    throw new TransferError('bad_request', `KV block layout: ${bytes} bytes per block exceeds ${MAX_BLOCK_BYTES}`);
  }
}

/** Bytes of one block: layers × 2 (K and V) × kv heads × head dim × dtype bytes × tokens. Validates first. */
export function blockBytes(layout: KvBlockLayout): number {
  validateLayout(layout);
  return layout.numLayers * 2 * layout.kvHeads * layout.headDim * layout.dtypeBytes * layout.blockSize;
}

/** Throws `bad_request` unless `bytes` is a valid block size (a positive integer up to MAX_BLOCK_BYTES). */
export function validateBlockBytes(bytes: number, what = 'blockBytes'): void {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_BLOCK_BYTES) {
    throw new TransferError('bad_request', `${what} must be an integer in [1, ${MAX_BLOCK_BYTES}], got ${bytes}`);
  }
}
