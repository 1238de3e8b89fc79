// The router process: serves the Router gRPC service, follows the workers through
// discovery, their load and KV events through the event plane (loading each worker's KV
// state before scoring it), shares active load with its replicas, and registers itself.
import { RouterService } from '@armature/proto';
import { KV_TOPIC, ZmqEventPlane } from '@armature/event-plane';
import { MetricsRegistry, startProcessMetrics, serveMetrics } from '@armature/metrics';
import { processSettingsFromEnv, routerSettingsFromEnv } from '@armature/deploy/settings';
import { createPolicy, KvRouter } from '@armature/router-core';
import {
  bindGrpcServer,
  createGrpcServer,
  createLogger,
  createShutdown,
  discoveryFromEnv,
  installSignalHandlers,
  leaseMsFromEnv,
  setLogIdentity,
  initTracing,
  tracingStats,
  shutdownGrpcServer,
  withRequestIds,
} from '@armature/runtime';
import { HealthChecker } from './health-checker.js';
import { KvFeed } from './kv-feed.js';
import { followWorkerSeries, zeroRouterSeries } from './metric-series.js';
import { ACTIVE_TOPIC, ReplicaSync } from './replica-sync.js';
import { Router, routerGrpcHandlers } from './router-service.js';
import { WorkerDirectory } from './worker-directory.js';

const log = createLogger('router');

async function main(): Promise<void> {
  const { host, instanceId, grpcPort, metricsPort } = processSettingsFromEnv('router');
  setLogIdentity('router', instanceId);
  initTracing('router', instanceId);
  // Typed, checked as the graph checks them, defaults from @armature/deploy's settings table.
  const settings = routerSettingsFromEnv();
  const policyId = settings.policy;
  const policy = createPolicy(policyId, settings.params);
  const kv = new KvRouter({
    policy,
    busy: settings.busy,
    approximate: settings.approximate,
    replicaId: instanceId,
  });
  // Prefill workers are chosen KV-aware by default; the decode pool uses the router's policy.
  const disagg = settings.disagg;
  const prefillRouter = new KvRouter({
    policy: createPolicy(disagg.prefillPolicy, disagg.prefillParams),
    busy: settings.busy,
    approximate: settings.approximate,
    index: kv.index,
    replicaId: instanceId,
  });
  const discovery = discoveryFromEnv();
  const eventPlane = new ZmqEventPlane();
  const publisher = await eventPlane.createPublisher({ host });
  const metrics = new MetricsRegistry();
  startProcessMetrics(metrics, { service: 'router', tracing: tracingStats });
  // One view of the cluster: the workers (their load and KV events) and the other routers.
  const workers = new WorkerDirectory(discovery, eventPlane, {
    roles: ['decode', 'prefill', 'router'],
    topics: [KV_TOPIC, ACTIVE_TOPIC],
  });
  zeroRouterSeries(metrics, kv.policy.id);
  followWorkerSeries(metrics, workers, kv.policy.id);
  const feed = new KvFeed({
    index: kv.index,
    directory: workers,
    metrics,
    readyTimeoutMs: settings.readyTimeoutMs,
    roles: ['decode', 'prefill'],
  });
  const router = new Router({
    workers,
    kv,
    metrics,
    feed,
    queue: settings.queue,
    inhibitMs: settings.inhibitMs,
    disagg: { ...disagg.options, prefill: prefillRouter },
  });
  const replicas = new ReplicaSync({
    core: router.core,
    replicaId: instanceId,
    directory: workers,
    publisher,
    metrics,
  });
  const health = new HealthChecker(workers, router.core, metrics, settings.health);
  feed.start();
  replicas.start();
  workers.start();
  health.start();

  const server = createGrpcServer();
  server.addService(RouterService, withRequestIds(routerGrpcHandlers(router), 'armature.v1.Router'));
  const port = await bindGrpcServer(server, host, grpcPort);
  const metricsServer = await serveMetrics(metrics, host, metricsPort);
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
        health.close();
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
