// Generated gRPC contracts (proto/armature/v1), re-exported under one name.
// The files in ./gen are written by `buf generate`; never edit them by hand.
export * from './gen/armature/v1/common.js';
export * from './gen/armature/v1/worker.js';
export * from './gen/armature/v1/router.js';
export * from './convert.js';
export * from './gen/armature/v1/planner.js';
