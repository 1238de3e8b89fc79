// @armature/bench: the load generator, the offline replay simulator, datasets and reports.
export { benchCommand, replayCommand, reportCommand, replayMockerDefaults } from './commands.js';
export { simulate, type SimRequest, type SimulationOptions, type SimulationResult } from './replay/simulator.js';
export { runLoad, type LoadOptions } from './load/generator.js';
export * from './results/index.js';
export * from './chaos/fault-load.js';
export { ProgressBar, type ProgressState } from './progress.js';
