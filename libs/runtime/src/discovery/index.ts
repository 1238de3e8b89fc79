export * from './types.js';
export * from './memory.js';
export * from './file.js';
export { discoveryFromEnv, leaseMsFromEnv } from './from-env.js';
