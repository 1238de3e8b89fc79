// A throwaway local cluster for benchmarks: n decode workers (and optionally m prefill
// workers), a router and a frontend as child processes on 127.0.0.1, found through file
// discovery in a temp dir. Workers run the mocker unless `engine` says llamacpp. The graph
// is compiled and launched by @armature/deploy, the launcher `armature up` uses too.
import { compileGraph, launch, nodeArgsFromEnv, waitHealthy, type Supervisor } from '@armature/deploy';

export interface LocalClusterOptions {
  model: string;
  workers: number;
  policy: string;
  engineArgs: Record<string, unknown>;
  /** Engine of every worker (ARMATURE_ENGINE; default mocker). */
  engine?: 'mocker' | 'llamacpp';
  /** Extra worker environment (for example ARMATURE_MODEL_PATH). */
  engineEnv?: Record<string, string>;
  maxBodyBytes?: number;
  /** Prefill workers (default 0: aggregated serving). */
  prefillWorkers?: number;
  /** Extra router environment (for example ARMATURE_DISAGG). */
  routerEnv?: Record<string, string>;
  /** Router replicas (default 1). */
  routers?: number;
  /** Frontend replicas (default 1); replica i listens on the first one's port + i. */
  frontends?: number;
  /** Extra decode-worker environment (over engineEnv). */
  decodeEnv?: Record<string, string>;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** The GGUF file a llamacpp worker loads (default: the generated test model). */
  modelPath?: string;
}

export interface LocalCluster {
  url: string;
  /** Every frontend replica's URL. */
  urls: string[];
  discoveryDir: string;
  /** The replicas, to kill or stop one on purpose (bench:chaos). */
  supervisor: Supervisor;
  stop(): Promise<void>;
}

/**
 * Starts the cluster (workers first, then the router, then the frontend, each once ready)
 * and resolves once the frontend is healthy and sees every worker. Every service gets the
 * Node.js flags in ARMATURE_BENCH_NODE_ARGS.
 */
export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const worker = {
    engine: o.engine ?? 'mocker',
    engineArgs: o.engineArgs,
    ...(o.modelPath ? { model: o.modelPath } : {}),
  };
  const graph = compileGraph(
    {
      model: o.model,
      services: {
        frontend: { maxBodyBytes: o.maxBodyBytes ?? 64 << 20, replicas: o.frontends ?? 1 },
        router: { policy: o.policy, replicas: o.routers ?? 1 },
        prefill: { replicas: o.prefillWorkers ?? 0, ...worker },
        decode: { replicas: o.workers, ...worker },
      },
    },
    { name: 'bench' },
  );
  const cluster = await launch(graph, {
    tempDiscoveryDir: 'armature-bench-',
    freePort: true,
    out: null,
    restart: false,
    readiness: 'staged',
    // Loading a real model (llamacpp) can take a while; the mocker is ready at once.
    readyTimeoutMs: 10 * 60_000,
    naming: 'numbered',
    stopOrder: 'together',
    graceMs: 5_000,
    nodeArgs: nodeArgsFromEnv(),
    env: { ARMATURE_LOG_LEVEL: 'info', ...o.env },
    envByKind: { decode: { ...o.engineEnv, ...o.decodeEnv }, prefill: o.engineEnv, router: o.routerEnv },
  });
  const stop = (): Promise<void> => cluster.stop();
  if (!(await waitHealthy(cluster.url, { timeoutMs: 30_000, pollMs: 100, workers: o.workers }))) {
    await stop();
    throw new Error('the local cluster did not become healthy in 30 s');
  }
  return { url: cluster.url, urls: cluster.urls, discoveryDir: cluster.discoveryDir, supervisor: cluster, stop };
}
