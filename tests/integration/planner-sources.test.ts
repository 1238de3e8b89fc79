// The planner's two metric sources, one interface: scraping the services found through
// discovery, and asking a real Prometheus that scraped the same services. Both must give
// the same totals; a Prometheus that is down is reported, not thrown.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startPrometheus } from '@armature/deploy';
import { MetricsRegistry, serveMetrics } from '@armature/metrics';
import { PrometheusSource, ScrapeSource, type ClusterSnapshot } from '@armature/planner';
import { MemoryDiscovery, type InstanceRecord } from '@armature/runtime';
import { freePort, waitFor } from '@armature/testing';
import { ROOT } from './cluster.js';
import { promtool } from './promtool.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function service(discovery: MemoryDiscovery, record: Omit<InstanceRecord, 'metricsAddress'>) {
  const metrics = new MetricsRegistry();
  const { server, port } = await serveMetrics(metrics, '127.0.0.1', 0);
  cleanups.push(() => new Promise((r) => server.close(r)));
  await discovery.register({ ...record, metricsAddress: `127.0.0.1:${port}` }, { leaseMs: 60_000 });
  return metrics;
}

const comparable = (s: ClusterSnapshot) => ({ frontend: s.frontend, workers: s.workers, errors: s.errors });

describe.skipIf(!promtool)('the planner reads the same cluster from Prometheus as by scraping it', () => {
  it('gives equal totals, per worker and summed over frontends', async () => {
    const discovery = new MemoryDiscovery();
    cleanups.push(() => discovery.close());
    const frontends = [
      await service(discovery, { instanceId: 'frontend-0', role: 'frontend' }),
      await service(discovery, { instanceId: 'frontend-1', role: 'frontend' }),
    ];
    const card = { blockSize: 16 } as InstanceRecord['card'];
    const decode = await service(discovery, { instanceId: 'decode-0', role: 'decode', card });
    const prefill = await service(discovery, { instanceId: 'prefill-0', role: 'prefill', card });
    frontends.forEach((f, i) => {
      for (let n = 0; n <= i; n++) {
        f.get('armature_frontend_input_sequence_tokens').observe({ model: 'm' }, 1000);
        f.get('armature_frontend_output_sequence_tokens').observe({ model: 'm' }, 40);
        f.get('armature_frontend_time_to_first_token_seconds').observe({ model: 'm' }, 0.25);
        f.get('armature_frontend_inter_token_latency_seconds').observe({ model: 'm' }, 0.02);
      }
      f.get('armature_frontend_input_tokens_total').inc({ model: 'm' }, 1000 * (i + 1));
      f.get('armature_frontend_cached_tokens_total').inc({ model: 'm' }, 100);
    });
    for (const [w, blocks] of [
      [decode, 40],
      [prefill, 2],
    ] as const) {
      w.get('armature_worker_active_decode_blocks').set({ model: 'm' }, blocks);
      w.get('armature_worker_active_prefill_tokens').set({ model: 'm' }, blocks * 10);
      w.get('armature_worker_step_seconds').observe({ model: 'm' }, 0.5);
      w.get('armature_worker_batch_prefill_tokens').observe({ model: 'm' }, 256);
    }
    const prometheus = await startPrometheus({
      discovery,
      configDir: join(ROOT, 'infra/prometheus'),
      workDir: await mkdtemp(join(tmpdir(), 'armature-planner-prom-')),
      address: `127.0.0.1:${await freePort()}`,
      scrapeIntervalS: 1,
    });
    cleanups.push(() => prometheus.stop());
    const fromPrometheus = new PrometheusSource(prometheus.url, discovery);
    const scraped = comparable(await new ScrapeSource(discovery).snapshot());
    expect(scraped.frontend!.input).toEqual({ count: 3, sum: 3000 });
    expect(scraped.workers.map((w) => [w.id, w.pool, w.activeDecodeBlocks])).toEqual([
      ['decode-0', 'decode', 40],
      ['prefill-0', 'prefill', 2],
    ]);
    let last: ReturnType<typeof comparable> | undefined;
    await waitFor(
      async () => {
        last = comparable(await fromPrometheus.snapshot());
        return JSON.stringify(last) === JSON.stringify(scraped);
      },
      20_000,
      250,
      'Prometheus to have scraped every service',
    ).catch(() => expect(last).toEqual(scraped));

    await prometheus.stop();
    const down = await fromPrometheus.snapshot();
    expect(down.frontend).toBeUndefined();
    expect(down.errors[0]).toMatch(/^prometheus http:\/\/127\.0\.0\.1:\d+: /);
  }, 60_000);
});
