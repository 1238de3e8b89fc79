export * from './catalog.js';
export * from './registry.js';
export * from './process-metrics.js';
