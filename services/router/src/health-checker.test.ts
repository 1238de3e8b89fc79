// The health checker against real gRPC Worker servers: a worker that stops answering
// Health is inhibited after `failures` checks and taken back on its first good answer;
// a DRAINING worker is inhibited at once; a canary request reaches an idle worker.
import { afterEach, describe, expect, it } from 'vitest';
import type { Server, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { MemoryEventPlane } from '@armature/event-plane';
import { MetricsRegistry } from '@armature/metrics';
import { HealthResponse_Status, WorkerService, type GenerateRequest, type HealthResponse } from '@armature/proto';
import { createPolicy, KvRouter, RouterCore } from '@armature/router-core';
import {
  bindGrpcServer,
  createGrpcServer,
  MemoryDiscovery,
  MemoryDiscoveryHub,
  shutdownGrpcServer,
} from '@armature/runtime';
import { testModelCard, waitFor } from '@armature/testing';
import { HealthChecker } from './health-checker.js';
import { WorkerDirectory } from './worker-directory.js';

const card = testModelCard({ model: 'm', engine: 'mocker', kvEvents: 'none' });

/** A Worker server whose Health answer the test sets: serving, draining, or none (hangs). */
async function healthServer() {
  const state = { answer: 'serving' as 'serving' | 'draining' | 'hang', canaries: [] as string[] };
  const server: Server = createGrpcServer();
  server.addService(WorkerService, {
    health: (_call: ServerUnaryCall<unknown, HealthResponse>, cb: sendUnaryData<HealthResponse>) => {
      if (state.answer === 'hang') return;
      cb(null, {
        status:
          state.answer === 'serving' ? HealthResponse_Status.STATUS_SERVING : HealthResponse_Status.STATUS_DRAINING,
        instanceId: 'w',
      } as HealthResponse);
    },
    generate: (call: ServerWritableStream<GenerateRequest, unknown>) => {
      state.canaries.push(call.request.requestId);
      call.write({ tokenIds: [5], finishReason: 2, cachedTokens: 0, promptTokens: 1 });
      call.end();
    },
  });
  const port = await bindGrpcServer(server, '127.0.0.1', 0);
  return { state, server, address: `127.0.0.1:${port}` };
}

describe('HealthChecker', () => {
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()!();
  });

  async function setup(options: ConstructorParameters<typeof HealthChecker>[3]) {
    const worker = await healthServer();
    const discovery = new MemoryDiscovery(new MemoryDiscoveryHub());
    await discovery.register({ instanceId: 'w', role: 'decode', model: 'm', grpcAddress: worker.address, card });
    const directory = new WorkerDirectory(discovery, new MemoryEventPlane());
    directory.start();
    await waitFor(() => directory.size === 1, 2_000);
    const core = new RouterCore({
      source: { candidates: () => [] },
      decode: new KvRouter({ policy: createPolicy('round-robin') }),
    });
    const metrics = new MetricsRegistry();
    const checker = new HealthChecker(directory, core, metrics, options);
    closers.push(
      () => shutdownGrpcServer(worker.server, 100),
      () => discovery.close(),
      () => directory.close(),
      () => checker.close(),
    );
    return { worker, core, checker, metrics };
  }

  it('inhibits a worker that stops answering after `failures` checks, and lifts it on a good answer', async () => {
    const { worker, core, checker, metrics } = await setup({ timeoutMs: 100, failures: 2 });
    await checker.checkAll();
    expect(core.isInhibited('w')).toBe(false);
    worker.state.answer = 'hang';
    await checker.checkAll();
    expect(core.isInhibited('w')).toBe(false); // one failure is not enough
    await checker.checkAll();
    expect(core.isInhibited('w')).toBe(true);
    expect(await metrics.registry.getSingleMetricAsString('armature_router_worker_healthy')).toMatch(/worker="w"} 0/);
    worker.state.answer = 'serving';
    await checker.checkAll();
    expect(core.isInhibited('w')).toBe(false);
    expect(await metrics.registry.getSingleMetricAsString('armature_router_health_checks_total')).toMatch(
      /result="failed"} 2/,
    );
  });

  it('inhibits a draining worker at once, and leaves an inhibition it did not set alone', async () => {
    const { worker, core, checker } = await setup({ failures: 3 });
    worker.state.answer = 'draining';
    await checker.checkAll();
    expect(core.isInhibited('w')).toBe(true);
    worker.state.answer = 'serving';
    await checker.checkAll();
    expect(core.isInhibited('w')).toBe(false);
    core.inhibit('w', 'request_failed');
    await checker.checkAll();
    expect(core.isInhibited('w')).toBe(true); // a failed request's inhibition runs its course
  });

  it('sends an idle worker a one-token canary request', async () => {
    const { worker, checker } = await setup({ canaryIdleMs: 1 });
    await checker.checkAll(); // idle from now
    await new Promise((r) => setTimeout(r, 5));
    await checker.checkAll();
    expect(worker.state.canaries).toHaveLength(1);
    expect(worker.state.canaries[0]).toMatch(/^canary-w-/);
  });

  it('runs on its interval once started', async () => {
    const { worker, core, checker } = await setup({ intervalMs: 20, timeoutMs: 50, failures: 1 });
    checker.start();
    worker.state.answer = 'hang';
    await waitFor(() => core.isInhibited('w'), 2_000, 10, 'the inhibition');
  });
});
