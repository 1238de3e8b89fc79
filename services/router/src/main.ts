// The router process: serves the Router gRPC service, follows the workers through
// discovery, their load and KV events through the event plane (loading each worker's KV
// state before scoring it), shares active load with its replicas, and registers itself.
import { randomUUID } from 'node:crypto';
import { RouterService } from '@armature/proto';
import { ZmqEventPlane } from '@armature/event-plane';
import { MetricsRegistry, serveMetrics } from '@armature/metrics';
import {
  compileDisaggSettings,
  createPolicy,
  KvRouter,
  type BusyThresholds,
  type RouterQueueOptions,
} from '@armature/router-core';
import {
  ArmatureError,
  bindGrpcServer,
  createGrpcServer,
  createLogger,
  createShutdown,
  discoveryFromEnv,
  envInt,
  envJson,
  envString,
  installSignalHandlers,
  leaseMsFromEnv,
  shutdownGrpcServer,
} from '@armature/runtime';
import type { ApproxIndexerOptions } from '@armature/kv';
import { KvFeed } from './kv-feed.js';
import { ReplicaSync } from './replica-sync.js';
import { Router, routerGrpcHandlers } from './router-service.js';
import { WorkerSet } from './worker-set.js';

const log = createLogger('router');

function objectFromEnv<T>(name: 'ARMATURE_ROUTER_BUSY' | 'ARMATURE_ROUTER_QUEUE' | 'ARMATURE_ROUTER_APPROX'): T {
  const value = envJson(name, {});
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ArmatureError('invalid_argument', 'bad_env', `${name} must be a JSON object`);
  }
  return value as T;
}

async function main(): Promise<void> {
  const host = envString('ARMATURE_HOST', '127.0.0.1');
  const instanceId = envString('ARMATURE_INSTANCE_ID', `router-${randomUUID().slice(0, 8)}`);
  const policyId = envString('ARMATURE_ROUTER_POLICY', 'kv');
  const policy = createPolicy(policyId, envJson('ARMATURE_ROUTER_PARAMS', {}));
  const kv = new KvRouter({
    policy,
    busy: objectFromEnv<BusyThresholds>('ARMATURE_ROUTER_BUSY'),
    approximate: objectFromEnv<ApproxIndexerOptions>('ARMATURE_ROUTER_APPROX'),
    replicaId: instanceId,
  });
  // Prefill workers are chosen KV-aware by default; the decode pool uses the router's policy.
  const disagg = compileDisaggSettings(envJson('ARMATURE_DISAGG', {}));
  const prefillRouter = new KvRouter({
    policy: createPolicy(disagg.prefillPolicy, disagg.prefillParams),
    busy: objectFromEnv<BusyThresholds>('ARMATURE_ROUTER_BUSY'),
    approximate: objectFromEnv<ApproxIndexerOptions>('ARMATURE_ROUTER_APPROX'),
    index: kv.index,
    replicaId: instanceId,
  });
  const discovery = discoveryFromEnv();
  const eventPlane = new ZmqEventPlane();
  const publisher = await eventPlane.createPublisher({ host });
  const metrics = new MetricsRegistry();
  const workers = new WorkerSet(discovery, eventPlane);
  const feed = new KvFeed({
    index: kv.index,
    discovery,
    eventPlane,
    metrics,
    readyTimeoutMs: envInt('ARMATURE_ROUTER_READY_TIMEOUT_MS', 3_000, { min: 0 }),
    roles: ['decode', 'prefill'],
  });
  const router = new Router({
    workers,
    kv,
    metrics,
    feed,
    queue: objectFromEnv<RouterQueueOptions>('ARMATURE_ROUTER_QUEUE'),
    disagg: { ...disagg.options, prefill: prefillRouter },
  });
  const replicas = new ReplicaSync({
    router: kv,
    prefillRouter,
    replicaId: instanceId,
    discovery,
    eventPlane,
    publisher,
    metrics,
    onChange: () => router.onRemoteChange(),
  });
  feed.start();
  workers.start();
  replicas.start();

  const server = createGrpcServer();
  server.addService(RouterService, routerGrpcHandlers(router));
  const port = await bindGrpcServer(server, host, envInt('ARMATURE_GRPC_PORT', 0, { min: 0, max: 65535 }));
  const metricsServer = await serveMetrics(metrics, host, envInt('ARMATURE_METRICS_PORT', 0, { min: 0, max: 65535 }));
  const registration = await discovery.register(
    {
      instanceId,
      role: 'router',
      grpcAddress: `${host}:${port}`,
      eventAddress: publisher.address,
      metricsAddress: `${host}:${metricsServer.port}`,
      labels: { pid: String(process.pid), policy: policyId },
    },
    { leaseMs: leaseMsFromEnv() },
  );
  log.info('router ready', {
    instanceId,
    grpc: `${host}:${port}`,
    events: publisher.address,
    metrics: `${host}:${metricsServer.port}`,
    policy: policyId,
  });

  installSignalHandlers(
    createShutdown({
      stopAccepting: () => registration.unregister(),
      cleanup: async () => {
        router.close(); // waiting requests get a 503 now, not a cancellation from the server shutdown
        await shutdownGrpcServer(server);
        await replicas.close();
        await feed.close();
        await workers.close();
        await publisher.close();
        metricsServer.server.close();
        await discovery.close();
      },
    }),
  );
}

main().catch((err: unknown) => {
  log.error('router failed to start', { err });
  process.exit(1);
});
