// Tests of the armature-transfer addon against real POSIX shared memory and real child
// processes. The addon must exist: `npm test` builds it first and this machine has the
// toolchain, so a missing addon means the native build failed and the file fails.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { NativeTransfer, NativeTransferSystemError } from '../native-transfer.js';

const execFileAsync = promisify(execFile);
const addonPath = fileURLToPath(new URL('../build/Release/armature_transfer.node', import.meta.url));

function loadAddon(): NativeTransfer {
  if (!existsSync(addonPath)) {
    throw new Error(
      `native/transfer: ${addonPath} does not exist: the native build failed. ` +
        'Run `node native/transfer/build.mjs` to see why (it needs g++, make, python3 and Node headers).',
    );
  }
  return createRequire(import.meta.url)('../build/Release/armature_transfer.node') as NativeTransfer;
}

const native = loadAddon();

let nameCounter = 0;
const createdNames: string[] = [];

/** A fresh shm name, unlinked after the test. */
function regionName(): string {
  const name = `/armature-test-${process.pid}-${++nameCounter}`;
  createdNames.push(name);
  return name;
}

afterEach(() => {
  for (const name of createdNames.splice(0)) native.shmUnlink(name);
});

/** Runs `node [flags] -e script` with the addon path in ADDON; resolves with its stdout. */
async function runChild(script: string, env: Record<string, string> = {}, flags: string[] = []): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [...flags, '-e', script], {
    env: { ...process.env, ADDON: addonPath, ...env },
    timeout: 20_000,
  });
  return stdout;
}

function catchError(fn: () => unknown): NativeTransferSystemError {
  try {
    fn();
  } catch (error) {
    return error as NativeTransferSystemError;
  }
  throw new Error('expected a throw');
}

/** Deterministic bytes (xorshift32) so failures reproduce. */
function randomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** The contract's semantics, block by block, in order. */
function referenceCopy(
  src: Uint8Array,
  srcIds: Uint32Array,
  dst: Uint8Array,
  dstIds: Uint32Array,
  blockBytes: number,
): void {
  for (let i = 0; i < srcIds.length; i++) {
    const block = src.slice(srcIds[i] * blockBytes, (srcIds[i] + 1) * blockBytes);
    dst.set(block, dstIds[i] * blockBytes);
  }
}

// armature-mx64 exactly as README.md specifies it, in BigInt: the native result must match.
const MASK = (1n << 64n) - 1n;
const MUL = 0x9e3779b97f4a7c15n;
const LANE_SEEDS = [0x243f6a8885a308d3n, 0x13198a2e03707344n, 0xa4093822299f31d0n, 0x082efa98ec4e6c89n];
const round = (lane: bigint, word: bigint): bigint => {
  const x = ((lane ^ word) * MUL) & MASK;
  return x ^ (x >> 32n);
};
const fmix64 = (k: bigint): bigint => {
  k ^= k >> 33n;
  k = (k * 0xff51afd7ed558ccdn) & MASK;
  k ^= k >> 33n;
  k = (k * 0xc4ceb9fe1a85ec53n) & MASK;
  return k ^ (k >> 33n);
};
const rotl = (x: bigint, bits: bigint): bigint => ((x << bits) | (x >> (64n - bits))) & MASK;

function referenceMx64(block: Uint8Array): bigint {
  const lanes = [...LANE_SEEDS];
  const padded = new Uint8Array(Math.ceil(block.length / 8) * 8);
  padded.set(block);
  const view = new DataView(padded.buffer);
  for (let w = 0; w < padded.length / 8; w++) lanes[w % 4] = round(lanes[w % 4], view.getBigUint64(w * 8, true));
  let hash = (BigInt(block.length) * MUL) & MASK;
  for (let i = 0; i < 4; i++) hash = (rotl(hash ^ fmix64(lanes[i]), 27n) * MUL + LANE_SEEDS[i]) & MASK;
  return fmix64(hash);
}

function checksums(buffer: ArrayBuffer | SharedArrayBuffer, ids: number[], blockBytes: number): bigint[] {
  const out = new BigUint64Array(ids.length);
  native.checksumBlocks(buffer, Uint32Array.from(ids), blockBytes, out);
  return [...out];
}

describe('version', () => {
  it('names the addon and its N-API version', () => {
    expect(native.version()).toMatch(/^armature-transfer \d+\.\d+\.\d+ \(napi 8\)$/);
  });
});

describe('shared memory', () => {
  it('shares memory with another process without any socket', async () => {
    const name = regionName();
    const bytes = 256 * 1024;
    const region = new Uint8Array(native.shmCreate(name, bytes));
    region[0] = 0xa5; // the child checks it sees the parent's write
    const child = `
      const native = require(process.env.ADDON);
      const view = new Uint8Array(native.shmOpen(process.env.NAME, Number(process.env.BYTES)));
      if (view[0] !== 0xa5) { console.error('child saw', view[0]); process.exit(2); }
      for (let i = 1; i < view.length; i++) view[i] = (i * 7 + 3) & 0xff;
      native.shmClose(view.buffer);
      console.log('wrote');
    `;
    expect(await runChild(child, { NAME: name, BYTES: String(bytes) })).toBe('wrote\n');
    let mismatches = 0;
    for (let i = 1; i < bytes; i++) if (region[i] !== ((i * 7 + 3) & 0xff)) mismatches++;
    expect(mismatches).toBe(0);
    native.shmClose(region.buffer);
  });

  it('creates zero-filled regions of the requested size', () => {
    const buffer = native.shmCreate(regionName(), 1_000_003);
    expect(buffer).toBeInstanceOf(ArrayBuffer);
    expect(buffer.byteLength).toBe(1_000_003);
    expect(new Uint8Array(buffer).every((byte) => byte === 0)).toBe(true);
    native.shmClose(buffer);
  });

  it('maps two views of one object in the same process', () => {
    const name = regionName();
    const a = new Uint32Array(native.shmCreate(name, 4096));
    const b = new Uint32Array(native.shmOpen(name, 1024)); // a prefix is fine
    a[3] = 0xdeadbeef;
    expect(b[3]).toBe(0xdeadbeef);
    expect(b.byteLength).toBe(1024);
    native.shmClose(a.buffer);
    native.shmClose(b.buffer);
  });

  it('throws ENOENT when opening a missing name, naming the call and the name', () => {
    const name = `/armature-test-${process.pid}-missing`;
    const error = catchError(() => native.shmOpen(name, 4096));
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('ENOENT');
    expect(error.syscall).toBe('shm_open');
    expect(error.path).toBe(name);
    expect(error.errno).toBeLessThan(0);
    expect(error.message).toContain('shm_open');
    expect(error.message).toContain(name);
  });

  it('throws ERANGE when the object is smaller than requested', () => {
    const name = regionName();
    const buffer = native.shmCreate(name, 4096);
    const error = catchError(() => native.shmOpen(name, 4097));
    expect(error.code).toBe('ERANGE');
    expect(error.message).toContain('4096');
    native.shmClose(buffer);
  });

  it('throws EEXIST on a second create and leaves the first mapping intact', () => {
    const name = regionName();
    const first = new Uint8Array(native.shmCreate(name, 4096));
    first[10] = 77;
    const error = catchError(() => native.shmCreate(name, 4096));
    expect(error.code).toBe('EEXIST');
    expect(error.message).toContain(name);
    expect(first[10]).toBe(77);
    const again = new Uint8Array(native.shmOpen(name, 4096));
    expect(again[10]).toBe(77);
    native.shmClose(first.buffer);
    native.shmClose(again.buffer);
  });

  it('rejects bad names and sizes with EINVAL, and non-strings with TypeError', () => {
    for (const name of ['no-slash', '/', '/a/b', '/..', '/a\0b']) {
      expect(catchError(() => native.shmCreate(name, 4096)).code).toBe('EINVAL');
    }
    expect(catchError(() => native.shmCreate(`/${'x'.repeat(300)}`, 4096)).code).toBe('ENAMETOOLONG');
    for (const bytes of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
      expect(catchError(() => native.shmCreate(regionName(), bytes)).code).toBe('EINVAL');
    }
    expect(() => native.shmCreate(42 as unknown as string, 4096)).toThrow(TypeError);
    expect(() => native.shmOpen('/armature-x', '4096' as unknown as number)).toThrow(TypeError);
  });

  it('unlinks idempotently while existing mappings stay valid', () => {
    const name = regionName();
    const view = new Uint8Array(native.shmCreate(name, 4096));
    native.shmUnlink(name);
    native.shmUnlink(name);
    view[0] = 1;
    expect(view[0]).toBe(1);
    expect(catchError(() => native.shmOpen(name, 4096)).code).toBe('ENOENT');
    const recreated = native.shmCreate(name, 4096); // the name is free again
    expect(new Uint8Array(recreated)[0]).toBe(0);
    native.shmClose(recreated);
    native.shmClose(view.buffer);
  });

  it('closes by detaching the buffer, idempotently', () => {
    const buffer = native.shmCreate(regionName(), 8192);
    const view = new Uint8Array(buffer);
    native.shmClose(buffer);
    expect(buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    native.shmClose(buffer);
    expect(buffer.byteLength).toBe(0);
  });

  it('refuses to close buffers it did not map', () => {
    expect(() => native.shmClose(new ArrayBuffer(16))).toThrow(TypeError);
    expect(() => native.shmClose(new SharedArrayBuffer(16) as unknown as ArrayBuffer)).toThrow(TypeError);
  });

  it('unmaps buffers that are garbage-collected without shmClose, and never unmaps twice', async () => {
    const name = regionName();
    const child = `
      const fs = require('node:fs');
      const native = require(process.env.ADDON);
      const name = process.env.NAME;
      const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(name)).length;
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
      // Every view maps the same object, so all read the last value written (63).
      function mapMany() {
        native.shmUnlink(name);
        native.shmCreate(name, 1 << 20); // dropped at once
        const live = [];
        for (let i = 0; i < 64; i++) {
          const view = new Uint8Array(native.shmOpen(name, 1 << 20)).fill(i);
          // A closed buffer's address is reused by the next mapping: when its finalizer
          // runs later, it must not unmap that one (reading it would then crash).
          if (i % 2 === 0) native.shmClose(view.buffer);
          else live.push(view);
        }
        return live;
      }
      (async () => {
        let live = mapMany(); // in a plain function: a suspended async frame keeps stale references
        await sleep(50); // the closed buffers' finalizers run from the event loop
        const liveIntact = live.every((view) => view[0] === 63 && view[view.length - 1] === 63);
        const before = mapped();
        live = [];
        for (let i = 0; i < 10 && mapped() > 0; i++) {
          globalThis.gc();
          await sleep(20);
        }
        native.shmUnlink(name);
        console.log(JSON.stringify({ before, liveIntact, after: mapped() }));
      })();
    `;
    const result = JSON.parse(await runChild(child, { NAME: name }, ['--expose-gc'])) as {
      before: number;
      liveIntact: boolean;
      after: number;
    };
    expect(result.before).toBeGreaterThanOrEqual(32); // the 32 live views, maybe the dropped one
    expect(result.liveIntact).toBe(true);
    expect(result.after).toBe(0);
  });
});

describe('copyBlocks', () => {
  const blockBytes = 48;
  const blocks = 64;

  function makeBuffer(kind: 'ArrayBuffer' | 'SharedArrayBuffer', seed: number): ArrayBuffer | SharedArrayBuffer {
    const buffer =
      kind === 'ArrayBuffer' ? new ArrayBuffer(blocks * blockBytes) : new SharedArrayBuffer(blocks * blockBytes);
    new Uint8Array(buffer).set(randomBytes(blocks * blockBytes, seed));
    return buffer;
  }

  /** Random ids with runs of consecutive ids on both sides mixed in. */
  function randomPairs(count: number, seed: number): { srcIds: Uint32Array; dstIds: Uint32Array } {
    const noise = randomBytes(count * 4, seed);
    const srcIds = new Uint32Array(count);
    const dstIds = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const continueRun = i > 0 && noise[i * 4] % 3 !== 0 && srcIds[i - 1] + 1 < blocks && dstIds[i - 1] + 1 < blocks;
      srcIds[i] = continueRun ? srcIds[i - 1] + 1 : noise[i * 4 + 1] % blocks;
      dstIds[i] = continueRun ? dstIds[i - 1] + 1 : noise[i * 4 + 2] % blocks;
    }
    return { srcIds, dstIds };
  }

  const kinds = ['ArrayBuffer', 'SharedArrayBuffer'] as const;
  for (const srcKind of kinds) {
    for (const dstKind of kinds) {
      it(`matches block-by-block copying, ${srcKind} -> ${dstKind}`, () => {
        for (let trial = 0; trial < 20; trial++) {
          const src = makeBuffer(srcKind, 100 + trial);
          const dst = makeBuffer(dstKind, 200 + trial);
          const expected = new Uint8Array(dst).slice();
          const { srcIds, dstIds } = randomPairs(1 + (trial % 40), 300 + trial);
          referenceCopy(new Uint8Array(src), srcIds, expected, dstIds, blockBytes);
          native.copyBlocks(src, srcIds, dst, dstIds, blockBytes);
          expect(new Uint8Array(dst)).toEqual(expected);
        }
      });
    }
  }

  it('copies contiguous runs, including a run that ends at the last block', () => {
    const src = makeBuffer('ArrayBuffer', 1);
    const dst = makeBuffer('SharedArrayBuffer', 2);
    const srcIds = Uint32Array.from([3, 4, 5, 9, 10, 61, 62, 63]);
    const dstIds = Uint32Array.from([0, 1, 2, 7, 8, 20, 21, 22]);
    const expected = new Uint8Array(dst).slice();
    referenceCopy(new Uint8Array(src), srcIds, expected, dstIds, blockBytes);
    native.copyBlocks(src, srcIds, dst, dstIds, blockBytes);
    expect(new Uint8Array(dst)).toEqual(expected);
  });

  it('copies between two processes through mapped regions', async () => {
    const name = regionName();
    const region = native.shmCreate(name, blocks * blockBytes);
    const source = makeBuffer('ArrayBuffer', 7);
    const ids = Uint32Array.from([0, 1, 2, 40, 41, 63]);
    native.copyBlocks(source, ids, region, ids, blockBytes);
    const child = `
      const native = require(process.env.ADDON);
      const region = native.shmOpen(process.env.NAME, ${blocks * blockBytes});
      const ids = Uint32Array.from([0, 1, 2, 40, 41, 63]);
      const out = new BigUint64Array(ids.length);
      native.checksumBlocks(region, ids, ${blockBytes}, out);
      console.log([...out].join(','));
    `;
    const childSums = (await runChild(child, { NAME: name })).trim();
    expect(childSums).toBe(checksums(source, [...ids], blockBytes).join(','));
    native.shmClose(region);
  });

  it('copies within one buffer pair by pair, in order', () => {
    const buffer = makeBuffer('SharedArrayBuffer', 3);
    const before = new Uint8Array(buffer).slice();
    // Block 1 is written by pair 0 and then read by pair 1: in order, both become old block 0.
    native.copyBlocks(buffer, Uint32Array.from([0, 1]), buffer, Uint32Array.from([1, 2]), blockBytes);
    const after = new Uint8Array(buffer);
    const block = (bytes: Uint8Array, id: number) => bytes.subarray(id * blockBytes, (id + 1) * blockBytes);
    expect(block(after, 1)).toEqual(block(before, 0));
    expect(block(after, 2)).toEqual(block(before, 0));
    expect(block(after, 3)).toEqual(block(before, 3));
  });

  it('checks every id before copying anything', () => {
    const src = makeBuffer('ArrayBuffer', 4);
    const dst = makeBuffer('SharedArrayBuffer', 5);
    const snapshot = new Uint8Array(dst).slice();
    const cases: Array<[number[], number[]]> = [
      [
        [0, 1, 2, blocks],
        [0, 1, 2, 3],
      ], // source id past the end, last pair
      [
        [0, 1, 2, 3],
        [5, 6, 7, blocks],
      ], // destination id past the end
      [
        [0, 0xffffffff],
        [0, 1],
      ], // largest id: no overflow
    ];
    for (const [srcIds, dstIds] of cases) {
      const error = catchError(() =>
        native.copyBlocks(src, Uint32Array.from(srcIds), dst, Uint32Array.from(dstIds), blockBytes),
      );
      expect(error).toBeInstanceOf(RangeError);
      expect(error.message).toMatch(/out of bounds/);
      expect(new Uint8Array(dst)).toEqual(snapshot);
    }
    // A block that straddles the end is out of bounds too.
    expect(() =>
      native.copyBlocks(src, Uint32Array.of(0), new ArrayBuffer(blockBytes + 10), Uint32Array.of(1), blockBytes),
    ).toThrow(RangeError);
    expect(() => native.copyBlocks(src, Uint32Array.of(0), dst, Uint32Array.of(0), 2 ** 52)).toThrow(RangeError);
  });

  it('rejects mismatched lengths, bad block sizes and wrong types', () => {
    const src = makeBuffer('ArrayBuffer', 6);
    const dst = makeBuffer('ArrayBuffer', 7);
    expect(() => native.copyBlocks(src, Uint32Array.of(0, 1), dst, Uint32Array.of(0), blockBytes)).toThrow(RangeError);
    for (const size of [0, -48, 1.5]) {
      expect(() => native.copyBlocks(src, Uint32Array.of(0), dst, Uint32Array.of(0), size)).toThrow(RangeError);
    }
    const ids = Uint32Array.of(0);
    const wrongIds = Int32Array.of(0) as unknown as Uint32Array;
    const view = new Uint8Array(src) as unknown as ArrayBuffer;
    const lookalike = Object.create(SharedArrayBuffer.prototype) as SharedArrayBuffer;
    expect(() => native.copyBlocks(src, wrongIds, dst, ids, blockBytes)).toThrow(TypeError);
    expect(() => native.copyBlocks(view, ids, dst, ids, blockBytes)).toThrow(TypeError);
    expect(() => native.copyBlocks(lookalike, ids, dst, ids, blockBytes)).toThrow(TypeError);
    expect(() => native.copyBlocks(src, ids, dst, ids, '48' as unknown as number)).toThrow(TypeError);
  });

  it('treats empty id lists and closed regions as nothing to copy', () => {
    const region = native.shmCreate(regionName(), blocks * blockBytes);
    native.shmClose(region);
    native.copyBlocks(region, new Uint32Array(0), new ArrayBuffer(0), new Uint32Array(0), blockBytes);
    expect(() => native.copyBlocks(region, Uint32Array.of(0), new ArrayBuffer(64), Uint32Array.of(0), 16)).toThrow(
      RangeError,
    );
  });
});

describe('checksumBlocks', () => {
  it('gives equal blocks equal checksums, in any buffer kind', () => {
    const blockBytes = 4096;
    const plain = new ArrayBuffer(4 * blockBytes);
    const shared = new SharedArrayBuffer(4 * blockBytes);
    const block = randomBytes(blockBytes, 9);
    new Uint8Array(plain).set(block, 0);
    new Uint8Array(plain).set(block, 2 * blockBytes);
    new Uint8Array(shared).set(block, 3 * blockBytes);
    const [a, b, c] = checksums(plain, [0, 1, 2], blockBytes);
    expect(a).toBe(c);
    expect(a).not.toBe(b);
    expect(checksums(shared, [3], blockBytes)[0]).toBe(a);
  });

  it('changes when any single byte changes', () => {
    for (const blockBytes of [45, 64, 4096]) {
      const block = randomBytes(blockBytes, blockBytes);
      const buffer = new ArrayBuffer(blockBytes);
      const bytes = new Uint8Array(buffer);
      bytes.set(block);
      const original = checksums(buffer, [0], blockBytes)[0];
      const seen = new Set<bigint>([original]);
      const positions = blockBytes <= 64 ? [...Array(blockBytes).keys()] : [0, 7, 8, 31, 32, 2048, 4095];
      for (const position of positions) {
        bytes[position] ^= 0x01;
        seen.add(checksums(buffer, [0], blockBytes)[0]);
        bytes[position] ^= 0x01;
      }
      expect(seen.size).toBe(positions.length + 1);
      expect(checksums(buffer, [0], blockBytes)[0]).toBe(original);
    }
  });

  it('implements armature-mx64 exactly as README.md specifies', () => {
    for (const blockBytes of [1, 7, 8, 9, 31, 32, 33, 45, 100, 4096]) {
      const buffer = new ArrayBuffer(3 * blockBytes);
      new Uint8Array(buffer).set(randomBytes(3 * blockBytes, 17 + blockBytes));
      const expected = [0, 1, 2].map((id) => referenceMx64(new Uint8Array(buffer, id * blockBytes, blockBytes)));
      expect(checksums(buffer, [0, 1, 2], blockBytes)).toEqual(expected);
    }
  });

  it('matches the golden values in README.md', () => {
    const counting = new ArrayBuffer(4096);
    new Uint8Array(counting).forEach((_, i, bytes) => (bytes[i] = i & 0xff));
    expect(checksums(counting, [0], 4096)[0]).toBe(0x317d160f79eeebfbn);
    expect(checksums(counting, [0], 45)[0]).toBe(0x81ab2f827f31301en);
    expect(checksums(new ArrayBuffer(4096), [0], 4096)[0]).toBe(0x941bcf3ccc9aaeaen);
    expect(checksums(new ArrayBuffer(1), [0], 1)[0]).toBe(0x9edba144382ea29an);
  });

  it('checks every id and the output length first', () => {
    const buffer = new ArrayBuffer(256);
    const out = new BigUint64Array([1n, 2n]);
    expect(() => native.checksumBlocks(buffer, Uint32Array.of(0, 4), 64, out)).toThrow(RangeError);
    expect([...out]).toEqual([1n, 2n]);
    expect(() => native.checksumBlocks(buffer, Uint32Array.of(0), 64, out)).toThrow(RangeError);
    expect(() =>
      native.checksumBlocks(buffer, Uint32Array.of(0), 64, new BigInt64Array(1) as unknown as BigUint64Array),
    ).toThrow(TypeError);
  });
});
