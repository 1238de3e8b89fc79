// Workloads for `armature bench` and `armature replay`: trace loaders, generators, and the
// prompt builder that makes their prompts exactly as long as asked. See README.md.
export type { PromptLengthError, Workload, WorkloadRequest } from './types.js';
export { PromptBuilder, type BuiltPrompt, type PromptBuilderOptions, type TextBlock } from './prompt-builder.js';
export { measurePromptLengthError, type DatasetOptions } from './workload.js';
export {
  MOONCAKE_BLOCK_TOKENS,
  buildMooncakeWorkload,
  loadMooncakeTrace,
  parseMooncakeLine,
  type MooncakeRecord,
} from './mooncake.js';
export {
  buildAzureWorkload,
  elapsedMs,
  loadAzureTrace,
  parseAzureHeader,
  parseAzureLine,
  parseAzureTimestamp,
  type AzureColumns,
  type AzureRecord,
  type AzureTimestamp,
} from './azure.js';
export { generateSharedPrefix, type SharedPrefixOptions } from './shared-prefix.js';
export { generateSynthetic, sampleLength, type LengthDistribution, type SyntheticOptions } from './synthetic.js';
export { WORKLOAD_SPEC_FORMS, loadWorkload, parseWorkloadSpec, type WorkloadSpec } from './spec.js';
export { findTrace, type TraceFile } from './trace-files.js';
export { spreadBursts } from './spread.js';
