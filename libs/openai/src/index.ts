export * from './validate.js';
export * from './responses.js';
