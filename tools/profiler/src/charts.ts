// A profile drawn: prefill.svg (TTFT and prompt throughput vs ISL) and decode.svg (ITL and
// output throughput vs concurrency, one line per context), each two of @armature/bench's
// line charts stacked in one SVG file.
import { lineChart, type ChartSeries, type LineChartOptions } from '@armature/bench';
import type { DecodePoint, Profile } from '@armature/planner-core';

const WIDTH = 720;
const HEIGHT = 360;

/** Charts one above the other in one standalone SVG document. */
export function stackCharts(charts: readonly LineChartOptions[]): string {
  const parts = charts.map((c, i) =>
    lineChart({ width: WIDTH, height: HEIGHT, ...c }).replace(/^<svg /, `<svg x="0" y="${i * HEIGHT}" `),
  );
  const height = HEIGHT * charts.length;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">\n` +
    `${parts.join('\n')}\n</svg>\n`
  );
}

const label = (p: Profile): string => `${p.model}, ${p.engine} (${p.source})`;

/** TTFT vs ISL and prompt tokens/s vs ISL. */
export function prefillSvg(profile: Profile): string {
  const pts = profile.prefill.points;
  return stackCharts([
    {
      title: `Prefill TTFT at batch 1: ${label(profile)}`,
      xLabel: 'prompt tokens (ISL)',
      yLabel: 'TTFT, ms',
      logX: true,
      series: [{ name: 'TTFT', points: pts.map((p) => [p.isl, p.ttftMs]) }],
    },
    {
      title: 'Prefill throughput at batch 1',
      xLabel: 'prompt tokens (ISL)',
      yLabel: 'prompt tokens/s',
      logX: true,
      series: [{ name: 'tokens/s', points: pts.map((p) => [p.isl, p.tokensPerSecond]) }],
    },
  ]);
}

function byContext(points: readonly DecodePoint[], y: (p: DecodePoint) => number): ChartSeries[] {
  const groups = new Map<number, DecodePoint[]>();
  for (const p of points) groups.set(p.context, [...(groups.get(p.context) ?? []), p]);
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([context, ps]) => ({
      name: `context ${context}`,
      points: [...ps].sort((a, b) => a.concurrency - b.concurrency).map((p) => [p.concurrency, y(p)] as const),
    }));
}

/** ITL vs concurrency and output tokens/s vs concurrency, one line per context. */
export function decodeSvg(profile: Profile): string {
  const pts = profile.decode.points;
  return stackCharts([
    {
      title: `Decode ITL: ${label(profile)}`,
      xLabel: 'concurrent sequences',
      yLabel: 'ITL, ms',
      logX: true,
      series: byContext(pts, (p) => p.itlMs),
    },
    {
      title: 'Decode throughput',
      xLabel: 'concurrent sequences',
      yLabel: 'output tokens/s',
      logX: true,
      series: byContext(pts, (p) => p.tokensPerSecond),
    },
  ]);
}
