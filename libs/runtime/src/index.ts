export * from './errors.js';
export * from './context.js';
export * from './config.js';
export * from './log.js';
export * from './shutdown.js';
export * from './grpc.js';
export * from './discovery/index.js';
