// @armature/profiler: `armature profile`, what one worker of each pool can do, measured
// before deployment (live on running workers, or in virtual time for the mocker) and
// written as the profile the SLO planner reads (@armature/planner-core's schema).
export * from './grid.js';
export * from './prompts.js';
export * from './virtual.js';
export * from './live.js';
export * from './worker-pool.js';
export * from './charts.js';
export * from './report.js';
export * from './command.js';
