export * from './wait.js';
export * from './discovery-conformance.js';
export * from './ports.js';
export * from './process.js';
export * from './event-plane-conformance.js';
