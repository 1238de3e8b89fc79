// The Router gRPC service: for each request, the candidates (workers serving the model
// whose KV state is loaded, minus excluded ones, or the pinned one), a decision by the
// KvRouter (index lookup, busy filter, policy), and the load it places (Route /
// MarkPrefillComplete / Free). When every worker is busy the request waits in a bounded
// queue and is placed as load frees up; a full queue or a long wait is a 503.
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
import {
  RouterQueue,
  type CandidateWorker,
  type KvRouter,
  type RouteOutcome,
  type RouterQueueOptions,
} from '@armature/router-core';
import { ArmatureError, createLogger, toGrpcError } from '@armature/runtime';
import type { MetricsRegistry } from '@armature/metrics';
import { publishesKvEvents, type KvFeed } from './kv-feed.js';
import type { WorkerEntry, WorkerSet } from './worker-set.js';

const log = createLogger('router');

interface Waiting {
  request: RouteRequest;
  candidates: CandidateWorker[];
  promptTokens: number;
  enqueuedAt: number;
  resolve: (res: RouteResponse) => void;
  reject: (err: unknown) => void;
}

export interface RouterOptions {
  workers: WorkerSet;
  kv: KvRouter;
  metrics: MetricsRegistry;
  /** Tells whether a worker's KV state is loaded; absent: every worker is ready. */
  feed?: KvFeed;
  queue?: RouterQueueOptions;
}

export class Router {
  private readonly sweeper: NodeJS.Timeout;
  private readonly ticker: NodeJS.Timeout;
  private readonly queue: RouterQueue<Waiting>;
  private readonly waitingById = new Map<string, Waiting>();
  private readonly workers: WorkerSet;
  private readonly metrics: MetricsRegistry;
  readonly kv: KvRouter;

  constructor(private readonly options: RouterOptions) {
    this.workers = options.workers;
    this.kv = options.kv;
    this.metrics = options.metrics;
    this.queue = new RouterQueue(options.queue);
    this.workers.onRemoved((id) => this.kv.removeWorker(id));
    this.workers.onChange(() => this.pump());
    options.feed?.onReady(() => this.pump());
    this.sweeper = setInterval(() => {
      const n = this.kv.active.sweep();
      if (n > 0) log.warn('swept stale active-load entries', { count: n });
      options.feed?.publishGauges();
    }, 30_000);
    this.sweeper.unref();
    // Queue timeouts, and retries for busy thresholds that clear without an event.
    this.ticker = setInterval(() => {
      if (this.queue.length === 0) return;
      for (const w of this.queue.expire(Date.now())) {
        this.waitingById.delete(w.request.requestId);
        this.metrics.get('armature_router_queue_rejected_total').inc({ reason: 'timeout' });
        w.reject(
          new ArmatureError(
            'unavailable',
            'router_queue_timeout',
            `every worker for model ${JSON.stringify(w.request.model)} stayed busy for ${this.queue.timeoutMs} ms`,
          ),
        );
      }
      this.pump();
    }, 50);
    this.ticker.unref();
  }

  private isReady(entry: WorkerEntry): boolean {
    const feed = this.options.feed;
    if (!feed || !publishesKvEvents(entry.record)) return true;
    return feed.isReady(entry.record.instanceId);
  }

  private candidate(entry: WorkerEntry): CandidateWorker {
    return {
      instanceId: entry.record.instanceId,
      grpcAddress: entry.record.grpcAddress!,
      card: entry.record.card!,
      published: entry.published,
      approximate: !publishesKvEvents(entry.record),
    };
  }

  /** Chooses the worker for a request and records its load; waits in the queue when all are busy. */
  route(req: RouteRequest): Promise<RouteResponse> {
    if (!req.model) throw new ArmatureError('invalid_argument', 'missing_model', 'model is required');
    if (!req.requestId) throw new ArmatureError('invalid_argument', 'missing_request_id', 'request_id is required');
    const all = this.workers.forModel(req.model);
    if (all.length === 0) {
      this.metrics.get('armature_router_no_worker_total').inc({ model: req.model });
      throw new ArmatureError('unavailable', 'no_worker', `no worker is serving model ${JSON.stringify(req.model)}`);
    }
    let entries: WorkerEntry[];
    if (req.pinnedWorkerId) {
      entries = all.filter((w) => w.record.instanceId === req.pinnedWorkerId);
      if (entries.length === 0) {
        throw new ArmatureError(
          'unavailable',
          'pinned_worker_unavailable',
          `worker ${JSON.stringify(req.pinnedWorkerId)} is not serving model ${JSON.stringify(req.model)}`,
        );
      }
    } else {
      const excluded = new Set(req.excludedWorkerIds);
      const usable = all.filter((w) => !excluded.has(w.record.instanceId));
      if (usable.length === 0) {
        throw new ArmatureError(
          'unavailable',
          'no_worker',
          `no healthy worker left for model ${JSON.stringify(req.model)}`,
        );
      }
      const ready = usable.filter((w) => this.isReady(w));
      // While every worker is still loading its KV state, route without the index rather than wait.
      entries = ready.length > 0 ? ready : usable;
    }
    const candidates = entries.map((e) => this.candidate(e));
    const outcome = this.tryRoute(req, candidates);
    if (outcome) return Promise.resolve(outcome);

    return new Promise<RouteResponse>((resolve, reject) => {
      const waiting: Waiting = {
        request: req,
        candidates,
        promptTokens: req.tokenIds.length,
        enqueuedAt: Date.now(),
        resolve,
        reject,
      };
      if (this.waitingById.has(req.requestId) || !this.queue.push(waiting)) {
        this.metrics.get('armature_router_queue_rejected_total').inc({ reason: 'full' });
        reject(
          new ArmatureError(
            'unavailable',
            'router_queue_full',
            `every worker for model ${JSON.stringify(req.model)} is busy and the router queue is full ` +
              `(${this.queue.capacity} waiting); retry later`,
          ),
        );
        return;
      }
      this.waitingById.set(req.requestId, waiting);
      this.metrics.get('armature_router_queue_depth').set(this.queue.length);
    });
  }

  /** Takes a waiting request out of the queue (its caller gave up); true if it was waiting. */
  cancelWaiting(requestId: string): boolean {
    const w = this.waitingById.get(requestId);
    if (!w) return false;
    this.waitingById.delete(requestId);
    this.queue.remove(w);
    this.metrics.get('armature_router_queue_depth').set(this.queue.length);
    w.reject(new ArmatureError('cancelled', 'route_cancelled', 'the caller cancelled the route request'));
    return true;
  }

  private tryRoute(req: RouteRequest, candidates: CandidateWorker[]): RouteResponse | undefined {
    const outcome = this.kv.route(candidates, {
      requestId: req.requestId,
      model: req.model,
      tokenIds: req.tokenIds,
      pinned: Boolean(req.pinnedWorkerId),
    });
    if (!outcome) return undefined;
    this.record(req.model, outcome);
    return {
      decode: {
        instanceId: outcome.worker.instanceId,
        grpcAddress: outcome.worker.grpcAddress,
        dpRank: outcome.worker.dpRank,
      },
      overlapBlocks: outcome.overlapBlocks,
      policy: outcome.policy,
    };
  }

  /** Places waiting requests while workers have room. */
  private pump(): void {
    if (this.queue.length === 0) return;
    this.queue.drain((w) => {
      this.waitingById.delete(w.request.requestId);
      // Candidates may have changed while it waited: refresh their published load.
      const fresh = w.candidates
        .map((c) => this.workers.get(c.instanceId))
        .filter((e): e is WorkerEntry => e !== undefined)
        .map((e) => this.candidate(e));
      if (fresh.length === 0) {
        w.reject(
          new ArmatureError(
            'unavailable',
            'no_worker',
            `no worker is serving model ${JSON.stringify(w.request.model)}`,
          ),
        );
        return true;
      }
      const res = this.tryRoute(w.request, fresh);
      if (!res) {
        this.waitingById.set(w.request.requestId, w);
        return false;
      }
      this.metrics.get('armature_router_queue_wait_seconds').observe((Date.now() - w.enqueuedAt) / 1000);
      w.resolve(res);
      return true;
    });
    this.metrics.get('armature_router_queue_depth').set(this.queue.length);
  }

  private record(model: string, outcome: RouteOutcome): void {
    const m = this.metrics;
    const worker = outcome.worker.instanceId;
    m.get('armature_router_decisions_total').inc({ model, policy: outcome.policy, worker });
    m.get('armature_router_active_requests').set({ worker }, this.kv.active.of(worker).requests);
    const overhead = m.get('armature_router_overhead_seconds');
    overhead.observe({ stage: 'hashing' }, outcome.stages.hashing);
    overhead.observe({ stage: 'find_matches' }, outcome.stages.findMatches);
    overhead.observe({ stage: 'scoring' }, outcome.stages.scoring);
    overhead.observe({ stage: 'total' }, outcome.stages.total);
    if (outcome.fullBlocks > 0) {
      m.get('armature_router_kv_hit_ratio').observe(
        { policy: outcome.policy },
        outcome.overlapBlocks / outcome.fullBlocks,
      );
      m.get('armature_router_kv_overlap_blocks_total').inc({ policy: outcome.policy }, outcome.overlapBlocks);
      m.get('armature_router_prompt_blocks_total').inc({ policy: outcome.policy }, outcome.fullBlocks);
    }
  }

  markPrefillComplete(requestId: string): void {
    if (this.kv.prefillComplete(requestId)) this.pump();
  }

  free(requestId: string): void {
    if (this.cancelWaiting(requestId)) return;
    const worker = this.kv.free(requestId);
    if (worker) {
      this.metrics.get('armature_router_active_requests').set({ worker }, this.kv.active.of(worker).requests);
      this.pump();
    }
  }

  /** Another replica changed the shared active load. */
  onRemoteChange(): void {
    this.pump();
  }

  /** Stops the timers and refuses every waiting request. */
  close(): void {
    clearInterval(this.sweeper);
    clearInterval(this.ticker);
    this.waitingById.clear();
    for (const w of this.queue.expire(Number.POSITIVE_INFINITY)) {
      w.reject(new ArmatureError('unavailable', 'router_shutting_down', 'the router is shutting down'));
    }
  }
}

/** The gRPC face of a Router. */
export function routerGrpcHandlers(router: Router): RouterServer {
  const unary =
    <Req, Res>(fn: (req: Req) => Res | Promise<Res>): handleUnaryCall<Req, Res> =>
    (call, callback) => {
      let pending: Promise<Res>;
      try {
        pending = Promise.resolve(fn(call.request));
      } catch (err) {
        callback(toGrpcError(err) as never);
        return;
      }
      pending.then(
        (res) => callback(null, res),
        (err: unknown) => callback(toGrpcError(err) as never),
      );
    };
  return {
    route: (call, callback) => {
      call.on('cancelled', () => router.cancelWaiting(call.request.requestId));
      unary<RouteRequest, RouteResponse>((req) => router.route(req))(call, callback);
    },
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
