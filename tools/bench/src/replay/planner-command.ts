// The command-line side of `armature replay --planner <planner.yaml>`: reads the planner
// file (the same keys as a graph's services.planner; a relative profile path is resolved
// from the file's folder), checks that its profile fits the replayed engine, runs the
// planner, the static sizes and the oracle with a progress bar, prints one line per run
// and writes the results JSON and an HTML report (load and predicted load, replicas over
// time, and the table of runs).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { checkProfileFits, compilePlannerConfig, loadProfile, ProfileModel } from '@armature/planner-core';
import { ProgressBar } from '../progress.js';
import { escapeXml, lineChart, type ChartSeries } from '../results/line-chart.js';
import { runPlannerReplay, type PlannerReplayOptions, type PlannerReplayResults } from './planner-replay.js';
import type { SimRequest } from './simulator.js';

export interface PlannerCommandOptions extends Omit<
  PlannerReplayOptions,
  'config' | 'profile' | 'onRun' | 'onProgress'
> {
  plannerFile: string;
  out?: string;
  html?: string;
  title?: string;
  /** The replayed model name, checked against the profile's (default armature/mock-model). */
  model?: string;
}

/** Loads a planner file: its compiled config and, when it names one, its profile. */
export async function loadPlannerFile(
  path: string,
  deployment: { model: string; engine: string },
): Promise<Pick<PlannerReplayOptions, 'config' | 'profile'>> {
  let raw: unknown;
  try {
    raw = parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  const config = compilePlannerConfig(raw ?? {});
  if (config.profile === '') return { config };
  const profilePath = isAbsolute(config.profile) ? config.profile : resolve(dirname(path), config.profile);
  const profile = await loadProfile(profilePath);
  checkProfileFits(profile, deployment, config.allowProfileMismatch);
  return { config: { ...config, profile: profilePath }, profile: new ProfileModel(profile) };
}

export async function plannerReplayCommand(
  requests: readonly SimRequest[],
  options: PlannerCommandOptions,
): Promise<void> {
  const { config, profile } = await loadPlannerFile(options.plannerFile, {
    model: options.model ?? 'armature/mock-model',
    engine: 'mocker',
  });
  let bar: ProgressBar | undefined;
  const results = runPlannerReplay(requests, {
    ...options,
    config,
    profile,
    onRun: (label, index, total) => {
      bar?.finish();
      bar = new ProgressBar(`replay ${index + 1}/${total} ${label}`);
    },
    onProgress: (done, total, virtualMs) =>
      bar?.update({ done, total, note: `virtual ${(virtualMs / 1000).toFixed(0)} s` }),
  });
  bar?.finish();
  for (const run of results.runs) {
    process.stdout.write(
      `${run.label}: SLO attainment ${(100 * run.slo_attainment).toFixed(2)}% | worker-seconds ${run.worker_seconds.total.toFixed(0)}` +
        (run.kind === 'oracle'
          ? ''
          : ` | TTFT p99 ${run.ttft_p99_ms?.toFixed(0)} ms | ITL p99 ${run.itl_p99_ms?.toFixed(1)} ms | ${run.failed} failed`) +
        (run.plans ? ` | ${run.plans.filter((p) => p.decisions.some((d) => d.to !== d.from)).length} changes` : '') +
        '\n',
    );
  }
  const r = results.ratios;
  if (r.planner_vs_oracle !== undefined)
    process.stdout.write(`planner worker-seconds / oracle: ${r.planner_vs_oracle.toFixed(3)}\n`);
  if (r.planner_vs_static !== undefined)
    process.stdout.write(
      `planner worker-seconds / ${r.static_meeting_slo} (cheapest static at >= 99%): ${r.planner_vs_static.toFixed(3)}\n`,
    );
  if (options.out) {
    await mkdir(dirname(resolve(options.out)), { recursive: true });
    await writeFile(options.out, JSON.stringify(results, null, 2) + '\n');
    process.stderr.write(`results: ${options.out}\n`);
  }
  if (options.html) {
    await mkdir(dirname(resolve(options.html)), { recursive: true });
    await writeFile(options.html, renderPlannerReport(results, options.title ?? 'Armature planner replay'));
    process.stderr.write(`report: ${options.html}\n`);
  }
}

/** The load (observed and predicted requests per second) over time, from the planner's plans. */
export function loadChart(results: PlannerReplayResults): string {
  const planner = results.runs.find((r) => r.kind === 'planner');
  const plans = planner?.plans ?? [];
  const perSecond = results.intervalMs / 1000;
  const observed: [number, number][] = plans.map((p) => [p.atMs / 1000, (p.observed.requests ?? NaN) / perSecond]);
  // A prediction made at t is for the interval ending at t + interval.
  const predicted: [number, number][] = plans.map((p) => [
    (p.atMs + results.intervalMs) / 1000,
    (p.predicted.requests ?? NaN) / perSecond,
  ]);
  return lineChart({
    title: 'Load: observed and predicted',
    xLabel: 'time (s)',
    yLabel: 'requests / s',
    series: [
      { name: 'observed', points: observed },
      { name: `predicted (${results.planner.predictor.id})`, points: predicted },
    ],
  });
}

/** Replicas over time per pool: the planner's (asked for and ready), the oracle's and the static runs'. */
export function replicasChart(results: PlannerReplayResults, pool: 'prefill' | 'decode'): string {
  const series: ChartSeries[] = [];
  for (const run of results.runs) {
    const samples = run.replicas.filter((s) => s.pool === pool);
    if (samples.length === 0) continue;
    const step = (key: 'desired' | 'ready'): [number, number][] =>
      samples.flatMap((s, i) => {
        const next = samples[i + 1];
        return next
          ? [[s.atMs / 1000, s[key]] as [number, number], [next.atMs / 1000, s[key]] as [number, number]]
          : [[s.atMs / 1000, s[key]] as [number, number]];
      });
    if (run.kind === 'planner') {
      series.push({ name: 'planner: asked for', points: step('desired') });
      series.push({ name: 'planner: ready', points: step('ready') });
    } else series.push({ name: run.label, points: step('desired') });
  }
  return lineChart({ title: `${pool} replicas`, xLabel: 'time (s)', yLabel: 'replicas', series });
}

export function renderPlannerReport(results: PlannerReplayResults, title: string): string {
  const rows = results.runs
    .map(
      (r) =>
        `<tr><td>${escapeXml(r.label)}</td><td>${(100 * r.slo_attainment).toFixed(2)}%</td><td>${r.worker_seconds.total.toFixed(0)}</td>` +
        `<td>${r.worker_seconds.prefill.toFixed(0)}</td><td>${r.worker_seconds.decode.toFixed(0)}</td>` +
        `<td>${r.ttft_p99_ms?.toFixed(0) ?? ''}</td><td>${r.itl_p99_ms?.toFixed(1) ?? ''}</td><td>${r.failed}</td></tr>`,
    )
    .join('\n');
  const planner = results.runs.find((r) => r.kind === 'planner');
  const decisions = (planner?.plans ?? [])
    .flatMap((p) => p.decisions.filter((d) => d.to !== d.from).map((d) => ({ at: p.atMs, d })))
    .map(
      ({ at, d }) =>
        `<tr><td>${(at / 1000).toFixed(0)}</td><td>${d.pool}</td><td>${d.from} → ${d.to}</td><td>${escapeXml(d.reason)}</td></tr>`,
    )
    .join('\n');
  const pools = results.planner.pools.prefill ? (['prefill', 'decode'] as const) : (['decode'] as const);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,td:last-child{text-align:left}</style></head><body>
<h1>${escapeXml(title)}</h1>
<p>SLO: TTFT ≤ ${results.slo.ttftMs} ms and ITL ≤ ${results.slo.itlMs} ms · adjustment interval ${results.intervalMs / 1000} s · start-up delay ${results.startupDelayMs / 1000} s · mode ${results.planner.mode} · predictor ${results.planner.predictor.id}</p>
<table><tr><th>run</th><th>SLO attainment</th><th>worker-s</th><th>prefill</th><th>decode</th><th>TTFT p99 ms</th><th>ITL p99 ms</th><th>failed</th></tr>
${rows}</table>
<p>${results.ratios.planner_vs_oracle !== undefined ? `planner / oracle worker-seconds: ${results.ratios.planner_vs_oracle.toFixed(3)}` : ''}
${results.ratios.planner_vs_static !== undefined ? ` · planner / ${escapeXml(results.ratios.static_meeting_slo!)}: ${results.ratios.planner_vs_static.toFixed(3)}` : ''}</p>
${loadChart(results)}
${pools.map((p) => replicasChart(results, p)).join('\n')}
<h2>Decisions that changed a pool</h2>
<table><tr><th>t (s)</th><th>pool</th><th>change</th><th>reason</th></tr>
${decisions}</table>
</body></html>
`;
}
