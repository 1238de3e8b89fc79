// Upstream against real gRPC servers on 127.0.0.1: it keeps the promises of the ports the
// pipeline is unit-tested on with fakes: as WorkerPort and as RouterPort it runs the
// conformance suites the fakes run; the notifications reach only the router that placed
// the request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import {
  FinishReason,
  RouterService,
  WorkerService,
  type GenerateRequest,
  type GenerateResponse,
  type RouteResponse,
} from '@armature/proto';
import {
  ArmatureError,
  bindGrpcServer,
  createGrpcServer,
  MemoryDiscovery,
  MemoryDiscoveryHub,
  shutdownGrpcServer,
  toGrpcError,
} from '@armature/runtime';
import { CONFORMANCE_MODELS, freePort, routerPortConformance, waitFor, workerPortConformance } from '@armature/testing';
import type { RouterPort, WorkerPort } from './pipeline/index.js';
import { Upstream } from './upstream.js';

const seen: string[] = [];
let workerAddress = '';
let server: Server;
let upstream: Upstream;
let discovery: MemoryDiscovery;

beforeAll(async () => {
  server = createGrpcServer();
  server.addService(WorkerService, {
    // Streams one token every 20 ms, up to 50; says when the client went away.
    generate: (call: ServerWritableStream<GenerateRequest, GenerateResponse>) => {
      let sent = 0;
      const timer = setInterval(() => {
        sent++;
        const last = sent === 50;
        call.write({
          tokenIds: [sent],
          finishReason: last ? FinishReason.FINISH_REASON_STOP : 0,
          cachedTokens: 0,
          promptTokens: 3,
        });
        if (last) {
          clearInterval(timer);
          call.end();
        }
      }, 20);
      call.on('cancelled', () => {
        clearInterval(timer);
        seen.push(`generate cancelled ${call.request.requestId}`);
      });
    },
    prefill: (call: ServerUnaryCall<GenerateRequest, unknown>) => {
      call.on('cancelled', () => seen.push(`prefill cancelled ${call.request.requestId}`)); // never answers
    },
    releaseKv: (call: ServerUnaryCall<{ pinId: string }, unknown>, cb: sendUnaryData<unknown>) => {
      seen.push(`releaseKv ${call.request.pinId}`);
      cb(null, { released: true });
    },
  });
  server.addService(RouterService, {
    route: (
      call: ServerUnaryCall<{ requestId: string; model: string }, RouteResponse>,
      cb: sendUnaryData<RouteResponse>,
    ) => {
      seen.push(`route ${call.request.requestId}`);
      if (call.request.model === CONFORMANCE_MODELS.full) {
        cb(toGrpcError(new ArmatureError('resource_exhausted', 'queue_full', 'the router queue is full')));
        return;
      }
      if (call.request.model === CONFORMANCE_MODELS.held) {
        call.on('cancelled', () => seen.push(`route cancelled ${call.request.requestId}`)); // waits in the queue
        return;
      }
      cb(null, {
        decode: { instanceId: 'decode-0', grpcAddress: workerAddress, dpRank: 0 },
        overlapBlocks: 0,
        policy: 'test',
        disaggMode: 'aggregated',
        disaggReason: '',
        blocksToPull: 0,
      });
    },
    ...Object.fromEntries(
      ['markPrefillComplete', 'markPrefillLocal', 'free'].map((op) => [
        op,
        (call: ServerUnaryCall<{ requestId: string }, unknown>, cb: sendUnaryData<unknown>) => {
          seen.push(`${op} ${call.request.requestId}`);
          cb(null, {});
        },
      ]),
    ),
  });
  const port = await bindGrpcServer(server, '127.0.0.1', 0);
  workerAddress = `127.0.0.1:${port}`;
  const hub = new MemoryDiscoveryHub();
  discovery = new MemoryDiscovery(hub);
  await discovery.register({ instanceId: 'router-0', role: 'router', grpcAddress: workerAddress });
  upstream = new Upstream(new MemoryDiscovery(hub));
  upstream.start();
  await waitFor(() => upstream.routerCount === 1, 5_000, 10, 'the router in discovery');
});

afterAll(async () => {
  upstream?.close();
  await discovery?.close();
  if (server) await shutdownGrpcServer(server, 200);
});

routerPortConformance('Upstream (gRPC)', async () => ({
  port: upstream satisfies RouterPort,
  decodeId: 'decode-0',
  received: (id) => seen.flatMap((s) => (s.endsWith(` ${id}`) && !s.includes('cancelled') ? [s.split(' ')[0]] : [])),
  sawRouteCancel: (id) => seen.includes(`route cancelled ${id}`),
}));

describe('Upstream as RouterPort', () => {
  it('routes, and sends the notifications to the router that placed the request; unknown ids send nothing', async () => {
    const router: RouterPort = upstream;
    await router.route(
      { requestId: 'r1', model: 'm', tokenIds: [1], excludedWorkerIds: [], failedWorkerIds: [] },
      new AbortController().signal,
    );
    router.markPrefillLocal('r1');
    router.markPrefillComplete('r1');
    router.free('r1');
    router.free('r1'); // forgotten after the first Free
    router.free('never-routed');
    await waitFor(() => seen.includes('free r1'), 5_000, 10, 'Free');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.filter((s) => s.endsWith(' r1') || s.endsWith('never-routed'))).toEqual([
      'route r1',
      'markPrefillLocal r1',
      'markPrefillComplete r1',
      'free r1',
    ]);
  });
});

workerPortConformance('Upstream (gRPC)', async () => ({
  port: upstream satisfies WorkerPort,
  worker: workerAddress,
  deadWorker: `127.0.0.1:${await freePort()}`,
  sawCancel: (id) => seen.includes(`generate cancelled ${id}`),
  sawRelease: (pin) => seen.includes(`releaseKv ${pin}`),
}));
