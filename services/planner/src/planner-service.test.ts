// The planner service's parts against real servers: metrics pages served by real
// registries over HTTP and found through discovery, the supervisor's control API over its
// Unix socket, and the planner process itself for its start-up errors.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { compileGraph, ControlClient, startControlServer, type ControlTarget, type Replica } from '@armature/deploy';
import { MetricsRegistry, serveMetrics } from '@armature/metrics';
import { compilePlannerConfig, Planner, type Pool } from '@armature/planner-core';
import { MemoryDiscovery, type InstanceRecord } from '@armature/runtime';
import {
  AdvisoryConnector,
  KubernetesConnector,
  LocalConnector,
  type Connector,
  type KubernetesScaleApi,
} from './connectors.js';
import { observe } from './observe.js';
import { PlannerRunner } from './planner-runner.js';
import { parseExposition, ScrapeSource, type ClusterSnapshot } from './sources.js';

const MAIN = resolve(fileURLToPath(new URL('../dist/main.js', import.meta.url)));
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A real metrics server for one service, registered in `discovery`. */
async function service(discovery: MemoryDiscovery, record: Omit<InstanceRecord, 'metricsAddress'>) {
  const metrics = new MetricsRegistry();
  const { server, port } = await serveMetrics(metrics, '127.0.0.1', 0);
  cleanups.push(() => new Promise((r) => server.close(r)));
  await discovery.register({ ...record, metricsAddress: `127.0.0.1:${port}` }, { leaseMs: 60_000 });
  return metrics;
}

describe('observing the cluster', () => {
  it('parses the text exposition format', () => {
    const samples = parseExposition(
      '# HELP x y\n# TYPE x counter\nx_total{model="m",a="q\\"x"} 3\nplain 1.5e3\nbad line\ny{} NaN\n',
    );
    expect(samples).toEqual([
      { name: 'x_total', labels: { model: 'm', a: 'q\\"x' }, value: 3 },
      { name: 'plain', labels: {}, value: 1500 },
    ]);
  });

  it('scrapes the frontend and workers through discovery and turns two snapshots into an interval', async () => {
    const discovery = new MemoryDiscovery();
    cleanups.push(() => discovery.close());
    const frontend = await service(discovery, { instanceId: 'frontend-0', role: 'frontend' });
    const worker = await service(discovery, {
      instanceId: 'decode-0',
      role: 'decode',
      card: { blockSize: 16 } as InstanceRecord['card'],
    });
    const source = new ScrapeSource(discovery);
    const before = await source.snapshot();
    expect(before.errors).toEqual([]);
    for (let i = 0; i < 10; i++) {
      frontend.get('armature_frontend_input_sequence_tokens').observe({ model: 'm' }, 1000);
      frontend.get('armature_frontend_output_sequence_tokens').observe({ model: 'm' }, 50);
      frontend.get('armature_frontend_time_to_first_token_seconds').observe({ model: 'm' }, 0.2);
      frontend.get('armature_frontend_inter_token_latency_seconds').observe({ model: 'm' }, 0.01);
      worker.get('armature_worker_step_seconds').observe({ model: 'm' }, 0.02);
      worker.get('armature_worker_batch_prefill_tokens').observe({ model: 'm' }, 500);
    }
    frontend.get('armature_frontend_input_tokens_total').inc({ model: 'm' }, 10_000);
    frontend.get('armature_frontend_cached_tokens_total').inc({ model: 'm' }, 2_500);
    worker.get('armature_worker_active_decode_blocks').set({ model: 'm' }, 100);
    worker.get('armature_worker_active_prefill_tokens').set({ model: 'm' }, 3000);
    const now = await source.snapshot();
    const obs = observe(
      before,
      { ...now, atMs: before.atMs + 10_000 },
      { decode: { desired: 1, ready: 1, starting: 0 } },
    );
    expect(obs).toMatchObject({ requests: 10, isl: 1000, osl: 50, kvHitRate: 0.25, durationMs: 10_000 });
    expect(obs.ttftMs).toBeCloseTo(200);
    expect(obs.itlMs).toBeCloseTo(10);
    expect(obs.workers).toEqual([
      {
        id: 'decode-0',
        pool: 'decode',
        activePrefillTokens: 3000,
        activeKvTokens: 1600,
        passes: { count: 10, meanMs: expect.closeTo(20), meanPrefillTokens: 500, meanKvTokens: 1600 },
      },
    ]);
  });

  it('reports what it could not read, and an observation without a frontend holds', async () => {
    const discovery = new MemoryDiscovery();
    cleanups.push(() => discovery.close());
    await discovery.register(
      { instanceId: 'frontend-0', role: 'frontend', metricsAddress: '127.0.0.1:1' },
      { leaseMs: 60_000 },
    );
    const snapshot = await new ScrapeSource(discovery, 500).snapshot();
    expect(snapshot.frontend).toBeUndefined();
    expect(snapshot.errors[0]).toMatch(/scrape frontend-0 \(127\.0\.0\.1:1\)/);
    const obs = observe(snapshot, snapshot, { decode: { desired: 2, ready: 2, starting: 0 } });
    expect(obs.requests).toBeUndefined();
    const config = compilePlannerConfig({ mode: 'load', predictor: 'constant' });
    const plan = new Planner(config).plan(obs);
    expect(plan.held).toMatch(/metrics missing \(scrape frontend-0/);
    expect(plan.decisions[0]).toMatchObject({ from: 2, to: 2 });
  });

  it('counts a counter that went down (a restarted service) from zero', () => {
    const snap = (count: number, sum: number): ClusterSnapshot => ({
      atMs: count,
      errors: [],
      workers: [],
      frontend: {
        input: { count, sum },
        output: { count, sum },
        ttftSeconds: { count, sum: count * 0.1 },
        itlSeconds: { count, sum: count * 0.01 },
        inputTokens: sum,
        cachedTokens: 0,
      },
    });
    expect(observe(snap(100, 100_000), snap(5, 5000), {}).requests).toBe(5);
  });
});

/** The supervisor's side of the control API, in memory: counts per kind, scaled at once. */
function controlTarget(): ControlTarget & { counts: Record<string, number> } {
  const graph = compileGraph(
    { model: 'm', services: { prefill: { replicas: 1 }, decode: { replicas: 2 } } },
    { name: 't' },
  );
  const counts: Record<string, number> = { prefill: 1, decode: 2 };
  const replica = (kind: string, index: number): Replica =>
    ({ name: `${kind}-${index}`, kind, index, state: 'ready', process: {} }) as unknown as Replica;
  return {
    graph,
    counts,
    replicas: (kind) => counts[kind] ?? 0,
    scale: async (kind, n) => {
      counts[kind] = n;
    },
    list: (kind) => Array.from({ length: counts[kind] ?? 0 }, (_, i) => replica(kind, i)),
  };
}

class MemoryKubernetes implements KubernetesScaleApi {
  readonly scales = new Map<string, number>([
    ['t-prefill', 1],
    ['t-decode', 2],
  ]);
  async readScale(deployment: string) {
    const n = this.scales.get(deployment);
    if (n === undefined) throw new Error(`deployments.apps "${deployment}" not found`);
    return { desired: n, ready: n, current: n };
  }
  async patchScale(deployment: string, replicas: number) {
    if (!this.scales.has(deployment)) throw new Error(`deployments.apps "${deployment}" not found`);
    this.scales.set(deployment, replicas);
  }
}

// One conformance suite for every connector: status reports each pool; a scale shows in the next status.
const connectors: Array<[string, () => Promise<Connector>]> = [
  [
    'local (control API over its socket)',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'armature-planner-'));
      const server = await startControlServer(controlTarget(), { socketPath: join(dir, 'control.sock') });
      cleanups.push(
        () => rm(dir, { recursive: true, force: true }),
        () => server.close(),
      );
      return new LocalConnector(new ControlClient(server.address));
    },
  ],
  [
    'kubernetes (in-memory scale API)',
    async () => new KubernetesConnector(new MemoryKubernetes(), (pool) => `t-${pool}`),
  ],
  [
    'advisory (counts from discovery)',
    async () => {
      const discovery = new MemoryDiscovery();
      cleanups.push(() => discovery.close());
      for (const [role, n] of [
        ['prefill', 1],
        ['decode', 2],
      ] as const)
        for (let i = 0; i < n; i++) await discovery.register({ instanceId: `${role}-${i}`, role }, { leaseMs: 60_000 });
      return new AdvisoryConnector(discovery);
    },
  ],
];

describe.each(connectors)('connector: %s', (_name, make) => {
  it('reports each pool and shows a scale in the next status', async () => {
    const connector = await make();
    const pools: Pool[] = ['prefill', 'decode'];
    expect(await connector.status(pools)).toEqual({
      prefill: { desired: 1, ready: 1, starting: 0 },
      decode: { desired: 2, ready: 2, starting: 0 },
    });
    await connector.scale('decode', 3);
    const after = await connector.status(pools);
    expect(after.decode!.desired).toBe(3);
    if (connector.applies) expect(after.decode!.ready).toBe(3);
    else expect(after.decode!.ready).toBe(2); // advisory changes nothing
  });
});

describe('the planner loop', () => {
  it('retries a failing connector with back-off, counts each failure, and applies once it answers', async () => {
    const discovery = new MemoryDiscovery();
    cleanups.push(() => discovery.close());
    const frontend = await service(discovery, { instanceId: 'frontend-0', role: 'frontend' });
    const inner = new KubernetesConnector(new MemoryKubernetes(), (pool) => `t-${pool}`);
    let failures = 2;
    const flaky: Connector = {
      name: 'kubernetes',
      applies: true,
      status: (pools) => inner.status(pools),
      scale: async (pool, n) => {
        if (failures-- > 0) throw new Error('the API server is unavailable');
        await inner.scale(pool, n);
      },
    };
    const metrics = new MetricsRegistry();
    const config = compilePlannerConfig({
      mode: 'load',
      predictor: 'constant',
      intervalMs: 1000,
      pools: { decode: { min: 4, max: 8 } },
    });
    const runner = new PlannerRunner({
      planner: new Planner(config),
      source: new ScrapeSource(discovery),
      connector: flaky,
      metrics,
      retryBaseMs: 10,
    });
    expect(await runner.tick()).toBeUndefined(); // the baseline snapshot
    frontend.get('armature_frontend_input_sequence_tokens').observe({ model: 'm' }, 100);
    const plan = await runner.tick();
    expect(plan!.decisions[0]).toMatchObject({ pool: 'decode', from: 2, to: 4 });
    expect(plan!.decisions[0]!.reason).toMatch(/min 4/);
    await runner.settled();
    expect((await inner.status(['decode'])).decode!.desired).toBe(4);
    expect(runner.connectorErrors).toBe(2);
    const page = await metrics.registry.metrics();
    expect(page).toMatch(/armature_planner_connector_errors_total\{connector="kubernetes"\} 2/);
    expect(page).toMatch(/armature_planner_decisions_total\{pool="decode",direction="up",cause="constraint"\} 1/);
    expect(page).toMatch(/armature_planner_observed_load\{series="isl"\} 100/);
    await runner.close();
  });
});

describe('the planner process', () => {
  it.each([
    [
      { ARMATURE_PLANNER_MODE: 'load', ARMATURE_PLANNER_PREDICTOR: 'tea-leaves' },
      /planner\.predictor\.id: unknown predictor "tea-leaves"/,
    ],
    [
      { ARMATURE_PLANNER_MODE: 'load', ARMATURE_PLANNER_POOLS: '{"decode":{"min":5,"max":2}}' },
      /planner\.pools\.decode\.min: min 5 is above max 2/,
    ],
    [
      { ARMATURE_PLANNER_PROFILE: '/nonexistent/profile.json' },
      /planner\.profile: cannot read \/nonexistent\/profile\.json/,
    ],
    [{ ARMATURE_PLANNER_MODE: 'load', ARMATURE_PLANNER_CONNECTOR: 'local' }, /ARMATURE_CONTROL_ADDRESS is not set/],
  ])('refuses to start with %j, naming what is wrong', (env, message) => {
    const dir = join(tmpdir(), `armature-planner-bad-${process.pid}`);
    const run = spawnSync(process.execPath, [MAIN], {
      env: { ...process.env, ARMATURE_DISCOVERY_DIR: dir, ARMATURE_LOG_FORMAT: 'text', ...env },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(1);
    expect(run.stdout + run.stderr).toMatch(message);
  });
});
