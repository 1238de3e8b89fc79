// The standard benchmark plots (latency CDFs, behaviour over time), one line per run,
// as SVG strings for the HTML report and as files next to the results JSON.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lineChart, type ChartSeries, type Point } from './line-chart.js';
import type { BenchResults } from './types.js';

export { lineChart };
export type { ChartSeries, LineChartOptions, Point } from './line-chart.js';

/** Empirical CDF of ascending samples: (x_i, (i+1)/n), starting from (x_0, 0). */
export function cdfPoints(sorted: readonly number[]): Point[] {
  if (sorted.length === 0) return [];
  const points: Point[] = [[sorted[0]!, 0]];
  sorted.forEach((x, i) => points.push([x, (i + 1) / sorted.length]));
  return points;
}

function cdfChart(runs: readonly BenchResults[], metric: 'ttft_ms' | 'itl_ms', title: string, xLabel: string): string {
  const series: ChartSeries[] = runs.map((run) => ({
    name: run.label,
    points: cdfPoints(run.samples?.[metric] ?? []),
  }));
  return lineChart({ title, xLabel, yLabel: 'fraction of requests', series, yInclude: [0, 1] });
}

/** TTFT CDF, one line per run. */
export function ttftCdfChart(runs: readonly BenchResults[]): string {
  return cdfChart(runs, 'ttft_ms', 'Time to first token (CDF)', 'TTFT (ms)');
}

/** ITL CDF, one line per run. */
export function itlCdfChart(runs: readonly BenchResults[]): string {
  return cdfChart(runs, 'itl_ms', 'Inter-token latency (CDF)', 'ITL (ms)');
}

/** Output tokens/s per timeline bucket, one line per run. */
export function throughputOverTimeChart(runs: readonly BenchResults[]): string {
  const series = runs.map((run) => ({
    name: run.label,
    points: run.timeline.map((p): Point => [p.t_s, p.output_tokens_per_s]),
  }));
  return lineChart({ title: 'Output throughput over time', xLabel: 'time (s)', yLabel: 'output tokens/s', series });
}

/** Median TTFT per timeline bucket (gaps where no request was sent), one line per run. */
export function ttftOverTimeChart(runs: readonly BenchResults[]): string {
  const series = runs.map((run) => ({
    name: run.label,
    points: run.timeline.map((p): Point => [p.t_s, p.ttft_p50_ms ?? Number.NaN]),
  }));
  return lineChart({ title: 'TTFT p50 over time', xLabel: 'time (s)', yLabel: 'TTFT p50 (ms)', series });
}

/**
 * Write ttft_cdf.svg, itl_cdf.svg, throughput_over_time.svg and ttft_over_time.svg into
 * `dir` (created if missing); returns their paths in that order.
 */
export async function writePlots(runs: readonly BenchResults[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const plots: [string, string][] = [
    ['ttft_cdf.svg', ttftCdfChart(runs)],
    ['itl_cdf.svg', itlCdfChart(runs)],
    ['throughput_over_time.svg', throughputOverTimeChart(runs)],
    ['ttft_over_time.svg', ttftOverTimeChart(runs)],
  ];
  const paths: string[] = [];
  for (const [name, svg] of plots) {
    const path = join(dir, name);
    await writeFile(path, `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`);
    paths.push(path);
  }
  return paths;
}
