// A worker process: the Worker gRPC service over an engine (the mocker for now). It
// registers in discovery with its model deployment card and publishes KV events and
// load on its own event-plane socket.
import { randomUUID } from 'node:crypto';
import { WorkerService as WorkerGrpcService } from '@armature/proto';
import { createMockerEngine } from '@armature/engine';
import { encodeBody, LOAD_TOPIC, ZmqEventPlane, type LoadMessage } from '@armature/event-plane';
import { MetricsRegistry, serveMetrics } from '@armature/metrics';
import {
  bindGrpcServer,
  createGrpcServer,
  createLogger,
  createShutdown,
  discoveryFromEnv,
  envEnum,
  envInt,
  envJson,
  envString,
  installSignalHandlers,
  leaseMsFromEnv,
  shutdownGrpcServer,
} from '@armature/runtime';
import { KvEventLog } from './kv-event-log.js';
import { WorkerService } from './worker-service.js';

const log = createLogger('decode');

async function main(): Promise<void> {
  const host = envString('ARMATURE_HOST', '127.0.0.1');
  const instanceId = envString('ARMATURE_INSTANCE_ID', `decode-${randomUUID().slice(0, 8)}`);
  const model = envString('ARMATURE_MODEL', 'armature/mock-model');
  envEnum('ARMATURE_ENGINE', ['mocker'] as const, 'mocker');
  const engine = createMockerEngine({ ...envJson('ARMATURE_ENGINE_ARGS', {}), model });
  const card = engine.card;

  const discovery = discoveryFromEnv();
  const eventPlane = new ZmqEventPlane();
  const publisher = await eventPlane.createPublisher({ host });
  const kvLog = new KvEventLog(publisher);
  const metrics = new MetricsRegistry();

  engine.onKvEvents((batch) => {
    kvLog.publish(batch);
    for (const e of batch.events) metrics.get('armature_worker_kv_events_total').inc({ type: e.type });
  });
  engine.onLoad((load) => {
    publisher.publish(LOAD_TOPIC, encodeBody({ instanceId, ...load } satisfies LoadMessage));
    metrics.get('armature_worker_running_requests').set({ model }, load.runningRequests);
    metrics.get('armature_worker_waiting_requests').set({ model }, load.waitingRequests);
    metrics.get('armature_worker_kv_usage_ratio').set({ model }, load.kvUsage);
    metrics.get('armature_worker_active_decode_blocks').set({ model }, load.activeDecodeBlocks);
    metrics.get('armature_worker_active_prefill_tokens').set({ model }, load.activePrefillTokens);
  });
  // Idle workers still report load now and then, so a new router learns it quickly.
  const heartbeat = setInterval(
    () => publisher.publish(LOAD_TOPIC, encodeBody({ instanceId, ...engine.load() })),
    1_000,
  );
  heartbeat.unref();

  const service = new WorkerService({ instanceId, engine, kvLog, metrics });
  const server = createGrpcServer();
  server.addService(WorkerGrpcService, service.handlers());
  const port = await bindGrpcServer(server, host, envInt('ARMATURE_GRPC_PORT', 0, { min: 0, max: 65535 }));
  const metricsServer = await serveMetrics(metrics, host, envInt('ARMATURE_METRICS_PORT', 0, { min: 0, max: 65535 }));
  const registration = await discovery.register(
    {
      instanceId,
      role: 'decode',
      model,
      grpcAddress: `${host}:${port}`,
      eventAddress: publisher.address,
      metricsAddress: `${host}:${metricsServer.port}`,
      card,
      labels: { pid: String(process.pid) },
    },
    { leaseMs: leaseMsFromEnv() },
  );
  log.info('worker ready', {
    instanceId,
    model,
    grpc: `${host}:${port}`,
    events: publisher.address,
    engine: card.engine,
  });

  installSignalHandlers(
    createShutdown({
      stopAccepting: async () => {
        service.startDraining();
        await registration.unregister();
      },
      drain: () => service.inFlight.idle(),
      drainTimeoutMs: envInt('ARMATURE_DRAIN_TIMEOUT_MS', 30_000, { min: 0 }),
      cleanup: async () => {
        clearInterval(heartbeat);
        await shutdownGrpcServer(server);
        await engine.close();
        await publisher.close();
        metricsServer.server.close();
        await discovery.close();
      },
    }),
  );
}

main().catch((err: unknown) => {
  log.error('worker failed to start', { err });
  process.exit(1);
});
