// Per-block checksums for data that crosses a socket. Two algorithms exist: 'xxh3-64'
// (seed 0), which every agent can compute (hash-wasm's WebAssembly build of the xxHash
// reference, else the pure TypeScript one in @armature/kv), and 'armature-mx64', the
// native addon's faster hash. Agents advertise what they can verify in their metadata and
// the requester names the algorithm of each request in the frame header, so both sides of
// a transfer always use the same one.
import { endianness } from 'node:os';
import { xxh3_64 } from '@armature/kv';
import type { NativeTransfer } from './native.js';
import type { ChecksumAlgorithm } from './types.js';

/** Computes the checksums of blocks `ids` of `buffer` into `out[0..ids.length)`. */
export interface BlockChecksummer {
  readonly algorithm: Exclude<ChecksumAlgorithm, 'none'>;
  /** Which implementation runs: 'native', 'wasm' or 'typescript'. */
  readonly implementation: string;
  checksumBlocks(
    buffer: ArrayBuffer | SharedArrayBuffer,
    ids: Uint32Array,
    blockBytes: number,
    out: BigUint64Array,
  ): void;
}

/** Wire codes of the algorithms (one byte in the frame header). */
export const CHECKSUM_CODE: Record<ChecksumAlgorithm, number> = { none: 0, 'xxh3-64': 1, 'armature-mx64': 2 };
export const CHECKSUM_OF_CODE: readonly ChecksumAlgorithm[] = ['none', 'xxh3-64', 'armature-mx64'];

/** The algorithms this process can compute, preferred (fastest) first, each with its implementation. */
export async function createChecksummers(native: NativeTransfer | undefined): Promise<BlockChecksummer[]> {
  const list: BlockChecksummer[] = [];
  if (native) {
    list.push({
      algorithm: 'armature-mx64',
      implementation: 'native',
      checksumBlocks: (buffer, ids, blockBytes, out) => native.checksumBlocks(buffer, ids, blockBytes, out),
    });
  }
  list.push((await wasmXxh3()) ?? typescriptXxh3());
  return list;
}

function typescriptXxh3(): BlockChecksummer {
  return {
    algorithm: 'xxh3-64',
    implementation: 'typescript',
    checksumBlocks(buffer, ids, blockBytes, out) {
      const bytes = new Uint8Array(buffer);
      for (let i = 0; i < ids.length; i++) {
        const start = ids[i]! * blockBytes;
        out[i] = xxh3_64(bytes.subarray(start, start + blockBytes));
      }
    },
  };
}

async function wasmXxh3(): Promise<BlockChecksummer | undefined> {
  try {
    const { createXXHash3 } = await import('hash-wasm');
    const hasher = await createXXHash3(0, 0);
    return {
      algorithm: 'xxh3-64',
      implementation: 'wasm',
      checksumBlocks(buffer, ids, blockBytes, out) {
        const bytes = new Uint8Array(buffer);
        for (let i = 0; i < ids.length; i++) {
          const start = ids[i]! * blockBytes;
          hasher.init();
          hasher.update(bytes.subarray(start, start + blockBytes));
          const digest = hasher.digest('binary'); // canonical xxh3 output: big-endian
          out[i] = (BigInt(readU32BE(digest, 0)) << 32n) | BigInt(readU32BE(digest, 4));
        }
      },
    };
  } catch {
    return undefined; // hash-wasm missing or WebAssembly unavailable: the TypeScript build is used
  }
}

const readU32BE = (b: Uint8Array, off: number): number =>
  ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;

const LITTLE_ENDIAN = endianness() === 'LE';

/** The checksums as wire bytes (u64 little-endian each); a view of `sums` on little-endian hosts. */
export function checksumWireBytes(sums: BigUint64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(sums.buffer, sums.byteOffset, sums.byteLength);
  const out = new Uint8Array(sums.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < sums.length; i++) view.setBigUint64(i * 8, sums[i]!, true);
  return out;
}

/** Reads `count` wire checksums (u64 little-endian) from `bytes` into `out`. */
export function readWireChecksums(bytes: Uint8Array, count: number, out: BigUint64Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * 8);
  for (let i = 0; i < count; i++) out[i] = view.getBigUint64(i * 8, true);
}
