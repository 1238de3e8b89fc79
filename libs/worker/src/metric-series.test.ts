// A worker's zero series: each role gets the families it owns, from the enumerations the
// code counts with.
import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from '@armature/metrics';
import { zeroWorkerSeries } from './metric-series.js';

const families = async (metrics: MetricsRegistry): Promise<string[]> =>
  [...(await metrics.expose()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);

describe('zeroWorkerSeries', () => {
  it('gives a decode worker its pulls and transfers per backend, and no prefill families', async () => {
    const metrics = new MetricsRegistry();
    zeroWorkerSeries(metrics, { role: 'decode', model: 'm', backends: ['shm', 'tcp'] });
    const text = await metrics.expose();
    expect(text).toContain('armature_worker_remote_prefill_total{outcome="no_free_blocks"} 0\n');
    expect(text).toContain('armature_transfer_bandwidth_bytes_per_second_count{backend="tcp"} 0\n');
    expect(text).toContain('armature_transfer_failures_total{kind="checksum_mismatch"} 0\n');
    expect(text).toContain('armature_worker_requests_total{model="m",finish_reason="length"} 0\n');
    expect(text).not.toContain('finish_reason="prefilled"');
    expect((await families(metrics)).filter((f) => /pin|prefill_queue/.test(f))).toEqual([]);
  });

  it('gives a prefill worker its pins and queue, and no pull or transfer families', async () => {
    const metrics = new MetricsRegistry();
    zeroWorkerSeries(metrics, { role: 'prefill', model: 'm', backends: ['tcp'] });
    const text = await metrics.expose();
    expect(text).toContain('armature_worker_pins_total{how="closed"} 0\n');
    expect(text).toContain('armature_worker_prefill_queue_depth{model="m"} 0\n');
    expect(text).toContain('armature_worker_requests_total{model="m",finish_reason="prefilled"} 0\n');
    expect(text).toContain('armature_transfer_served_bytes_total 0\n');
    expect((await families(metrics)).filter((f) => /remote_prefill|pulled|reused|transfer_(?!served)/.test(f))).toEqual(
      [],
    );
  });

  it('leaves out the transfer families when transfers are off', async () => {
    const metrics = new MetricsRegistry();
    zeroWorkerSeries(metrics, { role: 'decode', model: 'm' });
    expect((await families(metrics)).filter((f) => f.startsWith('armature_transfer_'))).toEqual([]);
  });
});
