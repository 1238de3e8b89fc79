// A small GGUF v3 writer, so tests can make their own llama.cpp models (none can be
// downloaded here).
//
// GGUF (llama.cpp's model file) is little-endian throughout:
//   header   magic "GGUF", version u32 (3), tensor count u64, metadata count u64
//   metadata count x { key: string, value type: u32, value }
//            string = u64 byte length + UTF-8 bytes (no terminator)
//            array  = item type u32 + u64 count + items (of one type)
//   tensors  count x { name: string, n_dims u32, ne[n_dims] u64 (ne0 first: the
//            contiguous dimension), ggml type u32, data offset u64 }
//   padding  to `general.alignment` (default 32)
//   data     each tensor at its offset (relative to the data section), every offset a
//            multiple of the alignment
// The header is built in memory (it is small: vocabulary strings at most); tensor data is
// produced one tensor at a time by callbacks and streamed to the file, so a model is never
// held in memory whole, let alone twice.
import { open } from 'node:fs/promises';
import { endianness } from 'node:os';

/** Metadata value types, numbered as in the file. */
export const GGUF_VALUE_TYPE = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

/** Tensor element types this writer can encode, numbered as ggml's `ggml_type`. */
export const GGML_TYPE = { F32: 0, F16: 1 } as const;
export type GgmlTensorType = keyof typeof GGML_TYPE;

/** The magic, as the first four bytes of the file spell it. */
export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
/** Alignment llama.cpp assumes when a file has no `general.alignment`. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPE, 'array'>;
type ScalarValue<T extends GgufScalarType> = T extends 'bool'
  ? boolean
  : T extends 'string'
    ? string
    : T extends 'uint64' | 'int64'
      ? bigint | number
      : number;

/** One metadata value: a typed scalar, or an array of one scalar type (nested arrays are not supported). */
export type GgufMetadataValue =
  | { [T in GgufScalarType]: { type: T; value: ScalarValue<T> } }[GgufScalarType]
  | { [T in GgufScalarType]: { type: 'array'; itemType: T; value: readonly ScalarValue<T>[] } }[GgufScalarType];

/** Builders for typed metadata values: `gguf.uint32(4)`, `gguf.array('string', ['a'])`. */
export const gguf = {
  uint8: (value: number) => ({ type: 'uint8', value }) as const,
  int8: (value: number) => ({ type: 'int8', value }) as const,
  uint16: (value: number) => ({ type: 'uint16', value }) as const,
  int16: (value: number) => ({ type: 'int16', value }) as const,
  uint32: (value: number) => ({ type: 'uint32', value }) as const,
  int32: (value: number) => ({ type: 'int32', value }) as const,
  uint64: (value: bigint | number) => ({ type: 'uint64', value }) as const,
  int64: (value: bigint | number) => ({ type: 'int64', value }) as const,
  float32: (value: number) => ({ type: 'float32', value }) as const,
  float64: (value: number) => ({ type: 'float64', value }) as const,
  bool: (value: boolean) => ({ type: 'bool', value }) as const,
  string: (value: string) => ({ type: 'string', value }) as const,
  array: <T extends GgufScalarType>(itemType: T, value: readonly ScalarValue<T>[]) =>
    ({ type: 'array', itemType, value }) as GgufMetadataValue,
};

/** Elements of a tensor, ne0 fastest: whole, or in consecutive chunks. */
export type GgufTensorData = Float32Array | Iterable<Float32Array> | AsyncIterable<Float32Array>;

export interface GgufTensor {
  /** At most 63 bytes (ggml's name limit), e.g. `blk.0.attn_q.weight`. */
  name: string;
  /** Dimensions in ggml order: ne0 (the contiguous, input dimension) first; 1 to 4 of them. */
  shape: readonly number[];
  /** Encoding in the file (default F32); elements are given as float32 either way. */
  type?: GgmlTensorType;
  /** Produces the elements when this tensor's turn comes, so only one tensor is in memory at a time. */
  data: () => GgufTensorData | Promise<GgufTensorData>;
}

export interface GgufFile {
  /** Keys in file order. `general.alignment` (uint32), if present, sets the alignment. */
  metadata: Record<string, GgufMetadataValue>;
  tensors: readonly GgufTensor[];
  /** Data alignment in bytes (default 32), written as `general.alignment` unless the metadata has it. */
  alignment?: number;
}

const MAX_TENSOR_NAME_BYTES = 63;
const MAX_DIMS = 4;

/** Writes `file` to `path` (created or truncated); returns the file's size in bytes. */
export async function writeGguf(path: string, file: GgufFile): Promise<number> {
  const layout = layoutGguf(file);
  const handle = await open(path, 'w');
  try {
    let position = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      await handle.write(bytes, 0, bytes.length, position);
      position += bytes.length;
    };
    await write(layout.header);
    for (const [index, tensor] of file.tensors.entries()) {
      const expected = layout.tensorBytes[index]!;
      const start = position;
      for await (const chunk of chunksOf(await tensor.data())) await write(encodeElements(chunk, tensor.type ?? 'F32'));
      if (position - start !== expected) {
        throw new Error(`gguf: tensor ${tensor.name} produced ${position - start} bytes, its shape needs ${expected}`);
      }
      await write(new Uint8Array(padding(position, layout.alignment)));
    }
    return position;
  } finally {
    await handle.close();
  }
}

/** The header (through the padding before tensor data) and where each tensor goes; exported for tests. */
export function layoutGguf(file: GgufFile): { header: Uint8Array; alignment: number; tensorBytes: number[] } {
  const metadata = { ...file.metadata };
  const alignment = resolveAlignment(metadata, file.alignment);
  const out = new ByteSink();
  out.bytes(new TextEncoder().encode(GGUF_MAGIC));
  out.u32(GGUF_VERSION);
  out.u64(file.tensors.length);
  out.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    out.string(key);
    writeValue(out, key, value);
  }
  const tensorBytes: number[] = [];
  let offset = 0;
  const names = new Set<string>();
  for (const tensor of file.tensors) {
    const bytes = tensorByteLength(tensor);
    if (names.has(tensor.name)) throw new Error(`gguf: duplicate tensor name ${tensor.name}`);
    names.add(tensor.name);
    out.string(tensor.name);
    out.u32(tensor.shape.length);
    for (const ne of tensor.shape) out.u64(ne);
    out.u32(GGML_TYPE[tensor.type ?? 'F32']);
    out.u64(offset);
    tensorBytes.push(bytes);
    offset += bytes + padding(bytes, alignment);
  }
  out.bytes(new Uint8Array(padding(out.length, alignment)));
  return { header: out.finish(), alignment, tensorBytes };
}

function resolveAlignment(metadata: Record<string, GgufMetadataValue>, requested: number | undefined): number {
  const fromMetadata = metadata['general.alignment'];
  let alignment = requested ?? GGUF_DEFAULT_ALIGNMENT;
  if (fromMetadata !== undefined) {
    if (fromMetadata.type !== 'uint32') throw new TypeError('gguf: general.alignment must be a uint32');
    if (requested !== undefined && requested !== fromMetadata.value) {
      throw new Error(`gguf: alignment ${requested} contradicts general.alignment ${fromMetadata.value}`);
    }
    alignment = fromMetadata.value;
  } else {
    metadata['general.alignment'] = gguf.uint32(alignment);
  }
  // llama.cpp rejects alignments that are not a power of two.
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    throw new RangeError(`gguf: alignment must be a power of two, got ${alignment}`);
  }
  return alignment;
}

function tensorByteLength(tensor: GgufTensor): number {
  if (new TextEncoder().encode(tensor.name).length > MAX_TENSOR_NAME_BYTES) {
    throw new RangeError(`gguf: tensor name longer than ${MAX_TENSOR_NAME_BYTES} bytes: ${tensor.name}`);
  }
  if (tensor.shape.length < 1 || tensor.shape.length > MAX_DIMS) {
    throw new RangeError(`gguf: tensor ${tensor.name} needs 1 to ${MAX_DIMS} dimensions`);
  }
  let elements = 1;
  for (const ne of tensor.shape) {
    if (!Number.isSafeInteger(ne) || ne < 1) throw new RangeError(`gguf: tensor ${tensor.name} has dimension ${ne}`);
    elements *= ne;
  }
  return elements * ((tensor.type ?? 'F32') === 'F32' ? 4 : 2);
}

function padding(position: number, alignment: number): number {
  return (alignment - (position % alignment)) % alignment;
}

function writeValue(out: ByteSink, key: string, value: GgufMetadataValue): void {
  out.u32(GGUF_VALUE_TYPE[value.type]);
  if (value.type === 'array') {
    out.u32(GGUF_VALUE_TYPE[value.itemType]);
    out.u64(value.value.length);
    for (const item of value.value) writeScalar(out, key, value.itemType, item);
  } else {
    writeScalar(out, key, value.type, value.value);
  }
}

const INTEGER_RANGES: Record<string, readonly [number, number]> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

function writeScalar(out: ByteSink, key: string, type: GgufScalarType, value: unknown): void {
  const bad = (): never => {
    throw new TypeError(`gguf: metadata ${key}: ${String(value)} is not a valid ${type}`);
  };
  switch (type) {
    case 'string':
      if (typeof value !== 'string') bad();
      return out.string(value as string);
    case 'bool':
      if (typeof value !== 'boolean') bad();
      return out.u8(value ? 1 : 0);
    case 'float32':
    case 'float64':
      if (typeof value !== 'number') bad();
      return type === 'float32' ? out.f32(value as number) : out.f64(value as number);
    case 'uint64':
    case 'int64': {
      if (typeof value === 'number' && !Number.isSafeInteger(value)) bad();
      if (typeof value !== 'number' && typeof value !== 'bigint') bad();
      const big = BigInt(value as number | bigint);
      if (type === 'uint64' ? BigInt.asUintN(64, big) !== big : BigInt.asIntN(64, big) !== big) bad();
      return type === 'uint64' ? out.u64(big) : out.i64(big);
    }
    default: {
      const [min, max] = INTEGER_RANGES[type]!;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) bad();
      return out.integer(type, value as number);
    }
  }
}

async function* chunksOf(data: GgufTensorData): AsyncIterable<Float32Array> {
  if (data instanceof Float32Array) yield data;
  else yield* data;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function encodeElements(chunk: Float32Array, type: GgmlTensorType): Uint8Array {
  if (type === 'F16') {
    const halves = new Uint16Array(chunk.length);
    const bits = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length);
    for (let i = 0; i < chunk.length; i++) halves[i] = float32BitsToFloat16Bits(bits[i]!);
    return toLittleEndian(halves, 2);
  }
  return toLittleEndian(chunk, 4);
}

function toLittleEndian(values: Float32Array | Uint16Array, width: 2 | 4): Uint8Array {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (LITTLE_ENDIAN_HOST) return bytes;
  const swapped = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let b = 0; b < width; b++) swapped[i + b] = bytes[i + width - 1 - b]!;
  }
  return swapped;
}

/** IEEE binary32 bits to binary16 bits, rounding to nearest even (Node 20 has no Float16Array). */
export function float32BitsToFloat16Bits(f32: number): number {
  const sign = (f32 >>> 16) & 0x8000;
  const exponent = (f32 >>> 23) & 0xff;
  let mantissa = f32 & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0); // inf, NaN
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00; // overflow to inf
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign; // underflow to zero
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // a carry rounds up the exponent, as it should
  return sign | half;
}

/** A growable little-endian buffer for the header. */
class ByteSink {
  private buffer = new Uint8Array(1 << 16);
  private view = new DataView(this.buffer.buffer);
  length = 0;
  private readonly utf8 = new TextEncoder();

  /** Room for `bytes` more; returns the view to write to (reserving may replace it) and where. */
  private reserve(bytes: number): [DataView, number] {
    if (this.length + bytes > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + bytes));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += bytes;
    return [this.view, at];
  }

  bytes(bytes: Uint8Array): void {
    const [, at] = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
  }
  u8(value: number): void {
    this.integer('uint8', value);
  }
  u32(value: number): void {
    this.integer('uint32', value);
  }
  u64(value: number | bigint): void {
    const [view, at] = this.reserve(8);
    view.setBigUint64(at, BigInt(value), true);
  }
  i64(value: bigint): void {
    const [view, at] = this.reserve(8);
    view.setBigInt64(at, value, true);
  }
  f32(value: number): void {
    const [view, at] = this.reserve(4);
    view.setFloat32(at, value, true);
  }
  f64(value: number): void {
    const [view, at] = this.reserve(8);
    view.setFloat64(at, value, true);
  }
  integer(type: string, value: number): void {
    switch (type) {
      case 'uint8': {
        const [view, at] = this.reserve(1);
        return view.setUint8(at, value);
      }
      case 'int8': {
        const [view, at] = this.reserve(1);
        return view.setInt8(at, value);
      }
      case 'uint16': {
        const [view, at] = this.reserve(2);
        return view.setUint16(at, value, true);
      }
      case 'int16': {
        const [view, at] = this.reserve(2);
        return view.setInt16(at, value, true);
      }
      case 'uint32': {
        const [view, at] = this.reserve(4);
        return view.setUint32(at, value, true);
      }
      default: {
        const [view, at] = this.reserve(4);
        return view.setInt32(at, value, true);
      }
    }
  }
  string(value: string): void {
    const bytes = this.utf8.encode(value);
    this.u64(bytes.length);
    this.bytes(bytes);
  }
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}
