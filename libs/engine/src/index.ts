// @armature/engine: the engine contract and the engines behind it (the mocker for now).
export * from './types.js';
export * from './output-stream.js';
export * from './mocker/block-manager.js';
export * from './mocker/perf-model.js';
export * from './mocker/options.js';
export * from './mocker/sampler.js';
export * from './mocker/kv-memory.js';
export * from './mocker/scheduler.js';
export * from './mocker/engine.js';
