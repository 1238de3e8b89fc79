// The Router gRPC service: chooses a worker per request with the configured policy and
// keeps the active load it has placed on each worker (Route / MarkPrefillComplete / Free).
import type { handleUnaryCall } from '@grpc/grpc-js';
import type {
  FreeRequest,
  FreeResponse,
  MarkPrefillCompleteRequest,
  MarkPrefillCompleteResponse,
  RouteRequest,
  RouteResponse,
  RouterServer,
} from '@armature/proto';
import { ActiveLoadTracker, type RoutingPolicy, type WorkerView } from '@armature/router-core';
import { ArmatureError, createLogger, toGrpcError } from '@armature/runtime';
import type { MetricsRegistry } from '@armature/metrics';
import type { WorkerSet } from './worker-set.js';

const log = createLogger('router');

export class Router {
  readonly active = new ActiveLoadTracker();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly workers: WorkerSet,
    private readonly policy: RoutingPolicy,
    private readonly metrics: MetricsRegistry,
  ) {
    workers.onRemoved((id) => this.active.dropWorker(id));
    this.sweeper = setInterval(() => {
      const n = this.active.sweep();
      if (n > 0) log.warn('swept stale active-load entries', { count: n });
    }, 30_000);
    this.sweeper.unref();
  }

  /** Chooses the worker for a request and records its load. */
  route(req: RouteRequest): RouteResponse {
    const started = process.hrtime.bigint();
    if (!req.model) throw new ArmatureError('invalid_argument', 'missing_model', 'model is required');
    const all = this.workers.forModel(req.model);
    if (all.length === 0) {
      this.metrics.get('armature_router_no_worker_total').inc({ model: req.model });
      throw new ArmatureError('unavailable', 'no_worker', `no worker is serving model ${JSON.stringify(req.model)}`);
    }
    const excluded = new Set(req.excludedWorkerIds);
    let candidates = all.filter((w) => !excluded.has(w.record.instanceId));
    if (req.pinnedWorkerId) {
      candidates = all.filter((w) => w.record.instanceId === req.pinnedWorkerId);
      if (candidates.length === 0) {
        throw new ArmatureError(
          'unavailable',
          'pinned_worker_unavailable',
          `worker ${JSON.stringify(req.pinnedWorkerId)} is not serving model ${JSON.stringify(req.model)}`,
        );
      }
    }
    if (candidates.length === 0) {
      throw new ArmatureError(
        'unavailable',
        'no_worker',
        `no healthy worker left for model ${JSON.stringify(req.model)}`,
      );
    }
    const views: WorkerView[] = candidates.map((w) => ({
      instanceId: w.record.instanceId,
      grpcAddress: w.record.grpcAddress!,
      card: w.record.card!,
      published: w.published,
      tracked: this.active.of(w.record.instanceId),
    }));
    const decision = req.pinnedWorkerId ? { worker: views[0]!, overlapBlocks: 0 } : this.policy.choose(views, req);
    const worker = decision.worker;
    const blockSize = Math.max(1, worker.card.blockSize);
    const promptBlocks = Math.ceil(req.tokenIds.length / blockSize);
    const newPrefillTokens = Math.max(0, req.tokenIds.length - decision.overlapBlocks * blockSize);
    this.active.add(req.requestId, worker.instanceId, newPrefillTokens, promptBlocks);
    this.metrics
      .get('armature_router_decisions_total')
      .inc({ model: req.model, policy: this.policy.id, worker: worker.instanceId });
    this.metrics
      .get('armature_router_active_requests')
      .set({ worker: worker.instanceId }, this.active.of(worker.instanceId).requests);
    this.metrics
      .get('armature_router_overhead_seconds')
      .observe({ stage: 'total' }, Number(process.hrtime.bigint() - started) / 1e9);
    return {
      decode: { instanceId: worker.instanceId, grpcAddress: worker.grpcAddress, dpRank: 0 },
      overlapBlocks: decision.overlapBlocks,
      policy: req.pinnedWorkerId ? 'pinned' : this.policy.id,
    };
  }

  markPrefillComplete(requestId: string): void {
    this.active.prefillComplete(requestId);
  }

  free(requestId: string): void {
    const worker = this.active.free(requestId);
    if (worker) this.metrics.get('armature_router_active_requests').set({ worker }, this.active.of(worker).requests);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/** The gRPC face of a Router. */
export function routerGrpcHandlers(router: Router): RouterServer {
  const unary =
    <Req, Res>(fn: (req: Req) => Res): handleUnaryCall<Req, Res> =>
    (call, callback) => {
      try {
        callback(null, fn(call.request));
      } catch (err) {
        callback(toGrpcError(err) as never);
      }
    };
  return {
    route: unary<RouteRequest, RouteResponse>((req) => router.route(req)),
    markPrefillComplete: unary<MarkPrefillCompleteRequest, MarkPrefillCompleteResponse>((req) => {
      router.markPrefillComplete(req.requestId);
      return {};
    }),
    free: unary<FreeRequest, FreeResponse>((req) => {
      router.free(req.requestId);
      return {};
    }),
  };
}
