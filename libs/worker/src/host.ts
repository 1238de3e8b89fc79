// A worker process, whatever its role: the Worker gRPC service over an engine (llama.cpp
// or the mocker), registered in discovery with its model deployment card and its transfer
// agent's metadata, publishing KV events and load on its own event-plane socket. Prefill
// and decode workers run the same host; the role decides who routes what to them.
import { randomUUID } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import { WorkerClient, WorkerService as WorkerGrpcService } from '@armature/proto';
import { createLlamaCppEngine, createMockerEngine, type Engine } from '@armature/engine';
import { encodeBody, LOAD_TOPIC, ZmqEventPlane, type LoadMessage } from '@armature/event-plane';
import { MetricsRegistry, serveMetrics } from '@armature/metrics';
import {
  bindGrpcServer,
  CLIENT_CHANNEL_OPTIONS,
  createGrpcServer,
  createLogger,
  createShutdown,
  discoveryFromEnv,
  envEnum,
  envInt,
  envJson,
  envString,
  insecureCredentials,
  installSignalHandlers,
  leaseMsFromEnv,
  shutdownGrpcServer,
  type Watch,
} from '@armature/runtime';
import {
  encodeAgentMetadata,
  TRANSFER_METADATA_LABEL,
  TransferAgent,
  type MemoryRegion,
  type TransferBackendKind,
} from '@armature/transfer';
import { KvEventLog } from './kv-event-log.js';
import { KvPuller } from './kv-puller.js';
import { DEFAULT_PIN_TIMEOUT_MS, PinTable } from './pin-table.js';
import { WorkerService } from './worker-service.js';

/** Region id of the engine's KV cache in the worker's transfer agent. */
export const KV_REGION_ID = 0;

function backendsFromEnv(): TransferBackendKind[] | undefined {
  const raw = envString('ARMATURE_TRANSFER_BACKENDS', '');
  if (raw === '') return undefined;
  return raw.split(',').map((b) => b.trim()) as TransferBackendKind[]; // the agent validates them
}

/** The engine ARMATURE_ENGINE names, with ARMATURE_ENGINE_ARGS (and ARMATURE_MODEL_PATH for llama.cpp). */
async function createEngine(model: string): Promise<Engine> {
  const kind = envEnum('ARMATURE_ENGINE', ['mocker', 'llamacpp'] as const, 'mocker');
  const args = envJson('ARMATURE_ENGINE_ARGS', {}) as Record<string, unknown>;
  if (kind === 'mocker') return createMockerEngine({ ...args, model });
  const modelPath = envString('ARMATURE_MODEL_PATH', '');
  return createLlamaCppEngine({ ...args, model, ...(modelPath ? { modelPath } : {}) });
}

/** Runs a worker process until SIGTERM/SIGINT. */
export async function runWorker(role: 'decode' | 'prefill'): Promise<void> {
  const log = createLogger(role);
  const host = envString('ARMATURE_HOST', '127.0.0.1');
  const instanceId = envString('ARMATURE_INSTANCE_ID', `${role}-${randomUUID().slice(0, 8)}`);
  const model = envString('ARMATURE_MODEL', 'armature/mock-model');
  const engine = await createEngine(model);
  const card = engine.card;

  const discovery = discoveryFromEnv();
  const eventPlane = new ZmqEventPlane();
  const publisher = await eventPlane.createPublisher({ host });
  const kvLog = new KvEventLog(publisher);
  const metrics = new MetricsRegistry();

  // The KV cache lives in a region of the transfer agent, so peers can pull from it.
  let agent: TransferAgent | undefined;
  let region: MemoryRegion | undefined;
  if (engine.kv && envEnum('ARMATURE_TRANSFER', ['on', 'off'] as const, 'on') === 'on') {
    agent = await TransferAgent.create({
      agentId: instanceId,
      host,
      port: envInt('ARMATURE_TRANSFER_PORT', 0, { min: 0, max: 65535 }),
      backends: backendsFromEnv(),
    });
    region = agent.registerRegion(KV_REGION_ID, engine.kv.totalBlocks, engine.kv.blockBytes);
    engine.kv.attachMemory(region.bytes);
  }

  const releaseClients = new Map<string, WorkerClient>();
  const releaseRemote = (address: string, pinId: string): void => {
    watchPrefillWorkers();
    let client = releaseClients.get(address);
    if (!client) {
      client = new WorkerClient(address, insecureCredentials(), CLIENT_CHANNEL_OPTIONS);
      releaseClients.set(address, client);
    }
    client.releaseKv({ pinId }, new Metadata(), { deadline: Date.now() + 5_000 }, (err) => {
      // The prefill worker may be gone; its pin timeout frees the blocks if it is not.
      if (err) log.debug('releaseKv failed', { address, pinId, err: err.message });
    });
  };

  // A prefill worker that leaves: drop its mapping/connection and its release client.
  // Watched from the first pull on, so workers that never pull never poll discovery for it.
  let prefillWatch: Watch | undefined;
  const watchPrefillWorkers = (): void => {
    if (prefillWatch || !agent) return;
    prefillWatch = discovery.watch({ role: 'prefill' }, (e) => {
      if (e.type !== 'removed') return;
      void agent.dropPeer(e.record.instanceId).catch(() => {});
      const address = e.record.grpcAddress;
      if (address) {
        releaseClients.get(address)?.close();
        releaseClients.delete(address);
      }
    });
  };

  const pins =
    engine.kv && agent
      ? new PinTable({
          release: (pinId) => engine.kv!.release(pinId),
          timeoutMs: envInt('ARMATURE_PREFILL_PIN_TIMEOUT_MS', DEFAULT_PIN_TIMEOUT_MS, { min: 1 }),
          onEnd: (_pinId, how) => {
            metrics.get('armature_worker_pins_total').inc({ how });
            service.updatePins(); // pins start only once the service exists
          },
        })
      : undefined;
  const puller = engine.kv
    ? new KvPuller({
        kv: engine.kv,
        agent,
        region,
        metrics,
        releaseRemote,
        timeoutMs: envInt('ARMATURE_TRANSFER_TIMEOUT_MS', 30_000, { min: 1 }),
      })
    : undefined;

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
  const heartbeat = setInterval(() => {
    publisher.publish(LOAD_TOPIC, encodeBody({ instanceId, ...engine.load() }));
    if (agent) metrics.get('armature_transfer_served_bytes_total').inc(agent.counters.servedBytes - servedSoFar);
    servedSoFar = agent?.counters.servedBytes ?? 0;
  }, 1_000);
  let servedSoFar = 0;
  heartbeat.unref();

  const service = new WorkerService({
    instanceId,
    engine,
    kvLog,
    metrics,
    transfer: agent ? { agent, regionId: KV_REGION_ID } : undefined,
    pins,
    puller,
  });
  const server = createGrpcServer();
  server.addService(WorkerGrpcService, service.handlers());
  const port = await bindGrpcServer(server, host, envInt('ARMATURE_GRPC_PORT', 0, { min: 0, max: 65535 }));
  service.grpcAddress = `${host}:${port}`;
  const metricsServer = await serveMetrics(metrics, host, envInt('ARMATURE_METRICS_PORT', 0, { min: 0, max: 65535 }));
  const labels: Record<string, string> = { pid: String(process.pid) };
  if (agent) labels[TRANSFER_METADATA_LABEL] = encodeAgentMetadata(agent.metadata());
  const registration = await discovery.register(
    {
      instanceId,
      role,
      model,
      grpcAddress: service.grpcAddress,
      eventAddress: publisher.address,
      metricsAddress: `${host}:${metricsServer.port}`,
      card,
      labels,
    },
    { leaseMs: leaseMsFromEnv() },
  );
  log.info('worker ready', {
    instanceId,
    role,
    model,
    grpc: service.grpcAddress,
    events: publisher.address,
    engine: card.engine,
    transfer: agent ? agent.backendKinds.join(',') : 'off',
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
        prefillWatch?.close();
        await shutdownGrpcServer(server);
        pins?.close();
        await engine.close();
        await agent?.close();
        for (const c of releaseClients.values()) c.close();
        await publisher.close();
        metricsServer.server.close();
        await discovery.close();
      },
    }),
  );
}
