// Mocker settings, compiled once: raw options (as a worker reads them from
// ARMATURE_ENGINE_ARGS JSON) with documented defaults -> a validated, fully-populated config.
// Unknown keys and bad values throw, so a typo in a deployment graph fails at start-up.
import { ArmatureError, type ModelCard } from '@armature/runtime';
import type { KvCacheLayout } from '../types.js';
import { createPerfModel, type PerfModel, type PerfModelOptions } from './perf-model.js';

/** Shape of the simulated KV cache; blockSize comes from the mocker's blockSize. */
export interface MockerKvLayoutOptions {
  /** Layers (default 2). */
  numLayers?: number;
  /** KV heads (default 2). */
  kvHeads?: number;
  /** Elements per head (default 64). */
  headDim?: number;
  /** Bytes per element (default 2, as bf16). kvHeads × headDim × dtypeBytes must be a multiple of 4. */
  dtypeBytes?: number;
}

export interface MockerOptions {
  /** Served model name (default 'armature/mock-model'). */
  model?: string;
  /** Tokens per KV block (default 16: the frontend's prompts are short). */
  blockSize?: number;
  /** KV blocks on the simulated device (default 16384). */
  totalKvBlocks?: number;
  /** Most sequences in one pass (default 256). */
  maxNumSeqs?: number;
  /** Most tokens in one pass, the chunked-prefill budget (default 8192). */
  maxNumBatchedTokens?: number;
  /** Longest prompt + max_tokens accepted (default 8192). */
  contextLength?: number;
  /** Divides every simulated time (default 1). */
  speedup?: number;
  /** Chance that each generated token is EOS unless ignore_eos (default 1/128). */
  eosProbability?: number;
  /** Tokenizer id the frontend should use (default 'gpt-tokenizer:o200k_base'). */
  tokenizer?: string;
  /** Chat template id (default 'chatml'). */
  chatTemplate?: string;
  /** End-of-sequence ids; the first is the one emitted (default [199999], o200k's <|endoftext|>). */
  eosTokenIds?: number[];
  /** [first, end) of the ids generated as ordinary tokens (default [256, 100000)). */
  vocabRange?: [number, number];
  /** Reuse cached prefix blocks and report KV events (default true). */
  enablePrefixCaching?: boolean;
  /** Timing model (default Dynamo's polynomial); its speedup, if any, must agree with `speedup`. */
  perfModel?: PerfModelOptions;
  /** Data-parallel rank stamped on KV event batches (default null). */
  dpRank?: number | null;
  /**
   * KV events published (default 'armature': our sequence hashes). 'opaque' scrambles the
   * hashes as an engine with private hashes would (vLLM), so the router must recompute them
   * from token ids; 'none' publishes nothing, so the router predicts the cache (approximate).
   */
  kvEvents?: 'armature' | 'opaque' | 'none';
  /**
   * Shape of the KV cache's bytes, which exist once memory is attached (disaggregated
   * serving). Defaults: 2 layers × 2 KV heads × 64 × 2 bytes: 1 KiB per token, 16 KiB per
   * 16-token block, small enough that tests move real bytes cheaply.
   */
  kvLayout?: MockerKvLayoutOptions;
}

export interface MockerConfig {
  readonly model: string;
  readonly blockSize: number;
  readonly totalKvBlocks: number;
  readonly maxNumSeqs: number;
  readonly maxNumBatchedTokens: number;
  readonly contextLength: number;
  readonly speedup: number;
  readonly eosProbability: number;
  readonly tokenizer: string;
  readonly chatTemplate: string;
  readonly eosTokenIds: readonly number[];
  readonly vocabRange: readonly [number, number];
  readonly enablePrefixCaching: boolean;
  readonly perfModel: PerfModel;
  readonly dpRank: number | null;
  readonly kvEvents: 'armature' | 'opaque' | 'none';
  readonly kvLayout: Readonly<KvCacheLayout>;
}

export const MOCKER_DEFAULTS = {
  model: 'armature/mock-model',
  blockSize: 16,
  totalKvBlocks: 16384,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 8192,
  contextLength: 8192,
  speedup: 1,
  eosProbability: 1 / 128,
  tokenizer: 'gpt-tokenizer:o200k_base',
  chatTemplate: 'chatml',
  eosTokenIds: [199999],
  vocabRange: [256, 100000],
  enablePrefixCaching: true,
  dpRank: null,
  kvEvents: 'armature',
  kvLayout: { numLayers: 2, kvHeads: 2, headDim: 64, dtypeBytes: 2 },
} as const;

const KNOWN_KEYS = new Set<string>([...Object.keys(MOCKER_DEFAULTS), 'perfModel']);
const MAX_TOKEN_ID = 2 ** 32 - 1;

function bad(param: string, message: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_engine_options', `mocker option ${param}: ${message}`, { param });
}

function positiveInt(value: unknown, param: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw bad(param, `expected a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

function nonEmptyString(value: unknown, param: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') throw bad(param, 'expected a non-empty string');
  return value;
}

function tokenId(value: unknown, param: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_TOKEN_ID)
    throw bad(param, `expected token ids in [0, 2^32), got ${JSON.stringify(value)}`);
  return value;
}

function kvLayout(value: unknown, blockSize: number): Readonly<KvCacheLayout> {
  const d = MOCKER_DEFAULTS.kvLayout;
  const raw: unknown = value ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('kvLayout', 'expected an object');
  for (const key of Object.keys(raw)) if (!Object.hasOwn(d, key)) throw bad(`kvLayout.${key}`, 'unknown option');
  const { numLayers, kvHeads, headDim, dtypeBytes } = raw as MockerKvLayoutOptions;
  const layout: KvCacheLayout = {
    numLayers: positiveInt(numLayers, 'kvLayout.numLayers', d.numLayers),
    kvHeads: positiveInt(kvHeads, 'kvLayout.kvHeads', d.kvHeads),
    headDim: positiveInt(headDim, 'kvLayout.headDim', d.headDim),
    dtypeBytes: positiveInt(dtypeBytes, 'kvLayout.dtypeBytes', d.dtypeBytes),
    blockSize,
  };
  // Rows are written and checked as whole 32-bit words.
  const rowBytes = layout.kvHeads * layout.headDim * layout.dtypeBytes;
  if (rowBytes % 4 !== 0) throw bad('kvLayout', `kvHeads × headDim × dtypeBytes (${rowBytes}) must be a multiple of 4`);
  if (!Number.isSafeInteger(rowBytes * layout.numLayers * 2 * blockSize)) throw bad('kvLayout', 'a block is too large');
  return Object.freeze(layout);
}

/** Validates raw mocker options and fills in the defaults; throws ArmatureError on bad values. */
export function compileMockerOptions(options: MockerOptions = {}): MockerConfig {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw bad('options', 'expected an object');
  for (const key of Object.keys(options)) if (!KNOWN_KEYS.has(key)) throw bad(key, 'unknown option');
  const d = MOCKER_DEFAULTS;

  const speedup = options.speedup ?? options.perfModel?.speedup ?? d.speedup;
  if (typeof speedup !== 'number' || !Number.isFinite(speedup) || speedup <= 0)
    throw bad('speedup', `expected a positive number, got ${JSON.stringify(speedup)}`);
  if (options.perfModel?.speedup !== undefined && options.perfModel.speedup !== speedup)
    throw bad('perfModel.speedup', 'disagrees with speedup');

  const eosProbability = options.eosProbability ?? d.eosProbability;
  if (typeof eosProbability !== 'number' || !(eosProbability >= 0 && eosProbability <= 1))
    throw bad('eosProbability', `expected a number in [0, 1], got ${JSON.stringify(eosProbability)}`);

  const eosRaw: unknown = options.eosTokenIds ?? d.eosTokenIds;
  if (!Array.isArray(eosRaw) || eosRaw.length === 0)
    throw bad('eosTokenIds', 'expected a non-empty array of token ids');
  const eosTokenIds = eosRaw.map((id) => tokenId(id, 'eosTokenIds'));

  const rangeRaw: unknown = options.vocabRange ?? d.vocabRange;
  if (!Array.isArray(rangeRaw) || rangeRaw.length !== 2) throw bad('vocabRange', 'expected [first, end)');
  const vocabRange: [number, number] = [tokenId(rangeRaw[0], 'vocabRange'), tokenId(rangeRaw[1], 'vocabRange')];
  if (vocabRange[0] >= vocabRange[1]) throw bad('vocabRange', 'first must be below end');

  const enablePrefixCaching = options.enablePrefixCaching ?? d.enablePrefixCaching;
  if (typeof enablePrefixCaching !== 'boolean') throw bad('enablePrefixCaching', 'expected a boolean');

  const dpRank = options.dpRank ?? d.dpRank;
  if (dpRank !== null && (typeof dpRank !== 'number' || !Number.isSafeInteger(dpRank) || dpRank < 0))
    throw bad('dpRank', 'expected a non-negative integer or null');

  const kvEvents = options.kvEvents ?? d.kvEvents;
  if (kvEvents !== 'armature' && kvEvents !== 'opaque' && kvEvents !== 'none')
    throw bad('kvEvents', `expected armature, opaque or none, got ${JSON.stringify(kvEvents)}`);

  const blockSize = positiveInt(options.blockSize, 'blockSize', d.blockSize);
  const config: MockerConfig = {
    model: nonEmptyString(options.model, 'model', d.model),
    blockSize,
    totalKvBlocks: positiveInt(options.totalKvBlocks, 'totalKvBlocks', d.totalKvBlocks),
    maxNumSeqs: positiveInt(options.maxNumSeqs, 'maxNumSeqs', d.maxNumSeqs),
    maxNumBatchedTokens: positiveInt(options.maxNumBatchedTokens, 'maxNumBatchedTokens', d.maxNumBatchedTokens),
    contextLength: positiveInt(options.contextLength, 'contextLength', d.contextLength),
    speedup,
    eosProbability,
    tokenizer: nonEmptyString(options.tokenizer, 'tokenizer', d.tokenizer),
    chatTemplate: nonEmptyString(options.chatTemplate, 'chatTemplate', d.chatTemplate),
    eosTokenIds: Object.freeze(eosTokenIds),
    vocabRange: Object.freeze(vocabRange),
    enablePrefixCaching,
    perfModel: createPerfModel({ ...options.perfModel, speedup }),
    dpRank,
    kvEvents,
    kvLayout: kvLayout(options.kvLayout, blockSize),
  };
  return Object.freeze(config);
}

/** The model deployment card a mocker advertises. */
export function mockerCard(config: MockerConfig): ModelCard {
  return {
    model: config.model,
    blockSize: config.blockSize,
    totalKvBlocks: config.totalKvBlocks,
    maxNumSeqs: config.maxNumSeqs,
    maxNumBatchedTokens: config.maxNumBatchedTokens,
    contextLength: config.contextLength,
    tokenizer: config.tokenizer,
    chatTemplate: config.chatTemplate,
    eosTokenIds: [...config.eosTokenIds],
    engine: 'mocker',
    kvEvents: config.kvEvents,
  };
}
