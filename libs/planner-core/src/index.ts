// @armature/planner-core: the planner's decisions without I/O — config, profile, predictors,
// throughput and load modes, constraints — shared by services/planner and the offline replay.
export * from './profile.js';
export * from './predictors/index.js';
export * from './config.js';
export * from './planner.js';
export * from './step-regression.js';
