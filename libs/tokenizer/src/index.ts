export * from './tokenizer.js';
export * from './detokenizer.js';
export * from './chat-template.js';
