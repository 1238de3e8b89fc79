// Which workers a graph's profile measures, and starting them: one worker process of each
// profiled role, launched by @armature/deploy from the graph reduced to just those workers
// (no frontend, no router), found through file discovery in a throwaway directory. It does
// not measure (live.ts).
import {
  GraphError,
  launch,
  nodeArgsFromEnv,
  serviceOfKind,
  withSettings,
  type DeploymentGraph,
  type EngineKind,
  type ServiceSpecOf,
  type WorkerSettings,
} from '@armature/deploy';
import { ArmatureError, FileDiscovery, type InstanceRole } from '@armature/runtime';
import { connectWorker, type LiveWorker } from './live.js';

export type ProfiledRole = 'prefill' | 'decode';

/** The worker that measures each half of the profile, and its settings. */
export interface ProfilePlan {
  /** Runs the prefill sweep: the graph's prefill workers if it runs any, else its decode workers. */
  prefill: { role: ProfiledRole; settings: WorkerSettings };
  /** Runs the decode sweep: the decode workers (a prefill-only graph's prefill workers). */
  decode: { role: ProfiledRole; settings: WorkerSettings };
  model: string;
}

type WorkerSpec = ServiceSpecOf<'prefill'> | ServiceSpecOf<'decode'>;

/**
 * The graph's profiled workers, with `engine` (if given) over the graph's: a different engine
 * than the graph's starts from its own defaults (the graph's engineArgs are another engine's).
 * A prefill service with 0 replicas does not count. Throws GraphError when there is no worker.
 */
export function profilePlan(graph: DeploymentGraph, engine?: EngineKind): ProfilePlan {
  const running = (kind: ProfiledRole): WorkerSpec | undefined => {
    const spec = serviceOfKind(graph, kind);
    return spec && (spec.replicas > 0 || kind === 'decode') ? spec : undefined;
  };
  const decode = running('decode');
  const prefill = running('prefill');
  if (!decode && !prefill)
    throw new GraphError(`graph ${graph.name} has no decode or prefill worker to profile (services.decode)`);
  const settingsOf = (spec: WorkerSpec): WorkerSettings =>
    engine === undefined || engine === spec.settings.engine
      ? spec.settings
      : { ...spec.settings, engine, engineArgs: {}, modelPath: engine === 'llamacpp' ? spec.settings.modelPath : '' };
  const p = (prefill ?? decode)!;
  const d = (decode ?? prefill)!;
  return {
    prefill: { role: p.kind, settings: settingsOf(p) },
    decode: { role: d.kind, settings: settingsOf(d) },
    model: graph.model,
  };
}

/** The graph with one replica of each profiled role and nothing else. */
export function workersOnlyGraph(graph: DeploymentGraph, plan: ProfilePlan): DeploymentGraph {
  let g = graph;
  const roles = new Map<ProfiledRole, WorkerSettings>([
    [plan.prefill.role, plan.prefill.settings],
    [plan.decode.role, plan.decode.settings],
  ]);
  for (const [role, settings] of roles) g = withSettings(g, role, settings);
  const services = g.services
    .filter((s) => roles.has(s.kind as ProfiledRole))
    .map((s) => ({ ...s, replicas: 1 }) as typeof s);
  return { ...g, services };
}

export interface StartedWorkers {
  /** The worker of each profiled role, connected. */
  workers: Map<ProfiledRole, LiveWorker>;
  stop(): Promise<void>;
}

async function findAddress(discovery: FileDiscovery, role: InstanceRole, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = (await discovery.list({ role })).find((r) => r.grpcAddress);
    if (record?.grpcAddress) return record.grpcAddress;
    if (Date.now() > deadline)
      throw new ArmatureError(
        'unavailable',
        'profile_worker_not_found',
        `no ${role} worker in discovery after ${timeoutMs} ms`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface StartWorkersOptions {
  /** Longest wait for a worker to be ready (default 10 min: loading a real model takes a while). */
  readyTimeoutMs?: number;
  /** Where the workers' log lines go (default nowhere). */
  out?: NodeJS.WritableStream | null;
}

/** Starts one worker of each profiled role and connects to it; stop() ends them. */
export async function startWorkers(
  graph: DeploymentGraph,
  plan: ProfilePlan,
  options: StartWorkersOptions = {},
): Promise<StartedWorkers> {
  const supervisor = await launch(workersOnlyGraph(graph, plan), {
    tempDiscoveryDir: 'armature-profile-',
    out: options.out ?? null,
    restart: false,
    readiness: 'ready',
    readyTimeoutMs: options.readyTimeoutMs ?? 10 * 60_000,
    naming: 'numbered',
    stopOrder: 'together',
    graceMs: 3_000,
    nodeArgs: nodeArgsFromEnv(),
    // The ready line is an info line.
    env: { ARMATURE_LOG_LEVEL: 'info' },
  });
  const discovery = new FileDiscovery({ dir: supervisor.discoveryDir, pollMs: 50 });
  const workers = new Map<ProfiledRole, LiveWorker>();
  const stop = async (): Promise<void> => {
    for (const w of workers.values()) w.close();
    await discovery.close();
    await supervisor.stop(3_000);
  };
  try {
    for (const role of new Set([plan.prefill.role, plan.decode.role]))
      workers.set(role, await connectWorker(await findAddress(discovery, role, 30_000)));
  } catch (err) {
    await stop();
    throw err;
  }
  return { workers, stop };
}
