// The renderer's drawing without a Prometheus: a bundled dashboard with made-up series
// becomes an SVG that sharp rasterises to a PNG of the SVG's size, with every panel title,
// legend and tick label in it; and the unit formatting it writes on the axes.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { dashboardSvg, type PanelData } from './chart.js';
import { loadDashboards } from './dashboards.js';
import { formatValue, legends, yAxis } from './format.js';
import { PrometheusUnreachableError, checkPrometheus } from './prometheus.js';
import { parseDuration } from './render.js';

const END = 1_767_225_600; // 2026-01-01T00:00:00Z
const START = END - 600;

function fakeData(): PanelData[] {
  const overview = loadDashboards().find((d) => d.name === 'overview')!.dashboard;
  return overview.panels.map((panel, p) => ({
    panel,
    errors: [],
    series: (panel.targets ?? []).map((t, i) => ({
      legendFormat: t.legendFormat,
      reference: t.expr.startsWith('vector('),
      s: {
        labels: {
          model: 'armature/mock-model',
          status: '200',
          instance_id: `decode-${i}`,
          role: 'decode',
          stage: 'route',
        },
        points: Array.from(
          { length: 121 },
          (_, k) => [START + k * 5, (p + 1) * (1 + Math.sin(k / 9 + i))] as [number, number],
        ),
      },
    })),
  }));
}

describe('dashboardSvg', () => {
  it('draws every panel, and sharp rasterises it', async () => {
    const overview = loadDashboards().find((d) => d.name === 'overview')!.dashboard;
    const { svg, width, height } = dashboardSvg(overview, fakeData(), {
      start: START,
      end: END,
      stepSeconds: 5,
      source: 'test',
    });
    for (const panel of overview.panels) expect(svg).toContain(panel.title.replace(/&/g, '&#38;'));
    expect(svg).toContain('23:50');
    expect(svg).toContain('p99 armature/mock-model');
    expect(svg).toContain('stroke-dasharray'); // the SLO line
    const png = await sharp(Buffer.from(svg)).png().toBuffer();
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual([width, height]);
  });

  it('says "no data" and shows query errors', () => {
    const overview = loadDashboards().find((d) => d.name === 'overview')!.dashboard;
    const [first, second] = overview.panels;
    const { svg } = dashboardSvg(
      { ...overview, panels: [first, second] },
      [
        { panel: first, series: [], errors: [] },
        { panel: second, series: [], errors: ['A: parse error'] },
      ],
      { start: START, end: END, stepSeconds: 5, source: 'test' },
    );
    expect(svg).toContain('no data');
    expect(svg).toContain('query error: A: parse error');
  });
});

describe('format', () => {
  it('scales units to a readable prefix', () => {
    expect(formatValue(0.0123, 's')).toBe('12.3 ms');
    expect(formatValue(3 * 1024 ** 2, 'bytes')).toBe('3 MiB');
    expect(formatValue(0.052, 'percentunit')).toBe('5.2%');
    expect(formatValue(2.5e9, 'Bps')).toBe('2.5 GB/s');
    expect(formatValue(1500, 'reqps')).toBe('1.5k req/s');
  });

  it('puts axis ticks at round values of the scaled unit', () => {
    expect(yAxis('s', [0.02, 0.71]).labels).toEqual(['0', '200 ms', '400 ms', '600 ms', '800 ms']);
    const rss = yAxis('bytes', [80 * 1024 ** 2, 190 * 1024 ** 2]);
    expect(rss.labels).toEqual(['0', '50 MiB', '100 MiB', '150 MiB', '200 MiB']);
    expect(rss.ticks[1]).toBe(50 * 1024 ** 2);
    expect(yAxis('percentunit', [0, 0]).labels).toEqual(['0%', '25%', '50%', '75%', '100%']);
    expect(yAxis('short', [0.3]).labels).toEqual(['0', '0.1', '0.2', '0.3']);
  });

  it('fills legendFormat, or names series by the labels that differ', () => {
    const s = (labels: Record<string, string>) => ({ labels, points: [] });
    expect(legends([{ s: s({ worker: 'd-0' }), legendFormat: '{{worker}} ({{policy}})' }])).toEqual(['d-0']);
    expect(legends([{ s: s({ a: '1', b: 'x' }) }, { s: s({ a: '2', b: 'x' }) }])).toEqual(['a=1', 'a=2']);
  });

  it('reads durations', () => {
    expect([parseDuration('10m'), parseDuration('90s'), parseDuration('2h'), parseDuration('30')]).toEqual([
      600, 90, 7200, 30,
    ]);
    expect(() => parseDuration('ten')).toThrow(/bad duration/);
  });
});

describe('checkPrometheus', () => {
  it('says clearly when nothing answers', async () => {
    // A port that was free a moment ago: nothing listens on it now.
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise((done) => server.close(done));
    const err = await checkPrometheus(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrometheusUnreachableError);
    expect((err as Error).message).toBe(
      `cannot reach Prometheus at ${url} (ECONNREFUSED): start one (armature up <graph> --prometheus) or pass --prometheus <url>`,
    );
  });
});
