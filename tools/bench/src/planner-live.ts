// The SLO planner live: launches a planner graph (the mocker, as processes), sends it a
// ramped load, and records every second how much was offered and completed and how many
// workers each pool ran, then asks the planner for its decisions and their reasons:
//
//   npm run bench:planner-live -- [--graph infra/graphs/planner.yaml] \
//     [--ramp 0:2,60:30,150:30,210:2,300:2] [--input 3000] [--output 64] [--out docs/benchmarks/planner-live]
//
// Writes <out>/results.json and <out>/load-and-replicas.svg and prints a summary line. The
// load stops when the ramp ends; what is still in flight, and the pools' way back to their
// minimum, get at most --drain-s more. The cluster stops on Ctrl-C and on any error.
import { credentials } from '@grpc/grpc-js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { launch, loadGraph, waitHealthy, type LaunchedSupervisor } from '@armature/deploy';
import { PlannerClient, type PlannerState, type PlanRecord } from '@armature/proto';
import { FileDiscovery } from '@armature/runtime';
import { loadTokenizer } from '@armature/tokenizer';
import { loadWorkload } from './datasets/index.js';
import { runLoad } from './load/generator.js';
import { parseRamp, rampRate, type ScheduleSpec } from './load/schedule.js';
import { ProgressBar } from './progress.js';
import { computeResults, lineChart, type Point } from './results/index.js';

const POOL_KINDS = ['prefill', 'decode'] as const;
type Pool = (typeof POOL_KINDS)[number];

/** One second of the run; `t_s` from the load's start. */
export interface Sample {
  t_s: number;
  /** The ramp's rate at t_s. */
  target_rps: number;
  /** Requests sent in the last second. */
  offered: number;
  /** Requests that finished (ok or not) in the last second. */
  completed: number;
  inflight: number;
  /** The supervisor's replicas of each pool (starting ones included), and the ready ones. */
  replicas: Partial<Record<Pool, number>>;
  ready: Partial<Record<Pool, number>>;
}

/** Requests a ramp schedules over [0, endS]: the integral of its rate (linear between points). */
export function rampIntegral(ramp: readonly (readonly [number, number])[], endS = ramp[ramp.length - 1]![0]): number {
  let total = 0;
  const start = ramp[0]![0];
  if (endS > 0) total += ramp[0]![1] * Math.min(start, endS); // the first rate before the first point
  for (let i = 1; i < ramp.length; i++) {
    const [t0, r0] = ramp[i - 1]!;
    const [t1] = ramp[i]!;
    if (t0 >= endS) break;
    const to = Math.min(t1, endS);
    total += ((r0 + rampRate(ramp, to)) / 2) * (to - t0);
  }
  const last = ramp[ramp.length - 1]!;
  if (endS > last[0]) total += last[1] * (endS - last[0]);
  return total;
}

/**
 * The count a pool was asked for over time, as a step line: each plan's decision for it at
 * the plan's time (seconds after `t0Ms`, Unix ms), held from one decision to the next and
 * to `endS`. Plans before `t0Ms` only set the starting count.
 */
export function decisionSteps(plans: readonly PlanRecord[], pool: string, t0Ms: number, endS: number): Point[] {
  const points: Point[] = [];
  let current: number | undefined;
  for (const plan of plans) {
    const d = plan.decisions.find((x) => x.pool === pool);
    if (!d) continue;
    const t = Math.max(0, (plan.atMs - t0Ms) / 1000);
    if (current === undefined) {
      current = d.from;
      points.push([t, current]);
    }
    if (d.to === current) continue;
    if (points[points.length - 1]![0] !== t) points.push([t, current]);
    points.push([t, d.to]);
    current = d.to;
  }
  if (current !== undefined && points.length > 0 && endS > points[points.length - 1]![0]) points.push([endS, current]);
  return points;
}

/** The times (seconds after `t0Ms`) and sizes of each change in a pool's decisions. */
export function decisionChanges(
  plans: readonly PlanRecord[],
  pool: string,
  t0Ms: number,
): { t_s: number; from: number; to: number; reason: string; applied: boolean }[] {
  return plans.flatMap((plan) =>
    plan.decisions
      .filter((d) => d.pool === pool && d.to !== d.from)
      .map((d) => ({
        t_s: Math.round((plan.atMs - t0Ms) / 100) / 10,
        from: d.from,
        to: d.to,
        reason: d.reason,
        applied: d.applied,
      })),
  );
}

/** Stacks standalone SVG charts vertically into one document. */
export function stackSvgs(charts: readonly { svg: string; width: number; height: number }[]): string {
  const width = Math.max(...charts.map((c) => c.width));
  const height = charts.reduce((sum, c) => sum + c.height, 0);
  let y = 0;
  const parts = charts.map((c) => {
    const placed = c.svg.replace(/^<svg /, `<svg x="0" y="${y}" `);
    y += c.height;
    return placed;
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n` +
    parts.join('\n') +
    '\n</svg>\n'
  );
}

async function withPlanner<T>(discoveryDir: string, use: (client: PlannerClient) => Promise<T>): Promise<T> {
  const discovery = new FileDiscovery({ dir: discoveryDir });
  try {
    const record = (await discovery.list()).find((r) => r.role === 'planner');
    if (!record?.grpcAddress) throw new Error('no planner in discovery: does the graph have a planner?');
    const client = new PlannerClient(record.grpcAddress, credentials.createInsecure());
    try {
      return await use(client);
    } finally {
      client.close();
    }
  } finally {
    await discovery.close();
  }
}

const getState = (c: PlannerClient): Promise<PlannerState> =>
  new Promise((done, fail) => c.getState({}, (err, res) => (err ? fail(err) : done(res))));
const listPlans = (c: PlannerClient): Promise<PlanRecord[]> =>
  new Promise((done, fail) => c.listPlans({ limit: 500 }, (err, res) => (err ? fail(err) : done(res.plans))));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function num(value: string | undefined, name: string): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      graph: { type: 'string', default: 'infra/graphs/planner.yaml' },
      ramp: { type: 'string', default: '0:2,60:30,150:30,210:2,300:2' },
      input: { type: 'string', default: '3000' },
      output: { type: 'string', default: '64' },
      seed: { type: 'string', default: '1' },
      'drain-s': { type: 'string', default: '60' },
      tokenizer: { type: 'string', default: 'gpt-tokenizer:o200k_base' },
      out: { type: 'string', default: 'docs/benchmarks/planner-live' },
    },
  });
  const ramp = parseRamp(v.ramp!);
  const rampEndS = ramp[ramp.length - 1]![0];
  const drainS = Math.min(60, Math.max(0, num(v['drain-s'], 'drain-s')));
  const input = num(v.input, 'input');
  const output = num(v.output, 'output');
  const graphFile = resolve(v.graph!);
  const outDir = resolve(v.out!);

  // Enough requests for the ramp with room for the Poisson draws; the duration bounds the rest.
  const count = Math.ceil(rampIntegral(ramp) * 1.15) + 20;
  const tokenizer = await loadTokenizer(v.tokenizer!);
  const spec = `synthetic:count=${count},input=${input},output=${output},seed=${v.seed}`;
  const loadedAt = performance.now();
  const workload = await loadWorkload(spec, { tokenizer });
  process.stderr.write(
    `dataset ${workload.name}: ${workload.requests.length} requests in ${((performance.now() - loadedAt) / 1000).toFixed(1)} s\n`,
  );

  const graph = await loadGraph(graphFile);
  process.stderr.write(`launching ${v.graph} ...\n`);
  const supervisor: LaunchedSupervisor = await launch(graph, {
    tempDiscoveryDir: 'armature-planner-live-',
    freePort: true,
    readiness: 'staged',
    restart: false,
    out: null,
    removeDiscoveryDirOnStop: true,
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= supervisor.stop());
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping the cluster ...\n`);
    void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await run(supervisor, { ramp, rampEndS, drainS, input, output, outDir, workload, graph: v.graph!, seed: v.seed! });
  } catch (err) {
    // What the services said last, for the why.
    for (const r of supervisor.list()) {
      if (r.state === 'ready') continue;
      process.stderr.write(`${r.name}: ${r.state}${r.reason ? ` (${r.reason})` : ''}\n`);
    }
    throw err;
  } finally {
    await stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

interface RunOptions {
  ramp: [number, number][];
  rampEndS: number;
  drainS: number;
  input: number;
  output: number;
  outDir: string;
  workload: Awaited<ReturnType<typeof loadWorkload>>;
  graph: string;
  seed: string;
}

async function run(supervisor: LaunchedSupervisor, o: RunOptions): Promise<void> {
  if (!(await waitHealthy(supervisor.url, { timeoutMs: 30_000, pollMs: 100, workers: 1 })))
    throw new Error('the cluster did not become healthy in 30 s');
  const state = await withPlanner(supervisor.discoveryDir, getState);
  const pools = state.pools.map((p) => p.pool).filter((p): p is Pool => (POOL_KINDS as readonly string[]).includes(p));
  if (pools.length === 0) throw new Error('the planner manages no prefill or decode pool');
  const models = (await (await fetch(`${supervisor.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
  const model = models.data[0]?.id;
  if (!model) throw new Error('the frontend lists no model');
  process.stderr.write(
    `planner: mode ${state.mode}, interval ${state.intervalMs} ms, SLO TTFT ${state.sloTtftMs} ms, ITL ${state.sloItlMs} ms; ` +
      `pools ${state.pools.map((p) => `${p.pool} ${p.min}..${p.max}`).join(', ')}\n`,
  );

  const schedule: ScheduleSpec = { mode: 'rate', rate: 0, arrival: 'poisson', seed: Number(o.seed), ramp: o.ramp };
  const samples: Sample[] = [];
  const progress = { sent: 0, done: 0, inflight: 0 };
  let last = { sent: 0, done: 0 };
  const loadStartMs = Date.now();
  const t0 = performance.now();
  const sample = (): void => {
    const t = Math.round((performance.now() - t0) / 100) / 10;
    const replicas: Partial<Record<Pool, number>> = {};
    const ready: Partial<Record<Pool, number>> = {};
    for (const p of pools) {
      replicas[p] = supervisor.replicas(p);
      ready[p] = supervisor.list(p).filter((r) => r.state === 'ready').length;
    }
    samples.push({
      t_s: t,
      target_rps: t <= o.rampEndS ? rampRate(o.ramp, t) : 0,
      offered: progress.sent - last.sent,
      completed: progress.done - last.done,
      inflight: progress.inflight,
      replicas,
      ready,
    });
    last = { sent: progress.sent, done: progress.done };
  };
  const sampler = setInterval(sample, 1_000);
  const bar = new ProgressBar('planner-live');
  const atMin = (): boolean => state.pools.every((p) => supervisor.replicas(p.pool as Pool) <= p.min);
  let records;
  try {
    records = await runLoad(o.workload.requests, {
      baseUrl: supervisor.url,
      model,
      schedule,
      maxDurationMs: o.rampEndS * 1000,
      graceMs: o.drainS * 1000,
      requestTimeoutMs: 120_000,
      // Token ids: the frontend need not tokenize 3000-token prompts on a small box.
      sendTokenIds: true,
      onProgress: (p) => {
        Object.assign(progress, p);
        const s = samples[samples.length - 1];
        const note = s ? pools.map((pool) => `${pool} ${s.replicas[pool]}`).join(' ') : '';
        bar.update({ done: p.done, total: p.total, failed: p.failed, inflight: p.inflight, note });
      },
    });
    // The drain: the pools' way back to their minimum, within what is left of the drain wait.
    const drainUntil = t0 + (o.rampEndS + o.drainS) * 1000;
    while (!atMin() && performance.now() < drainUntil) await sleep(500);
    await sleep(1_000); // one more sample of the final counts
  } finally {
    clearInterval(sampler);
    bar.finish();
  }
  sample();
  const endS = samples[samples.length - 1]!.t_s;
  const plans = await withPlanner(supervisor.discoveryDir, listPlans);

  const slo = { ttftMs: state.sloTtftMs, itlMs: state.sloItlMs };
  const results = computeResults(records, {
    label: 'planner live',
    mode: 'live-rate',
    slo,
    startedAt: new Date(loadStartMs),
    config: { graph: o.graph, ramp: o.ramp, dataset: o.workload.name },
  });
  const changes = Object.fromEntries(pools.map((p) => [p, decisionChanges(plans, p, loadStartMs)]));
  const peak = Object.fromEntries(pools.map((p) => [p, Math.max(...samples.map((s) => s.replicas[p] ?? 0))]));
  const final = samples[samples.length - 1]!;
  const summary = {
    graph: o.graph,
    ramp: o.ramp,
    input_tokens: o.input,
    output_tokens: o.output,
    started_at: new Date(loadStartMs).toISOString(),
    planner: {
      mode: state.mode,
      predictor: state.predictor,
      interval_ms: state.intervalMs,
      slo_ttft_ms: state.sloTtftMs,
      slo_itl_ms: state.sloItlMs,
      pools: state.pools.map((p) => ({ pool: p.pool, min: p.min, max: p.max })),
    },
    requests: {
      sent: records.length,
      ok: results.completed,
      failed: results.failed,
      errors_by_type: results.errors_by_type,
      ttft_ms: { p50: results.ttft_ms.p50, p99: results.ttft_ms.p99 },
      itl_ms: { p50: results.itl_ms.p50, p99: results.itl_ms.p99 },
      // Of all requests sent: completed within both of the planner's SLOs.
      slo_attainment: records.length > 0 ? (results.good_fraction * results.completed) / records.length : 0,
      schedule_lag_p99_ms: results.schedule_lag_ms.p99,
    },
    peak_replicas: peak,
    final_replicas: final.replicas,
    changes,
    samples,
    plans: plans.map((p) => ({
      t_s: Math.round((p.atMs - loadStartMs) / 100) / 10,
      observed_requests: p.observedRequests,
      predicted_requests: p.predictedRequests,
      observed_ttft_ms: p.observedTtftMs,
      observed_itl_ms: p.observedItlMs,
      held: p.held,
      decisions: p.decisions.map((d) => ({
        pool: d.pool,
        from: d.from,
        to: d.to,
        throughput: d.throughput,
        load: d.load,
        reason: d.reason,
        applied: d.applied,
      })),
    })),
  };

  await mkdir(o.outDir, { recursive: true });
  await writeFile(join(o.outDir, 'results.json'), JSON.stringify(summary, null, 2) + '\n');
  const width = 900;
  const height = 360;
  const xs = (f: (s: Sample) => number): Point[] => samples.map((s) => [s.t_s, f(s)]);
  const load = lineChart({
    title: `Load: ${o.input}-token prompts, ${o.output}-token outputs, Poisson ramp ${o.ramp.map(([t, r]) => `${t}:${r}`).join(',')}`,
    xLabel: 'time since the load started (s)',
    yLabel: 'requests/s',
    width,
    height,
    series: [
      { name: 'offered (sent, per 1 s)', points: xs((s) => s.offered) },
      { name: 'completed (per 1 s)', points: xs((s) => s.completed) },
      { name: 'ramp target', points: xs((s) => s.target_rps) },
    ],
  });
  const replicaSeries = pools.flatMap((p) => [
    { name: `${p} asked for`, points: decisionSteps(plans, p, loadStartMs, endS) },
    { name: `${p} replicas`, points: xs((s) => s.replicas[p] ?? 0) },
    { name: `${p} ready`, points: xs((s) => s.ready[p] ?? 0) },
  ]);
  const maxPool = Math.max(...state.pools.map((p) => p.max));
  const replicas = lineChart({
    title: `Replicas: the planner (${state.mode}, every ${state.intervalMs / 1000} s) against the running pool`,
    xLabel: 'time since the load started (s)',
    yLabel: 'workers',
    width,
    height,
    yInclude: [0, Math.min(maxPool, Math.max(...Object.values(peak)) + 1)],
    series: replicaSeries,
  });
  await writeFile(
    join(o.outDir, 'load-and-replicas.svg'),
    stackSvgs([
      { svg: load, width, height },
      { svg: replicas, width, height },
    ]),
  );

  const f = (x: number): string => x.toFixed(0);
  const timeline = pools
    .map((p) => `${p} ${changes[p]!.map((c) => `${c.from}→${c.to}@${c.t_s.toFixed(0)}s`).join(' ') || 'unchanged'}`)
    .join('; ');
  process.stdout.write(
    `planner-live: ${results.completed} ok, ${results.failed} failed of ${records.length} | ` +
      `TTFT p50 ${f(results.ttft_ms.p50)} p99 ${f(results.ttft_ms.p99)} ms | ITL p50 ${results.itl_ms.p50.toFixed(1)} p99 ${results.itl_ms.p99.toFixed(1)} ms | ` +
      `SLO (${state.sloTtftMs}/${state.sloItlMs} ms) ${(100 * summary.requests.slo_attainment).toFixed(1)}% | ` +
      `peak ${pools.map((p) => `${p} ${peak[p]}`).join(', ')}, final ${pools.map((p) => `${p} ${final.replicas[p]}`).join(', ')} | ${timeline}\n`,
  );
  process.stderr.write(`wrote ${join(o.outDir, 'results.json')} and ${join(o.outDir, 'load-and-replicas.svg')}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
