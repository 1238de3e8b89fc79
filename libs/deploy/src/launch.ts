// The one way to run a deployment graph on this host, for the CLI (`armature up`), the
// benchmarks' local clusters and the integration tests: prepares what the callers differ
// in (a throwaway discovery directory, a free HTTP port) and starts a Supervisor with the
// rest of their options (logs, output capture, readiness, restart, extra environment),
// and the control API beside it when asked (or when the graph runs a planner).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { envInt, envString } from '@armature/runtime';
import { startControlServer, type ControlServer } from './control-api.js';
import { LaunchError } from './errors.js';
import { freePort } from './free-port.js';
import { serviceOfKind, withSettings, type DeploymentGraph } from './graph.js';
import type { LivenessOptions } from './liveness.js';
import { Supervisor, type SupervisorOptions } from './supervisor.js';

export { freePort } from './free-port.js';
export type { CrashLoopOptions } from './crash-loop.js';
export type { LivenessOptions } from './liveness.js';

export interface LaunchOptions extends SupervisorOptions {
  /**
   * Run with file discovery in a fresh temp directory whose name starts with this prefix,
   * instead of the graph's discoveryDir; it is removed after stop().
   */
  tempDiscoveryDir?: string;
  /** Give the frontend a free port instead of the graph's (default false). */
  freePort?: boolean;
  /** Aborting stops whatever was started and makes launch() reject. */
  signal?: AbortSignal;
  /**
   * Serve the control API (control-api.ts) while the supervisor runs, on `socketPath`
   * (default control.sock in the graph's state directory, the discovery directory's parent:
   * `.armature/<graph>/`; with tempDiscoveryDir, beside that temp directory); planner
   * replicas get its address in ARMATURE_CONTROL_ADDRESS. Default: on when the graph runs a
   * planner, else off.
   */
  control?: boolean | { socketPath?: string };
}

/** A started supervisor, with the control API launch() serves beside it (stop() closes it). */
export type LaunchedSupervisor = Supervisor & { readonly control: ControlServer | undefined };

/**
 * Node.js flags for every service from ARMATURE_BENCH_NODE_ARGS (space-separated; default
 * none), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile a benchmark's services
 * (Node refuses --cpu-prof in NODE_OPTIONS).
 */
export function nodeArgsFromEnv(env: Record<string, string | undefined> = process.env): string[] {
  return envString('ARMATURE_BENCH_NODE_ARGS', '', env).split(' ').filter(Boolean);
}

/**
 * `armature up`'s liveness probe from ARMATURE_LIVENESS_INTERVAL_MS (default 5000),
 * ARMATURE_LIVENESS_TIMEOUT_MS (default 2000) and ARMATURE_LIVENESS_FAILURES (default 6;
 * 0: false, no probe); a bad value throws bad_config.
 */
export function livenessFromEnv(env: Record<string, string | undefined> = process.env): LivenessOptions | false {
  const failures = envInt('ARMATURE_LIVENESS_FAILURES', 6, { min: 0 }, env);
  if (failures === 0) return false;
  return {
    intervalMs: envInt('ARMATURE_LIVENESS_INTERVAL_MS', 5_000, { min: 1 }, env),
    timeoutMs: envInt('ARMATURE_LIVENESS_TIMEOUT_MS', 2_000, { min: 1 }, env),
    failures,
  };
}

/**
 * Starts `graph` as supervised processes, and its control API if asked; resolves with the
 * running supervisor (its scale port).
 */
export async function launch(graph: DeploymentGraph, options: LaunchOptions = {}): Promise<LaunchedSupervisor> {
  let g = graph;
  let tempDir: string | undefined;
  if (options.tempDiscoveryDir !== undefined) {
    tempDir = await mkdtemp(join(tmpdir(), options.tempDiscoveryDir));
    g = { ...g, discoveryDir: tempDir };
  }
  const wantsControl = options.control ?? (serviceOfKind(g, 'planner')?.replicas ?? 0) > 0;
  // Filled in once the control API listens, before any replica starts.
  const plannerEnv: Record<string, string> = { ...options.envByKind?.planner };
  let supervisor: Supervisor;
  let control: ControlServer | undefined;
  let startSettled: () => void = () => undefined;
  const startedGate = new Promise<void>((done) => (startSettled = done));
  try {
    if (options.freePort && serviceOfKind(g, 'frontend'))
      g = withSettings(g, 'frontend', { port: await freePort(g.host) });
    supervisor = new Supervisor(g, {
      ...options,
      envByKind: { ...options.envByKind, planner: plannerEnv },
      removeDiscoveryDirOnStop: options.removeDiscoveryDirOnStop ?? tempDir !== undefined,
    });
    if (wantsControl) {
      // Listening before the planner starts, so the address it gets answers; scale requests wait for start().
      const custom = typeof options.control === 'object' ? options.control.socketPath : undefined;
      const stateBase =
        tempDir === undefined ? join(dirname(resolve(g.discoveryDir)), 'control') : `${tempDir}.control`;
      control = await startControlServer(supervisor, {
        socketPath: custom ?? `${stateBase}.sock`,
        addressFile: custom === undefined ? `${stateBase}.address` : undefined,
        notBefore: startedGate,
      });
      plannerEnv.ARMATURE_CONTROL_ADDRESS = control.address;
      const server = control;
      supervisor.afterStop(() => server.close());
    }
  } catch (err) {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
    throw err;
  }
  const signal = options.signal;
  const onAbort = (): void => void supervisor.stop();
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await supervisor.start();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    startSettled();
  }
  if (signal?.aborted) {
    await supervisor.stop();
    throw new LaunchError('launch aborted');
  }
  return Object.assign(supervisor, { control });
}

/**
 * Polls the frontend's /health until it answers 200 (and, given `workers`, its first model
 * has that many workers); false after `timeoutMs` (default 60 s; every `pollMs`, default 250).
 */
export async function waitHealthy(
  url: string,
  options: { timeoutMs?: number; pollMs?: number; workers?: number } = {},
): Promise<boolean> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const res = await fetch(`${url}/health`).catch(() => undefined);
    if (res?.ok) {
      if (options.workers === undefined) return true;
      const body = (await res.json().catch(() => undefined)) as { models?: Array<{ workers: number }> } | undefined;
      if (body?.models?.[0]?.workers === options.workers) return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
  }
}
