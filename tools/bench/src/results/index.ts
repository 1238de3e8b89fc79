// Results of a benchmark run, shared by `armature bench` and `armature replay`:
// records -> BenchResults (JSON) -> HTML report and SVG plots.
export type { BenchResults, Distribution, RequestRecord, Slo, TimelinePoint } from './types.js';
export { distribution, percentile, quantilePoints } from './distribution.js';
export {
  computeResults,
  DEGRADED_LAG_MS,
  isCompleted,
  MAX_SAMPLE_POINTS,
  meetsSlo,
  requestLatencies,
  type ComputeResultsOptions,
} from './metrics.js';
export { computeTimeline, MAX_TIMELINE_POINTS, timelineBucketSeconds } from './timeline.js';
export { lineChart, type ChartSeries, type LineChartOptions, type Point } from './line-chart.js';
export { cdfPoints, itlCdfChart, throughputOverTimeChart, ttftCdfChart, ttftOverTimeChart, writePlots } from './svg.js';
export { formatNumber, renderHtmlReport, type HtmlReportOptions } from './report.js';
