// The service kinds a deployment graph can hold, and what the launcher needs to know to run
// one as a process: its entry point (none yet for the encoder), the log
// line that says it is ready, and its place in the start and stop order.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every kind of service, in the graph's order. */
export const SERVICE_KINDS = ['frontend', 'router', 'planner', 'encoder', 'prefill', 'decode'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

/** Kinds that hold engine state and serve the Worker gRPC service. */
export const WORKER_KINDS: readonly ServiceKind[] = ['encoder', 'prefill', 'decode'];

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

export interface ServiceProcessSpec {
  /** The Node entry point; null while the service does not exist yet. */
  entry: string | null;
  /** Where the service will live once written (named in the launcher's refusal). */
  home: string;
  /** The log line a replica writes once it serves. */
  ready: RegExp;
  /** Start stage: stage 0 first (workers), then routers and the planner, then the frontend. */
  stage: number;
}

export const SERVICE_PROCESS: Record<ServiceKind, ServiceProcessSpec> = {
  frontend: {
    entry: resolve(ROOT, 'services/frontend/dist/main.js'),
    home: 'services/frontend',
    ready: /frontend listening/,
    stage: 2,
  },
  router: {
    entry: resolve(ROOT, 'services/router/dist/main.js'),
    home: 'services/router',
    ready: /router ready/,
    stage: 1,
  },
  planner: {
    entry: resolve(ROOT, 'services/planner/dist/main.js'),
    home: 'services/planner',
    ready: /planner ready/,
    stage: 1,
  },
  encoder: { entry: null, home: 'services/encoder', ready: /worker ready/, stage: 0 },
  prefill: {
    entry: resolve(ROOT, 'services/prefill/dist/main.js'),
    home: 'services/prefill',
    ready: /worker ready/,
    stage: 0,
  },
  decode: {
    entry: resolve(ROOT, 'services/decode/dist/main.js'),
    home: 'services/decode',
    ready: /worker ready/,
    stage: 0,
  },
};

/**
 * Stop order: the frontend first, so no new request arrives while the rest drain; the
 * planner next, so it scales nothing during the shutdown; workers last.
 */
export const STOP_ORDER: readonly ServiceKind[] = ['frontend', 'planner', 'router', 'encoder', 'prefill', 'decode'];
