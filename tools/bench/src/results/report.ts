// One self-contained HTML page comparing runs side by side: summary and percentile
// tables plus the standard plots as inline SVG. No scripts, no external assets, so the
// file can be mailed, attached to a PR or opened offline.
import { escapeXml } from './line-chart.js';
import { itlCdfChart, throughputOverTimeChart, ttftCdfChart, ttftOverTimeChart } from './svg.js';
import type { BenchResults, Distribution, Slo } from './types.js';

export interface HtmlReportOptions {
  /** Page title; default "Benchmark report". */
  title?: string;
}

const escapeHtml = escapeXml;

/** A number as a table shows it: an em dash for null or non-finite, else 0-3 decimals. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return value.toFixed(abs >= 100 ? 1 : abs >= 1 ? 2 : 3);
}

function formatPercent(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '—' : `${(value * 100).toFixed(1)}%`;
}

function formatSlo(slo: Slo): string {
  const parts: string[] = [];
  if (slo.ttftMs !== undefined) parts.push(`TTFT ≤ ${slo.ttftMs} ms`);
  if (slo.itlMs !== undefined) parts.push(`ITL ≤ ${slo.itlMs} ms`);
  if (slo.e2eMs !== undefined) parts.push(`E2E ≤ ${slo.e2eMs} ms`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

function formatErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort(([a], [b]) => a.localeCompare(b));
  return entries.length > 0 ? entries.map(([type, n]) => `${type}: ${n}`).join(', ') : 'none';
}

type Row = [label: string, cell: (run: BenchResults) => string];

const LATENCY_ROWS: [string, 'ttft_ms' | 'itl_ms' | 'e2e_ms'][] = [
  ['TTFT', 'ttft_ms'],
  ['ITL', 'itl_ms'],
  ['E2E', 'e2e_ms'],
];

const SUMMARY_ROWS: Row[] = [
  ['Mode', (r) => r.mode],
  ['Started', (r) => r.started_at],
  ['Completed', (r) => formatNumber(r.completed)],
  ['Failed', (r) => formatNumber(r.failed)],
  ['Errors', (r) => formatErrors(r.errors_by_type)],
  ['Duration (s)', (r) => formatNumber(r.duration_s)],
  ['Requests/s', (r) => formatNumber(r.requests_per_s)],
  ['Output tokens/s', (r) => formatNumber(r.output_tokens_per_s)],
  ['Total tokens/s', (r) => formatNumber(r.total_tokens_per_s)],
  ['SLO', (r) => formatSlo(r.slo)],
  ['Goodput (req/s)', (r) => formatNumber(r.goodput_rps)],
  ['Good fraction', (r) => formatPercent(r.good_fraction)],
  ['KV hit rate', (r) => formatPercent(r.kv_hit_rate)],
  ...LATENCY_ROWS.flatMap(([name, key]): Row[] =>
    (['mean', 'p50', 'p90', 'p99'] as const).map((stat): Row => [
      `${name} ${stat} (ms)`,
      (r) => formatNumber(r[key][stat]),
    ]),
  ),
  ['Schedule lag p99 (ms)', (r) => formatNumber(r.schedule_lag_ms.p99)],
];

const PERCENTILE_METRICS: [string, keyof BenchResults & `${string}_${'ms' | 'tokens'}`][] = [
  ['TTFT (ms)', 'ttft_ms'],
  ['ITL (ms)', 'itl_ms'],
  ['E2E (ms)', 'e2e_ms'],
  ['Inter-chunk gap (ms)', 'inter_chunk_ms'],
  ['Schedule lag (ms)', 'schedule_lag_ms'],
  ['Input tokens', 'input_tokens'],
  ['Output tokens', 'output_tokens'],
];
const PERCENTILE_STATS: (keyof Distribution)[] = ['min', 'mean', 'p50', 'p90', 'p95', 'p99', 'max', 'count'];

const STYLE = `
body{font-family:system-ui,-apple-system,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td.k,th.k{text-align:left}
tr.degraded td.bad{background:#fde2e1;color:#a40000;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
.charts figure{margin:0;background:#fff;border:1px solid #ddd;padding:8px}
svg{max-width:100%;height:auto}
pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:12px;overflow:auto}
.muted{color:#777;font-size:12px}
`;

function headerRow(runs: readonly BenchResults[], firstCells: string): string {
  return `<tr>${firstCells}${runs.map((r) => `<th>${escapeHtml(r.label)}</th>`).join('')}</tr>`;
}

function summaryTable(runs: readonly BenchResults[]): string {
  const rows = SUMMARY_ROWS.map(
    ([label, cell]) =>
      `<tr><td class="k">${escapeHtml(label)}</td>${runs.map((r) => `<td>${escapeHtml(cell(r))}</td>`).join('')}</tr>`,
  );
  rows.push(
    `<tr class="degraded"><td class="k">Degraded (lag p99 &gt; 500 ms)</td>${runs
      .map((r) => (r.degraded ? '<td class="bad">yes</td>' : '<td>no</td>'))
      .join('')}</tr>`,
  );
  return `<table>\n<thead>${headerRow(runs, '<th class="k">Metric</th>')}</thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function percentileTable(runs: readonly BenchResults[]): string {
  const rows: string[] = [];
  for (const [name, key] of PERCENTILE_METRICS) {
    PERCENTILE_STATS.forEach((stat, i) => {
      const head = i === 0 ? `<th class="k" rowspan="${PERCENTILE_STATS.length}">${escapeHtml(name)}</th>` : '';
      const cells = runs.map((r) => `<td>${formatNumber(r[key][stat])}</td>`).join('');
      rows.push(`<tr>${head}<td class="k">${stat}</td>${cells}</tr>`);
    });
  }
  return `<table>\n<thead>${headerRow(runs, '<th class="k">Metric</th><th class="k">Stat</th>')}</thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function configs(runs: readonly BenchResults[]): string {
  return runs
    .map(
      (r) =>
        `<details><summary>${escapeHtml(r.label)}</summary><pre>${escapeHtml(JSON.stringify(r.config, null, 2))}</pre></details>`,
    )
    .join('\n');
}

/** Render runs side by side as one self-contained HTML document (inline CSS and SVG, no JS). */
export function renderHtmlReport(runs: readonly BenchResults[], opts: HtmlReportOptions = {}): string {
  const title = opts.title ?? 'Benchmark report';
  const charts = [ttftCdfChart(runs), itlCdfChart(runs), ttftOverTimeChart(runs), throughputOverTimeChart(runs)];
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="muted">${runs.length} run(s): ${runs.map((r) => escapeHtml(r.label)).join(', ')}. TTFT = first non-empty chunk − request start; ITL = (E2E − TTFT) / (output tokens − 1); duration = last response − first request.</p>
<h2>Summary</h2>
${summaryTable(runs)}
<h2>Latency and throughput</h2>
<div class="charts">
${charts.map((svg) => `<figure>\n${svg}\n</figure>`).join('\n')}
</div>
<h2>Percentiles</h2>
${percentileTable(runs)}
<h2>Run configuration</h2>
${configs(runs)}
</body>
</html>
`;
}
