// The worker service's disaggregation paths on real parts in one process: two mocker
// engines whose KV caches live in transfer agents' regions, two real gRPC servers, real
// TCP transfers. The failure paths the end-to-end test cannot reach cheaply are here:
// KV bytes that fail the engine's check, another KV layout, a pin nobody releases.
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  modelCardFromProto,
  WorkerClient,
  WorkerService as WorkerGrpcService,
  type HealthResponse,
  type GenerateRequest,
  type GenerateResponse,
  type PrefillResponse,
} from '@armature/proto';
import { createMockerEngine, type MockerEngine } from '@armature/engine';
import { ZmqEventPlane, type EventPublisher } from '@armature/event-plane';
import { MetricsRegistry } from '@armature/metrics';
import { bindGrpcServer, createGrpcServer, shutdownGrpcServer } from '@armature/runtime';
import { TransferAgent } from '@armature/transfer';
import type { Server } from '@grpc/grpc-js';
import { KvEventLog } from './kv-event-log.js';
import { KvPuller } from './kv-puller.js';
import { PinTable } from './pin-table.js';
import { WorkerService } from './worker-service.js';

const MODEL = 'm';
const plane = new ZmqEventPlane();

interface Node {
  id: string;
  engine: MockerEngine;
  agent: TransferAgent;
  metrics: MetricsRegistry;
  pins: PinTable;
  server: Server;
  publisher: EventPublisher;
  client: WorkerClient;
  service: WorkerService;
}

async function startNode(
  id: string,
  kvLayout?: Record<string, number>,
  pinTimeoutMs = 60_000,
  contextLength = 8192,
  speedup = 200,
): Promise<Node> {
  const engine = createMockerEngine({
    model: MODEL,
    speedup,
    totalKvBlocks: 512,
    blockSize: 16,
    kvLayout,
    contextLength,
  });
  const agent = await TransferAgent.create({ agentId: id, backends: ['tcp'], native: null });
  const region = agent.registerRegion(0, engine.kv.totalBlocks, engine.kv.blockBytes);
  engine.kv.attachMemory(region.bytes);
  const metrics = new MetricsRegistry();
  const publisher = await plane.createPublisher({ host: '127.0.0.1' });
  const clients = new Map<string, WorkerClient>();
  const pins = new PinTable({
    release: (pinId) => engine.kv.release(pinId),
    timeoutMs: pinTimeoutMs,
    onEnd: (_pin, how) => metrics.get('armature_worker_pins_total').inc({ how }),
  });
  const puller = new KvPuller({
    kv: engine.kv,
    agent,
    region,
    metrics,
    releaseRemote: (address, pinId) => {
      let c = clients.get(address);
      if (!c) clients.set(address, (c = new WorkerClient(address, credentials.createInsecure())));
      c.releaseKv({ pinId }, () => {});
    },
  });
  const service = new WorkerService({
    instanceId: id,
    engine,
    kvLog: new KvEventLog(publisher),
    metrics,
    transfer: { agent, regionId: 0 },
    pins,
    puller,
  });
  const server = createGrpcServer();
  server.addService(WorkerGrpcService, service.handlers());
  const port = await bindGrpcServer(server, '127.0.0.1', 0);
  service.grpcAddress = `127.0.0.1:${port}`;
  const client = new WorkerClient(service.grpcAddress, credentials.createInsecure());
  return { id, engine, agent, metrics, pins, server, publisher, client, service };
}

async function stopNode(n: Node): Promise<void> {
  n.client.close();
  await shutdownGrpcServer(n.server);
  n.pins.close();
  await n.engine.close();
  await n.agent.close();
  await n.publisher.close();
}

const tokens = (seed: number, n: number): number[] =>
  Array.from({ length: n }, (_, i) => 300 + ((seed * 131 + i * 17) % 5000));
const request = (id: string, t: number[], remote?: GenerateRequest['remotePrefill']): GenerateRequest => ({
  requestId: id,
  model: MODEL,
  tokenIds: t,
  sampling: { seed: 3 },
  stop: { maxTokens: 12, ignoreEos: true, stopTokenIds: [] },
  remotePrefill: remote,
});

async function generate(n: Node, req: GenerateRequest): Promise<number[]> {
  const out: number[] = [];
  for await (const msg of n.client.generate(req)) out.push(...(msg as GenerateResponse).tokenIds);
  return out;
}
function prefill(n: Node, req: GenerateRequest): Promise<PrefillResponse> {
  return new Promise((resolve, reject) =>
    n.client.prefill(req, new Metadata(), (err, res) => (err ? reject(err) : resolve(res!))),
  );
}
async function counter(n: Node, name: string, labels: string): Promise<number> {
  const text = await n.metrics.expose();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('worker service: disaggregated paths', () => {
  let p: Node;
  let d: Node;
  let agg: Node;
  beforeAll(async () => {
    [p, d, agg] = await Promise.all([startNode('p'), startNode('d'), startNode('agg')]);
  });
  afterAll(async () => {
    await Promise.all([p, d, agg].filter(Boolean).map(stopNode));
  });

  it('answers Health with its load and its model card', async () => {
    const res = await new Promise<HealthResponse>((resolve, reject) =>
      agg.client.health({}, (err, r) => (err ? reject(err) : resolve(r!))),
    );
    expect(res.instanceId).toBe('agg');
    expect(res.load).toMatchObject({ runningRequests: 0, waitingRequests: 0 });
    expect(modelCardFromProto(res.card!)).toEqual(agg.engine.card);
  });

  it('imports over TCP and continues with the aggregated tokens', async () => {
    const t = tokens(1, 200);
    const expected = await generate(agg, request('a0', t));
    const pre = await prefill(p, request('a1', t));
    expect(pre.descriptor!.blockIds).toHaveLength(13);
    expect(p.engine.kv.pinned()).toEqual({ requests: 1, blocks: 13 });
    const rest = await generate(d, request('a1', t, { firstToken: pre.firstToken, descriptor: pre.descriptor }));
    expect([pre.firstToken, ...rest]).toEqual(expected);
    expect(await counter(d, 'armature_worker_remote_prefill_total', 'outcome="imported"')).toBe(1);
    expect(await counter(d, 'armature_transfer_bytes_total', 'backend="tcp"')).toBe(13 * d.engine.kv.blockBytes);
    await expect.poll(() => p.engine.kv.pinned().requests).toBe(0);
  });

  it('prefills locally when the pulled bytes fail the engine check', async () => {
    const t = tokens(2, 100);
    const expected = await generate(agg, request('b0', t));
    const pre = await prefill(p, request('b1', t));
    // Corrupt one pinned block on the prefill side after the descriptor went out.
    const region = p.agent.region(0)!;
    region.view(pre.descriptor!.blockIds[2]!).fill(0xab);
    const rest = await generate(d, request('b1', t, { firstToken: pre.firstToken, descriptor: pre.descriptor }));
    expect([pre.firstToken, ...rest]).toEqual(expected);
    expect(await counter(d, 'armature_worker_remote_prefill_total', 'outcome="verify_failed"')).toBe(1);
    expect(d.engine.load().activeDecodeBlocks).toBe(0);
  });

  it('refuses a descriptor from an engine with another KV layout, and still completes', async () => {
    const other = await startNode('other', { numLayers: 4 });
    try {
      const t = tokens(3, 120);
      const expected = await generate(agg, request('c0', t));
      const pre = await prefill(other, request('c1', t));
      const rest = await generate(d, request('c1', t, { firstToken: pre.firstToken, descriptor: pre.descriptor }));
      expect([pre.firstToken, ...rest]).toEqual(expected);
      expect(await counter(d, 'armature_worker_remote_prefill_total', 'outcome="layout_mismatch"')).toBe(1);
      await expect.poll(() => other.engine.kv.pinned().requests).toBe(0); // released anyway
    } finally {
      await stopNode(other);
    }
  });

  it('frees the imported KV of a request the decode engine then refuses', async () => {
    const small = await startNode('small', undefined, 60_000, 300);
    try {
      const t = tokens(4, 200);
      const pre = await prefill(p, request('d1', t));
      // 200 + 150 tokens fit the prefill worker's context but not this decode worker's.
      const req = { ...request('d1', t, { firstToken: pre.firstToken, descriptor: pre.descriptor }) };
      req.stop = { maxTokens: 150, ignoreEos: true, stopTokenIds: [] };
      const err = await generate(small, req).catch((e: ServiceError) => e);
      expect((err as ServiceError).code).toBe(status.INVALID_ARGUMENT);
      expect(await counter(small, 'armature_worker_remote_prefill_total', 'outcome="imported"')).toBe(1);
      expect(small.engine.load().activeDecodeBlocks).toBe(0);
      small.engine.checkInvariants();
      await expect.poll(() => p.engine.kv.pinned().requests).toBe(0);
    } finally {
      await stopNode(small);
    }
  });

  it('frees a pin nobody releases when its timeout passes', async () => {
    const short = await startNode('short', undefined, 100);
    try {
      await prefill(short, request('e1', tokens(5, 80)));
      expect(short.engine.kv.pinned().requests).toBe(1);
      await expect.poll(() => short.engine.kv.pinned().requests, { timeout: 2_000 }).toBe(0);
      expect(await counter(short, 'armature_worker_pins_total', 'how="expired"')).toBe(1);
      expect(short.engine.load().activeDecodeBlocks).toBe(0);
    } finally {
      await stopNode(short);
    }
  });

  it('answers ReleaseKv for an unknown pin with released=false, and rejects bad prefills', async () => {
    const res = await new Promise<{ released: boolean }>((resolve, reject) =>
      p.client.releaseKv({ pinId: 'nope' }, (err, r) => (err ? reject(err) : resolve(r!))),
    );
    expect(res.released).toBe(false);
    const err = await prefill(p, { ...request('f1', tokens(6, 50)), model: 'other' }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.NOT_FOUND);
    const empty = await prefill(p, request('f2', [], undefined)).catch((e: ServiceError) => e);
    expect((empty as ServiceError).code).toBe(status.INVALID_ARGUMENT);
    expect(p.engine.kv.pinned().requests).toBe(0);
  });
});

describe('worker service: drain', () => {
  it('refuses new work while draining, and hands back running streams with worker_draining when evicted', async () => {
    const n = await startNode('drain', undefined, 60_000, 8192, 1);
    try {
      const long = { ...request('long', tokens(9, 32)), stop: { maxTokens: 4000, ignoreEos: true, stopTokenIds: [] } };
      const got: number[] = [];
      const done = (async () => {
        for await (const msg of n.client.generate(long)) got.push(...(msg as GenerateResponse).tokenIds);
      })().catch((err: ServiceError) => err);
      while (got.length < 3) await new Promise((r) => setTimeout(r, 10));
      n.service.startDraining();
      const refused = await generate(n, request('new', tokens(1, 8))).catch((err: ServiceError) => err);
      expect(refused).toMatchObject({ code: status.UNAVAILABLE });
      expect((refused as ServiceError).metadata.get('armature-reason')).toEqual(['worker_draining']);
      expect(n.service.inFlight.size).toBe(1); // the running stream is not cut by draining
      expect(await n.service.evict()).toBe(1);
      const err = (await done) as ServiceError;
      expect(err).toMatchObject({ code: status.UNAVAILABLE });
      expect(err.metadata.get('armature-reason')).toEqual(['worker_draining']);
      expect(got.length).toBeGreaterThan(2);
      expect(got.length).toBeLessThan(4000);
      expect(n.service.inFlight.size).toBe(0);
      expect(await counter(n, 'armature_worker_requests_total', 'finish_reason="evicted"')).toBe(1);
    } finally {
      await stopNode(n);
    }
  });
});
