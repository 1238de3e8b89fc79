// The Router's waiting room: requests wait while every worker is busy, leave in order as
// capacity frees, one model's wait never holds up another's, and a caller that gives up,
// a timeout or a duplicate id each get a clear answer without leaking a queue slot.
import { afterEach, describe, expect, it } from 'vitest';
import type { RouteRequest } from '@armature/proto';
import { MemoryEventPlane } from '@armature/event-plane';
import { MetricsRegistry } from '@armature/metrics';
import { createPolicy, KvRouter } from '@armature/router-core';
import { ArmatureError, MemoryDiscovery, MemoryDiscoveryHub, type ModelCard } from '@armature/runtime';
import { waitFor } from '@armature/testing';
import { Router } from './router-service.js';
import { WorkerDirectory } from './worker-directory.js';

const card = (model: string): ModelCard => ({
  model,
  blockSize: 4,
  totalKvBlocks: 1000,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 512,
  contextLength: 4096,
  tokenizer: 't',
  chatTemplate: 'chatml',
  eosTokenIds: [0],
  engine: 'mocker',
  kvEvents: 'none',
});

const request = (requestId: string, model = 'm', tokens = 8): RouteRequest => ({
  requestId,
  model,
  tokenIds: Array.from({ length: tokens }, (_, i) => i + requestId.length),
  excludedWorkerIds: [],
  failedWorkerIds: [],
});

describe('Router queue', () => {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()!();
  });

  async function setup(queue = { capacity: 2, timeoutMs: 200 }): Promise<{ router: Router; metrics: MetricsRegistry }> {
    const hub = new MemoryDiscoveryHub();
    const discovery = new MemoryDiscovery(hub);
    for (const [id, model] of [
      ['w-m', 'm'],
      ['w-n', 'n'],
    ] as const) {
      await discovery.register({
        instanceId: id,
        role: 'decode',
        model,
        grpcAddress: `127.0.0.1:1${id.length}`,
        card: card(model),
      });
    }
    const workers = new WorkerDirectory(discovery, new MemoryEventPlane());
    workers.start();
    await waitFor(() => workers.size === 2, 2_000);
    const metrics = new MetricsRegistry();
    // Any prompt not yet prefilled makes a worker busy.
    const kv = new KvRouter({ policy: createPolicy('kv'), busy: { prefillTokens: 1 } });
    const router = new Router({ workers, kv, metrics, queue });
    closers.push(
      () => discovery.close(),
      () => workers.close(),
      () => router.close(),
    );
    return { router, metrics };
  }

  it('waits while the worker is busy, in order, and never blocks another model', async () => {
    const { router, metrics } = await setup();
    await router.route(request('a'));
    const order: string[] = [];
    const b = router.route(request('bb')).then((r) => order.push('bb') && r);
    const c = router.route(request('ccc')).then((r) => order.push('ccc') && r);
    // Model n has its own idle worker: answered at once despite m's waiters.
    expect((await router.route(request('n1', 'n'))).decode!.instanceId).toBe('w-n');
    await expect(router.route(request('dddd'))).rejects.toThrow(/busy and the router queue is full \(2 waiting\)/);
    expect(await metrics.registry.getSingleMetricAsString('armature_router_queue_depth')).toMatch(/ 2$/m);

    router.markPrefillComplete('a');
    await b;
    expect(order).toEqual(['bb']);
    router.markPrefillComplete('bb');
    await c;
    expect(order).toEqual(['bb', 'ccc']);
    expect(
      (await metrics.registry.getSingleMetricAsString('armature_router_queue_wait_seconds')).match(/_count (\d+)/)?.[1],
    ).toBe('2');
  });

  it('lets a caller give up, times out, and refuses a duplicate id', async () => {
    const { router, metrics } = await setup();
    await router.route(request('a'));
    const abort = new AbortController();
    const gaveUp = router.route(request('quitter'), abort.signal);
    const patient = router.route(request('patient'));
    await expect(router.route(request('patient'))).rejects.toThrow(/already waiting/);
    abort.abort();
    await expect(gaveUp).rejects.toMatchObject({ cls: 'cancelled', reason: 'route_cancelled' });
    const err = await patient.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArmatureError);
    expect(err).toMatchObject({ cls: 'unavailable', reason: 'router_queue_timeout' });
    expect(await metrics.registry.getSingleMetricAsString('armature_router_queue_rejected_total')).toMatch(
      /reason="timeout"} 1/,
    );
    expect(await metrics.registry.getSingleMetricAsString('armature_router_queue_depth')).toMatch(/ 0$/m);
    // The slot is free again: the next request waits rather than overflowing.
    router.free('a');
    expect((await router.route(request('later'))).decode!.instanceId).toBe('w-m');
  });
});

describe('Router: disaggregated pairs', () => {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()!();
  });

  it('picks a prefill worker for long uncached prompts only while one is up, and releases both loads', async () => {
    const hub = new MemoryDiscoveryHub();
    const discovery = new MemoryDiscovery(hub);
    closers.push(() => discovery.close());
    await discovery.register({
      instanceId: 'd0',
      role: 'decode',
      model: 'm',
      grpcAddress: '127.0.0.1:11',
      card: card('m'),
    });
    const workers = new WorkerDirectory(discovery, new MemoryEventPlane());
    workers.start();
    closers.push(() => workers.close());
    await waitFor(() => workers.size === 1, 2_000);
    const metrics = new MetricsRegistry();
    const kv = new KvRouter({ policy: createPolicy('kv') });
    const router = new Router({ workers, kv, metrics, disagg: { minRemotePrefillTokens: 64 } });
    closers.push(() => router.close());

    const alone = await router.route(request('a', 'm', 200));
    expect([alone.disaggMode, alone.disaggReason, alone.prefill]).toEqual([
      'aggregated',
      'no_prefill_workers',
      undefined,
    ]);
    router.free('a');

    const prefill = await discovery.register({
      instanceId: 'p0',
      role: 'prefill',
      model: 'm',
      grpcAddress: '127.0.0.1:12',
      card: card('m'),
    });
    await waitFor(() => workers.size === 2, 2_000);
    // Prefill workers are never decode candidates.
    expect(workers.forModel('m').map((w) => w.record.instanceId)).toEqual(['d0']);
    const long = await router.route(request('bb', 'm', 200));
    expect(long.decode!.instanceId).toBe('d0');
    expect(long.prefill!.instanceId).toBe('p0');
    expect([long.disaggMode, long.disaggReason, long.blocksToPull]).toEqual(['remote-prefill', 'remote', 50]);
    expect(router.disagg.prefill.active.of('p0').prefillTokens).toBe(200);
    expect(kv.active.of('d0').prefillTokens).toBe(0); // the decode worker computes none of it
    const short = await router.route(request('ccc', 'm', 40));
    expect([short.disaggMode, short.disaggReason, short.prefill]).toEqual(['local-prefill', 'short_prompt', undefined]);
    // A pinned request stays on its worker, aggregated.
    const pinned = await router.route({ ...request('eeee', 'm', 200), pinnedWorkerId: 'd0' });
    expect(pinned.prefill).toBeUndefined();

    router.markPrefillComplete('bb'); // the prefill worker answered: its share is over
    expect(router.disagg.prefill.active.size).toBe(0);
    expect(kv.active.of('d0').requests).toBe(3);
    for (const id of ['bb', 'ccc', 'eeee']) router.free(id);
    expect(kv.active.size).toBe(0);
    // The frontend fell back to a local prefill: the load moves from p0 to d0.
    const fallback = await router.route(request('fffffff', 'm', 200));
    expect(fallback.prefill!.instanceId).toBe('p0');
    expect(kv.active.of('d0').prefillTokens).toBe(0);
    router.markPrefillLocal('fffffff');
    expect(router.disagg.prefill.active.size).toBe(0);
    expect(kv.active.of('d0').prefillTokens).toBe(200);
    expect(await metrics.registry.getSingleMetricAsString('armature_router_prefill_fallbacks_total')).toMatch(/ 1$/m);
    router.markPrefillComplete('fffffff');
    expect(kv.active.of('d0').prefillTokens).toBe(0);
    router.free('fffffff');
    expect(kv.active.size).toBe(0);
    expect(await metrics.registry.getSingleMetricAsString('armature_router_disagg_decisions_total')).toMatch(
      /mode="remote-prefill",reason="remote"} 2/,
    );

    await prefill.unregister();
    await waitFor(() => workers.size === 1, 2_000);
    const after = await router.route(request('fffff', 'm', 200));
    expect(after.disaggMode).toBe('aggregated');
  });
});
