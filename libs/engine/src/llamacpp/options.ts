// llama.cpp engine settings, compiled once: raw options (ARMATURE_ENGINE_ARGS JSON, or the
// graph file's engineArgs) with documented defaults -> a validated, fully populated config.
// Unknown keys and bad values throw, so a typo in a deployment graph fails at start-up.
import { availableParallelism } from 'node:os';
import { ArmatureError } from '@armature/runtime';

export type LlamaGpu = 'auto' | 'cuda' | 'vulkan' | false;

export interface LlamaCppOptions {
  /** Served model name (default 'armature/tiny-llama'). */
  model?: string;
  /** GGUF file to load (default: the project's generated test model, written on first use). */
  modelPath?: string;
  /** GPU backend: false (default: CPU), 'auto' (the best one present), 'cuda' or 'vulkan'. */
  gpu?: LlamaGpu;
  /** Layers offloaded to the GPU when one is used: a number, 'auto' (default) or 'max'. */
  gpuLayers?: number | 'auto' | 'max';
  /** Context sequences (slots) decoded together in one batch (default 4). */
  sequences?: number;
  /** Tokens each sequence holds: prompt + completion (default 4096, at most the model's training context). */
  contextSize?: number;
  /** Most tokens in one forward pass (default 512). */
  batchSize?: number;
  /**
   * Fewest prompt tokens of one sequence put in a batch, and fewest left for a later one
   * (default 64; see batch-strategy.ts). 1 splits prompts anywhere.
   */
  minPrefillChunk?: number;
  /**
   * Decoding requests step together, one batch per step, and ride in every batch while
   * prompts are evaluated (default true; see step-gate.ts). false leaves batching to
   * node-llama-cpp's timing (for comparison).
   */
  lockstep?: boolean;
  /** CPU threads per evaluation (default: half the cores, at least 1). */
  threads?: number;
  /** Tokens per KV block in the KV events the router reads (default 16). */
  blockSize?: number;
  /** Publish KV events ('armature', default) or not ('none'). */
  kvEvents?: 'armature' | 'none';
  /** Data-parallel rank stamped on KV event batches (default null). */
  dpRank?: number | null;
}

export interface LlamaCppConfig {
  readonly model: string;
  readonly modelPath: string | undefined;
  readonly gpu: LlamaGpu;
  readonly gpuLayers: number | 'auto' | 'max';
  readonly sequences: number;
  readonly contextSize: number;
  readonly batchSize: number;
  readonly minPrefillChunk: number;
  readonly lockstep: boolean;
  readonly threads: number;
  readonly blockSize: number;
  readonly kvEvents: 'armature' | 'none';
  readonly dpRank: number | null;
}

export const LLAMACPP_DEFAULTS = {
  model: 'armature/tiny-llama',
  gpu: false,
  gpuLayers: 'auto',
  sequences: 4,
  contextSize: 4096,
  batchSize: 512,
  minPrefillChunk: 64,
  lockstep: true,
  blockSize: 16,
  kvEvents: 'armature',
  dpRank: null,
} as const;

const KNOWN = new Set<string>([...Object.keys(LLAMACPP_DEFAULTS), 'modelPath', 'threads']);

function bad(param: string, message: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_engine_options', `llamacpp option ${param}: ${message}`, { param });
}

function positiveInt(value: unknown, param: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw bad(param, `expected a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

/** Validates raw options and fills in the defaults; throws ArmatureError on bad values. */
export function compileLlamaCppOptions(options: LlamaCppOptions = {}): LlamaCppConfig {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw bad('options', 'expected an object');
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) throw bad(key, 'unknown option');
  const d = LLAMACPP_DEFAULTS;
  const gpu = options.gpu ?? d.gpu;
  if (gpu !== false && gpu !== 'auto' && gpu !== 'cuda' && gpu !== 'vulkan')
    throw bad('gpu', `expected auto, cuda, vulkan or false, got ${JSON.stringify(gpu)}`);
  const gpuLayers = options.gpuLayers ?? d.gpuLayers;
  if (gpuLayers !== 'auto' && gpuLayers !== 'max' && !(Number.isSafeInteger(gpuLayers) && gpuLayers >= 0))
    throw bad('gpuLayers', `expected a layer count, auto or max, got ${JSON.stringify(gpuLayers)}`);
  const modelPath = options.modelPath;
  if (modelPath !== undefined && (typeof modelPath !== 'string' || modelPath === ''))
    throw bad('modelPath', 'expected a path to a GGUF file');
  const model = options.model ?? d.model;
  if (typeof model !== 'string' || model === '') throw bad('model', 'expected a non-empty string');
  const kvEvents = options.kvEvents ?? d.kvEvents;
  if (kvEvents !== 'armature' && kvEvents !== 'none')
    throw bad('kvEvents', `expected armature or none, got ${JSON.stringify(kvEvents)}`);
  const lockstep = options.lockstep ?? d.lockstep;
  if (typeof lockstep !== 'boolean') throw bad('lockstep', `expected true or false, got ${JSON.stringify(lockstep)}`);
  const dpRank = options.dpRank ?? d.dpRank;
  if (dpRank !== null && (typeof dpRank !== 'number' || !Number.isSafeInteger(dpRank) || dpRank < 0))
    throw bad('dpRank', 'expected a non-negative integer or null');
  return Object.freeze({
    model,
    modelPath,
    gpu,
    gpuLayers,
    sequences: positiveInt(options.sequences, 'sequences', d.sequences),
    contextSize: positiveInt(options.contextSize, 'contextSize', d.contextSize),
    batchSize: positiveInt(options.batchSize, 'batchSize', d.batchSize),
    minPrefillChunk: positiveInt(options.minPrefillChunk, 'minPrefillChunk', d.minPrefillChunk),
    lockstep,
    threads: positiveInt(options.threads, 'threads', Math.max(1, Math.floor(availableParallelism() / 2))),
    blockSize: positiveInt(options.blockSize, 'blockSize', d.blockSize),
    kvEvents,
    dpRank,
  });
}
