// The frontend's request pipeline, stage by stage (see ../../README.md): prepare -> route ->
// prefill -> decode stream -> output text; the HTTP layer renders the events it yields.
export { prepare, tokenizePrompt, type PromptTokenizePool } from './prepare.js';
export { run } from './run.js';
export { MAX_REROUTES } from './decode.js';
export type { ModelCatalog, PipelinePorts, RouterPort, ServedModel, WorkerPort, WorkerStream } from './ports.js';
export type { FinishKind, PipelineEvent, PipelineOptions, PreparedRequest } from './types.js';
