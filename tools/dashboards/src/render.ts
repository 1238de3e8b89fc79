// `npm run dashboards:render`: draws every bundled dashboard from a live Prometheus,
// without Grafana, as one PNG (and the SVG it was rasterised from) per dashboard. Each
// panel target is sent to /api/v1/query_range over the last --range, with the dashboard's
// variables set to "all"; sharp (libvips + librsvg) rasterises the SVG that chart.ts draws.
//
//   node tools/dashboards/dist/render.js [--prometheus http://127.0.0.1:9090]
//     [--out docs/observability] [--range 10m] [--width 1600] [--dashboards grafana/dashboards]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { dashboardSvg, type PanelData } from './chart.js';
import { DASHBOARDS_DIR, expandVariables, loadDashboards, type DashboardFile, type Target } from './dashboards.js';
import { checkPrometheus, PrometheusUnreachableError, queryRange, type Series } from './prometheus.js';

export interface RenderOptions {
  /** Prometheus base URL (default http://127.0.0.1:9090). */
  prometheus?: string;
  /** Output folder (default docs/observability). */
  out?: string;
  /** How far back from now to draw, seconds (default 600). */
  rangeSeconds?: number;
  /** Image width, px (default 1600). */
  width?: number;
  /** Folder of dashboard JSON models (default grafana/dashboards). */
  dashboards?: string;
  /** One line per dashboard (default stderr). */
  log?: (line: string) => void;
}

export interface RenderedDashboard {
  name: string;
  png: string;
  svg: string;
  queries: number;
  series: number;
  failed: string[];
}

/** A constant target such as `vector(2)`: an SLO or threshold line, not data. */
const REFERENCE = /^\s*vector\(\s*[0-9.eE+-]+\s*\)\s*$/;

/** Renders every dashboard; throws PrometheusUnreachableError before drawing anything if Prometheus is not there. */
export async function renderDashboards(options: RenderOptions = {}): Promise<RenderedDashboard[]> {
  const prometheus = options.prometheus ?? 'http://127.0.0.1:9090';
  const out = resolve(options.out ?? 'docs/observability');
  const rangeSeconds = options.rangeSeconds ?? 600;
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const version = await checkPrometheus(prometheus);
  mkdirSync(out, { recursive: true });
  const end = Math.floor(Date.now() / 1000);
  const start = end - rangeSeconds;
  // About 240 points across a panel, never under the 5 s scrape interval.
  const stepSeconds = Math.max(5, Math.ceil(rangeSeconds / 240));
  const results: RenderedDashboard[] = [];
  for (const file of loadDashboards(options.dashboards ?? DASHBOARDS_DIR)) {
    const began = performance.now();
    const data = await queryPanels(file, prometheus, { start, end, stepSeconds });
    const { svg } = dashboardSvg(file.dashboard, data, {
      width: options.width,
      start,
      end,
      stepSeconds,
      source: `Prometheus ${version} at ${prometheus}, step ${stepSeconds} s`,
    });
    const svgPath = join(out, `${file.name}.svg`);
    const pngPath = join(out, `${file.name}.png`);
    writeFileSync(svgPath, svg);
    await sharp(Buffer.from(svg)).png({ compressionLevel: 9 }).toFile(pngPath);
    const failed = data.flatMap((d) => d.errors.map((e) => `${d.panel.title} ${e}`));
    const queries = data.reduce((n, d) => n + (d.panel.targets?.length ?? 0), 0);
    const series = data.reduce((n, d) => n + d.series.length, 0);
    const empty = data.filter((d) => d.series.length === 0 && d.errors.length === 0).length;
    const seconds = ((performance.now() - began) / 1000).toFixed(1);
    log(
      `${file.name}: ${data.length} panels, ${queries} queries, ${series} series` +
        `${empty ? `, ${empty} panels without data` : ''}${failed.length ? `, ${failed.length} failed` : ''}` +
        ` -> ${pngPath} (${seconds} s)`,
    );
    for (const f of failed) log(`  ${file.name}: ${f}`);
    results.push({ name: file.name, png: pngPath, svg: svgPath, queries, series, failed });
  }
  return results;
}

async function queryPanels(
  file: DashboardFile,
  prometheus: string,
  range: { start: number; end: number; stepSeconds: number },
): Promise<PanelData[]> {
  return Promise.all(
    file.dashboard.panels.map(async (panel) => {
      const data: PanelData = { panel, series: [], errors: [] };
      const answers = await Promise.all(
        (panel.targets ?? []).map(async (t): Promise<{ t: Target; series?: Series[]; error?: string }> => {
          try {
            const expr = expandVariables(t.expr, file.dashboard);
            return { t, series: await queryRange(prometheus, { expr, ...range }) };
          } catch (err) {
            return { t, error: `${t.refId}: ${(err as Error).message}` };
          }
        }),
      );
      for (const a of answers) {
        if (a.error) data.errors.push(a.error);
        const reference = REFERENCE.test(a.t.expr);
        for (const s of a.series ?? []) data.series.push({ s, legendFormat: a.t.legendFormat, reference });
      }
      return data;
    }),
  );
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** "10m", "90s", "2h" or plain seconds, as seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration ${JSON.stringify(s)}: use e.g. 90s, 10m or 1h`);
  return Number(m[1]) * UNIT_SECONDS[m[2] ?? 's'];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prometheus: { type: 'string', default: 'http://127.0.0.1:9090' },
      out: { type: 'string', default: 'docs/observability' },
      range: { type: 'string', default: '10m' },
      width: { type: 'string', default: '1600' },
      dashboards: { type: 'string', default: DASHBOARDS_DIR },
    },
  });
  const results = await renderDashboards({
    prometheus: values.prometheus,
    out: values.out,
    rangeSeconds: parseDuration(values.range),
    width: Number(values.width),
    dashboards: values.dashboards,
  });
  if (results.some((r) => r.failed.length)) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    const message = err instanceof PrometheusUnreachableError ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`dashboards:render: ${message}\n`);
    process.exitCode = 1;
  });
}
