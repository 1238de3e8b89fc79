// The config catalog: every environment variable Armature reads, in one place, each with
// a one-line doc, and typed readers that reject bad values instead of guessing.
import { ArmatureError } from './errors.js';

/** Every environment variable the services read. */
export const ENV_CATALOG = {
  ARMATURE_INSTANCE_ID: 'Instance id advertised in discovery (default: role-<random>).',
  ARMATURE_HOST: 'Interface services bind to (default 127.0.0.1).',
  ARMATURE_HTTP_PORT: 'Frontend HTTP port (default 8000; 0 picks a free port).',
  ARMATURE_GRPC_PORT: 'gRPC port of a router or worker (default 0: a free port).',
  ARMATURE_METRICS_PORT: 'Prometheus /metrics port of a router or worker (default 0: a free port).',
  ARMATURE_MODEL: 'Served model name a worker registers (default armature/mock-model).',
  ARMATURE_DISCOVERY_BACKEND: 'Discovery backend: file or memory (default file).',
  ARMATURE_DISCOVERY_DIR: 'Directory of leased records for the file backend (default .armature/discovery).',
  ARMATURE_DISCOVERY_LEASE_MS: 'Discovery lease; a silent instance disappears after it (default 10000).',
  ARMATURE_ENGINE:
    'Engine a worker runs: mocker (simulated) or llamacpp (a GGUF model through node-llama-cpp) (default mocker).',
  ARMATURE_MODEL_PATH:
    "GGUF file a llamacpp worker loads (default: the project's generated test model, written to .armature/models on first use).",
  ARMATURE_ENGINE_ARGS: 'Engine settings as a JSON object, see the engine options (default {}).',
  ARMATURE_ROUTER_POLICY:
    'Router policy plugin id: kv, round-robin, random, least-loaded, power-of-two, cache-aware, weighted-scorers (default kv).',
  ARMATURE_ROUTER_PARAMS: 'Router policy parameters as a JSON object (default {}).',
  ARMATURE_ROUTER_BUSY:
    'Busy thresholds as JSON {kvUsage?: fraction, prefillTokens?: tokens}; busy workers take no new requests (default {}: none).',
  ARMATURE_ROUTER_QUEUE:
    'Router queue as JSON {capacity (1024), order: fcfs|shortest-prompt (fcfs), timeoutMs (30000)} for requests waiting while every worker is busy (default {}).',
  ARMATURE_ROUTER_APPROX:
    'Approximate-mode prediction for workers without KV events, as JSON {ttlMs (120000), maxBlocks (1048576), pruneFraction (0.8)} (default {}).',
  ARMATURE_TRANSFER:
    'Set to off to run a worker without a KV transfer agent (it then neither serves prefills nor pulls KV; default on).',
  ARMATURE_TRANSFER_BACKENDS:
    'Transfer backends in preference order, comma-separated: shm, tcp (default: shm,tcp with the addon, else tcp).',
  ARMATURE_TRANSFER_PORT: "TCP port of a worker's transfer agent (default 0: a free port).",
  ARMATURE_TRANSFER_TIMEOUT_MS:
    'Deadline of one KV pull by a decode worker; past it the worker prefills locally (default 30000).',
  ARMATURE_PREFILL_PIN_TIMEOUT_MS:
    "How long a prefill worker keeps a prompt's KV blocks for a decode worker that has not released them (default 480000).",
  ARMATURE_PREFILL_TIMEOUT_MS:
    "Frontend deadline for a prefill worker's answer; past it the decode worker prefills the prompt itself (default 60000).",
  ARMATURE_DISAGG:
    'Router disaggregation settings as JSON {minRemotePrefillTokens (2048), maxPrefillQueueTokens (131072), prefillPolicy (kv), prefillParams ({})}; the decode pool uses ARMATURE_ROUTER_POLICY (default {}).',
  ARMATURE_TRANSFER_NATIVE:
    'Set to off to ignore the native transfer addon (native/transfer) and use the pure-TypeScript TCP backend only.',
  ARMATURE_REQUIRE_NATIVE:
    'Set to 1 to make the transfer tests fail, instead of skip, when the native addon is not built.',
  ARMATURE_ROUTER_HEALTH:
    "Router's worker health checks as JSON {intervalMs (2000; 0: off), timeoutMs (2000), failures (2), canaryIdleMs (0: no canary requests)}; a worker failing them is inhibited (default {}).",
  ARMATURE_ROUTER_INHIBIT_MS:
    'How long the router leaves out a worker that just failed a request (a broken or stalled stream), before discovery notices; 0 turns it off (default 5000).',
  ARMATURE_ROUTER_WAIT_MS:
    'How long the frontend keeps retrying a request while no router answers (all gone, or one restarting) before answering 503 no_router (default 10000).',
  ARMATURE_WORKER_KEEPALIVE_MS:
    "Keepalive ping interval, and timeout, of the frontend's channels to workers: a stopped or stuck worker's streams fail within about twice this, and migrate (default 2000).",
  ARMATURE_MIGRATION_LIMIT:
    'How often the frontend moves one request to another worker after its stream broke mid-generation (the prompt plus the tokens so far are resent); 0 turns migration off (default 3).',
  ARMATURE_MIGRATION_MAX_SEQ_LEN:
    'Longest prompt + generated sequence, in tokens, that the frontend migrates; longer ones fail instead (default 0: any length).',
  ARMATURE_MAX_INFLIGHT:
    'Frontend admission: requests of one model running at once; more wait in the admission queue (default 512; 0: no limit).',
  ARMATURE_ADMISSION_QUEUE:
    'Frontend admission: requests of one model waiting for a slot; beyond it the answer is 503 overloaded with Retry-After (default 1024).',
  ARMATURE_ADMISSION_TIMEOUT_MS:
    'Frontend admission: longest wait for a slot before a 503 overloaded with Retry-After (default 10000).',
  ARMATURE_MAX_INFLIGHT_PER_CLIENT:
    'Frontend admission: requests one API key (Authorization header) may have running or waiting; beyond it the answer is 429 (default 0: no limit).',
  ARMATURE_BODY_TIMEOUT_MS:
    'How long the frontend waits for a request body to arrive before answering 408 (default 30000; never past ARMATURE_REQUEST_TIMEOUT_MS).',
  ARMATURE_SLOW_CLIENT_TIMEOUT_MS:
    'How long a streamed answer waits for a client that reads nothing (its socket buffer full) before dropping it and cancelling its request (default 30000).',
  ARMATURE_TOKENIZE_THREADS:
    'Frontend worker threads that tokenize prompts over 16 KiB off the event loop (default 2).',
  ARMATURE_TOKENIZE_TIMEOUT_MS:
    'Deadline of one off-thread tokenization, waiting for a thread included; past it the request gets 504 and the thread is replaced (default 10000).',
  ARMATURE_ACCEPT_TIMEOUT_MS:
    'Longest wait for a decode worker to take a Generate call (it answers with headers before queueing or prefilling); past it the worker counts as stopped or stuck and the request goes to another (default 3000; 0: no limit).',
  ARMATURE_STALL_TIMEOUT_MS:
    "Longest silence between two messages of a decode worker's stream before the frontend counts it stalled and migrates the request; 0: no limit (default 10000).",
  ARMATURE_ROUTER_READY_TIMEOUT_MS:
    'How long a new worker waits for its KV state to load before the router scores it anyway (default 3000).',
  ARMATURE_DRAIN_TIMEOUT_MS: 'How long SIGTERM waits for in-flight requests before exiting (default 30000).',
  ARMATURE_MAX_BODY_BYTES: 'Largest HTTP request body the frontend accepts (default 4194304).',
  ARMATURE_REQUEST_TIMEOUT_MS: 'Frontend deadline for one request (default 600000).',
  ARMATURE_LOG_LEVEL: 'debug, info, warn or error (default info).',
  ARMATURE_LOG_FORMAT:
    'text (one human-readable line per record) or json (one JSON object per line: time, level, service, instance, component, msg, request_id, fields) (default text).',
  ARMATURE_PLANNER_SLO_TTFT_MS: 'Planner: time-to-first-token target the pools are sized for, ms (default 500).',
  ARMATURE_PLANNER_SLO_ITL_MS: 'Planner: inter-token latency target the decode pool is sized for, ms (default 50).',
  ARMATURE_PLANNER_INTERVAL_MS: 'Planner: time between two scaling decisions, ms (default 10000).',
  ARMATURE_PLANNER_CONNECTOR:
    "Planner: where replica counts are applied: local (the supervisor's control API), kubernetes, or advisory (log and expose, change nothing) (default local).",
  ARMATURE_PLANNER_MODE:
    'Planner: throughput (profile-based sizing), load (step-time regressions) or both (throughput sets the floor) (default both).',
  ARMATURE_PLANNER_PREDICTOR:
    'Planner: load predictor: constant, moving-average, kalman, arima or holt-winters (default kalman).',
  ARMATURE_PLANNER_PREDICTOR_PARAMS: "Planner: the predictor's parameters as a JSON object (default {}).",
  ARMATURE_PLANNER_PROFILE: 'Planner: the profile file `armature profile` wrote (default: unset, load mode only).',
  ARMATURE_PLANNER_POOLS:
    'Planner: pool limits as JSON, {"prefill":{"min","max","gpus"},"decode":{...}} (default {}: the graph\'s worker pools, min 1, max 8).',
  ARMATURE_PLANNER_LIMITS:
    'Planner: gpuBudget, maxStep, scaleUpCooldownMs, scaleDownCooldownMs, scaleDownFraction, correction, allowProfileMismatch as JSON (default {}).',
  ARMATURE_PLANNER_PROMETHEUS_URL:
    'Planner: Prometheus base URL to read metrics from (default: unset, scrape the services found through discovery).',
  ARMATURE_PLANNER_ENGINE:
    "Planner: the workers' engine, checked against the profile's; the launcher sets it (default mocker).",
  ARMATURE_LIVENESS_INTERVAL_MS:
    'armature up: time between two liveness probes of one replica (frontend /live, router and worker /metrics), ms (default 5000).',
  ARMATURE_LIVENESS_TIMEOUT_MS: 'armature up: how long one liveness probe waits for an answer, ms (default 2000).',
  ARMATURE_LIVENESS_FAILURES:
    'armature up: liveness probes a replica may miss in a row before it is killed and restarted; 0 turns the probe off (default 6).',
  ARMATURE_CONTROL_ADDRESS:
    "Address of the local supervisor's control API (GET and PUT /v1/replicas), unix:/path or http://127.0.0.1:port; the launcher sets it for planner replicas, and writes it to .armature/<graph>/control.address (default: unset, no control API).",
  PROMETHEUS_BIN:
    "armature up --prometheus: the Prometheus binary to run (default: prometheus on PATH, from Debian's prometheus package).",
  ARMATURE_BENCH_NODE_ARGS:
    'Extra Node.js flags for every service a benchmark starts, space-separated, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof (default none).',
  ARMATURE_TRACES_DIR:
    'Directory the benchmarks look in first for public trace files (default: ../shared/traces beside the checkout).',
} as const;

export type EnvName = keyof typeof ENV_CATALOG;
type Env = Record<string, string | undefined>;

function configError(name: EnvName, raw: string, expected: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_config', `${name}=${JSON.stringify(raw)}: expected ${expected}`);
}

const read = (env: Env, name: EnvName): string | undefined => {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
};

/** A string variable, or the default. */
export function envString(name: EnvName, fallback: string, env: Env = process.env): string {
  return read(env, name) ?? fallback;
}

/** An integer variable within [min, max], or the default; anything else throws. */
export function envInt(
  name: EnvName,
  fallback: number,
  range: { min?: number; max?: number } = {},
  env: Env = process.env,
): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const min = range.min ?? Number.MIN_SAFE_INTEGER;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw configError(name, raw, `an integer in [${min}, ${max}]`);
  }
  return value;
}

/** One of a fixed set of values, or the default. */
export function envEnum<T extends string>(name: EnvName, values: readonly T[], fallback: T, env: Env = process.env): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!(values as readonly string[]).includes(raw)) throw configError(name, raw, `one of ${values.join(', ')}`);
  return raw as T;
}

/** A JSON object variable, or the default. */
export function envJson(
  name: EnvName,
  fallback: Record<string, unknown>,
  env: Env = process.env,
): Record<string, unknown> {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw configError(name, raw, 'a JSON object');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw configError(name, raw, 'a JSON object');
  }
  return parsed as Record<string, unknown>;
}
