// @armature/deploy: the typed deployment graph (every service kind, each with its settings
// table), the one launcher that runs a graph as local processes, and the scale port the
// planner drives (the supervisor's control API and its client). Compose and Kubernetes renderers will live here too (render/).
export * from './errors.js';
export * from './graph.js';
export * from './launch.js';
export * from './prometheus.js';
export { spawnReplica, type ReplicaProcess, type SpawnReplicaOptions } from '@armature/runtime';
export * from './scale-port.js';
export * from './service-kinds.js';
export * from './settings/index.js';
export * from './supervisor.js';
export * from './control-api.js';
export * from './control-client.js';
