// The deployment graph: one YAML file naming the model, the services, their replicas and
// engine settings. The CLI runs it locally; later renderers turn it into compose and
// Kubernetes manifests. Parsing compiles raw YAML into validated, fully populated options.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import type { ApproxIndexerOptions } from '@armature/kv';
import {
  compileDisaggSettings,
  createPolicy,
  KvRouter,
  RouterQueue,
  type BusyThresholds,
  type RouterQueueOptions,
} from '@armature/router-core';

export type ServiceKind = 'frontend' | 'router' | 'prefill' | 'decode';

export interface ServiceSpec {
  kind: ServiceKind;
  replicas: number;
  /** Extra environment for every replica (ARMATURE_* names from the config catalog). */
  env: Record<string, string>;
}

export interface DeploymentGraph {
  name: string;
  model: string;
  /** Directory for file discovery. */
  discoveryDir: string;
  /** Frontend HTTP port. */
  httpPort: number;
  host: string;
  services: ServiceSpec[];
}

export class GraphError extends Error {
  override readonly name = 'GraphError';
}

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

function field<T>(
  obj: Raw,
  key: string,
  where: string,
  check: (v: unknown) => v is T,
  expected: string,
  fallback?: T,
): T {
  const v = obj[key];
  if (v === undefined) {
    if (fallback === undefined) throw new GraphError(`${where}.${key} is required (${expected})`);
    return fallback;
  }
  if (!check(v)) throw new GraphError(`${where}.${key} must be ${expected}, got ${JSON.stringify(v)}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const ENGINES = ['mocker', 'llamacpp'];
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 65536;
const isReplicas = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 256;

/** Compiles a parsed YAML document into a graph; throws GraphError on anything wrong. */
export function compileGraph(doc: unknown, defaults: { name: string }): DeploymentGraph {
  if (!isObject(doc)) throw new GraphError('the graph must be a YAML mapping');
  const name = field(doc, 'name', 'graph', isString, 'a non-empty string', defaults.name);
  const model = field(doc, 'model', 'graph', isString, 'a model name');
  const host = field(doc, 'host', 'graph', isString, 'an interface address', '127.0.0.1');
  const discoveryDir = field(doc, 'discoveryDir', 'graph', isString, 'a directory', `.armature/${name}/discovery`);
  const servicesRaw = field(doc, 'services', 'graph', isObject, 'a mapping of services');
  const known: ServiceKind[] = ['frontend', 'router', 'prefill', 'decode'];
  for (const key of Object.keys(servicesRaw)) {
    if (!(known as string[]).includes(key))
      throw new GraphError(`services.${key}: unknown service (known: ${known.join(', ')})`);
  }
  let httpPort = 8000;
  const services: ServiceSpec[] = [];
  for (const kind of known) {
    const raw = servicesRaw[kind];
    if (raw === undefined) continue;
    const where = `services.${kind}`;
    if (!isObject(raw)) throw new GraphError(`${where} must be a mapping`);
    const replicas = field(raw, 'replicas', where, isReplicas, 'an integer in [0, 256]', 1);
    const env: Record<string, string> = {};
    if (kind === 'frontend') {
      httpPort = field(raw, 'port', where, isPort, 'a port number', 8000);
      if (replicas > 1) throw new GraphError(`${where}.replicas: one frontend per host (it binds port ${httpPort})`);
    }
    if (kind === 'router') Object.assign(env, compileRouter(raw, where));
    if (kind === 'decode' || kind === 'prefill') {
      env.ARMATURE_ENGINE = field(raw, 'engine', where, isString, 'an engine name', 'mocker');
      if (!ENGINES.includes(env.ARMATURE_ENGINE))
        throw new GraphError(
          `${where}.engine: unknown engine ${JSON.stringify(env.ARMATURE_ENGINE)} (known: ${ENGINES.join(', ')})`,
        );
      const modelPath = field(raw, 'model', where, isString, 'a path to a GGUF file', '');
      if (modelPath) {
        if (env.ARMATURE_ENGINE !== 'llamacpp')
          throw new GraphError(`${where}.model: only the llamacpp engine loads a model file`);
        env.ARMATURE_MODEL_PATH = resolve(modelPath);
      }
      env.ARMATURE_ENGINE_ARGS = JSON.stringify(field(raw, 'engineArgs', where, isObject, 'a mapping', {}));
      env.ARMATURE_MODEL = model;
    }
    const extra = field(raw, 'env', where, isObject, 'a mapping of strings', {});
    for (const [k, v] of Object.entries(extra)) env[k] = String(v);
    services.push({ kind, replicas, env });
  }
  return { name, model, discoveryDir, httpPort, host, services };
}

/** The router's settings as its environment; the policy and its parameters are checked now. */
function compileRouter(raw: Raw, where: string): Record<string, string> {
  const policy = field(raw, 'policy', where, isString, 'a policy id', 'kv');
  const params = field(raw, 'params', where, isObject, 'a mapping', {});
  const busy = field(raw, 'busy', where, isObject, 'a mapping {kvUsage, prefillTokens}', {});
  const queue = field(raw, 'queue', where, isObject, 'a mapping {capacity, order, timeoutMs}', {});
  const approximate = field(raw, 'approximate', where, isObject, 'a mapping {ttlMs, maxBlocks, pruneFraction}', {});
  const disagg = field(
    raw,
    'disagg',
    where,
    isObject,
    'a mapping {minRemotePrefillTokens, maxPrefillQueueTokens, prefillPolicy, prefillParams}',
    {},
  );
  try {
    const p = createPolicy(policy, params);
    new KvRouter({
      policy: p,
      busy: busy as BusyThresholds,
      approximate: approximate as ApproxIndexerOptions,
    });
    new RouterQueue(queue as RouterQueueOptions);
    compileDisaggSettings(disagg);
  } catch (err) {
    throw new GraphError(`${where}: ${(err as Error).message}`);
  }
  return {
    ARMATURE_ROUTER_POLICY: policy,
    ARMATURE_ROUTER_PARAMS: JSON.stringify(params),
    ARMATURE_ROUTER_BUSY: JSON.stringify(busy),
    ARMATURE_ROUTER_QUEUE: JSON.stringify(queue),
    ARMATURE_ROUTER_APPROX: JSON.stringify(approximate),
    ARMATURE_DISAGG: JSON.stringify(disagg),
  };
}

/** Reads and compiles a graph file. */
export async function loadGraph(path: string): Promise<DeploymentGraph> {
  const text = await readFile(path, 'utf8');
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new GraphError(`${path}: not valid YAML: ${(err as Error).message}`);
  }
  const base = path
    .split('/')
    .pop()!
    .replace(/\.ya?ml$/, '');
  try {
    return compileGraph(doc, { name: base });
  } catch (err) {
    if (err instanceof GraphError) throw new GraphError(`${path}: ${err.message}`);
    throw err;
  }
}
