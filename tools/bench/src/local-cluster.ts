// A throwaway local cluster for benchmarks: n decode workers (and optionally m prefill
// workers), a router and a frontend as child processes on 127.0.0.1, found through file
// discovery in a temp dir. Workers run the mocker unless `engine` says llamacpp.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

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
}

export interface LocalCluster {
  url: string;
  discoveryDir: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/**
 * Extra Node.js flags for every service, from ARMATURE_BENCH_NODE_ARGS (space-separated), for
 * example `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile a benchmark's services (Node
 * refuses --cpu-prof in NODE_OPTIONS).
 */
const NODE_ARGS = (process.env.ARMATURE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

function start(script: string, env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...NODE_ARGS, join(ROOT, script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((res, rej) => {
    let out = '';
    const on = (b: Buffer): void => {
      out += b.toString();
      if (ready.test(out)) {
        // Keep draining the pipes so a chatty child never blocks on a full buffer.
        out = '';
        res(child);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', () => rej(new Error(`${script} exited:\n${out}`)));
  });
}

/** Starts the cluster and resolves once the frontend is healthy and sees every worker. */
export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'armature-bench-'));
  const common = { ARMATURE_DISCOVERY_BACKEND: 'file', ARMATURE_DISCOVERY_DIR: dir, ARMATURE_LOG_LEVEL: 'info' };
  const port = await freePort();
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((done) => {
            if (c.exitCode !== null || c.signalCode !== null) return done();
            c.once('exit', () => done());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  const workerEnv = {
    ARMATURE_MODEL: o.model,
    ARMATURE_ENGINE: o.engine ?? 'mocker',
    ARMATURE_ENGINE_ARGS: JSON.stringify(o.engineArgs),
    ...o.engineEnv,
  };
  try {
    const workers = Array.from({ length: o.workers }, (_, i) =>
      start(
        'services/decode/dist/main.js',
        {
          ...common,
          ARMATURE_INSTANCE_ID: `decode-${i}`,
          ...workerEnv,
        },
        /worker ready/,
      ),
    );
    const prefill = Array.from({ length: o.prefillWorkers ?? 0 }, (_, i) =>
      start(
        'services/prefill/dist/main.js',
        {
          ...common,
          ARMATURE_INSTANCE_ID: `prefill-${i}`,
          ...workerEnv,
        },
        /worker ready/,
      ),
    );
    children.push(...(await Promise.all([...workers, ...prefill])));
    children.push(
      await start(
        'services/router/dist/main.js',
        { ...common, ARMATURE_ROUTER_POLICY: o.policy, ...o.routerEnv },
        /router ready/,
      ),
    );
    children.push(
      await start(
        'services/frontend/dist/main.js',
        { ...common, ARMATURE_HTTP_PORT: String(port), ARMATURE_MAX_BODY_BYTES: String(o.maxBodyBytes ?? 64 << 20) },
        /frontend listening/,
      ),
    );
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const body = (await fetch(`${url}/health`)
        .then((r) => (r.ok ? r.json() : undefined))
        .catch(() => undefined)) as { models?: Array<{ workers: number }> } | undefined;
      if (body?.models?.[0]?.workers === o.workers) break;
      if (Date.now() > deadline) throw new Error('the local cluster did not become healthy in 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { url, discoveryDir: dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
