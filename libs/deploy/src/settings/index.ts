// @armature/deploy/settings: the per-kind settings tables and the readers services use to
// take their settings back from the environment. Light on purpose (no YAML, no processes),
// so a service can import it.
export * from './setting.js';
export * from './tables.js';
export * from './router.js';
export * from './services.js';
export { SERVICE_KINDS, WORKER_KINDS, type ServiceKind } from '../service-kinds.js';
