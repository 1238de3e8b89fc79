// The addon boundary: loading is optional and never throws, the reason it did not load is
// kept, ARMATURE_TRANSFER_NATIVE=off disables it, and every checksum this process can
// compute agrees with its reference (xxh3-64 with @armature/kv's TypeScript build).
import { describe, expect, it } from 'vitest';
import { xxh3_64 } from '@armature/kv';
import { createChecksummers } from './checksum.js';
import { NATIVE_ADDON_PATH, loadNative, loadNativeAt, nativeStatus } from './native.js';

describe('native addon loading', () => {
  it('resolves the addon path from the package (src/ and dist/ alike)', () => {
    expect(NATIVE_ADDON_PATH).toMatch(/native\/transfer\/build\/Release\/armature_transfer\.node$/);
    expect(NATIVE_ADDON_PATH).not.toMatch(/libs\/transfer/);
  });

  it('reports a missing addon instead of throwing', () => {
    const { native, status } = loadNativeAt('/nonexistent/armature_transfer.node', {});
    expect(native).toBeUndefined();
    expect(status).toMatchObject({ loaded: false, reason: expect.stringMatching(/not built/) });
  });

  it('honours ARMATURE_TRANSFER_NATIVE=off', () => {
    const { native, status } = loadNativeAt(NATIVE_ADDON_PATH, { ARMATURE_TRANSFER_NATIVE: 'off' });
    expect(native).toBeUndefined();
    expect(status.reason).toMatch(/ARMATURE_TRANSFER_NATIVE=off/);
  });

  it('says whether it loaded, with the version or the reason', () => {
    const status = nativeStatus();
    expect(status.loaded).toBe(loadNative() !== undefined);
    if (status.loaded) expect(status.version).toMatch(/\S/);
    else expect(status.reason).toMatch(/\S/);
  });
});

describe('block checksums', () => {
  it('computes xxh3-64 (seed 0) per block, identical to @armature/kv', async () => {
    const blockBytes = 4096 + 24; // not a multiple of the hash's stripe
    const buffer = new SharedArrayBuffer(blockBytes * 5);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 255;
    const ids = Uint32Array.of(4, 0, 2);
    const xxh3 = (await createChecksummers(undefined)).find((c) => c.algorithm === 'xxh3-64')!;
    const out = new BigUint64Array(3);
    xxh3.checksumBlocks(buffer, ids, blockBytes, out);
    expect([...out]).toEqual([...ids].map((id) => xxh3_64(bytes.subarray(id * blockBytes, (id + 1) * blockBytes))));
  });

  it('offers the addon checksum first when it is loaded, and it detects a flipped byte', async () => {
    const native = loadNative();
    const checksummers = await createChecksummers(native);
    expect(checksummers.map((c) => c.algorithm)).toEqual(native ? ['armature-mx64', 'xxh3-64'] : ['xxh3-64']);
    for (const c of checksummers) {
      const buffer = new ArrayBuffer(2048);
      const bytes = new Uint8Array(buffer);
      const before = new BigUint64Array(2);
      const after = new BigUint64Array(2);
      c.checksumBlocks(buffer, Uint32Array.of(0, 1), 1024, before);
      bytes[1500] ^= 1;
      c.checksumBlocks(buffer, Uint32Array.of(0, 1), 1024, after);
      expect([after[0] === before[0], after[1] === before[1]]).toEqual([true, false]);
    }
  });
});
