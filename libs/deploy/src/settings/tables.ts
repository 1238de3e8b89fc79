// The settings table of every service kind: each setting's graph key, environment
// variable, type, default and doc, in one place. The graph compiles YAML through these
// tables, the launcher writes a replica's environment from them, services read them back
// (routerSettingsFromEnv), and a test holds the config catalog's stated defaults to them.
import type { ApproxIndexerOptions } from '@armature/kv';
import type { BusyThresholds, RouterQueueOptions } from '@armature/router-core';
import type { ServiceKind } from '../service-kinds.js';
import {
  unlessDefault,
  enumSetting,
  integerSetting,
  objectSetting,
  stringSetting,
  type Setting,
  type SettingsTable,
} from './setting.js';

export interface FrontendSettings {
  /** HTTP port (default 8000; 0 picks a free port). */
  port: number;
  /** Largest request body accepted, bytes (default 4 MiB). */
  maxBodyBytes: number;
  /** Deadline of one request, ms (default 600 000). */
  requestTimeoutMs: number;
  /** Deadline of a prefill worker's answer before the decode worker prefills itself, ms (default 60 000). */
  prefillTimeoutMs: number;
  /** How long a request waits for a router when none answers, ms (default 10 000). */
  routerWaitMs: number;
  /** Keepalive ping interval and timeout of the channels to workers, ms (default 2000). */
  workerKeepaliveMs: number;
  /** Times one request may move to another worker mid-stream (default 3; 0: off). */
  migrationLimit: number;
  /** Longest prompt + output that migrates, tokens (default 0: any). */
  migrationMaxSeqLen: number;
  /** Longest silence between a decode worker's messages before it counts as stalled, ms (default 10 000; 0: none). */
  stallTimeoutMs: number;
  /** Longest wait for a worker to take a call, ms (default 3000; 0: none). */
  acceptTimeoutMs: number;
  /** Requests running at once per model (default 512; 0: no limit). */
  maxInflight: number;
  /** Requests waiting for an admission slot per model (default 1024). */
  admissionQueue: number;
  /** Longest wait for an admission slot, ms (default 10 000). */
  admissionTimeoutMs: number;
  /** Requests one API key may have in progress (default 0: no limit). */
  maxInflightPerClient: number;
  /** How long a request body may take to arrive, ms (default 30 000). */
  bodyTimeoutMs: number;
  /** How long a stream waits for a client that reads nothing, ms (default 30 000). */
  slowClientTimeoutMs: number;
  /** Threads that tokenize large prompts off the event loop (default 2). */
  tokenizeThreads: number;
  /** Deadline of one off-thread tokenization, ms (default 10 000). */
  tokenizeTimeoutMs: number;
}

export const FRONTEND_SETTINGS: SettingsTable<FrontendSettings> = {
  port: integerSetting('ARMATURE_HTTP_PORT', 8000, { min: 0, max: 65535 }, 'Frontend HTTP port.', 'a port number'),
  maxBodyBytes: unlessDefault(
    integerSetting(
      'ARMATURE_MAX_BODY_BYTES',
      4 * 1024 * 1024,
      { min: 1024 },
      'Largest HTTP request body the frontend accepts.',
    ),
  ),
  requestTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_REQUEST_TIMEOUT_MS', 600_000, { min: 1 }, 'Deadline for one request.'),
  ),
  prefillTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_PREFILL_TIMEOUT_MS', 60_000, { min: 1 }, "Deadline for a prefill worker's answer."),
  ),
  routerWaitMs: unlessDefault(
    integerSetting('ARMATURE_ROUTER_WAIT_MS', 10_000, { min: 0 }, 'How long a request waits for a router.'),
  ),
  workerKeepaliveMs: unlessDefault(
    integerSetting('ARMATURE_WORKER_KEEPALIVE_MS', 2_000, { min: 100 }, 'Keepalive of the channels to workers.'),
  ),
  migrationLimit: unlessDefault(
    integerSetting('ARMATURE_MIGRATION_LIMIT', 3, { min: 0, max: 100 }, 'Mid-stream migrations per request.'),
  ),
  migrationMaxSeqLen: unlessDefault(
    integerSetting('ARMATURE_MIGRATION_MAX_SEQ_LEN', 0, { min: 0 }, 'Longest sequence that migrates.'),
  ),
  stallTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_STALL_TIMEOUT_MS', 10_000, { min: 0 }, "Longest silence in a worker's stream."),
  ),
  maxInflight: unlessDefault(
    integerSetting('ARMATURE_MAX_INFLIGHT', 512, { min: 0 }, 'Requests running at once per model.'),
  ),
  admissionQueue: unlessDefault(
    integerSetting('ARMATURE_ADMISSION_QUEUE', 1024, { min: 0 }, 'Requests waiting for a slot per model.'),
  ),
  admissionTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_ADMISSION_TIMEOUT_MS', 10_000, { min: 0 }, 'Longest wait for a slot.'),
  ),
  maxInflightPerClient: unlessDefault(
    integerSetting('ARMATURE_MAX_INFLIGHT_PER_CLIENT', 0, { min: 0 }, 'Requests one API key may have in progress.'),
  ),
  bodyTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_BODY_TIMEOUT_MS', 30_000, { min: 1 }, 'How long a request body may take to arrive.'),
  ),
  slowClientTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_SLOW_CLIENT_TIMEOUT_MS', 30_000, { min: 1 }, 'How long a stream waits for a client.'),
  ),
  tokenizeThreads: unlessDefault(
    integerSetting('ARMATURE_TOKENIZE_THREADS', 2, { min: 1, max: 64 }, 'Threads tokenizing large prompts.'),
  ),
  tokenizeTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_TOKENIZE_TIMEOUT_MS', 10_000, { min: 1 }, 'Deadline of one off-thread tokenization.'),
  ),
  acceptTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_ACCEPT_TIMEOUT_MS', 3_000, { min: 0 }, 'Longest wait for a worker to take a call.'),
  ),
};

/** The router's settings as the graph holds them: JSON objects checked by router-core. */
export interface RouterSettings {
  /** Routing policy plugin id (default kv). */
  policy: string;
  /** The policy's parameters (default {}). */
  params: Record<string, unknown>;
  /** Busy thresholds (default {}: none). */
  busy: BusyThresholds;
  /** Waiting queue (default {}: router-core's defaults). */
  queue: RouterQueueOptions;
  /** Approximate-mode prediction (default {}). */
  approximate: ApproxIndexerOptions;
  /** Raw disaggregation settings, compiled by compileDisaggSettings (default {}). */
  disagg: Record<string, unknown>;
  /** How long a new worker's KV state may load before it is scored anyway, ms (default 3000). */
  readyTimeoutMs: number;
  /** How long a worker that failed a request is left out of routing, ms (default 5000; 0: never). */
  inhibitMs: number;
  /** Worker health checks (default {}: every 2 s, 2 s deadline, 2 failures inhibit, no canaries). */
  health: Record<string, unknown>;
}

export const ROUTER_SETTINGS: SettingsTable<RouterSettings> = {
  policy: stringSetting('ARMATURE_ROUTER_POLICY', 'kv', 'Routing policy plugin id.', 'a policy id'),
  params: objectSetting('ARMATURE_ROUTER_PARAMS', 'Routing policy parameters.', 'a mapping'),
  busy: objectSetting('ARMATURE_ROUTER_BUSY', 'Busy thresholds.', 'a mapping {kvUsage, prefillTokens}'),
  queue: objectSetting('ARMATURE_ROUTER_QUEUE', 'Router queue.', 'a mapping {capacity, order, timeoutMs}'),
  approximate: objectSetting(
    'ARMATURE_ROUTER_APPROX',
    'Approximate-mode prediction.',
    'a mapping {ttlMs, maxBlocks, pruneFraction}',
  ),
  disagg: objectSetting(
    'ARMATURE_DISAGG',
    'Disaggregation settings.',
    'a mapping {minRemotePrefillTokens, maxPrefillQueueTokens, prefillPolicy, prefillParams}',
  ),
  readyTimeoutMs: unlessDefault(
    integerSetting(
      'ARMATURE_ROUTER_READY_TIMEOUT_MS',
      3_000,
      { min: 0 },
      "How long a new worker's KV state may load before the router scores it anyway.",
    ),
  ),
  health: objectSetting(
    'ARMATURE_ROUTER_HEALTH',
    'Worker health checks.',
    'a mapping {intervalMs, timeoutMs, failures, canaryIdleMs}',
  ),
  inhibitMs: unlessDefault(
    integerSetting(
      'ARMATURE_ROUTER_INHIBIT_MS',
      5_000,
      { min: 0 },
      'How long a worker that failed a request is left out of routing.',
    ),
  ),
};

/** Engines a worker can run. */
export const ENGINES = ['mocker', 'llamacpp'] as const;
export type EngineKind = (typeof ENGINES)[number];

/** A worker's settings (prefill, decode; the encoder's too until it has its own service). */
export interface WorkerSettings {
  /** Model name the worker registers: the graph's `model` (default armature/mock-model). */
  servedModel: string;
  /** Engine (default mocker). */
  engine: EngineKind;
  /** Engine settings (default {}). */
  engineArgs: Record<string, unknown>;
  /** GGUF file a llamacpp worker loads, absolute (default '': the generated test model). */
  modelPath: string;
  /** Whether the worker runs a KV transfer agent (default on). */
  transfer: 'on' | 'off';
  /** Transfer backends in preference order, comma-separated (default '': shm,tcp with the addon, else tcp). */
  transferBackends: string;
  /** TCP port of the transfer agent (default 0: a free port; the launcher never sets it). */
  transferPort: number;
  /** Deadline of one KV pull before the decode worker prefills locally, ms (default 30 000). */
  transferTimeoutMs: number;
  /** How long a prefill keeps a prompt's KV blocks pinned for a decode worker, ms (default 480 000). */
  pinTimeoutMs: number;
}

const servedModel: Setting<string> = {
  ...stringSetting('ARMATURE_MODEL', 'armature/mock-model', 'Served model name.', 'a model name'),
  yamlKey: null,
};
const modelPath: Setting<string> = {
  ...stringSetting('ARMATURE_MODEL_PATH', '', 'GGUF file a llamacpp worker loads.', 'a path to a GGUF file'),
  yamlKey: 'model',
};

export const WORKER_SETTINGS: SettingsTable<WorkerSettings> = {
  servedModel,
  engine: enumSetting('ARMATURE_ENGINE', ENGINES, 'mocker', 'Engine a worker runs.', 'engine'),
  engineArgs: objectSetting('ARMATURE_ENGINE_ARGS', 'Engine settings.', 'a mapping'),
  modelPath,
  transfer: unlessDefault(
    enumSetting('ARMATURE_TRANSFER', ['on', 'off'] as const, 'on', 'Run a KV transfer agent.', 'on/off'),
  ),
  transferBackends: unlessDefault(
    stringSetting(
      'ARMATURE_TRANSFER_BACKENDS',
      '',
      'Transfer backends in preference order.',
      'a comma-separated list of shm, tcp',
    ),
  ),
  transferPort: {
    ...integerSetting(
      'ARMATURE_TRANSFER_PORT',
      0,
      { min: 0, max: 65535 },
      "Transfer agent's TCP port.",
      'a port number',
    ),
    yamlKey: null,
    writeDefault: false,
  },
  transferTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_TRANSFER_TIMEOUT_MS', 30_000, { min: 1 }, 'Deadline of one KV pull.'),
  ),
  pinTimeoutMs: unlessDefault(
    integerSetting('ARMATURE_PREFILL_PIN_TIMEOUT_MS', 480_000, { min: 1 }, "How long a prefill's KV stays pinned."),
  ),
};

/**
 * What every service process reads besides its kind's settings: where it binds, who it is,
 * how long SIGTERM waits. Not graph keys: the launcher (or an operator) sets them per replica.
 */
export interface ProcessSettings {
  /** Interface to bind (default 127.0.0.1). */
  host: string;
  /** Instance id in discovery (default '': <role>-<random>). */
  instanceId: string;
  /** gRPC port of a router or worker (default 0: a free port). */
  grpcPort: number;
  /** Prometheus /metrics port of a router or worker (default 0: a free port). */
  metricsPort: number;
  /** How long SIGTERM waits for in-flight requests, ms (default 30 000). */
  drainTimeoutMs: number;
}

const processOnly = <T>(setting: Setting<T>): Setting<T> => ({ ...setting, yamlKey: null, writeDefault: false });

export const PROCESS_SETTINGS: SettingsTable<ProcessSettings> = {
  host: processOnly(stringSetting('ARMATURE_HOST', '127.0.0.1', 'Interface to bind.', 'an interface address')),
  instanceId: processOnly(stringSetting('ARMATURE_INSTANCE_ID', '', 'Instance id in discovery.', 'an instance id')),
  grpcPort: processOnly(integerSetting('ARMATURE_GRPC_PORT', 0, { min: 0, max: 65535 }, 'gRPC port.', 'a port number')),
  metricsPort: processOnly(
    integerSetting('ARMATURE_METRICS_PORT', 0, { min: 0, max: 65535 }, 'Prometheus port.', 'a port number'),
  ),
  drainTimeoutMs: processOnly(
    integerSetting('ARMATURE_DRAIN_TIMEOUT_MS', 30_000, { min: 0 }, 'How long SIGTERM waits for in-flight requests.'),
  ),
};

/**
 * The planner's settings. The scaling options (mode, interval, SLOs, predictor, profile,
 * pools, limits) are @armature/planner-core's PlannerConfig: the graph checks them with
 * its compilePlannerConfig, so a bad one fails when the graph is read.
 */
export interface PlannerSettings {
  /** Model the deployment serves: the graph's `model` (checked against the profile's). */
  servedModel: string;
  /** Engine of the deployment's workers: the graph's decode engine (checked against the profile's). */
  engine: string;
  /** throughput, load or both (default both). */
  mode: 'throughput' | 'load' | 'both';
  /** Time-to-first-token target, ms (default 500). */
  sloTtftMs: number;
  /** Inter-token latency target, ms (default 50). */
  sloItlMs: number;
  /** Time between two scaling decisions, ms (default 10 000). */
  intervalMs: number;
  /** Load predictor id (default kalman). */
  predictor: string;
  /** The predictor's parameters (default {}). */
  predictorParams: Record<string, unknown>;
  /** Profile file, absolute once compiled (default '': none, load mode only). */
  profile: string;
  /** Pool limits: { prefill?: { min, max, gpus }, decode: { ... } } (default: the graph's worker pools, min 1 max 8). */
  pools: Record<string, unknown>;
  /** gpuBudget, maxStep, cooldowns, scaleDownFraction, correction, allowProfileMismatch (default {}). */
  limits: Record<string, unknown>;
  /** Where replica counts are applied (default local: the supervisor's control API). */
  connector: 'local' | 'kubernetes' | 'advisory';
  /** Prometheus to read metrics from (default '': scrape the services found through discovery). */
  prometheusUrl: string;
}

export const PLANNER_SETTINGS: SettingsTable<PlannerSettings> = {
  servedModel,
  engine: {
    ...stringSetting('ARMATURE_PLANNER_ENGINE', 'mocker', 'Engine of the workers.', 'an engine'),
    yamlKey: null,
  },
  mode: enumSetting(
    'ARMATURE_PLANNER_MODE',
    ['throughput', 'load', 'both'] as const,
    'both',
    'Throughput, load or both.',
    'planner mode',
  ),
  sloTtftMs: integerSetting('ARMATURE_PLANNER_SLO_TTFT_MS', 500, { min: 1 }, 'Time-to-first-token target.'),
  sloItlMs: integerSetting('ARMATURE_PLANNER_SLO_ITL_MS', 50, { min: 1 }, 'Inter-token latency target.'),
  intervalMs: integerSetting('ARMATURE_PLANNER_INTERVAL_MS', 10_000, { min: 1 }, 'Time between scaling decisions.'),
  predictor: stringSetting('ARMATURE_PLANNER_PREDICTOR', 'kalman', 'Load predictor.', 'a predictor id'),
  predictorParams: objectSetting('ARMATURE_PLANNER_PREDICTOR_PARAMS', 'Predictor parameters.', 'a mapping'),
  profile: {
    ...stringSetting('ARMATURE_PLANNER_PROFILE', '', 'Profile file.', 'a path to a profile JSON file'),
    toEnv: (v) => (v === '' ? undefined : v),
  },
  pools: objectSetting('ARMATURE_PLANNER_POOLS', 'Pool limits.', 'a mapping { prefill?, decode }'),
  limits: objectSetting('ARMATURE_PLANNER_LIMITS', 'Scaling limits.', 'a mapping'),
  connector: enumSetting(
    'ARMATURE_PLANNER_CONNECTOR',
    ['local', 'kubernetes', 'advisory'] as const,
    'local',
    'Where replica counts are applied.',
    'connector',
  ),
  prometheusUrl: stringSetting('ARMATURE_PLANNER_PROMETHEUS_URL', '', 'Prometheus base URL.', 'a URL'),
};

/** The planner-core config a planner's settings describe. */
export function plannerConfigInput(s: PlannerSettings): Record<string, unknown> {
  return {
    mode: s.mode,
    intervalMs: s.intervalMs,
    sloTtftMs: s.sloTtftMs,
    sloItlMs: s.sloItlMs,
    predictor: { id: s.predictor, params: s.predictorParams },
    profile: s.profile,
    // Unset (a planner started by hand): the decode pool, with the default limits.
    pools: Object.keys(s.pools).length > 0 ? s.pools : { decode: {} },
    limits: s.limits,
  };
}

/** The settings object of each kind. */
export interface SettingsByKind {
  frontend: FrontendSettings;
  router: RouterSettings;
  planner: PlannerSettings;
  encoder: WorkerSettings;
  prefill: WorkerSettings;
  decode: WorkerSettings;
}

/** The settings table of each kind. */
export const SETTINGS_BY_KIND: { readonly [K in ServiceKind]: SettingsTable<SettingsByKind[K]> } = {
  frontend: FRONTEND_SETTINGS,
  router: ROUTER_SETTINGS,
  planner: PLANNER_SETTINGS,
  encoder: WORKER_SETTINGS,
  prefill: WORKER_SETTINGS,
  decode: WORKER_SETTINGS,
};
