// @armature/tokenizer: what the frontend tokenizes, templates and detokenizes with, so that
// its tokens are the ones the engine would have produced from the same text.
export type * from './types.js';
export * from './tokenizer.js';
export * from './detokenizer.js';
export * from './chat-template.js';
export * from './long-runs.js';
export * from './tokenize-pool.js';
