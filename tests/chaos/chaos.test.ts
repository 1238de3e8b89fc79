// The chaos suite, CI-sized: bounded streaming load from the openai client on a real
// mocker cluster while one fault is injected mid-load. For each fault: every request
// completes (0 failed), each with exactly the text an undisturbed run of the same seeded
// request gives (nothing duplicated or lost across a migration), and the frontend's
// metrics show that requests really moved. `npm run bench:chaos` runs the longer version
// with a report (docs/benchmarks/faults.md).
import { afterEach, describe, expect, it } from 'vitest';
import { MODEL, startCluster, type Cluster, type ClusterOptions } from '../integration/cluster.js';
import {
  counterTotal,
  runFaultLoad,
  sendSeeded,
  type Fault,
  type FaultLoadOptions,
  type FaultRecord,
} from '@armature/bench';
import OpenAI from 'openai';
import { waitFor } from '@armature/testing';

const LOAD = { requests: 32, clients: 8, maxTokens: 120 } satisfies Omit<FaultLoadOptions, 'url' | 'model'>;
// ~7 ms per token at 8 concurrent: a request streams for about a second, so a fault lands mid-stream.
const ENGINE = { speedup: 1, contextLength: 4096 };

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function chaos(
  options: ClusterOptions,
  faults: (c: Cluster) => Fault[],
): Promise<{ records: FaultRecord[]; metrics: string }> {
  cluster = await startCluster({ workers: 3, policy: 'round-robin', engineArgs: ENGINE, ...options });
  const c = cluster;
  const load = { ...LOAD, url: c.url, model: MODEL };
  const { records } = await runFaultLoad(load, faults(c));
  const metrics = await (await fetch(`${c.url}/metrics`)).text();
  const failed = records.filter((r) => r.error).map((r) => `#${r.index}: ${r.error}`);
  expect(failed).toEqual([]);
  for (const r of records) {
    expect(r.finishReason, `#${r.index}`).toBe('length');
    expect(r.completionTokens, `#${r.index}`).toBe(LOAD.maxTokens);
  }
  // The same seeded requests again, undisturbed: the text must match exactly.
  const client = new OpenAI({ baseURL: `${c.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  for (let i = 0; i < records.length; i += LOAD.clients) {
    const batch = records.slice(i, i + LOAD.clients);
    const again = await Promise.all(batch.map((r) => sendSeeded(client, { ...load, stream: false }, r.index)));
    batch.forEach((r, k) => {
      expect(again[k]!.error).toBeUndefined();
      expect(r.text, `request #${r.index} differs from its undisturbed run`).toBe(again[k]!.text);
    });
  }
  return { records, metrics };
}

/** Requests running on a worker now, from its own metrics. */
async function runningOn(c: Cluster, worker: string): Promise<number> {
  const record = (await c.discovery.list({ role: 'decode' })).find((r) => r.instanceId === worker);
  if (!record?.metricsAddress) return 0;
  const text = await (await fetch(`http://${record.metricsAddress}/metrics`)).text();
  return counterTotal(text, 'armature_worker_running_requests');
}

/** Resolves once streams run on the worker, so that a fault on it lands mid-stream. */
const untilBusy = (c: Cluster, worker: string): Promise<void> =>
  waitFor(async () => (await runningOn(c, worker)) > 0, 10_000, 20, `streams on ${worker}`);

const migrated = (metrics: string): number => counterTotal(metrics, 'armature_frontend_retries_total');

describe('chaos: no request fails when', () => {
  it('a decode worker is SIGKILLed mid-stream', async () => {
    const { metrics } = await chaos({}, (c) => [
      {
        at: 100,
        name: 'kill decode-1',
        run: async () => {
          await untilBusy(c, 'decode-1');
          c.workers.get('decode-1')!.kill('SIGKILL');
        },
      },
    ]);
    expect(counterTotal(metrics, 'armature_frontend_retries_total', 'kind="migrate"')).toBeGreaterThan(0);
  }, 90_000);

  it('a decode worker is SIGSTOPped for 6 s, then continued', async () => {
    const { metrics } = await chaos({}, (c) => [
      {
        at: 100,
        name: 'stop decode-1',
        run: async () => {
          await untilBusy(c, 'decode-1');
          const w = c.workers.get('decode-1')!;
          w.kill('SIGSTOP');
          await new Promise((r) => setTimeout(r, 6_000));
          w.kill('SIGCONT');
        },
      },
    ]);
    expect(migrated(metrics)).toBeGreaterThan(0);
  }, 90_000);

  it('a decode worker is SIGTERMed and its drain deadline passes with streams in flight', async () => {
    const { metrics } = await chaos({ decodeEnv: { ARMATURE_DRAIN_TIMEOUT_MS: '300' } }, (c) => [
      {
        at: 100,
        name: 'term decode-1',
        run: async () => {
          await untilBusy(c, 'decode-1'); // its streams outlast the 300 ms drain: each takes about a second
          const w = c.workers.get('decode-1')!;
          w.kill('SIGTERM');
          expect(await w.exited).toBe(0);
        },
      },
    ]);
    expect(counterTotal(metrics, 'armature_frontend_retries_total', 'reason="worker_draining"')).toBeGreaterThan(0);
  }, 90_000);

  it('one of two routers is SIGKILLed', async () => {
    await chaos({ routers: 2 }, (c) => [
      { at: 700, name: 'kill router-0', run: () => c.routers.get('router-0')!.kill('SIGKILL') },
    ]);
  }, 90_000);

  it('the prefill worker is SIGKILLed while decode workers pull its KV', async () => {
    let routerMetrics = '';
    await chaos(
      {
        workers: 2,
        prefillWorkers: 1,
        routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: 8 }) },
      },
      (c) => [
        {
          at: 700,
          name: 'kill prefill-0',
          run: async () => {
            const [router] = await c.discovery.list({ role: 'router' });
            routerMetrics = await (await fetch(`http://${router!.metricsAddress}/metrics`)).text();
            c.workers.get('prefill-0')!.kill('SIGKILL');
          },
        },
      ],
    );
    // Up to the kill, requests were really disaggregated.
    expect(
      counterTotal(routerMetrics, 'armature_router_disagg_decisions_total', 'mode="remote-prefill"'),
    ).toBeGreaterThan(0);
  }, 90_000);
});
