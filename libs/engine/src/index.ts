// @armature/engine: the engine contract and the engines behind it: the mocker (simulated
// timing, for scale) and llama.cpp (real GGUF models through node-llama-cpp).
export * from './types.js';
export * from './output-stream.js';
export { validateEngineRequest, validateRequestFields, type EngineRequestChecks } from './request.js';
export * from './mocker/block-manager.js';
export * from './mocker/perf-model.js';
export * from './mocker/options.js';
export * from './mocker/sampler.js';
export * from './mocker/kv-memory.js';
export * from './mocker/scheduler.js';
export * from './mocker/engine.js';
export * from './llamacpp/options.js';
export * from './llamacpp/kv-tracker.js';
export { LlamaCppEngine } from './llamacpp/engine.js';
export { createLlamaCppEngine } from './llamacpp/load.js';
export { commonPrefix } from './llamacpp/slot-runner.js';
export {
  ensureTestModel,
  writeTestModel,
  TEST_MODEL_CHAT_TEMPLATE,
  type TestModelOptions,
} from './llamacpp/test-model.js';
