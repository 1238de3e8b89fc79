export * from './types.js';
export * from './active-load.js';
export * from './kv-router.js';
export * from './router-queue.js';
export { createPolicy, POLICY_IDS } from './policies/index.js';
export { loadScore } from './policies/least-loaded/index.js';
export { kvCost, kvCostTerms, type KvCostTerms, type KvParams } from './policies/kv/index.js';
export { SCORERS, type ScorerId } from './policies/weighted-scorers/index.js';
export * from './disagg-router.js';
