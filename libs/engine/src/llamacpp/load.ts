// Loading for the llama.cpp engine: node-llama-cpp's prebuilt binaries (never built here),
// the GGUF model (the generated test model unless a path is given), and one context of
// `sequences` sequences whose batches the step gate and the prefill chunk strategy shape
// (decoding slots ride in every batch; prompts go in chunks of at least minPrefillChunk
// tokens). It hands the loaded parts to LlamaCppEngine and serves no request itself.
import { resolve } from 'node:path';
import type { LlamaModel } from 'node-llama-cpp';
import { ArmatureError, createLogger } from '@armature/runtime';
import { prefillChunkStrategy } from './batch-strategy.js';
import { LlamaCppEngine } from './engine.js';
import { compileLlamaCppOptions, type LlamaCppOptions } from './options.js';
import { StepGate } from './step-gate.js';
import { ensureTestModel } from './test-model.js';

const log = createLogger('engine/llamacpp');

/** Loads the model (the generated test model unless `modelPath` is set) and creates the engine. */
export async function createLlamaCppEngine(options: LlamaCppOptions = {}): Promise<LlamaCppEngine> {
  const config = compileLlamaCppOptions(options);
  // Absolute: the card names the file, and the frontend loads its tokenizer from it.
  const modelPath = resolve(config.modelPath ?? (await ensureTestModel()));
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({
    gpu: config.gpu,
    build: 'never',
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      const text = message.trim();
      if (text) log.warn('llama.cpp', { level, message: text });
    },
  });
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath, gpuLayers: config.gpu === false ? 0 : config.gpuLayers });
  } catch (err) {
    await llama.dispose();
    throw new ArmatureError('failed_precondition', 'model_load_failed', `cannot load the GGUF model ${modelPath}`, {
      detail: (err as Error).message,
      cause: err,
    });
  }
  const contextSize = Math.min(config.contextSize, model.trainContextSize);
  const gate = new StepGate(config.lockstep);
  const strategy = prefillChunkStrategy(config.minPrefillChunk, (decodes) => gate.holdFor(decodes));
  const context = await model.createContext({
    sequences: config.sequences,
    contextSize,
    batchSize: config.batchSize,
    threads: config.threads,
    batching: {
      dispatchSchedule: gate.dispatchSchedule,
      itemPrioritizationStrategy: (batch) => {
        const chosen = strategy(batch);
        if (chosen.length > 0) {
          gate.batchStarted();
          // Prompt tokens: every piece but single sampled tokens (llama.cpp does not say how long a batch takes).
          let prefillTokens = 0;
          for (const c of chosen) if (c.item.tokens.length > 1) prefillTokens += c.processAmount;
          gate.onBatchChosen({ sequences: chosen.length, prefillTokens, preempted: 0 });
        }
        return chosen;
      },
    },
  });
  const sequences = Array.from({ length: config.sequences }, () => context.getSequence());
  log.info('model loaded', {
    modelPath,
    gpu: llama.gpu,
    gpuLayers: model.gpuLayers,
    sequences: config.sequences,
    contextSize: sequences[0]!.contextSize,
    threads: config.threads,
  });
  return new LlamaCppEngine(config, modelPath, llama, model, context, sequences, gate);
}
