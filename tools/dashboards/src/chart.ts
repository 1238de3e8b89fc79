// Draws one dashboard as one SVG, the way Grafana lays it out: each panel at its gridPos on
// a 24-column grid, with its title; a timeseries panel as axes with tick labels, a line per
// series and a legend; a stat panel as each series' last value. Constant reference series
// (a target that is just `vector(2)`, an SLO) are drawn dashed. Only strings are built
// here; render.ts rasterises them.
import type { Dashboard, Panel } from './dashboards.js';
import { formatTime, formatValue, legends, timeTicks, yAxis } from './format.js';
import type { Series } from './prometheus.js';

/** What one panel's queries returned. */
export interface PanelData {
  panel: Panel;
  series: Array<{ s: Series; legendFormat?: string; reference: boolean }>;
  /** Queries that failed, as "A: message". */
  errors: string[];
}

export interface DrawOptions {
  /** Image width in pixels (default 1600). */
  width?: number;
  /** The time range drawn, unix seconds, and the query step. */
  start: number;
  end: number;
  stepSeconds: number;
  /** A line under the title: where the data came from. */
  source: string;
}

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];
const REFERENCE = '#c0392b';
const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';
const ROW_PX = 34;
const HEADER_PX = 58;
const PAD = 12;
const GAP = 8;
const LEGEND_ROW = 14;
const MAX_LEGEND_ROWS = 3;

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The dashboard as an SVG document, with its pixel size. */
export function dashboardSvg(
  dashboard: Dashboard,
  data: PanelData[],
  options: DrawOptions,
): { svg: string; width: number; height: number } {
  const width = options.width ?? 1600;
  const col = (width - 2 * PAD) / 24;
  const rows = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h), 1);
  const height = HEADER_PX + rows * ROW_PX + PAD;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="#f4f5f7"/>`,
    text(PAD, 26, dashboard.title, { size: 20, weight: 'bold' }),
    text(PAD, 46, `${rangeLabel(options.start, options.end)} · ${options.source}`, { size: 12, fill: '#555' }),
  ];
  for (const d of data) {
    const g = d.panel.gridPos;
    const box = { x: PAD + g.x * col, y: HEADER_PX + g.y * ROW_PX, w: g.w * col - GAP, h: g.h * ROW_PX - GAP };
    out.push(panelSvg(d, box, options));
  }
  out.push('</svg>');
  return { svg: out.join('\n'), width, height };
}

function panelSvg(d: PanelData, box: Box, options: DrawOptions): string {
  const out = [
    `<g>`,
    d.panel.description ? `<title>${escape(d.panel.description)}</title>` : '',
    `<rect x="${r(box.x)}" y="${r(box.y)}" width="${r(box.w)}" height="${r(box.h)}" rx="3" fill="#fff" stroke="#d8d9dc"/>`,
    text(box.x + 8, box.y + 18, fit(d.panel.title, box.w - 16, 13), { size: 13, weight: 'bold' }),
  ];
  const inner = { x: box.x + 8, y: box.y + 26, w: box.w - 16, h: box.h - 30 };
  if (d.errors.length) {
    out.push(
      text(inner.x, inner.y + 14, fit(`query error: ${d.errors[0]}`, inner.w, 11), { size: 11, fill: REFERENCE }),
    );
    inner.y += 18;
    inner.h -= 18;
  }
  const unit = d.panel.fieldConfig?.defaults?.unit ?? 'short';
  out.push(d.panel.type === 'stat' ? statSvg(d, inner, unit) : timeseriesSvg(d, inner, unit, options));
  out.push('</g>');
  return out.join('\n');
}

function timeseriesSvg(d: PanelData, box: Box, unit: string, options: DrawOptions): string {
  const names = legends(d.series);
  const colours = seriesColours(d);
  const legend = legendSvg(names, colours, d, box);
  const plot = { x: box.x + 58, y: box.y + 6, w: box.w - 62, h: box.h - 6 - 18 - legend.height };
  const out: string[] = [];
  const values = d.series.flatMap(({ s }) => s.points.map(([, v]) => v)).filter(Number.isFinite);
  const { lo, hi, ticks, labels } = yAxis(unit, values);
  const px = (t: number) => plot.x + ((t - options.start) / (options.end - options.start)) * plot.w;
  const py = (v: number) => plot.y + plot.h - ((v - lo) / (hi - lo)) * plot.h;
  ticks.forEach((t, i) => {
    const y = py(t);
    out.push(line(plot.x, y, plot.x + plot.w, y, '#ececec'));
    out.push(text(plot.x - 5, y + 4, labels[i], { size: 10, fill: '#555', anchor: 'end' }));
  });
  const times = timeTicks(options.start, options.end);
  const withSeconds = times.length > 1 && times[1] - times[0] < 60;
  for (const t of times) {
    const x = px(t);
    out.push(line(x, plot.y + plot.h, x, plot.y + plot.h + 4, '#999'));
    out.push(text(x, plot.y + plot.h + 15, formatTime(t, withSeconds), { size: 10, fill: '#555', anchor: 'middle' }));
  }
  out.push(line(plot.x, plot.y + plot.h, plot.x + plot.w, plot.y + plot.h, '#999'));
  out.push(line(plot.x, plot.y, plot.x, plot.y + plot.h, '#999'));
  d.series.forEach(({ s, reference }, i) => {
    for (const run of runs(s.points, options.stepSeconds)) {
      const pts = run.map(([t, v]) => `${r(px(t))},${r(py(v))}`).join(' ');
      const dash = reference ? ' stroke-dasharray="6 4"' : '';
      out.push(`<polyline points="${pts}" fill="none" stroke="${colours[i]}" stroke-width="1.6"${dash}/>`);
    }
  });
  if (!values.length && !d.errors.length) {
    out.push(text(plot.x + plot.w / 2, plot.y + plot.h / 2, 'no data', { size: 13, fill: '#999', anchor: 'middle' }));
  }
  out.push(legend.svg);
  return out.join('\n');
}

function statSvg(d: PanelData, box: Box, unit: string): string {
  const names = legends(d.series);
  const colours = seriesColours(d);
  if (!d.series.length) {
    return d.errors.length
      ? ''
      : text(box.x + box.w / 2, box.y + box.h / 2, 'no data', { size: 13, fill: '#999', anchor: 'middle' });
  }
  const perRow = Math.min(d.series.length, Math.max(1, Math.floor(box.w / 150)));
  const rowCount = Math.ceil(d.series.length / perRow);
  const cellW = box.w / perRow;
  const cellH = box.h / rowCount;
  const size = Math.max(12, Math.min(30, cellH * 0.5, cellW / 6));
  return d.series
    .map(({ s }, i) => {
      const x = box.x + (i % perRow) * cellW + cellW / 2;
      const y = box.y + Math.floor(i / perRow) * cellH;
      const last = [...s.points].reverse().find(([, v]) => Number.isFinite(v));
      const value = last ? formatValue(last[1], unit) : '–';
      return [
        text(x, y + cellH * 0.5 + size * 0.2, value, { size, weight: 'bold', fill: colours[i], anchor: 'middle' }),
        text(x, y + cellH * 0.5 + size * 0.2 + 14, fit(names[i], cellW - 8, 11), {
          size: 11,
          fill: '#555',
          anchor: 'middle',
        }),
      ].join('\n');
    })
    .join('\n');
}

/** The legend under a plot: columns of coloured swatches and names, at most MAX_LEGEND_ROWS rows. */
function legendSvg(names: string[], colours: string[], d: PanelData, box: Box): { svg: string; height: number } {
  if (!names.length) return { svg: '', height: 0 };
  const widest = Math.max(...names.map((n) => textWidth(n, 11)));
  const colW = Math.min(box.w, Math.max(110, widest + 22));
  const cols = Math.max(1, Math.floor(box.w / colW));
  const rows = Math.min(MAX_LEGEND_ROWS, Math.ceil(names.length / cols));
  const shown = Math.min(names.length, rows * cols);
  const hidden = names.length - shown;
  const top = box.y + box.h - rows * LEGEND_ROW + 10;
  const out: string[] = [];
  for (let i = 0; i < shown; i++) {
    const x = box.x + (i % cols) * colW;
    const y = top + Math.floor(i / cols) * LEGEND_ROW;
    const last = hidden > 0 && i === shown - 1;
    const label = last ? `+${hidden + 1} more` : names[i];
    const dash = d.series[i].reference && !last ? ' stroke-dasharray="4 2"' : '';
    if (!last)
      out.push(
        `<line x1="${r(x)}" y1="${r(y - 4)}" x2="${r(x + 12)}" y2="${r(y - 4)}" stroke="${colours[i]}" stroke-width="3"${dash}/>`,
      );
    out.push(text(x + 16, y, fit(label, colW - 20, 11), { size: 11, fill: '#333' }));
  }
  return { svg: out.join('\n'), height: rows * LEGEND_ROW + 2 };
}

/** Data series take palette colours in order; reference lines are all one red. */
function seriesColours(d: PanelData): string[] {
  let next = 0;
  return d.series.map(({ reference }) => (reference ? REFERENCE : PALETTE[next++ % PALETTE.length]));
}

/** Consecutive finite points; a NaN or a missing step breaks the line. */
function runs(points: Array<[number, number]>, stepSeconds: number): Array<Array<[number, number]>> {
  const out: Array<Array<[number, number]>> = [];
  let run: Array<[number, number]> = [];
  let prev = -Infinity;
  for (const p of points) {
    if (!Number.isFinite(p[1]) || p[0] - prev > stepSeconds * 1.5) {
      if (run.length) out.push(run);
      run = [];
    }
    if (Number.isFinite(p[1])) run.push(p);
    prev = p[0];
  }
  if (run.length) out.push(run);
  return out;
}

function rangeLabel(start: number, end: number): string {
  const day = new Date(start * 1000).toISOString().slice(0, 10);
  return `${day} ${formatTime(start, true)} – ${formatTime(end, true)} UTC`;
}

function text(
  x: number,
  y: number,
  s: string,
  o: { size: number; weight?: string; fill?: string; anchor?: 'start' | 'middle' | 'end' },
): string {
  const weight = o.weight ? ` font-weight="${o.weight}"` : '';
  const anchor = o.anchor && o.anchor !== 'start' ? ` text-anchor="${o.anchor}"` : '';
  return `<text x="${r(x)}" y="${r(y)}" font-size="${r(o.size)}" fill="${o.fill ?? '#222'}"${weight}${anchor}>${escape(s)}</text>`;
}

function line(x1: number, y1: number, x2: number, y2: number, stroke: string): string {
  return `<line x1="${r(x1)}" y1="${r(y1)}" x2="${r(x2)}" y2="${r(y2)}" stroke="${stroke}" stroke-width="1"/>`;
}

/** About how wide DejaVu Sans sets `s` at `size` px (no font metrics at hand). */
function textWidth(s: string, size: number): number {
  return s.length * size * 0.6;
}

/** `s`, cut with an ellipsis to fit `width` px. */
function fit(s: string, width: number, size: number): string {
  const max = Math.floor(width / (size * 0.6));
  return s.length <= max ? s : `${s.slice(0, Math.max(1, max - 1))}…`;
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function r(v: number): string {
  return String(Math.round(v * 10) / 10);
}
