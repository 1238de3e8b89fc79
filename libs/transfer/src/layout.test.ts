// KV block layout, regions and the typed errors: the arithmetic and the validation every
// transfer relies on before a byte moves.
import { describe, expect, it } from 'vitest';
import { TRANSFER_ERROR_KINDS, TransferError, isTransferError } from './errors.js';
import { MAX_BLOCK_BYTES, blockBytes, validateLayout } from './layout.js';
import { MemoryRegion, createMemoryRegion, toBlockIds } from './region.js';

const llama8b = { numLayers: 32, kvHeads: 8, headDim: 128, dtypeBytes: 2, blockSize: 16 };

describe('KV block layout', () => {
  it('is layers × 2 × kv heads × head dim × dtype bytes × tokens', () => {
    expect(blockBytes(llama8b)).toBe(32 * 2 * 8 * 128 * 2 * 16); // 2 MiB: a Llama-3-8B block of 16 tokens
    expect(blockBytes({ numLayers: 1, kvHeads: 2, headDim: 64, dtypeBytes: 1, blockSize: 64 })).toBe(16 * 1024);
  });

  it('rejects non-positive, fractional and oversized layouts with bad_request', () => {
    for (const bad of [{ numLayers: 0 }, { headDim: 1.5 }, { dtypeBytes: -2 }, { blockSize: Number.NaN }]) {
      expect(() => validateLayout({ ...llama8b, ...bad })).toThrow(TransferError);
    }
    const error = (() => {
      try {
        blockBytes({ ...llama8b, blockSize: 1024 });
      } catch (err) {
        return err as TransferError;
      }
      return undefined;
    })();
    expect(error?.kind).toBe('bad_request');
    expect(error?.message).toContain(String(MAX_BLOCK_BYTES));
  });
});

describe('transfer errors', () => {
  it('map each kind to a class and the reason transfer_<kind>', () => {
    const classes = Object.fromEntries(TRANSFER_ERROR_KINDS.map((k) => [k, new TransferError(k, 'x').cls]));
    expect(classes).toEqual({
      peer_unreachable: 'unavailable',
      timeout: 'deadline_exceeded',
      checksum_mismatch: 'internal',
      bad_request: 'invalid_argument',
      closed: 'unavailable',
    });
    const e = new TransferError('timeout', 'slow', { detail: 'after 5 ms' });
    expect({ reason: e.reason, detail: e.detail, is: isTransferError(e), name: e.name }).toEqual({
      reason: 'transfer_timeout',
      detail: 'after 5 ms',
      is: true,
      name: 'ArmatureError',
    });
  });
});

describe('memory regions', () => {
  it('views blocks without copying', () => {
    const region = createMemoryRegion(3, 4, 1024);
    expect(region.buffer).toBeInstanceOf(SharedArrayBuffer);
    region.view(2).fill(7);
    expect(region.bytes[2 * 1024]).toBe(7);
    expect(region.bytes[3 * 1024 - 1]).toBe(7);
    expect(region.bytes[3 * 1024]).toBe(0);
    expect(region.byteLength).toBe(4096);
  });

  it('rejects bad shapes, ids and undersized buffers', () => {
    const region = createMemoryRegion(0, 4, 1024);
    expect(() => region.view(4)).toThrow(/out of range/);
    expect(() => region.view(-1)).toThrow(TransferError);
    expect(() => createMemoryRegion(-1, 4, 1024)).toThrow(/region id/);
    expect(() => createMemoryRegion(1, 0, 1024)).toThrow(/blocks/);
    expect(() => createMemoryRegion(1, 4, MAX_BLOCK_BYTES + 1)).toThrow(/blockBytes/);
    expect(() => new MemoryRegion(1, 4, 1024, new ArrayBuffer(4095))).toThrow(/smaller/);
  });

  it('checks block id lists', () => {
    expect(toBlockIds([0, 3], 4, 'ids')).toEqual(Uint32Array.of(0, 3));
    const typed = Uint32Array.of(1, 2);
    expect(toBlockIds(typed, 4, 'ids')).toBe(typed);
    expect(() => toBlockIds([4], 4, 'ids')).toThrow(/ids\[0\] = 4/);
    expect(() => toBlockIds([0.5], 4, 'ids')).toThrow(TransferError);
  });
});
