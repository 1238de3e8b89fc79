// A real local cluster for integration tests: frontend, router and decode workers as
// separate Node processes on 127.0.0.1, found through file discovery in a temp dir. The
// graph is compiled and launched by @armature/deploy (the launcher `armature up` uses),
// without restarts: tests kill replicas on purpose and start them again themselves.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph, launch, waitHealthy } from '@armature/deploy';
import { FileDiscovery } from '@armature/runtime';
import type { ServiceProcess } from '@armature/testing';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const MODEL = 'armature/test-model';

export interface ClusterOptions {
  workers?: number;
  /** Engine of every worker (default mocker); llamacpp serves the generated test model. */
  engine?: 'mocker' | 'llamacpp';
  leaseMs?: number;
  policy?: string;
  engineArgs?: Record<string, unknown>;
  extraEnv?: Record<string, string>;
  /** Frontend body limit (default 64 KiB, small so the 413 case is cheap to test). */
  maxBodyBytes?: number;
  /** Router replicas (default 1), with extra environment for each. */
  routers?: number;
  routerEnv?: Record<string, string>;
  /** Prefill workers (default 0), with extra environment for each. */
  prefillWorkers?: number;
  prefillEnv?: Record<string, string>;
  /** Extra environment for the decode workers only. */
  decodeEnv?: Record<string, string>;
  /** Extra environment for the frontend only. */
  frontendEnv?: Record<string, string>;
  /** Frontend replicas (default 1); replica i listens on the first one's port + i. */
  frontends?: number;
  /** How stop() and shutdown() stop the replicas (default together). */
  stopOrder?: 'frontend-first' | 'together';
  /** A planner, with these settings (the graph's services.planner mapping); default none. */
  planner?: Record<string, unknown>;
}

export interface Cluster {
  url: string;
  /** Every frontend replica's URL (frontend-0 first). */
  urls: string[];
  /** Frontend replicas by name (frontend-0, ...). */
  frontends: Map<string, ServiceProcess>;
  discoveryDir: string;
  discovery: FileDiscovery;
  frontend: ServiceProcess;
  /** The first router replica. */
  router: ServiceProcess;
  /** Every router replica, by instance id (router-0, router-1, ...). */
  routers: Map<string, ServiceProcess>;
  /** Decode workers (decode-0, ...) and prefill workers (prefill-0, ...). */
  workers: Map<string, ServiceProcess>;
  /** Starts (or restarts, after it exited) router replica `id`; resolves once it is ready. */
  startRouter(id: string): Promise<ServiceProcess>;
  /** Stops everything quickly (3 s grace each). */
  stop(): Promise<void>;
  /** Stops everything as `armature up` does on Ctrl-C: in order, each within its drain timeout. */
  shutdown(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.workers ?? 2;
  const engine = options.engine ?? 'mocker';
  const engineArgs =
    engine === 'mocker'
      ? { speedup: 50, contextLength: 4096, ...options.engineArgs }
      : { threads: 1, ...options.engineArgs };
  const graph = compileGraph(
    {
      model: MODEL,
      services: {
        frontend: { maxBodyBytes: options.maxBodyBytes ?? 64 * 1024, replicas: options.frontends ?? 1 },
        router: { replicas: options.routers ?? 1, policy: options.policy ?? 'round-robin' },
        prefill: { replicas: options.prefillWorkers ?? 0, engine, engineArgs },
        decode: { replicas: count, engine, engineArgs },
        ...(options.planner ? { planner: options.planner } : {}),
      },
    },
    { name: 'it' },
  );
  const running = await launch(graph, {
    tempDiscoveryDir: 'armature-it-',
    freePort: true,
    out: null,
    keepAllOutput: true,
    restart: false,
    readiness: 'ready',
    naming: 'numbered',
    stopOrder: options.stopOrder ?? 'together',
    env: {
      ARMATURE_DISCOVERY_LEASE_MS: String(options.leaseMs ?? 2_000),
      ARMATURE_LOG_LEVEL: 'info',
      ...options.extraEnv,
    },
    envByKind: {
      router: options.routerEnv,
      prefill: options.prefillEnv,
      decode: options.decodeEnv,
      frontend: options.frontendEnv,
    },
  });
  const processesOf = (kind: 'router' | 'prefill' | 'decode'): Array<[string, ServiceProcess]> =>
    running.list(kind).map((r) => [r.name, r.process!]);
  const workers = new Map<string, ServiceProcess>([...processesOf('decode'), ...processesOf('prefill')]);
  const routers = new Map<string, ServiceProcess>(processesOf('router'));
  const router = routers.get('router-0')!;
  const frontend = running.replica('frontend-0')!.process!;
  const frontends = new Map<string, ServiceProcess>(
    running.list('frontend').map((r) => [r.name, r.process!] as [string, ServiceProcess]),
  );
  const url = running.url;
  const discoveryDir = running.discoveryDir;
  const discovery = new FileDiscovery({ dir: discoveryDir, pollMs: 50 });
  const stop = async (): Promise<void> => {
    await running.stop(3_000); // and removes the discovery directory
    await discovery.close();
  };
  const shutdown = async (): Promise<void> => {
    await running.stop();
    await discovery.close();
  };
  // Healthy, and every worker visible to the frontend.
  if (!(await waitHealthy(url, { timeoutMs: 15_000, pollMs: 50, workers: count }))) {
    await stop();
    throw new Error('timed out after 15000 ms waiting for a healthy frontend seeing every worker');
  }
  const startRouter = async (id: string): Promise<ServiceProcess> => {
    const proc = await running.startReplica('router', id);
    routers.set(id, proc);
    return proc;
  };
  return {
    url,
    urls: running.urls,
    frontends,
    discoveryDir,
    discovery,
    frontend,
    router,
    routers,
    workers,
    startRouter,
    stop,
    shutdown,
  };
}
