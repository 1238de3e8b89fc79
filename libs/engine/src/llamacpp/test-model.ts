// The project's own test model: a tiny llama-architecture GGUF with seeded random weights
// and an English-word vocabulary. No model can be downloaded on our machines, yet the
// llama.cpp engine needs one to load, tokenize with and generate from; this one is a few
// megabytes, generates hundreds of tokens per second on one CPU thread, and its bytes are
// a pure function of its options, so a cached copy can be shared by every test.
//
// Weights are N(0, 0.02)-like and norms 1, except the output projection: its rows for
// whole-word pieces are N(0, 0.25) (logits spread by a few units, so sampling is not
// uniform) and every other row is zero. Greedy and low-temperature generation therefore
// emit whole words only, never fragments, bytes, EOS or <|im_end|>: tests bound generation
// with a token limit. A model written with `eosLike: id` ends instead: EOS's output row is a
// copy of token `id`'s, slightly scaled up, so greedy decoding produces EOS exactly where
// the same model without it would have produced that token.
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gguf, writeGguf, type GgufMetadataValue, type GgufTensor } from './gguf-writer.js';
import { BOS_ID, EOS_ID, UNK_ID, buildTestVocab } from './test-vocab.js';

export interface TestModelOptions {
  /** Transformer blocks (default 2). */
  layers?: number;
  /** Hidden size (default 64). */
  embedding?: number;
  /** Attention heads (default 4); must divide `embedding`. */
  heads?: number;
  /** Key/value heads (default 2, grouped-query attention); must divide `heads`. */
  kvHeads?: number;
  /** Feed-forward hidden size (default 128). */
  feedForward?: number;
  /** Trained context length written to the metadata (default 4096). */
  contextLength?: number;
  /** English words in the vocabulary (default 4000), besides characters and word prefixes. */
  vocabWords?: number;
  /** Seed of the weights (default 1). */
  seed?: number;
  /**
   * A whole-word token id whose place EOS takes under greedy decoding (see above); by
   * default EOS is never produced.
   */
  eosLike?: number;
}

export type CompiledTestModelOptions = Required<Omit<TestModelOptions, 'eosLike'>> & { eosLike?: number };

/** How much EOS's copied output row is scaled: enough to win the tie, too little to win elsewhere. */
const EOS_LIKE_SCALE = 1.01;

export const TEST_MODEL_DEFAULTS: CompiledTestModelOptions = {
  layers: 2,
  embedding: 64,
  heads: 4,
  kvHeads: 2,
  feedForward: 128,
  contextLength: 4096,
  vocabWords: 4000,
  seed: 1,
};

export const TEST_MODEL_NAME = 'armature-tiny-llama';

/** ChatML, stored as the model's `tokenizer.chat_template`. */
export const TEST_MODEL_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * Bumped whenever the bytes written for the same options change, so cached models under
 * .armature/models are not reused across generator versions.
 */
const GENERATOR_VERSION = 1;

const WEIGHT_STD = 0.02;
const OUTPUT_WORD_STD = 0.25;
const RMS_NORM_EPSILON = 1e-5;
const ROPE_FREQ_BASE = 10000;
const CHUNK_ELEMENTS = 1 << 16;

/** Fills defaults and validates; throws RangeError on an explicit bad value. */
export function compileTestModelOptions(options: TestModelOptions = {}): CompiledTestModelOptions {
  const compiled = { ...TEST_MODEL_DEFAULTS };
  for (const key of Object.keys(TEST_MODEL_DEFAULTS) as (keyof typeof TEST_MODEL_DEFAULTS)[]) {
    const value = options[key];
    if (value === undefined) continue;
    const min = key === 'seed' ? 0 : 1;
    if (!Number.isInteger(value) || value < min || value > 0xffffffff) {
      throw new RangeError(`test model: ${key} must be an integer >= ${min}, got ${value}`);
    }
    compiled[key] = value;
  }
  if (compiled.embedding % compiled.heads !== 0) throw new RangeError('test model: heads must divide embedding');
  if (compiled.heads % compiled.kvHeads !== 0) throw new RangeError('test model: kvHeads must divide heads');
  if ((compiled.embedding / compiled.heads) % 2 !== 0)
    throw new RangeError('test model: head size must be even (RoPE)');
  // Not among the defaults, so the models written without it keep their cache names.
  if (options.eosLike !== undefined) {
    if (!Number.isInteger(options.eosLike) || options.eosLike < 0)
      throw new RangeError(`test model: eosLike must be a token id, got ${options.eosLike}`);
    (compiled as CompiledTestModelOptions).eosLike = options.eosLike;
  }
  return compiled;
}

/** Writes the model to `path` (created or truncated); the same options always give the same bytes. */
export async function writeTestModel(path: string, options: TestModelOptions = {}): Promise<void> {
  const o = compileTestModelOptions(options);
  const vocab = await buildTestVocab(o.vocabWords);
  const vocabSize = vocab.tokens.length;
  const headSize = o.embedding / o.heads;
  const kvSize = headSize * o.kvHeads;

  const metadata: Record<string, GgufMetadataValue> = {
    'general.architecture': gguf.string('llama'),
    'general.name': gguf.string(TEST_MODEL_NAME),
    'general.file_type': gguf.uint32(0), // all F32
    'llama.context_length': gguf.uint32(o.contextLength),
    'llama.embedding_length': gguf.uint32(o.embedding),
    'llama.block_count': gguf.uint32(o.layers),
    'llama.feed_forward_length': gguf.uint32(o.feedForward),
    'llama.attention.head_count': gguf.uint32(o.heads),
    'llama.attention.head_count_kv': gguf.uint32(o.kvHeads),
    'llama.rope.dimension_count': gguf.uint32(headSize),
    'llama.rope.freq_base': gguf.float32(ROPE_FREQ_BASE),
    'llama.attention.layer_norm_rms_epsilon': gguf.float32(RMS_NORM_EPSILON),
    'llama.vocab_size': gguf.uint32(vocabSize),
    'tokenizer.ggml.model': gguf.string('llama'),
    'tokenizer.ggml.tokens': gguf.array('string', vocab.tokens),
    'tokenizer.ggml.scores': gguf.array('float32', vocab.scores),
    'tokenizer.ggml.token_type': gguf.array('int32', vocab.types),
    'tokenizer.ggml.bos_token_id': gguf.uint32(BOS_ID),
    'tokenizer.ggml.eos_token_id': gguf.uint32(EOS_ID),
    'tokenizer.ggml.unknown_token_id': gguf.uint32(UNK_ID),
    'tokenizer.ggml.add_bos_token': gguf.bool(true),
    'tokenizer.ggml.add_eos_token': gguf.bool(false),
    'tokenizer.ggml.add_space_prefix': gguf.bool(true),
    'tokenizer.chat_template': gguf.string(TEST_MODEL_CHAT_TEMPLATE),
  };

  const isWord = new Uint8Array(vocabSize);
  for (const id of vocab.wordIds) isWord[id] = 1;
  if (o.eosLike !== undefined && !isWord[o.eosLike])
    throw new RangeError(`test model: eosLike ${o.eosLike} is not a whole-word token of the vocabulary`);
  const random = (name: string, shape: number[]): GgufTensor => ({
    name,
    shape,
    data: () => gaussianRows(o.seed, name, shape, () => WEIGHT_STD),
  });
  const ones = (name: string, size: number): GgufTensor => ({
    name,
    shape: [size],
    data: () => new Float32Array(size).fill(1),
  });
  // ggml shapes: ne0 is the input dimension, ne1 the output (a row per output unit).
  const tensors: GgufTensor[] = [
    random('token_embd.weight', [o.embedding, vocabSize]),
    ones('output_norm.weight', o.embedding),
    {
      name: 'output.weight',
      shape: [o.embedding, vocabSize],
      data: () => {
        const rows = gaussianRows(
          o.seed,
          'output.weight',
          [o.embedding, vocabSize],
          (row) => OUTPUT_WORD_STD * isWord[row]!,
        );
        return o.eosLike === undefined ? rows : withEosLike(rows, o.embedding, vocabSize, o.eosLike);
      },
    },
  ];
  for (let layer = 0; layer < o.layers; layer++) {
    const blk = `blk.${layer}`;
    tensors.push(
      ones(`${blk}.attn_norm.weight`, o.embedding),
      random(`${blk}.attn_q.weight`, [o.embedding, o.embedding]),
      random(`${blk}.attn_k.weight`, [o.embedding, kvSize]),
      random(`${blk}.attn_v.weight`, [o.embedding, kvSize]),
      random(`${blk}.attn_output.weight`, [o.embedding, o.embedding]),
      ones(`${blk}.ffn_norm.weight`, o.embedding),
      random(`${blk}.ffn_gate.weight`, [o.embedding, o.feedForward]),
      random(`${blk}.ffn_up.weight`, [o.embedding, o.feedForward]),
      random(`${blk}.ffn_down.weight`, [o.feedForward, o.embedding]),
    );
  }
  await writeGguf(path, { metadata, tensors });
}

/**
 * Path of the cached model for these options:
 * `<repo root>/.armature/models/armature-tiny-llama-<hash of options>.gguf`.
 */
export function testModelPath(options: TestModelOptions = {}): string {
  const compiled = compileTestModelOptions(options);
  const key = JSON.stringify({ generator: GENERATOR_VERSION, ...compiled });
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return join(REPO_ROOT, '.armature', 'models', `${TEST_MODEL_NAME}-${hash}.gguf`);
}

// This file is libs/engine/{src,dist}/llamacpp/test-model.{ts,js}: four levels below the root.
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

const pending = new Map<string, Promise<string>>();

/**
 * Returns the cached model's path (see `testModelPath`), writing it first if missing. The
 * file is written under a temporary name and renamed, so a concurrent process never sees
 * it partial; two processes racing both write and the second rename replaces identical bytes.
 */
export function ensureTestModel(options: TestModelOptions = {}): Promise<string> {
  const path = testModelPath(options);
  let ready = pending.get(path);
  if (!ready) {
    ready = materialize(path, options);
    pending.set(path, ready);
    ready.catch(() => pending.delete(path));
  }
  return ready;
}

async function materialize(path: string, options: TestModelOptions): Promise<string> {
  if (await exists(path)) return path;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeTestModel(temporary, options);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return path;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Row-major N(0, std(row)) elements in chunks. Each tensor has its own stream (seed and
 * name), so one tensor's values do not depend on which tensors come before it. Only integer
 * arithmetic and + - * feed the values, so they are bit-identical on every platform and
 * Node version (Math.log/sin/cos, as in Box-Muller, are not guaranteed to be).
 */
function* gaussianRows(
  seed: number,
  name: string,
  shape: number[],
  rowStd: (row: number) => number,
): Generator<Float32Array> {
  const rowLength = shape[0]!;
  const rows = shape.slice(1).reduce((n, d) => n * d, 1);
  const next = sfc32(seed, name);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowLength));
  // Irwin-Hall: the sum of four uniforms, centred and scaled, has mean 0 and variance 1.
  const unitScale = Math.sqrt(3) / 2 ** 32;
  for (let firstRow = 0; firstRow < rows; firstRow += rowsPerChunk) {
    const chunkRows = Math.min(rowsPerChunk, rows - firstRow);
    const chunk = new Float32Array(chunkRows * rowLength);
    for (let r = 0; r < chunkRows; r++) {
      const std = rowStd(firstRow + r);
      for (let i = 0; i < rowLength; i++) {
        const sum = next() + next() + next() + next() - 2 * 2 ** 32;
        chunk[r * rowLength + i] = std * sum * unitScale;
      }
    }
    yield chunk;
  }
}

/** The output rows with EOS's row replaced by token `like`'s, scaled by EOS_LIKE_SCALE; one chunk. */
function* withEosLike(
  rows: Generator<Float32Array>,
  rowLength: number,
  vocabSize: number,
  like: number,
): Generator<Float32Array> {
  const all = new Float32Array(rowLength * vocabSize);
  let offset = 0;
  for (const chunk of rows) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  const source = all.subarray(like * rowLength, (like + 1) * rowLength);
  const eos = all.subarray(EOS_ID * rowLength, (EOS_ID + 1) * rowLength);
  for (let i = 0; i < rowLength; i++) eos[i] = source[i]! * EOS_LIKE_SCALE;
  yield all;
}

/** sfc32 (Small Fast Counting), seeded from the model seed and the tensor name; yields uint32s. */
function sfc32(seed: number, name: string): () => number {
  let h = 0x811c9dc5; // FNV-1a of the name
  for (const byte of new TextEncoder().encode(name)) h = Math.imul(h ^ byte, 0x01000193);
  let a = seed >>> 0;
  let b = h >>> 0;
  let c = 0x9e3779b9;
  let d = 1;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 15; i++) next(); // mix the seed in
  return next;
}
