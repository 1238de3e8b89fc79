export * from './types.js';
export * from './active-load.js';
export { createPolicy, POLICY_IDS } from './policies/index.js';
export { loadScore } from './policies/least-loaded/index.js';
