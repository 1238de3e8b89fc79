import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { logTicks, lineChart, niceTicks, PALETTE } from './line-chart.js';
import { computeResults } from './metrics.js';
import { renderHtmlReport } from './report.js';
import { writePlots } from './svg.js';
import type { BenchResults, RequestRecord } from './types.js';

const HTML_VOID = new Set(['meta', 'link', 'br', 'img', 'hr', 'input']);

/** Loose well-formedness: every tag closes in order; returns the first problem or null. */
function tagProblem(markup: string): string | null {
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  const withoutDecl = markup.replace(/<\?xml[^>]*\?>/, '').replace(/<!DOCTYPE[^>]*>/i, '');
  let consumed = 0;
  for (const m of withoutDecl.matchAll(tag)) {
    if (withoutDecl.slice(consumed, m.index).includes('<')) return `unparsed '<' near ${m.index}`;
    consumed = m.index + m[0].length;
    const [, closing, name, , selfClosing] = m;
    if (selfClosing || HTML_VOID.has(name!)) continue;
    if (!closing) stack.push(name!);
    else if (stack.pop() !== name) return `unexpected </${name}> at ${m.index}`;
  }
  if (withoutDecl.slice(consumed).includes('<')) return 'unparsed trailing <';
  return stack.length === 0 ? null : `unclosed <${stack.join('> <')}>`;
}

function svgsIn(markup: string): string[] {
  return [...markup.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
}

function expectCleanSvg(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(tagProblem(svg)).toBeNull();
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
}

function run(label: string, offset: number, slow = 1): BenchResults {
  const records: RequestRecord[] = Array.from({ length: 40 }, (_, i) => {
    const startMs = i * 100;
    const firstTokenMs = startMs + offset + (i % 7) * 5 * slow;
    return {
      id: `${label}-${i}`,
      scheduledMs: startMs,
      startMs,
      firstTokenMs,
      endMs: firstTokenMs + 200 * slow,
      chunkMs: [firstTokenMs, firstTokenMs + 100 * slow, firstTokenMs + 200 * slow],
      inputTokens: 100,
      outputTokens: i % 5 === 0 ? 1 : 16,
    };
  });
  records.push({
    id: `${label}-x`,
    scheduledMs: 50,
    startMs: 60,
    chunkMs: [],
    inputTokens: 10,
    outputTokens: 0,
    error: { type: 'http_503', message: 'busy' },
  });
  return computeResults(records, { label, mode: 'test', slo: { ttftMs: 80 }, config: { concurrency: 4 } });
}

const EMPTY = computeResults([], { label: 'empty run', mode: 'test' });
const RUNS = [run('baseline', 50), run('kv-aware <router> & co', 30, 2), EMPTY];

describe('tagProblem (the checker itself)', () => {
  it('catches misnesting, unclosed and unparsable tags', () => {
    expect(tagProblem('<svg><g></svg></g>')).not.toBeNull();
    expect(tagProblem('<svg><g>')).not.toBeNull();
    expect(tagProblem('<svg><path d="M0 0"/><text x=1>a</text></svg>')).not.toBeNull();
    expect(tagProblem('<svg><path d="M0 0"/><text x="1">a &#60; b</text></svg>')).toBeNull();
  });
});

describe('niceTicks / logTicks', () => {
  it('picks round 1-2-5 steps covering the data', () => {
    expect(niceTicks(0, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0.1, 0.37)).toEqual([0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]);
    expect(niceTicks(5, 5)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(niceTicks(0, 0)).toEqual([-1, -0.5, 0, 0.5, 1]);
  });

  it('uses 1-2-5 decades on a short log axis and powers of ten on a long one', () => {
    expect(logTicks(3, 40)).toEqual([2, 5, 10, 20, 50]);
    expect(logTicks(3, 4000)).toEqual([1, 10, 100, 1000, 10000]);
  });
});

describe('lineChart', () => {
  it('draws one distinctly coloured line per series and a legend entry each', () => {
    const svg = lineChart({
      title: 'T',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 'one',
          points: [
            [0, 1],
            [1, 2],
            [2, 3],
          ],
        },
        {
          name: 'two',
          points: [
            [0, 3],
            [1, 2],
            [2, 1],
          ],
        },
        {
          name: 'three',
          points: [
            [0, 2],
            [1, 2],
          ],
        },
      ],
    });
    expectCleanSvg(svg);
    const strokes = [...svg.matchAll(/<path d="[^"]*" fill="none" stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    expect(strokes).toEqual([PALETTE[0], PALETTE[1], PALETTE[2]]);
    for (const name of ['one', 'two', 'three']) expect(svg).toContain(`>${name}</text>`);
  });

  it('breaks lines at non-finite points, dots lone points, and survives no data and log axes', () => {
    const gappy = lineChart({
      title: 'gaps',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 's',
          points: [
            [0, 1],
            [1, Number.NaN],
            [2, 3],
            [3, Number.POSITIVE_INFINITY],
            [4, 2],
            [5, 1],
          ],
        },
      ],
    });
    expectCleanSvg(gappy);
    expect(gappy.match(/M/g)).toHaveLength(1); // [0,1] and [2,3] are lone points
    expect(gappy.match(/<circle/g)).toHaveLength(2);

    expectCleanSvg(lineChart({ title: 'none', xLabel: 'x', yLabel: 'y', series: [] }));
    expectCleanSvg(lineChart({ title: 'empty', xLabel: 'x', yLabel: 'y', series: [{ name: 'e', points: [] }] }));
    const log = lineChart({
      title: 'log',
      xLabel: 'x',
      yLabel: 'y',
      logX: true,
      series: [
        {
          name: 'l',
          points: [
            [0, 0],
            [1, 0.5],
            [100, 1],
          ],
        },
      ],
    });
    expectCleanSvg(log);
    expect(log).toContain('>100</text>');
  });

  it('escapes text', () => {
    const svg = lineChart({
      title: 'a<b & "c"',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: '<s>',
          points: [
            [0, 0],
            [1, 1],
          ],
        },
      ],
    });
    expectCleanSvg(svg);
    expect(svg).not.toContain('<s>');
  });
});

describe('renderHtmlReport', () => {
  const html = renderHtmlReport(RUNS, { title: 'Router comparison' });

  it('is one well-formed, self-contained page naming every run', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(tagProblem(html)).toBeNull();
    expect(html).toContain('<title>Router comparison</title>');
    expect(html).toContain('baseline');
    expect(html).toContain('empty run');
    expect(html).toContain('kv-aware &#60;router&#62; &#38; co');
    expect(html).not.toContain('<router>');
    expect(html).not.toMatch(/<script|<link|<img|src=|url\(/i);
  });

  it('inlines the four charts as clean SVG even with an empty run', () => {
    const svgs = svgsIn(html);
    expect(svgs).toHaveLength(4);
    expect(html.match(/<svg/g)).toHaveLength(html.match(/<\/svg>/g)!.length);
    for (const svg of svgs) expectCleanSvg(svg);
    for (const title of [
      'Time to first token (CDF)',
      'Inter-token latency (CDF)',
      'TTFT p50 over time',
      'Output throughput over time',
    ]) {
      expect(html).toContain(title);
    }
  });

  it('has summary and percentile tables with one column per run', () => {
    for (const row of [
      'Completed',
      'Failed',
      'Duration (s)',
      'Requests/s',
      'Output tokens/s',
      'Goodput (req/s)',
      'Good fraction',
      'KV hit rate',
      'TTFT p99 (ms)',
      'ITL p90 (ms)',
      'E2E mean (ms)',
      'Degraded',
    ]) {
      expect(html).toContain(row);
    }
    expect(html).toContain('Inter-chunk gap (ms)');
    expect(html).toContain('http_503: 1');
    expect(html).toContain('TTFT ≤ 80 ms');
    const summaryHeader = html.match(/<thead><tr><th class="k">Metric<\/th>(.*?)<\/tr><\/thead>/)![1]!;
    expect(summaryHeader.match(/<th>/g)).toHaveLength(3);
    expect(html).not.toMatch(/NaN|Infinity|undefined/);
  });

  it('renders with no runs at all', () => {
    const none = renderHtmlReport([]);
    expect(tagProblem(none)).toBeNull();
    for (const svg of svgsIn(none)) expectCleanSvg(svg);
  });
});

describe('writePlots', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('writes the four SVG files and returns their paths', async () => {
    const base = await mkdtemp(join(tmpdir(), 'bench-plots-'));
    dirs.push(base);
    const dir = join(base, 'nested', 'plots');
    const paths = await writePlots(RUNS, dir);
    expect(paths).toEqual(
      ['ttft_cdf.svg', 'itl_cdf.svg', 'throughput_over_time.svg', 'ttft_over_time.svg'].map((f) => join(dir, f)),
    );
    for (const path of paths) {
      expect(existsSync(path)).toBe(true);
      const text = await readFile(path, 'utf8');
      expect(text.startsWith('<?xml')).toBe(true);
      const [svg] = svgsIn(text);
      expectCleanSvg(svg!);
      expect(svg).toContain('baseline');
    }
  });
});
