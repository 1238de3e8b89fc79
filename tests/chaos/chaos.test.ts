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

/**
 * Runs the load on a fresh cluster and, once streams run on decode-1 (so that the fault lands
 * mid-stream), the fault; then checks every request: completed, full length, and the same
 * text as an undisturbed rerun of the same seeded request.
 */
async function chaos(
  options: ClusterOptions,
  name: string,
  fault: (c: Cluster) => unknown,
): Promise<{ records: FaultRecord[]; metrics: string }> {
  cluster = await startCluster({ workers: 3, policy: 'round-robin', engineArgs: ENGINE, ...options });
  const c = cluster;
  const load = { ...LOAD, url: c.url, urls: c.urls, model: MODEL };
  const { records } = await runFaultLoad(load, [onceBusy(c, name, fault)]);
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

/** Whether requests run on the worker and it has streamed tokens already, from its own metrics. */
async function streamingOn(c: Cluster, worker: string): Promise<boolean> {
  const record = (await c.discovery.list({ role: 'decode' })).find((r) => r.instanceId === worker);
  if (!record?.metricsAddress) return false;
  const text = await (await fetch(`http://${record.metricsAddress}/metrics`)).text();
  return (
    counterTotal(text, 'armature_worker_running_requests') > 0 &&
    counterTotal(text, 'armature_worker_generated_tokens_total') > 40
  );
}

/** Resolves once streams on the worker are under way, so that a fault on it lands mid-stream. */
const untilBusy = (c: Cluster, worker: string): Promise<void> =>
  waitFor(() => streamingOn(c, worker), 10_000, 20, `streams on ${worker}`);

/** A fault that strikes as soon as streams run on decode-1. */
const onceBusy = (c: Cluster, name: string, fault: (c: Cluster) => unknown): Fault => ({
  at: 100,
  name,
  run: async () => {
    await untilBusy(c, 'decode-1');
    await fault(c);
  },
});

const migrated = (metrics: string): number => counterTotal(metrics, 'armature_frontend_retries_total');
const stopped = async (p: { kill(s: NodeJS.Signals): void; exited: Promise<number | null> }): Promise<void> => {
  p.kill('SIGTERM');
  expect(await p.exited).toBe(0);
};

describe('chaos: no request fails when', () => {
  it('a decode worker is SIGKILLed mid-stream', async () => {
    const { metrics } = await chaos({}, 'kill decode-1', (c) => c.workers.get('decode-1')!.kill('SIGKILL'));
    expect(counterTotal(metrics, 'armature_frontend_retries_total', 'kind="migrate"')).toBeGreaterThan(0);
  }, 90_000);

  it('a decode worker is SIGSTOPped for 6 s, then continued', async () => {
    const { metrics } = await chaos({}, 'stop decode-1', async (c) => {
      const w = c.workers.get('decode-1')!;
      w.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, 6_000));
      w.kill('SIGCONT');
    });
    expect(migrated(metrics)).toBeGreaterThan(0);
  }, 90_000);

  it('a decode worker is SIGTERMed and its drain deadline passes with streams in flight', async () => {
    // Its streams (about a second each) outlast the 300 ms drain.
    const { metrics } = await chaos({ decodeEnv: { ARMATURE_DRAIN_TIMEOUT_MS: '300' } }, 'term decode-1', (c) =>
      stopped(c.workers.get('decode-1')!),
    );
    expect(counterTotal(metrics, 'armature_frontend_retries_total', 'reason="worker_draining"')).toBeGreaterThan(0);
  }, 90_000);

  it('one of two routers is SIGKILLed', async () => {
    await chaos({ routers: 2 }, 'kill router-0', (c) => c.routers.get('router-0')!.kill('SIGKILL'));
  }, 90_000);

  it('the prefill worker is SIGKILLed while decode workers pull its KV', async () => {
    let routerMetrics = '';
    const disagg = { minRemotePrefillTokens: 8 };
    await chaos(
      { workers: 2, prefillWorkers: 1, routerEnv: { ARMATURE_DISAGG: JSON.stringify(disagg) } },
      'kill prefill-0',
      async (c) => {
        const [router] = await c.discovery.list({ role: 'router' });
        routerMetrics = await (await fetch(`http://${router!.metricsAddress}/metrics`)).text();
        c.workers.get('prefill-0')!.kill('SIGKILL');
      },
    );
    // Up to the kill, requests were really disaggregated.
    expect(
      counterTotal(routerMetrics, 'armature_router_disagg_decisions_total', 'mode="remote-prefill"'),
    ).toBeGreaterThan(0);
  }, 90_000);

  it('one of two frontends is SIGTERMed: it drains, the other takes the new requests', async () => {
    const { records } = await chaos({ frontends: 2, routers: 2 }, 'term frontend-1', (c) =>
      stopped(c.frontends.get('frontend-1')!),
    );
    expect(records.some((r) => (r.failovers ?? 0) > 0)).toBe(true);
  }, 90_000);
});

describe('chaos: a frontend SIGKILLed behind two', () => {
  it('loses only the requests that were streaming through it; every other request completes', async () => {
    cluster = await startCluster({ workers: 3, frontends: 2, routers: 2, policy: 'round-robin', engineArgs: ENGINE });
    const c = cluster;
    let killedAt = 0;
    const { records } = await runFaultLoad({ ...LOAD, url: c.url, urls: c.urls, model: MODEL }, [
      onceBusy(c, 'kill frontend-1', () => {
        killedAt = Date.now();
        c.frontends.get('frontend-1')!.kill('SIGKILL');
      }),
    ]);
    const failed = records.filter((r) => r.error);
    // What failed had started before the kill and was still running at it: lost with its connection.
    for (const r of failed) {
      expect(r.startedAt, `#${r.index}: ${r.error}`).toBeLessThan(killedAt);
      expect(r.endedAt).toBeGreaterThanOrEqual(killedAt);
    }
    expect(failed.length).toBeLessThanOrEqual(LOAD.clients);
    expect(records.filter((r) => r.startedAt > killedAt + 50 && r.error)).toEqual([]);
  }, 90_000);
});

describe('chaos: the whole stack stopped under load', () => {
  it('ends every request it had started with a complete answer, and refuses later ones cleanly', async () => {
    cluster = await startCluster({
      workers: 2,
      policy: 'round-robin',
      engineArgs: ENGINE,
      stopOrder: 'frontend-first',
    });
    const c = cluster;
    let stoppedAt = 0;
    const { records } = await runFaultLoad({ ...LOAD, url: c.url, model: MODEL }, [
      onceBusy(c, 'stop the stack', async () => {
        stoppedAt = Date.now();
        await c.shutdown();
      }),
    ]);
    cluster = undefined; // stopped already
    const before = records.filter((r) => r.startedAt < stoppedAt);
    expect(before.length).toBeGreaterThan(0);
    for (const r of before) {
      expect(r.error, `#${r.index} was cut`).toBeUndefined();
      expect(r.completionTokens).toBe(LOAD.maxTokens);
    }
    // Sent once the frontend was draining or gone: a 503 or a refused connection, never a reset mid-answer.
    const later = records.filter((x) => x.startedAt >= stoppedAt);
    expect(later.length).toBeGreaterThan(0);
    for (const r of later) if (r.error) expect(r.error).toMatch(/^503|Connection error/);
  }, 120_000);
});
