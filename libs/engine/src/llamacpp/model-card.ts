// What a loaded GGUF model says about the engine serving it: the model card the worker
// publishes (context, slots, EOS tokens, the GGUF's own tokenizer and chat template), the
// KV layout transfer descriptors carry, the vocabulary size token ids are checked against,
// and how many staging blocks disaggregation needs. Read once when the engine is created;
// it loads nothing and evaluates nothing.
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import type { ModelCard } from '@armature/runtime';
import type { KvCacheLayout } from '../types.js';
import type { LlamaCppConfig } from './options.js';
import { STATE_BLOCK_BYTES } from './sequence-states.js';

export interface LlamaCppModelInfo {
  card: ModelCard;
  layout: KvCacheLayout;
  /** Rows of the token embedding: the vocabulary size (unbounded when the file does not say). */
  vocabSize: number;
  /** Staging blocks of STATE_BLOCK_BYTES for exported and imported sequence states. */
  stateBlocks: number;
}

/** Describes the engine serving `model` with these sequences (all of one context). */
export function describeModel(
  config: LlamaCppConfig,
  modelPath: string,
  model: LlamaModel,
  sequences: readonly LlamaContextSequence[],
): LlamaCppModelInfo {
  const embedding = model.fileInfo.tensorInfo?.find((t) => t.name === 'token_embd.weight');
  const vocabSize = embedding ? Number(embedding.dimensions[1]) : Number.MAX_SAFE_INTEGER;
  const contextSize = sequences[0]!.contextSize;
  const eos = [model.tokens.eos, model.tokens.eot].filter((t): t is Token => t !== null).map(Number);
  const arch = model.fileInfo.architectureMetadata as {
    block_count?: number;
    embedding_length?: number;
    attention?: { head_count?: number; head_count_kv?: number; key_length?: number };
  };
  const heads = arch.attention?.head_count ?? 1;
  const layout: KvCacheLayout = {
    numLayers: arch.block_count ?? 1,
    kvHeads: arch.attention?.head_count_kv ?? heads,
    headDim: arch.attention?.key_length ?? Math.floor((arch.embedding_length ?? heads) / heads),
    dtypeBytes: 2, // llama.cpp's default f16 KV cache
    blockSize: config.blockSize,
  };
  const bytesPerToken = layout.numLayers * 2 * layout.kvHeads * layout.headDim * layout.dtypeBytes;
  // Room for two full-context states per slot (pins and imports at once), plus headers.
  const perState = Math.ceil((contextSize * (bytesPerToken + 16) + (1 << 20)) / STATE_BLOCK_BYTES);
  const card: ModelCard = {
    model: config.model,
    blockSize: config.blockSize,
    totalKvBlocks: Math.floor((contextSize * sequences.length) / config.blockSize),
    maxNumSeqs: sequences.length,
    maxNumBatchedTokens: config.batchSize,
    contextLength: contextSize,
    tokenizer: `gguf:${modelPath}`,
    // The GGUF's own chat template, rendered by the frontend from the same file.
    chatTemplate: 'gguf',
    eosTokenIds: [...new Set(eos)],
    engine: 'llamacpp',
    kvEvents: config.kvEvents,
  };
  return { card, layout, vocabSize, stateBlocks: 2 * sequences.length * perState };
}
