// How the renderer writes numbers, times and series names: Grafana's units (s, bytes,
// Bps, percentunit, reqps, ops, short) scaled to a readable prefix, "nice" axis ticks,
// and a series' legend from the target's legendFormat or from the labels that tell the
// panel's series apart.
import type { Series } from './prometheus.js';

/** A 1-2-5 step that cuts [min, max] into about `count` parts. */
export function niceStep(min: number, max: number, count: number): number {
  const raw = (max > min ? max - min : 1) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw * (1 - 1e-9)) ?? 10 * mag;
}

export interface YAxis {
  /** The range drawn, in the data's own unit. */
  lo: number;
  hi: number;
  ticks: number[];
  labels: string[];
}

/**
 * A y axis over `values`, 0 always in view: the unit's prefix is picked first (MiB, ms, %),
 * then ticks at a 1-2-5 step in those terms, so that labels read 50 MiB, not 47.684 MiB.
 */
export function yAxis(unit: string, values: number[], count = 4): YAxis {
  const min = Math.min(0, ...values);
  const max = Math.max(0, ...values);
  const scale = scaleFor(unit, Math.max(Math.abs(min), Math.abs(max)) || 1);
  let lo = min / scale.factor;
  let hi = max / scale.factor;
  if (hi === lo) hi = lo + 1 / scale.factor; // all zero: 0..1 in the base unit (0-100%)
  const step = niceStep(lo, hi, count);
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  let decimals = 0;
  while (decimals < 3 && !isWhole(step * 10 ** decimals)) decimals++;
  const ticks: number[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-9; i++) ticks.push(Number((lo + i * step).toFixed(decimals)));
  return {
    lo: lo * scale.factor,
    hi: hi * scale.factor,
    ticks: ticks.map((t) => t * scale.factor),
    labels: ticks.map((t) => (t === 0 ? zero(scale) : `${t.toFixed(decimals)}${scale.suffix}`)),
  };
}

const TIME_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** Time ticks (unix seconds) at a round interval over [start, end], about `count` of them. */
export function timeTicks(start: number, end: number, count = 6): number[] {
  const step = TIME_STEPS.find((s) => (end - start) / s <= count) ?? 86400;
  const ticks: number[] = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
  return ticks;
}

/** HH:MM, or HH:MM:SS when the ticks fall within a minute, in UTC. */
export function formatTime(unixSeconds: number, withSeconds: boolean): string {
  const iso = new Date(unixSeconds * 1000).toISOString();
  return withSeconds ? iso.slice(11, 19) : iso.slice(11, 16);
}

interface Scale {
  factor: number;
  suffix: string;
}

const SI: Array<[number, string]> = [
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
  [1, ''],
];

/** The prefix that suits values up to `maxAbs` in `unit`. */
function scaleFor(unit: string, maxAbs: number): Scale {
  const pick = (table: Array<[number, string]>, tail: string): Scale => {
    const [factor, prefix] = table.find(([f]) => maxAbs >= f) ?? table[table.length - 1];
    return { factor, suffix: `${prefix}${tail}` };
  };
  switch (unit) {
    case 's':
      return pick(
        [
          [3600, ' h'],
          [60, ' min'],
          [1, ' s'],
          [1e-3, ' ms'],
          [1e-6, ' µs'],
        ],
        '',
      );
    case 'bytes':
      return pick(
        [
          [1024 ** 4, ' TiB'],
          [1024 ** 3, ' GiB'],
          [1024 ** 2, ' MiB'],
          [1024, ' KiB'],
          [1, ' B'],
        ],
        '',
      );
    case 'Bps':
      return pick(
        SI.map(([f, p]) => [f, ` ${p}B`]),
        '/s',
      );
    case 'percentunit':
      return { factor: 0.01, suffix: '%' };
    case 'reqps':
      return pick(SI, ' req/s');
    case 'ops':
      return pick(SI, ' /s');
    default:
      return pick(SI, '');
  }
}

/** One value on its own (a stat panel, a legend): three significant digits. */
export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return zero(scaleFor(unit, 0));
  const scale = scaleFor(unit, Math.abs(v));
  return `${Number((v / scale.factor).toPrecision(3))}${scale.suffix}`;
}

function isWhole(x: number): boolean {
  return Math.abs(x - Math.round(x)) <= 1e-6 * Math.max(1, Math.abs(x));
}

/** "0", or "0%" where the suffix is a sign rather than a unit word. */
function zero(scale: Scale): string {
  return scale.suffix.startsWith(' ') ? '0' : `0${scale.suffix}`;
}

/**
 * Each series' legend: `legendFormat` with {{label}} filled (blank labels dropped); without
 * one, the labels whose values differ between the panel's series, or the metric name.
 */
export function legends(series: Array<{ s: Series; legendFormat?: string }>): string[] {
  const keys = new Set(series.flatMap(({ s }) => Object.keys(s.labels)));
  const varying = [...keys].filter((k) => new Set(series.map(({ s }) => s.labels[k] ?? '')).size > 1);
  return series.map(({ s, legendFormat }) => {
    if (legendFormat) {
      const text = legendFormat
        .replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, k: string) => s.labels[k] ?? '')
        .replace(/\(\s*\)/g, '')
        .replace(/\s+/g, ' ')
        .trim();
      if (text) return text;
    }
    const shown = varying.filter((k) => k !== '__name__' && s.labels[k] !== undefined);
    if (shown.length) return shown.map((k) => `${k}=${s.labels[k]}`).join(', ');
    return s.labels.__name__ ?? 'total';
  });
}
