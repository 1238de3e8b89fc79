// The in-memory router keeps the RouterPort's promises, as the gRPC Upstream does.
import { ArmatureError } from '@armature/runtime';
import { FakeRouter } from './fake-router.js';
import { CONFORMANCE_MODELS, routerPortConformance } from './router-port-conformance.js';

routerPortConformance('FakeRouter', async () => {
  const decode = { instanceId: 'decode-0', grpcAddress: 'fake://decode-0', dpRank: 0 };
  const router = new FakeRouter({
    decode: [decode],
    decide: (request) => {
      if (request.model === CONFORMANCE_MODELS.full)
        throw new ArmatureError('resource_exhausted', 'queue_full', 'the router queue is full');
      if (request.model === CONFORMANCE_MODELS.held) return new Promise(() => {});
      return {
        decode,
        overlapBlocks: 0,
        policy: 'fake',
        disaggMode: 'aggregated',
        disaggReason: '',
        blocksToPull: 0,
      };
    },
  });
  return {
    port: router,
    decodeId: decode.instanceId,
    received: (id) => router.calls.filter((c) => c.requestId === id).map((c) => c.op),
    sawRouteCancel: (id) => router.cancelledRoutes.has(id),
  };
});
