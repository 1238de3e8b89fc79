// MetricsRegistry.zero: the series a dashboard needs exist at 0 before their first use,
// and zeroing a counter or gauge again never loses what it counted.
import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from './registry.js';

describe('MetricsRegistry.zero', () => {
  it('shows a labelled counter, gauge and histogram at 0 before any use', async () => {
    const metrics = new MetricsRegistry();
    metrics.zero('armature_router_queue_rejected_total', { reason: 'full' });
    metrics.zero('armature_router_active_requests', { worker: 'decode-0' });
    metrics.zero('armature_router_overhead_seconds', { stage: 'total' });
    metrics.zero('armature_router_queue_depth');
    const text = await metrics.expose();
    expect(text).toContain('armature_router_queue_rejected_total{reason="full"} 0\n');
    expect(text).toContain('armature_router_active_requests{worker="decode-0"} 0\n');
    expect(text).toContain('armature_router_overhead_seconds_count{stage="total"} 0\n');
    expect(text).toContain('armature_router_overhead_seconds_bucket{le="+Inf",stage="total"} 0\n');
    expect(text).toContain('armature_router_queue_depth 0\n');
  });

  it("keeps a counter's and a gauge's value when zeroed again", async () => {
    const metrics = new MetricsRegistry();
    metrics.get('armature_router_queue_rejected_total').inc({ reason: 'full' }, 3);
    metrics.get('armature_router_active_requests').set({ worker: 'decode-0' }, 2);
    metrics.zero('armature_router_queue_rejected_total', { reason: 'full' });
    metrics.zero('armature_router_active_requests', { worker: 'decode-0' });
    const text = await metrics.expose();
    expect(text).toContain('armature_router_queue_rejected_total{reason="full"} 3\n');
    expect(text).toContain('armature_router_active_requests{worker="decode-0"} 2\n');
  });
});
