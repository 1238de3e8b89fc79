// The deployment graph: one YAML file naming the model, the services, their replicas and
// settings. The launcher runs it locally; later renderers (render/) turn it into compose
// and Kubernetes manifests. Compiling turns raw YAML into validated, fully populated,
// typed settings per service (through the settings tables) and the environment each
// replica gets, so a bad value fails when the graph is read, not when a service starts.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { GraphError } from './errors.js';
import { SERVICE_KINDS, type ServiceKind } from './service-kinds.js';
import { compilePlannerConfig } from '@armature/planner-core';
import { checkRouterSettings } from './settings/router.js';
import { settingsFromGraph, settingsToEnv, type SettingsTable } from './settings/setting.js';
import {
  plannerConfigInput,
  SETTINGS_BY_KIND,
  type PlannerSettings,
  type SettingsByKind,
  type WorkerSettings,
} from './settings/tables.js';

export { GraphError } from './errors.js';
export type { ServiceKind } from './service-kinds.js';

/** One service of a graph: its kind, replica count, typed settings and the environment they make. */
export interface ServiceSpecOf<K extends ServiceKind> {
  kind: K;
  replicas: number;
  settings: SettingsByKind[K];
  /** The graph's `env:` mapping for this service, written over the settings. */
  extraEnv: Record<string, string>;
  /** Every replica's environment: the settings (ARMATURE_* from the config catalog), then extraEnv. */
  env: Record<string, string>;
}

export type ServiceSpec = { [K in ServiceKind]: ServiceSpecOf<K> }[ServiceKind];

export interface DeploymentGraph {
  name: string;
  model: string;
  /** Directory for file discovery. */
  discoveryDir: string;
  /** Frontend HTTP port (the frontend's `port` setting; 8000 without a frontend). */
  httpPort: number;
  host: string;
  services: ServiceSpec[];
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
const isReplicas = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 256;

/** Checks across one kind's settings that no single setting can check alone. */
const KIND_CHECKS: { [K in ServiceKind]?: (settings: SettingsByKind[K], where: string, replicas: number) => void } = {
  frontend: (s, where, replicas) => {
    // Replica i binds port + i (a load balancer in front spreads clients over them).
    if (replicas > 1 && (s.port === 0 || s.port + replicas - 1 > 65535))
      throw new GraphError(`${where}.replicas: ${replicas} frontends need ports ${s.port}..${s.port + replicas - 1}`);
  },
  router: (s, where) => {
    try {
      checkRouterSettings(s);
    } catch (err) {
      throw new GraphError(`${where}: ${(err as Error).message}`);
    }
  },
  encoder: (s, where) => checkWorker(s, where),
  prefill: (s, where) => checkWorker(s, where),
  decode: (s, where) => checkWorker(s, where),
};

function checkWorker(s: WorkerSettings, where: string): void {
  if (s.modelPath === '') return;
  if (s.engine !== 'llamacpp') throw new GraphError(`${where}.model: only the llamacpp engine loads a model file`);
  s.modelPath = resolve(s.modelPath);
}

function serviceOf<K extends ServiceKind>(
  kind: K,
  replicas: number,
  settings: SettingsByKind[K],
  extraEnv: Record<string, string>,
): ServiceSpecOf<K> {
  const table = SETTINGS_BY_KIND[kind] as SettingsTable<SettingsByKind[K]>;
  return { kind, replicas, settings, extraEnv, env: { ...settingsToEnv(table, settings), ...extraEnv } };
}

function compileService<K extends ServiceKind>(kind: K, raw: Raw, where: string, model: string): ServiceSpecOf<K> {
  const replicas = field(raw, 'replicas', where, isReplicas, 'an integer in [0, 256]', 1);
  const table = SETTINGS_BY_KIND[kind] as SettingsTable<SettingsByKind[K]>;
  const filled = { servedModel: model } as unknown as Partial<SettingsByKind[K]>;
  const settings = settingsFromGraph(table, raw, where, filled);
  const check = KIND_CHECKS[kind] as ((s: SettingsByKind[K], where: string, replicas: number) => void) | undefined;
  check?.(settings, where, replicas);
  const extra = field(raw, 'env', where, isObject, 'a mapping of strings', {});
  const extraEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(extra)) extraEnv[k] = String(v);
  return serviceOf(kind, replicas, settings, extraEnv);
}

/** Compiles a parsed YAML document into a graph; throws GraphError on anything wrong. */
export function compileGraph(doc: unknown, defaults: { name: string }): DeploymentGraph {
  if (!isObject(doc)) throw new GraphError('the graph must be a YAML mapping');
  const name = field(doc, 'name', 'graph', isString, 'a non-empty string', defaults.name);
  const model = field(doc, 'model', 'graph', isString, 'a model name');
  const host = field(doc, 'host', 'graph', isString, 'an interface address', '127.0.0.1');
  const discoveryDir = field(doc, 'discoveryDir', 'graph', isString, 'a directory', `.armature/${name}/discovery`);
  const servicesRaw = field(doc, 'services', 'graph', isObject, 'a mapping of services');
  for (const key of Object.keys(servicesRaw)) {
    if (!(SERVICE_KINDS as readonly string[]).includes(key))
      throw new GraphError(`services.${key}: unknown service (known: ${SERVICE_KINDS.join(', ')})`);
  }
  const services: ServiceSpec[] = [];
  for (const kind of SERVICE_KINDS) {
    const raw = servicesRaw[kind];
    if (raw === undefined) continue;
    const where = `services.${kind}`;
    if (!isObject(raw)) throw new GraphError(`${where} must be a mapping`);
    services.push(compileService(kind, raw, where, model) as ServiceSpec);
  }
  const planner = services.findIndex((s) => s.kind === 'planner');
  if (planner >= 0) services[planner] = compilePlanner(services[planner] as ServiceSpecOf<'planner'>, services);
  return { name, model, discoveryDir, httpPort: httpPortOf(services), host, services };
}

/**
 * Fills what the planner learns from the rest of the graph (its pools default to the
 * graph's worker pools; the workers' engine) and checks its scaling options with
 * planner-core's own compiler, so a bad one fails when the graph is read.
 */
function compilePlanner(spec: ServiceSpecOf<'planner'>, services: readonly ServiceSpec[]): ServiceSpecOf<'planner'> {
  const where = 'services.planner';
  const has = (kind: ServiceKind): boolean => services.some((s) => s.kind === kind);
  const decode = services.find((s): s is ServiceSpecOf<'decode'> => s.kind === 'decode');
  if (!decode) throw new GraphError(`${where}: the planner scales decode workers, and the graph has none`);
  const settings: PlannerSettings = { ...spec.settings, engine: decode.settings.engine };
  if (Object.keys(settings.pools).length === 0)
    settings.pools = has('prefill') ? { prefill: {}, decode: {} } : { decode: {} };
  for (const pool of Object.keys(settings.pools))
    if ((pool === 'prefill' || pool === 'decode') && !has(pool))
      throw new GraphError(`${where}.pools.${pool}: the graph has no ${pool} service to scale`);
  if (settings.profile !== '') settings.profile = resolve(settings.profile);
  try {
    compilePlannerConfig(plannerConfigInput(settings));
  } catch (err) {
    throw new GraphError(`${where}: ${(err as Error).message}`);
  }
  return serviceOf('planner', spec.replicas, settings, spec.extraEnv);
}

function httpPortOf(services: readonly ServiceSpec[]): number {
  const frontend = services.find((s): s is ServiceSpecOf<'frontend'> => s.kind === 'frontend');
  return frontend?.settings.port ?? 8000;
}

/** The service of `kind`, if the graph has one. */
export function serviceOfKind<K extends ServiceKind>(graph: DeploymentGraph, kind: K): ServiceSpecOf<K> | undefined {
  return graph.services.find((s) => s.kind === kind) as ServiceSpecOf<K> | undefined;
}

/**
 * A copy of the graph with some of one service's settings replaced (and its environment
 * derived again); the graph itself is not changed. Throws GraphError when it has no such service.
 */
export function withSettings<K extends ServiceKind>(
  graph: DeploymentGraph,
  kind: K,
  patch: Partial<SettingsByKind[K]>,
): DeploymentGraph {
  const current = serviceOfKind(graph, kind);
  if (!current) throw new GraphError(`services.${kind}: the graph has no ${kind}`);
  const next = serviceOf(kind, current.replicas, { ...current.settings, ...patch }, current.extraEnv);
  const services = graph.services.map((s) => (s === current ? (next as ServiceSpec) : s));
  return { ...graph, services, httpPort: httpPortOf(services) };
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
