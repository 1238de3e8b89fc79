// The router's KV feed against an engine that speaks vLLM's wire format: a bare ZeroMQ PUB
// socket sending [topic, seq, msgpack batch] frames the test crafts (positional and map
// encodings, opaque hashes), and a real gRPC Worker server answering DumpKvState from the
// same batches. Loss, restarts and departures are caused for real on the sockets.
import { afterEach, describe, expect, it } from 'vitest';
import { Encoder } from '@msgpack/msgpack';
import * as zmq from 'zeromq';
import { status, type Server } from '@grpc/grpc-js';
import { WorkerService, type WorkerServer } from '@armature/proto';
import { encodeFrames, KV_TOPIC, ZmqEventPlane } from '@armature/event-plane';
import { blockHash, computeSequenceHashes, KvIndexer, limbsFromHashes } from '@armature/kv';
import { MetricsRegistry } from '@armature/metrics';
import {
  bindGrpcServer,
  createGrpcServer,
  MemoryDiscovery,
  MemoryDiscoveryHub,
  shutdownGrpcServer,
  type ModelCard,
} from '@armature/runtime';
import { waitFor } from '@armature/testing';
import { KvFeed } from './kv-feed.js';
import { WorkerDirectory } from './worker-directory.js';

const BLOCK = 4;
const card: ModelCard = {
  model: 'm',
  blockSize: BLOCK,
  totalKvBlocks: 1000,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 512,
  contextLength: 4096,
  tokenizer: 't',
  chatTemplate: 'chatml',
  eosTokenIds: [0],
  engine: 'vllm',
  kvEvents: 'opaque',
};

const encoder = new Encoder({ useBigInt64: true });
/** vLLM's engine-private hash for our test: anything that is not ours. */
const engineHash = (ours: bigint): bigint => ours ^ 0x5555_aaaa_5555_aaaan;

/** Our sequence hashes of the full blocks of `tokens`. */
function ourHashes(tokens: number[]): bigint[] {
  const local: bigint[] = [];
  for (let i = 0; i + BLOCK <= tokens.length; i += BLOCK) local.push(blockHash(tokens.slice(i, i + BLOCK)));
  return computeSequenceHashes(local);
}

/** A vLLM-format batch storing the blocks of `tokens` after `parentTokens` (already stored). */
function storedBatch(tokens: number[], parentTokens: number[], encoding: 'positional' | 'map'): Uint8Array {
  const all = [...parentTokens, ...tokens];
  const hashes = ourHashes(all)
    .slice(parentTokens.length / BLOCK)
    .map(engineHash);
  const parent = parentTokens.length > 0 ? engineHash(ourHashes(parentTokens).at(-1)!) : null;
  const event =
    encoding === 'positional'
      ? ['BlockStored', hashes, parent, tokens, BLOCK, null, 'GPU']
      : {
          type: 'BlockStored',
          block_hashes: hashes,
          parent_block_hash: parent,
          token_ids: tokens,
          block_size: BLOCK,
          lora_id: null,
          medium: 'GPU',
          lora_name: null,
        };
  return encoder.encode([Date.now() / 1000, [event], null]);
}

function removedBatch(tokens: number[]): Uint8Array {
  const hashes = ourHashes(tokens).map(engineHash);
  return encoder.encode([Date.now() / 1000, [['BlockRemoved', hashes.slice(-1), 'GPU']], null]);
}

const seqTokens = (start: number, blocks: number): number[] =>
  Array.from({ length: blocks * BLOCK }, (_, i) => start + i);

/** A fake vLLM engine: publishes frames on a real PUB socket and serves DumpKvState over real gRPC. */
class VllmLikeWorker {
  /** Every batch published, by sequence number. */
  readonly log: Uint8Array[] = [];
  readonly dumpRequests: Array<bigint | undefined> = [];
  /** Full dump content: what the engine holds now (events that rebuild it). */
  fullState: Uint8Array[] = [];
  private constructor(
    readonly socket: zmq.Publisher,
    readonly server: Server,
    readonly grpcAddress: string,
  ) {}

  static async start(): Promise<VllmLikeWorker> {
    const socket = new zmq.Publisher({ linger: 0 });
    await socket.bind('tcp://127.0.0.1:0');
    const server = createGrpcServer();
    const holder: { worker?: VllmLikeWorker } = {};
    const unimplemented = { code: status.UNIMPLEMENTED, details: 'not a generating worker' };
    const handlers: WorkerServer = {
      generate: (call) => call.destroy(Object.assign(new Error('unimplemented'), unimplemented)),
      health: (_call, cb) => cb(unimplemented as never),
      prefill: (_call, cb) => cb(unimplemented as never),
      releaseKv: (_call, cb) => cb(unimplemented as never),
      dumpKvState: (call, cb) => {
        const w = holder.worker!;
        const from = call.request.fromSeq === undefined ? undefined : BigInt(call.request.fromSeq);
        w.dumpRequests.push(from);
        const nextSeq = w.log.length;
        if (from !== undefined && from <= BigInt(nextSeq)) {
          cb(null, {
            eventBatches: w.log.slice(Number(from)).map((b) => Buffer.from(b)),
            firstSeq: Number(from),
            nextSeq,
            fullDump: false,
          });
        } else {
          const cleared = encoder.encode([Date.now() / 1000, [['AllBlocksCleared']], null]);
          cb(null, {
            eventBatches: [cleared, ...w.fullState].map((b) => Buffer.from(b)),
            firstSeq: nextSeq,
            nextSeq,
            fullDump: true,
          });
        }
      },
    };
    server.addService(WorkerService, handlers);
    const port = await bindGrpcServer(server, '127.0.0.1', 0);
    holder.worker = new VllmLikeWorker(socket, server, `127.0.0.1:${port}`);
    return holder.worker;
  }

  get eventAddress(): string {
    return this.socket.lastEndpoint!;
  }

  /** Records a batch as published; sends it unless `lose`. */
  async publish(batch: Uint8Array, options: { lose?: boolean } = {}): Promise<void> {
    const seq = BigInt(this.log.length);
    this.log.push(batch);
    this.fullState.push(batch);
    if (!options.lose) await this.socket.send(encodeFrames('kv', seq, batch));
  }

  async close(): Promise<void> {
    this.socket.close();
    await shutdownGrpcServer(this.server, 100);
  }
}

describe('KvFeed', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  async function setup(): Promise<{
    worker: VllmLikeWorker;
    feed: KvFeed;
    index: KvIndexer;
    discovery: MemoryDiscovery;
    metrics: MetricsRegistry;
    register: () => Promise<() => Promise<void>>;
  }> {
    const worker = await VllmLikeWorker.start();
    cleanups.push(() => worker.close());
    const hub = new MemoryDiscoveryHub();
    const discovery = new MemoryDiscovery(hub);
    const index = new KvIndexer();
    const metrics = new MetricsRegistry();
    const directory = new WorkerDirectory(discovery, new ZmqEventPlane(), { topics: [KV_TOPIC] });
    const feed = new KvFeed({ index, directory, metrics, readyTimeoutMs: 10_000 });
    feed.start();
    directory.start();
    cleanups.push(
      () => directory.close(),
      () => feed.close(),
    );
    const workerDiscovery = new MemoryDiscovery(hub);
    cleanups.push(() => workerDiscovery.close());
    const register = async (): Promise<() => Promise<void>> => {
      const registration = await workerDiscovery.register({
        instanceId: 'vllm-0',
        role: 'decode',
        model: 'm',
        grpcAddress: worker.grpcAddress,
        eventAddress: worker.eventAddress,
        card,
      });
      return () => registration.unregister();
    };
    return { worker, feed, index, discovery, metrics, register };
  }

  const depth = (index: KvIndexer, tokens: number[]): number =>
    index.findMatches(limbsFromHashes(ourHashes(tokens))).workers.find((w) => w.instanceId === 'vllm-0')?.depth ?? 0;

  /** Publishes harmless batches until the subscriber hears them (ZeroMQ's slow joiner). */
  async function awaitConnected(worker: VllmLikeWorker, index: KvIndexer, feed: KvFeed): Promise<void> {
    const probe = seqTokens(90_000, 1);
    await waitFor(async () => {
      await worker.publish(storedBatch(probe, [], 'map'));
      await new Promise((r) => setTimeout(r, 20));
      return feed.state('vllm-0')?.phase === 'live' && depth(index, probe) === 1;
    }, 5_000);
  }

  it('loads a new worker with a full dump before it is ready, then follows both vLLM encodings', async () => {
    const { worker, feed, index, register } = await setup();
    const a = seqTokens(1000, 3);
    await worker.publish(storedBatch(a, [], 'positional'), { lose: true }); // before the router listens
    await register();
    await waitFor(() => feed.isReady('vllm-0'), 5_000);
    expect(worker.dumpRequests[0]).toBeUndefined(); // a full dump
    expect(depth(index, a)).toBe(3);

    await awaitConnected(worker, index, feed);
    const b = seqTokens(2000, 2);
    await worker.publish(storedBatch(b, a, 'map'));
    await waitFor(() => depth(index, [...a, ...b]) === 5, 5_000);
    await worker.publish(removedBatch([...a, ...b]));
    await waitFor(() => depth(index, [...a, ...b]) === 4, 5_000);
  });

  it('fetches the missing range after a sequence gap', async () => {
    const { worker, feed, index, metrics, register } = await setup();
    await register();
    await waitFor(() => feed.isReady('vllm-0'), 5_000);
    await awaitConnected(worker, index, feed);
    const a = seqTokens(3000, 2);
    const b = seqTokens(4000, 2);
    const c = seqTokens(5000, 2);
    const lostFrom = BigInt(worker.log.length);
    await worker.publish(storedBatch(a, [], 'positional'), { lose: true });
    await worker.publish(storedBatch(b, a, 'positional'), { lose: true });
    await worker.publish(storedBatch(c, [...a, ...b], 'map'));
    await waitFor(() => depth(index, [...a, ...b, ...c]) === 6, 5_000);
    expect(worker.dumpRequests).toContain(lostFrom);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/armature_router_kv_gaps_total\{kind="loss"\} 1/);
    expect(text).toMatch(/armature_router_kv_recoveries_total\{kind="range",outcome="ok"\} 1/);
  });

  it('reloads in full when the publisher restarts, and drops a departed worker', async () => {
    const { worker, feed, index, register, discovery } = await setup();
    const unregister = await register();
    await waitFor(() => feed.isReady('vllm-0'), 5_000);
    await awaitConnected(worker, index, feed);
    const a = seqTokens(6000, 2);
    await worker.publish(storedBatch(a, [], 'map'));
    await waitFor(() => depth(index, a) === 2, 5_000);

    // The engine restarts: empty cache, sequence numbers from 0 again.
    worker.log.length = 0;
    worker.fullState = [];
    const fullDumps = worker.dumpRequests.filter((r) => r === undefined).length;
    const b = seqTokens(7000, 1);
    await worker.publish(storedBatch(b, [], 'map'));
    await waitFor(() => worker.dumpRequests.filter((r) => r === undefined).length > fullDumps, 5_000);
    await waitFor(() => depth(index, a) === 0 && depth(index, b) === 1, 5_000);

    const records = await discovery.list({ role: 'decode' });
    expect(records).toHaveLength(1);
    await unregister();
    await waitFor(() => index.blocksOf('vllm-0') === 0 && !feed.isReady('vllm-0'), 5_000);
  });
});
