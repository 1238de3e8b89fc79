// Router replicas share the load they place on both pools of a disaggregated deployment
// over real ZeroMQ sockets: a prefill routed by one replica weighs on the other replica's
// view of that prefill worker, and its release clears it there too.
import { afterEach, describe, expect, it } from 'vitest';
import { ZmqEventPlane } from '@armature/event-plane';
import { MetricsRegistry } from '@armature/metrics';
import { createPolicy, KvRouter, RouterCore, type CandidateWorker } from '@armature/router-core';
import { MemoryDiscovery, MemoryDiscoveryHub, type ModelCard } from '@armature/runtime';
import { waitFor } from '@armature/testing';
import { ACTIVE_TOPIC, ReplicaSync } from './replica-sync.js';
import { WorkerDirectory } from './worker-directory.js';

const card: ModelCard = {
  model: 'm',
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
};
const worker = (id: string): CandidateWorker => ({
  instanceId: id,
  grpcAddress: '127.0.0.1:1',
  card,
  published: undefined,
  approximate: true,
});

describe('ReplicaSync across pools', () => {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()!();
  });

  it('shares prefill-pool and decode-pool load between replicas', async () => {
    const hub = new MemoryDiscoveryHub();
    const plane = new ZmqEventPlane();
    const replicas = [];
    for (const id of ['r0', 'r1']) {
      const discovery = new MemoryDiscovery(hub);
      const publisher = await plane.createPublisher({ host: '127.0.0.1' });
      const decode = new KvRouter({ policy: createPolicy('kv'), replicaId: id });
      const prefill = new KvRouter({ policy: createPolicy('kv'), replicaId: id, index: decode.index });
      const core = new RouterCore({ source: { candidates: () => [] }, decode, prefill });
      const directory = new WorkerDirectory(discovery, plane, { roles: ['router'], topics: [ACTIVE_TOPIC] });
      const sync = new ReplicaSync({ core, replicaId: id, directory, publisher, metrics: new MetricsRegistry() });
      sync.start();
      directory.start();
      await discovery.register({ instanceId: id, role: 'router', eventAddress: publisher.address });
      closers.push(
        () => discovery.close(),
        () => publisher.close(),
        () => sync.close(),
        () => directory.close(),
      );
      replicas.push({ decode, prefill });
    }
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const tokenIds = Array.from({ length: 64 }, (_, i) => i + 7);
    // Subscriptions connect asynchronously: publish until the other replica hears.
    await waitFor(
      () => {
        a.prefill.free('probe');
        a.prefill.route([worker('p0')], { requestId: 'probe', model: 'm', tokenIds });
        // (Not prefillTokens: after the first probe r0 predicts p0 caches these tokens.)
        return b.prefill.active.size > 0;
      },
      5_000,
      50,
      'replica r1 hearing r0',
    );
    a.prefill.free('probe');
    await waitFor(() => b.prefill.active.size === 0, 2_000);

    // Other tokens than the probe's, which p0 is now predicted to cache.
    const prompt = tokenIds.map((t) => t + 1000);
    a.prefill.route([worker('p0')], { requestId: 'x', model: 'm', tokenIds: prompt });
    a.decode.route([worker('d0')], { requestId: 'x', model: 'm', tokenIds: prompt });
    a.decode.prefillComplete('x');
    await waitFor(
      () => b.prefill.active.of('p0').prefillTokens === 64 && b.decode.active.of('d0').requests === 1,
      2_000,
    );
    // The pools stay apart: the prefill worker's load is not the decode worker's.
    expect(b.decode.active.of('p0').requests).toBe(0);
    expect(b.prefill.active.of('d0').requests).toBe(0);
    expect(b.decode.active.of('d0').prefillTokens).toBe(0);

    // The remote prefill fell back: the prefill counts on the decode worker again, on both.
    a.prefill.free('x');
    a.decode.prefillLocal('x');
    await waitFor(
      () => b.prefill.active.size === 0 && b.decode.active.of('d0').prefillTokens === 64,
      2_000,
      20,
      'replica r1 hearing the local prefill',
    );

    a.decode.free('x');
    await waitFor(() => b.prefill.active.size === 0 && b.decode.active.size === 0, 2_000);
  });
});
