export * from './validate.js';
export * from './model-fit.js';
export * from './responses.js';
