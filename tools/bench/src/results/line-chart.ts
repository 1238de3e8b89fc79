// A tiny dependency-free SVG line chart: axes with round-number ticks, one coloured
// line per series and a legend. Enough for benchmark reports; not a plotting library.

export type Point = readonly [number, number];

export interface ChartSeries {
  name: string;
  /** Points in drawing order; a non-finite coordinate (or x <= 0 with logX) breaks the line. */
  points: readonly Point[];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  /** Logarithmic x axis; default false. */
  logX?: boolean;
  /** Default 720. */
  width?: number;
  /** Default 400. */
  height?: number;
  /** Range the y axis must cover besides the data; default [0, 0] (y starts at zero). */
  yInclude?: readonly [number, number];
}

/** Distinct colours (Tableau 10); beyond ten series the dash pattern changes too. */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
] as const;
const DASHES = ['', '6 3', '2 3', '8 3 2 3'] as const;

const MARGIN = { top: 36, right: 16, bottom: 48, left: 68 } as const;
const LEGEND_WIDTH = 170;
const TARGET_TICKS = 6;

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Step of 1, 2 or 5 x 10^k giving about `target` intervals over `span`. */
export function niceStep(span: number, target = TARGET_TICKS): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const f = raw / magnitude;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

/** Round-number ticks covering [lo, hi]; the first and last tick bound the axis. */
export function niceTicks(lo: number, hi: number, target = TARGET_TICKS): number[] {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.5;
    return niceTicks(lo - pad, hi + pad, target);
  }
  const step = niceStep(hi - lo, target);
  const first = Math.floor(lo / step);
  const last = Math.ceil(hi / step);
  const ticks: number[] = [];
  // Multiply rather than accumulate, and round, so 0.1 * 3 prints as 0.3.
  for (let i = first; i <= last; i++) ticks.push(roundTo(i * step, step));
  return ticks;
}

/** Ticks 1, 2, 5 x 10^k (only powers of ten past three decades) covering [lo, hi], lo > 0. */
export function logTicks(lo: number, hi: number): number[] {
  const from = Math.floor(Math.log10(lo));
  let to = Math.ceil(Math.log10(hi));
  if (to <= from) to = from + 1;
  const mantissas = to - from > 3 ? [1] : [1, 2, 5];
  const ticks: number[] = [];
  for (let e = from; e <= to; e++) {
    for (const m of mantissas) {
      const v = roundTo(m * 10 ** e, 10 ** e);
      if (e === to && m > 1) break;
      ticks.push(v);
    }
  }
  // Trim ticks wholly outside the data, keeping one bound on each side.
  while (ticks.length > 2 && ticks[1]! <= lo) ticks.shift();
  while (ticks.length > 2 && ticks[ticks.length - 2]! >= hi) ticks.pop();
  return ticks;
}

function roundTo(value: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(value.toFixed(Math.min(decimals, 15)));
}

/** Short tick label: 1.5k, 2M, 0.25. */
export function formatTick(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${trim(value / 1e9)}G`;
  if (abs >= 1e6) return `${trim(value / 1e6)}M`;
  if (abs >= 1e4) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value: number): string {
  return String(Number(value.toPrecision(6)));
}

function usable(p: Point, logX: boolean): boolean {
  return Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!logX || p[0] > 0);
}

/** Render the chart as a standalone SVG document fragment (`<svg xmlns=...>...</svg>`). */
export function lineChart(opts: LineChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 400;
  const logX = opts.logX ?? false;
  const hasLegend = opts.series.length > 0;
  const plotLeft = MARGIN.left;
  const plotTop = MARGIN.top;
  const plotRight = width - MARGIN.right - (hasLegend ? LEGEND_WIDTH : 0);
  const plotBottom = height - MARGIN.bottom;

  const usablePoints = opts.series.flatMap((s) => s.points.filter((p) => usable(p, logX)));
  const [yIncLo, yIncHi] = opts.yInclude ?? [0, 0];
  let xLo = Infinity;
  let xHi = -Infinity;
  let yLo = yIncLo;
  let yHi = yIncHi;
  for (const [x, y] of usablePoints) {
    xLo = Math.min(xLo, x);
    xHi = Math.max(xHi, x);
    yLo = Math.min(yLo, y);
    yHi = Math.max(yHi, y);
  }
  const yTicks = niceTicks(yLo, yHi);
  const xTicks =
    usablePoints.length === 0 ? (logX ? [1, 10] : [0, 1]) : logX ? logTicks(xLo, xHi) : niceTicks(xLo, xHi);

  const xMin = xTicks[0]!;
  const xMax = xTicks[xTicks.length - 1]!;
  const yMin = yTicks[0]!;
  const yMax = yTicks[yTicks.length - 1]!;
  const tx = logX ? (x: number) => Math.log10(x) : (x: number) => x;
  const px = (x: number): number => plotLeft + ((tx(x) - tx(xMin)) / (tx(xMax) - tx(xMin))) * (plotRight - plotLeft);
  const py = (y: number): number => plotBottom - ((y - yMin) / (yMax - yMin)) * (plotBottom - plotTop);
  const f = (n: number): string => n.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
  );
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${f(width / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(opts.title)}</text>`,
  );

  // Grid and ticks.
  for (const t of yTicks) {
    const y = f(py(t));
    out.push(`<line x1="${plotLeft}" y1="${y}" x2="${f(plotRight)}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(
      `<text x="${plotLeft - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(t))}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = f(px(t));
    out.push(`<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${plotBottom}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x}" y="${plotBottom + 16}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(
    `<rect x="${plotLeft}" y="${plotTop}" width="${f(plotRight - plotLeft)}" height="${f(plotBottom - plotTop)}" fill="none" stroke="#888888"/>`,
  );
  out.push(
    `<text x="${f((plotLeft + plotRight) / 2)}" y="${height - 10}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`,
  );
  out.push(
    `<text x="14" y="${f((plotTop + plotBottom) / 2)}" text-anchor="middle" transform="rotate(-90 14 ${f((plotTop + plotBottom) / 2)})">${escapeXml(opts.yLabel)}</text>`,
  );
  if (usablePoints.length === 0) {
    out.push(
      `<text x="${f((plotLeft + plotRight) / 2)}" y="${f((plotTop + plotBottom) / 2)}" text-anchor="middle" fill="#888888">no data</text>`,
    );
  }

  // Lines: one path per series, broken at unusable points; lone points become dots.
  opts.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    const segments: Point[][] = [[]];
    for (const p of s.points) {
      if (usable(p, logX)) segments[segments.length - 1]!.push(p);
      else if (segments[segments.length - 1]!.length > 0) segments.push([]);
    }
    const d = segments
      .filter((seg) => seg.length > 1)
      .map((seg) => seg.map((p, j) => `${j === 0 ? 'M' : 'L'}${f(px(p[0]))} ${f(py(p[1]))}`).join(' '))
      .join(' ');
    out.push(`<g><title>${escapeXml(s.name)}</title>`);
    if (d !== '') {
      out.push(
        `<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.8"${dash ? ` stroke-dasharray="${dash}"` : ''} stroke-linejoin="round"/>`,
      );
    }
    for (const seg of segments) {
      if (seg.length === 1)
        out.push(`<circle cx="${f(px(seg[0]![0]))}" cy="${f(py(seg[0]![1]))}" r="2.5" fill="${colour}"/>`);
    }
    out.push('</g>');
  });

  // Legend, right of the plot.
  if (hasLegend) {
    const lx = plotRight + 14;
    opts.series.forEach((s, i) => {
      const y = plotTop + 8 + i * 18;
      const colour = PALETTE[i % PALETTE.length]!;
      const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
      const name = s.name.length > 24 ? `${s.name.slice(0, 23)}…` : s.name;
      out.push(
        `<line x1="${f(lx)}" y1="${y}" x2="${f(lx + 20)}" y2="${y}" stroke="${colour}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      );
      out.push(`<text x="${f(lx + 26)}" y="${y}" dominant-baseline="middle">${escapeXml(name)}</text>`);
    });
  }
  out.push('</svg>');
  return out.join('\n');
}
