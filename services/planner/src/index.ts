// @armature/planner: the SLO planner service (main.ts runs it); its parts, for tests and tools.
export * from './connectors.js';
export * from './observe.js';
export * from './planner-runner.js';
export * from './planner-service.js';
export * from './sources.js';
