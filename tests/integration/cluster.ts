// A real local cluster for integration tests: frontend, router and decode workers as
// separate Node processes on 127.0.0.1, found through file discovery in a temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileDiscovery } from '@armature/runtime';
import { freePort, spawnNode, waitFor, type ServiceProcess } from '@armature/testing';

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
}

export interface Cluster {
  url: string;
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
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const discoveryDir = await mkdtemp(join(tmpdir(), 'armature-it-'));
  const common = {
    ARMATURE_HOST: '127.0.0.1',
    ARMATURE_DISCOVERY_BACKEND: 'file',
    ARMATURE_DISCOVERY_DIR: discoveryDir,
    ARMATURE_DISCOVERY_LEASE_MS: String(options.leaseMs ?? 2_000),
    ARMATURE_LOG_LEVEL: 'info',
    ...options.extraEnv,
  };
  const workers = new Map<string, ServiceProcess>();
  const count = options.workers ?? 2;
  const engine = options.engine ?? 'mocker';
  const engineArgs = JSON.stringify(
    engine === 'mocker'
      ? { speedup: 50, contextLength: 4096, ...options.engineArgs }
      : { threads: 1, ...options.engineArgs },
  );
  for (let i = 0; i < count; i++) {
    const id = `decode-${i}`;
    workers.set(
      id,
      spawnNode(join(ROOT, 'services/decode/dist/main.js'), [], {
        ...common,
        ARMATURE_INSTANCE_ID: id,
        ARMATURE_MODEL: MODEL,
        ARMATURE_ENGINE: engine,
        ARMATURE_ENGINE_ARGS: engineArgs,
        ...options.decodeEnv,
      }),
    );
  }
  for (let i = 0; i < (options.prefillWorkers ?? 0); i++) {
    const id = `prefill-${i}`;
    workers.set(
      id,
      spawnNode(join(ROOT, 'services/prefill/dist/main.js'), [], {
        ...common,
        ARMATURE_INSTANCE_ID: id,
        ARMATURE_MODEL: MODEL,
        ARMATURE_ENGINE: engine,
        ARMATURE_ENGINE_ARGS: engineArgs,
        ...options.prefillEnv,
      }),
    );
  }
  const routers = new Map<string, ServiceProcess>();
  const spawnRouter = (id: string): ServiceProcess => {
    const proc = spawnNode(join(ROOT, 'services/router/dist/main.js'), [], {
      ...common,
      ARMATURE_INSTANCE_ID: id,
      ARMATURE_ROUTER_POLICY: options.policy ?? 'round-robin',
      ...options.routerEnv,
    });
    routers.set(id, proc);
    return proc;
  };
  for (let i = 0; i < (options.routers ?? 1); i++) spawnRouter(`router-${i}`);
  const router = routers.get('router-0')!;
  const port = await freePort();
  const frontend = spawnNode(join(ROOT, 'services/frontend/dist/main.js'), [], {
    ...common,
    ARMATURE_INSTANCE_ID: 'frontend-0',
    ARMATURE_HTTP_PORT: String(port),
    ARMATURE_MAX_BODY_BYTES: String(options.maxBodyBytes ?? 64 * 1024),
    ...options.frontendEnv,
  });
  const url = `http://127.0.0.1:${port}`;
  const discovery = new FileDiscovery({ dir: discoveryDir, pollMs: 50 });
  const stop = async (): Promise<void> => {
    await Promise.all([frontend, ...routers.values(), ...workers.values()].map((p) => p.stop(3_000)));
    await discovery.close();
    await rm(discoveryDir, { recursive: true, force: true });
  };
  try {
    await Promise.all([...workers.values()].map((w) => w.waitForOutput(/worker ready/)));
    await Promise.all([...routers.values()].map((r) => r.waitForOutput(/router ready/)));
    await frontend.waitForOutput(/frontend listening/);
    // Healthy, and every worker visible to the frontend.
    await waitFor(
      async () => {
        const res = await fetch(`${url}/health`).catch(() => undefined);
        if (!res?.ok) return false;
        const body = (await res.json()) as { models: Array<{ workers: number }> };
        return body.models[0]?.workers === count;
      },
      15_000,
      50,
      'a healthy frontend seeing every worker',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const startRouter = async (id: string): Promise<ServiceProcess> => {
    const proc = spawnRouter(id);
    await proc.waitForOutput(/router ready/);
    return proc;
  };
  return { url, discoveryDir, discovery, frontend, router, routers, workers, startRouter, stop };
}
