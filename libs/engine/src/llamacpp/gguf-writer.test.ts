import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufFileInfo } from 'node-llama-cpp';
import { float32BitsToFloat16Bits, gguf, layoutGguf, writeGguf, type GgufFile } from './gguf-writer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'armature-gguf-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const range = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

const everyType: GgufFile['metadata'] = {
  'general.architecture': gguf.string('llama'),
  'test.u8': gguf.uint8(255),
  'test.i8': gguf.int8(-128),
  'test.u16': gguf.uint16(65535),
  'test.i16': gguf.int16(-32768),
  'test.u32': gguf.uint32(4294967295),
  'test.i32': gguf.int32(-2147483648),
  'test.u64': gguf.uint64(2n ** 64n - 1n),
  'test.i64': gguf.int64(-(2n ** 63n)),
  'test.f32': gguf.float32(0.5),
  'test.f64': gguf.float64(Math.PI),
  'test.yes': gguf.bool(true),
  'test.no': gguf.bool(false),
  'test.text': gguf.string('héllo ▁ world'),
  'test.strings': gguf.array('string', ['a', '', '<0x0A>']),
  'test.ints': gguf.array('int32', [-1, 0, 7]),
  'test.floats': gguf.array('float32', [-0.25, 1]),
  'test.bools': gguf.array('bool', [true, false]),
  'test.bytes': gguf.array('uint8', [0, 255]),
};

describe('writeGguf', () => {
  it('writes metadata of every type that node-llama-cpp reads back', async () => {
    const path = join(dir, 'meta.gguf');
    await writeGguf(path, { metadata: everyType, tensors: [] });
    const info = await readGgufFileInfo(path, { logWarnings: false });
    expect(info.version).toBe(3);
    const test = (info.metadata as unknown as { test: Record<string, unknown> }).test;
    expect(test).toMatchObject({
      u8: 255,
      i8: -128,
      u16: 65535,
      i16: -32768,
      u32: 4294967295,
      i32: -2147483648,
      f32: 0.5,
      f64: Math.PI,
      yes: true,
      no: false,
      text: 'héllo ▁ world',
      strings: ['a', '', '<0x0A>'],
      ints: [-1, 0, 7],
      floats: [-0.25, 1],
      bools: [true, false],
      bytes: [0, 255],
    });
    expect(BigInt(test.u64 as bigint)).toBe(2n ** 64n - 1n);
    expect(BigInt(test.i64 as bigint)).toBe(-(2n ** 63n));
    expect(info.metadata.general.alignment).toBe(32);
  });

  it('places tensors at aligned offsets and streams chunked data', async () => {
    const path = join(dir, 'tensors.gguf');
    const size = await writeGguf(path, {
      metadata: { 'general.architecture': gguf.string('llama') },
      alignment: 64,
      tensors: [
        { name: 'a', shape: [3], data: () => range(3, (i) => i + 1) },
        {
          name: 'b',
          shape: [4, 2],
          data: function* () {
            yield range(5, (i) => 10 + i);
            yield range(3, (i) => 15 + i);
          },
        },
        { name: 'c', shape: [2, 1, 1], type: 'F16', data: async () => Float32Array.of(1.5, -2) },
      ],
    });
    expect((await stat(path)).size).toBe(size);
    const info = await readGgufFileInfo(path, { logWarnings: false });
    expect(info.metadata.general.alignment).toBe(64);
    const tensors = info.tensorInfo!;
    expect(tensors.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType])).toEqual([
      ['a', [3], 0],
      ['b', [4, 2], 0],
      ['c', [2, 1, 1], 1],
    ]);
    expect(tensors.map((t) => Number(t.offset))).toEqual([0, 64, 128]);
    const bytes = await readFile(path);
    const at = (t: number) => Number(tensors[t]!.fileOffset);
    expect(Number(tensors[0]!.fileOffset) % 64).toBe(0);
    expect([0, 1, 2].map((i) => bytes.readFloatLE(at(0) + 4 * i))).toEqual([1, 2, 3]);
    expect(Array.from({ length: 8 }, (_, i) => bytes.readFloatLE(at(1) + 4 * i))).toEqual([
      10, 11, 12, 13, 14, 15, 16, 17,
    ]);
    expect([bytes.readUInt16LE(at(2)), bytes.readUInt16LE(at(2) + 2)]).toEqual([0x3e00, 0xc000]);
    expect(size).toBe(at(2) + 64);
  });

  it('rejects bad values, names and sizes', async () => {
    const file = (extra: Partial<GgufFile>): GgufFile => ({ metadata: {}, tensors: [], ...extra });
    expect(() => layoutGguf(file({ metadata: { k: gguf.uint8(256) } }))).toThrow(TypeError);
    expect(() => layoutGguf(file({ metadata: { k: gguf.int32(1.5) } }))).toThrow(TypeError);
    expect(() => layoutGguf(file({ metadata: { k: gguf.uint64(-1n) } }))).toThrow(TypeError);
    expect(() => layoutGguf(file({ alignment: 24 }))).toThrow(RangeError);
    expect(() => layoutGguf(file({ alignment: 64, metadata: { 'general.alignment': gguf.uint32(32) } }))).toThrow();
    const tensor = { name: 'x'.repeat(64), shape: [1], data: () => new Float32Array(1) };
    expect(() => layoutGguf(file({ tensors: [tensor] }))).toThrow(RangeError);
    expect(() => layoutGguf(file({ tensors: [{ ...tensor, name: 'x', shape: [1, 1, 1, 1, 1] }] }))).toThrow(RangeError);
    const short = file({ tensors: [{ name: 'x', shape: [4], data: () => new Float32Array(3) }] });
    await expect(writeGguf(join(dir, 'short.gguf'), short)).rejects.toThrow(/produced 12 bytes, its shape needs 16/);
  });
});

describe('float32BitsToFloat16Bits', () => {
  const bitsOf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite half
    [65520, 0x7c00], // rounds up to inf
    [Infinity, 0x7c00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -14, 0x0400], // smallest normal
    [1 + 2 ** -11, 0x3c00], // halfway: ties to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // halfway: ties to even (up)
  ])('%d -> %i', (value, half) => {
    expect(float32BitsToFloat16Bits(bitsOf(value))).toBe(half);
  });
  it('keeps NaN a NaN', () => {
    expect(float32BitsToFloat16Bits(bitsOf(NaN)) & 0x7fff).toBeGreaterThan(0x7c00);
  });
});
