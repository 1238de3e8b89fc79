// Plots what serving through Armature costs a llama.cpp worker across models: the
// Armature / direct throughput ratio of each engine-bench run against the model's direct
// cost per token, one line per stream count, with the 0.95 target.
//
//   node tools/bench/dist/engine-plot.js docs/benchmarks/engine docs/benchmarks/engine/33m-model ...
//     [--out docs/benchmarks/engine/ratio.svg]
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lineChart, type ChartSeries, type Point } from './results/index.js';

/** The target: the serving path costs under 5% of throughput. */
const TARGET = 0.95;

interface EngineResults {
  settings: { streams: number[] };
  summary: Record<string, number>;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string', default: 'docs/benchmarks/engine/ratio.svg' } },
});
if (positionals.length === 0) throw new Error('usage: engine-plot <results dir>... [--out file.svg]');

const runs: EngineResults[] = [];
for (const dir of positionals)
  runs.push(JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as EngineResults);

const streams = [...new Set(runs.flatMap((r) => r.settings.streams))].sort((a, b) => a - b);
const series: ChartSeries[] = streams.map((n) => ({
  name: `${n} stream${n === 1 ? '' : 's'}`,
  points: runs
    .filter((r) => r.summary[`ratio_${n}`] !== undefined)
    // x: the model's cost per token per stream, direct, single stream (ms).
    .map((r): Point => [1000 / r.summary.direct_tps_1!, r.summary[`ratio_${n}`]!])
    .sort((a, b) => a[0] - b[0]),
}));
const xs = series.flatMap((s) => s.points.map((p) => p[0]));
series.push({
  name: `target ${TARGET}`,
  points: [
    [Math.min(...xs), TARGET],
    [Math.max(...xs), TARGET],
  ],
});
const svg = lineChart({
  title: 'Throughput through Armature / node-llama-cpp direct',
  xLabel: "model's direct cost per token (ms, 1 stream)",
  yLabel: 'Armature / direct',
  series,
  logX: true,
  yInclude: [0.6, 1.1],
});
await writeFile(values.out!, svg);
process.stderr.write(`wrote ${values.out}\n`);
