// The process metrics every service exports: a blocked event loop shows at the next scrape,
// and memory, CPU and build info are there from the start.
import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from './registry.js';
import { startProcessMetrics } from './process-metrics.js';

const value = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
};

describe('process metrics', () => {
  it('shows an event loop blocked for 300 ms as the max lag of the next scrape, then resets', async () => {
    const metrics = new MetricsRegistry();
    const probe = startProcessMetrics(metrics, { service: 'test' });
    try {
      const first = await metrics.expose();
      expect(value(first, 'armature_build_info{service="test",version="0.1.0",node="')).toBe(1);
      expect(value(first, 'armature_process_resident_memory_bytes')).toBeGreaterThan(1e6);
      expect(value(first, 'armature_process_heap_used_bytes')).toBeGreaterThan(1e5);
      // Every GC kind from the start, even before its first pause.
      for (const kind of ['minor', 'major', 'incremental', 'weakcb'])
        expect(first).toMatch(new RegExp(`^armature_process_gc_pause_seconds_count\\{kind="${kind}"\\} \\d+$`, 'm'));
      await new Promise((r) => setTimeout(r, 50));
      const end = Date.now() + 300;
      while (Date.now() < end); // blocks the loop
      await new Promise((r) => setTimeout(r, 30));
      const blocked = await metrics.expose();
      expect(value(blocked, 'armature_process_event_loop_lag_seconds{stat="max"}')).toBeGreaterThan(0.25);
      expect(value(blocked, 'armature_process_cpu_seconds_total')).toBeGreaterThan(0.25);
      await new Promise((r) => setTimeout(r, 100));
      const calm = await metrics.expose();
      expect(value(calm, 'armature_process_event_loop_lag_seconds{stat="max"}')).toBeLessThan(0.2);
    } finally {
      probe.stop();
    }
  });
});
