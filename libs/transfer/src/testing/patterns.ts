// Block contents tests and the benchmark can predict and compare across processes: a
// region filled from a seed, and per-block digests.
import { xxh3_64 } from '@armature/kv';
import type { MemoryRegion } from '../region.js';

/** Fills every block of a region with bytes determined by (seed, block id). */
export function fillPattern(region: MemoryRegion, seed: number): void {
  const words = new Uint32Array(region.buffer, 0, region.byteLength / 4);
  const perBlock = region.blockBytes / 4;
  for (let block = 0; block < region.blocks; block++) {
    let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(block + 1, 0xc2b2ae35)) >>> 0;
    const base = block * perBlock;
    for (let i = 0; i < perBlock; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[base + i] = x >>> 0;
    }
  }
}

/** Hex xxh3 of each block, to compare contents across processes. */
export function blockDigests(region: MemoryRegion, ids: readonly number[]): string[] {
  return ids.map((id) => xxh3_64(region.view(id)).toString(16));
}
