// A worker process, whatever its role: the Worker gRPC service over an engine (llama.cpp
// or the mocker), registered in discovery with its model deployment card and its transfer
// agent's metadata, publishing KV events and load on its own event-plane socket. Prefill
// and decode workers run the same host; the role decides who routes what to them.
import { Metadata } from '@grpc/grpc-js';
import { processSettingsFromEnv, workerSettingsFromEnv, type WorkerSettings } from '@armature/deploy/settings';
import { WorkerClient, WorkerService as WorkerGrpcService } from '@armature/proto';
import { createLlamaCppEngine, createMockerEngine, type Engine } from '@armature/engine';
import { encodeBody, LOAD_TOPIC, ZmqEventPlane, type LoadMessage } from '@armature/event-plane';
import { MetricsRegistry, startProcessMetrics, serveMetrics } from '@armature/metrics';
import {
  bindGrpcServer,
  CLIENT_CHANNEL_OPTIONS,
  createGrpcServer,
  createLogger,
  createShutdown,
  discoveryFromEnv,
  insecureCredentials,
  installSignalHandlers,
  leaseMsFromEnv,
  setLogIdentity,
  initTracing,
  tracingStats,
  shutdownGrpcServer,
  withRequestIds,
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
import { zeroWorkerSeries } from './metric-series.js';
import { PinTable } from './pin-table.js';
import { WorkerService } from './worker-service.js';

/** Region id of the engine's KV cache in the worker's transfer agent. */
export const KV_REGION_ID = 0;

function backendsOf(settings: WorkerSettings): TransferBackendKind[] | undefined {
  if (settings.transferBackends === '') return undefined;
  return settings.transferBackends.split(',').map((b) => b.trim()) as TransferBackendKind[]; // the agent validates them
}

/** The engine the settings name, with its args (and the GGUF path for llama.cpp). */
async function createEngine(settings: WorkerSettings): Promise<Engine> {
  const model = settings.servedModel;
  if (settings.engine === 'mocker') return createMockerEngine({ ...settings.engineArgs, model });
  const modelPath = settings.modelPath;
  return createLlamaCppEngine({ ...settings.engineArgs, model, ...(modelPath ? { modelPath } : {}) });
}

/** Runs a worker process until SIGTERM/SIGINT. */
export async function runWorker(role: 'decode' | 'prefill'): Promise<void> {
  const log = createLogger(role);
  // Typed and checked through @armature/deploy's tables: the defaults the graph compiles with.
  const { host, instanceId, grpcPort, metricsPort, drainTimeoutMs } = processSettingsFromEnv(role);
  setLogIdentity(role, instanceId);
  initTracing(role, instanceId);
  const settings = workerSettingsFromEnv();
  const model = settings.servedModel;
  const engine = await createEngine(settings);
  const card = engine.card;

  const discovery = discoveryFromEnv();
  const eventPlane = new ZmqEventPlane();
  const publisher = await eventPlane.createPublisher({ host });
  const kvLog = new KvEventLog(publisher);
  const metrics = new MetricsRegistry();
  startProcessMetrics(metrics, { service: role, tracing: tracingStats });

  // The KV cache lives in a region of the transfer agent, so peers can pull from it.
  let agent: TransferAgent | undefined;
  let region: MemoryRegion | undefined;
  if (engine.kv && settings.transfer === 'on') {
    agent = await TransferAgent.create({
      agentId: instanceId,
      host,
      port: settings.transferPort,
      backends: backendsOf(settings),
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
          timeoutMs: settings.pinTimeoutMs,
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
        timeoutMs: settings.transferTimeoutMs,
      })
    : undefined;

  engine.onKvEvents((batch) => {
    kvLog.publish(batch);
    for (const e of batch.events) metrics.get('armature_worker_kv_events_total').inc({ type: e.type });
  });
  // The model card, and the engine's passes: batch size, prompt tokens, step time, preemptions.
  metrics.get('armature_worker_model_info').set(
    {
      model,
      engine: card.engine,
      tokenizer: card.tokenizer,
      block_size: String(card.blockSize),
      context_length: String(card.contextLength),
    },
    1,
  );
  metrics.get('armature_worker_kv_total_blocks').set({ model }, card.totalKvBlocks);
  metrics.get('armature_worker_max_num_seqs').set({ model }, card.maxNumSeqs);
  const engineUp = metrics.get('armature_worker_engine_up');
  engineUp.set({ model, engine: card.engine }, 1);
  zeroWorkerSeries(metrics, { role, model, backends: agent?.backendKinds });
  engine.onStep((step) => {
    metrics.get('armature_worker_batch_size').observe({ model }, step.sequences);
    metrics.get('armature_worker_batch_prefill_tokens').observe({ model }, step.prefillTokens);
    if (step.durationMs !== undefined)
      metrics.get('armature_worker_step_seconds').observe({ model }, step.durationMs / 1000);
    if (step.preempted > 0) metrics.get('armature_worker_preemptions_total').inc({ model }, step.preempted);
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
  server.addService(WorkerGrpcService, withRequestIds(service.handlers(), 'armature.v1.Worker'));
  const port = await bindGrpcServer(server, host, grpcPort);
  service.grpcAddress = `${host}:${port}`;
  const metricsServer = await serveMetrics(metrics, host, metricsPort);
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
      // In-flight streams finish, and pinned prefills wait for their pull (or their expiry).
      drain: async () => {
        await service.inFlight.idle();
        await pins?.idle();
      },
      abandon: async () => {
        const n = await service.evict();
        if (n > 0) log.warn('drain deadline passed; handed back requests still running', { requests: n });
      },
      drainTimeoutMs,
      cleanup: async () => {
        clearInterval(heartbeat);
        prefillWatch?.close();
        await shutdownGrpcServer(server);
        pins?.close();
        await engine.close();
        engineUp.set({ model, engine: card.engine }, 0);
        await agent?.close();
        for (const c of releaseClients.values()) c.close();
        await publisher.close();
        metricsServer.server.close();
        await discovery.close();
      },
    }),
  );
}
