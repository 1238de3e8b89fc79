// The router process: serves the Router gRPC service, follows the workers through
// discovery and their load through the event plane, and registers itself.
import { randomUUID } from 'node:crypto';
import { RouterService } from '@armature/proto';
import { ZmqEventPlane } from '@armature/event-plane';
import { MetricsRegistry, serveMetrics } from '@armature/metrics';
import { createPolicy } from '@armature/router-core';
import {
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
import { Router, routerGrpcHandlers } from './router-service.js';
import { WorkerSet } from './worker-set.js';

const log = createLogger('router');

async function main(): Promise<void> {
  const host = envString('ARMATURE_HOST', '127.0.0.1');
  const instanceId = envString('ARMATURE_INSTANCE_ID', `router-${randomUUID().slice(0, 8)}`);
  const policyId = envString('ARMATURE_ROUTER_POLICY', 'least-loaded');
  const policy = createPolicy(policyId, envJson('ARMATURE_ROUTER_PARAMS', {}));
  const discovery = discoveryFromEnv();
  const eventPlane = new ZmqEventPlane();
  const metrics = new MetricsRegistry();
  const workers = new WorkerSet(discovery, eventPlane);
  workers.start();
  const router = new Router(workers, policy, metrics);

  const server = createGrpcServer();
  server.addService(RouterService, routerGrpcHandlers(router));
  const port = await bindGrpcServer(server, host, envInt('ARMATURE_GRPC_PORT', 0, { min: 0, max: 65535 }));
  const metricsServer = await serveMetrics(metrics, host, envInt('ARMATURE_METRICS_PORT', 0, { min: 0, max: 65535 }));
  const registration = await discovery.register(
    {
      instanceId,
      role: 'router',
      grpcAddress: `${host}:${port}`,
      metricsAddress: `${host}:${metricsServer.port}`,
      labels: { pid: String(process.pid) },
    },
    { leaseMs: leaseMsFromEnv() },
  );
  log.info('router ready', {
    instanceId,
    grpc: `${host}:${port}`,
    metrics: `${host}:${metricsServer.port}`,
    policy: policyId,
  });

  installSignalHandlers(
    createShutdown({
      stopAccepting: () => registration.unregister(),
      cleanup: async () => {
        await shutdownGrpcServer(server);
        router.close();
        await workers.close();
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
