// What every Armature process says about itself, under catalog names: build info, memory,
// CPU, event-loop delay (p50 / p99 / max since the last scrape, so a loop that was blocked
// for seconds shows it at the next scrape), GC pauses, and what tracing exported or failed. prom-client's default Node
// metrics are not used: their names are not the catalog's and promtool rejects some.
import { monitorEventLoopDelay, PerformanceObserver, constants as perf } from 'node:perf_hooks';
import type { MetricsRegistry } from './registry.js';

const GC_KINDS: Record<number, string> = {
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface ProcessInfo {
  /** frontend, router, prefill, decode, ... */
  service: string;
  /** The Armature version (default the package's). */
  version?: string;
  /** The tracing counters (@armature/runtime's tracingStats), read at each scrape. */
  tracing?: () => { spansExported: number; exportFailures: number; configErrors: number };
}

/** Starts the process metrics on `metrics`; stop() ends the event-loop and GC observers. */
export function startProcessMetrics(metrics: MetricsRegistry, info: ProcessInfo): { stop(): void } {
  metrics
    .get('armature_build_info')
    .set({ service: info.service, version: info.version ?? '0.1.0', node: process.version }, 1);
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  for (const kind of Object.values(GC_KINDS)) metrics.zero('armature_process_gc_pause_seconds', { kind });
  const gc = new PerformanceObserver((list) => {
    const pauses = metrics.get('armature_process_gc_pause_seconds');
    for (const entry of list.getEntries()) {
      const detail = (entry as { detail?: { kind?: number } }).detail;
      const kind = GC_KINDS[detail?.kind ?? -1] ?? 'other';
      pauses.observe({ kind }, entry.duration / 1000);
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  const lag = metrics.get('armature_process_event_loop_lag_seconds');
  for (const stat of ['p50', 'p99', 'max']) lag.set({ stat }, 0); // present from the start
  let cpuSoFar = 0;
  const traced = { spansExported: 0, exportFailures: 0, configErrors: 0 };
  const spans = metrics.get('armature_tracing_spans_exported_total');
  const errors = metrics.get('armature_tracing_errors_total');
  spans.inc(0);
  for (const kind of ['export', 'config']) errors.inc({ kind }, 0);
  metrics.onCollect(() => {
    if (info.tracing) {
      const now = info.tracing();
      spans.inc(now.spansExported - traced.spansExported);
      errors.inc({ kind: 'export' }, now.exportFailures - traced.exportFailures);
      errors.inc({ kind: 'config' }, now.configErrors - traced.configErrors);
      Object.assign(traced, now);
    }
    const mem = process.memoryUsage();
    metrics.get('armature_process_resident_memory_bytes').set(mem.rss);
    metrics.get('armature_process_heap_used_bytes').set(mem.heapUsed);
    const cpu = process.cpuUsage();
    const cpuNow = (cpu.user + cpu.system) / 1e6;
    metrics.get('armature_process_cpu_seconds_total').inc(Math.max(0, cpuNow - cpuSoFar));
    cpuSoFar = cpuNow;
    if (delay.count > 0) {
      lag.set({ stat: 'p50' }, delay.percentile(50) / 1e9);
      lag.set({ stat: 'p99' }, delay.percentile(99) / 1e9);
      lag.set({ stat: 'max' }, delay.max / 1e9);
    }
    delay.reset();
  });
  return {
    stop: () => {
      delay.disable();
      gc.disconnect();
    },
  };
}
