// The Router gRPC service: for each request, the candidates (workers serving the model
// whose KV state is loaded, minus excluded ones, or the pinned one), a decision by the
// KvRouter (index lookup, busy filter, policy), and the load it places (Route /
// MarkPrefillComplete / MarkPrefillLocal / Free). When prefill workers serve the model, the DisaggRouter
// picks a (prefill, decode) pair or keeps the prefill on the decode worker (short
// uncached remainder, saturated prefill pool). When every decode worker is busy the
// request waits in a bounded queue and is placed as load frees up; a full queue or a long
// wait is a 503.
import type { handleUnaryCall } from '@grpc/grpc-js';
import type {
  FreeRequest,
  FreeResponse,
  MarkPrefillCompleteRequest,
  MarkPrefillCompleteResponse,
  MarkPrefillLocalRequest,
  MarkPrefillLocalResponse,
  RouteRequest,
  RouteResponse,
  RouterServer,
} from '@armature/proto';
import {
  createPolicy,
  DisaggRouter,
  KvRouter,
  RouterQueue,
  type CandidateWorker,
  type DisaggOptions,
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
  promptTokens: number;
  enqueuedAt: number;
  resolve: (res: RouteResponse) => void;
  reject: (err: unknown) => void;
  /** Detaches the caller's abort listener. */
  detach: () => void;
}

export interface RouterOptions {
  workers: WorkerSet;
  kv: KvRouter;
  metrics: MetricsRegistry;
  /** Tells whether a worker's KV state is loaded; absent: every worker is ready. */
  feed?: KvFeed;
  queue?: RouterQueueOptions;
  /**
   * Disaggregation: the router choosing prefill workers (default: the `kv` policy over the
   * decode router's index) and the thresholds of conditional disaggregation.
   */
  disagg?: DisaggOptions & { prefill?: KvRouter };
}

export class Router {
  private readonly sweeper: NodeJS.Timeout;
  private readonly ticker: NodeJS.Timeout;
  /** One queue per model, so a busy model never holds up another's requests. */
  private readonly queues = new Map<string, RouterQueue<Waiting>>();
  private readonly waitingIds = new Set<string>();
  private readonly workers: WorkerSet;
  private readonly metrics: MetricsRegistry;
  readonly kv: KvRouter;
  readonly disagg: DisaggRouter;

  constructor(private readonly options: RouterOptions) {
    this.workers = options.workers;
    this.kv = options.kv;
    this.metrics = options.metrics;
    const prefill = options.disagg?.prefill ?? new KvRouter({ policy: createPolicy('kv'), index: options.kv.index });
    this.disagg = new DisaggRouter(prefill, options.kv, options.disagg);
    new RouterQueue(options.queue); // validates the options now rather than at the first busy moment
    // The precise index belongs to the KV feed; the rest of a departed worker's state goes here.
    this.workers.onRemoved((id) => {
      this.kv.removeWorker(id);
      this.disagg.prefill.removeWorker(id);
      this.metrics.get('armature_router_prefill_queue_tokens').remove({ worker: id });
      this.metrics.get('armature_router_active_requests').remove({ worker: id });
      this.pump();
    });
    this.workers.onChange(() => this.pump());
    options.feed?.onReady(() => this.pump());
    this.sweeper = setInterval(() => {
      const n = this.kv.active.sweep() + this.disagg.prefill.active.sweep();
      if (n > 0) log.warn('swept stale active-load entries', { count: n });
      options.feed?.publishGauges();
    }, 30_000);
    this.sweeper.unref();
    // Queue timeouts, and retries for busy thresholds that clear without an event.
    this.ticker = setInterval(() => {
      if (this.waitingIds.size === 0) return;
      const now = Date.now();
      for (const queue of this.queues.values()) {
        for (const w of queue.expire(now)) {
          this.metrics.get('armature_router_queue_rejected_total').inc({ reason: 'timeout' });
          this.settle(w).reject(
            new ArmatureError(
              'unavailable',
              'router_queue_timeout',
              `every worker for model ${JSON.stringify(w.request.model)} stayed busy for ${queue.timeoutMs} ms`,
            ),
          );
        }
      }
      this.metrics.get('armature_router_queue_depth').set(this.queueDepth());
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

  /** Prefill workers for a request (may be empty: the request is then served aggregated). */
  private prefillCandidatesFor(req: RouteRequest): CandidateWorker[] {
    if (req.pinnedWorkerId) return [];
    const excluded = new Set(req.excludedWorkerIds);
    const usable = this.workers.forModel(req.model, 'prefill').filter((w) => !excluded.has(w.record.instanceId));
    const ready = usable.filter((w) => this.isReady(w));
    return (ready.length > 0 ? ready : usable).map((e) => this.candidate(e));
  }

  /** The workers a request may go to now; throws `unavailable` when there are none. */
  private candidatesFor(req: RouteRequest): CandidateWorker[] {
    const all = this.workers.forModel(req.model);
    if (all.length === 0) {
      this.metrics.get('armature_router_no_worker_total').inc({ model: req.model });
      throw new ArmatureError('unavailable', 'no_worker', `no worker is serving model ${JSON.stringify(req.model)}`);
    }
    if (req.pinnedWorkerId) {
      const pinned = all.filter((w) => w.record.instanceId === req.pinnedWorkerId);
      if (pinned.length === 0) {
        throw new ArmatureError(
          'unavailable',
          'pinned_worker_unavailable',
          `worker ${JSON.stringify(req.pinnedWorkerId)} is not serving model ${JSON.stringify(req.model)}`,
        );
      }
      return pinned.map((e) => this.candidate(e));
    }
    const excluded = new Set(req.excludedWorkerIds);
    const usable = all.filter((w) => !excluded.has(w.record.instanceId));
    if (usable.length === 0) {
      this.metrics.get('armature_router_no_worker_total').inc({ model: req.model });
      throw new ArmatureError(
        'unavailable',
        'no_worker',
        `no healthy worker left for model ${JSON.stringify(req.model)}`,
      );
    }
    const ready = usable.filter((w) => this.isReady(w));
    // While every worker is still loading its KV state, route without the index rather than wait.
    return (ready.length > 0 ? ready : usable).map((e) => this.candidate(e));
  }

  private queueFor(model: string): RouterQueue<Waiting> {
    let q = this.queues.get(model);
    if (!q) {
      q = new RouterQueue<Waiting>(this.options.queue);
      this.queues.set(model, q);
    }
    return q;
  }

  /**
   * Chooses the worker for a request and records its load. When every worker is busy the
   * request waits (behind earlier waiters for the same model) until one has room, the
   * queue's timeout passes, or `signal` aborts.
   */
  async route(req: RouteRequest, signal?: AbortSignal): Promise<RouteResponse> {
    if (!req.model) throw new ArmatureError('invalid_argument', 'missing_model', 'model is required');
    if (!req.requestId) throw new ArmatureError('invalid_argument', 'missing_request_id', 'request_id is required');
    const candidates = this.candidatesFor(req);
    const queue = this.queueFor(req.model);
    // Pinned requests skip the busy check, so they never wait; others do not overtake waiters.
    if (req.pinnedWorkerId || queue.length === 0) {
      const res = this.tryRoute(req, candidates);
      if (res) return res;
    }
    if (this.waitingIds.has(req.requestId)) {
      throw new ArmatureError(
        'invalid_argument',
        'duplicate_request_id',
        `request ${JSON.stringify(req.requestId)} is already waiting for a worker`,
      );
    }
    return new Promise<RouteResponse>((resolve, reject) => {
      const onAbort = (): void => {
        if (queue.remove(waiting)) {
          this.settle(waiting).reject(
            new ArmatureError('cancelled', 'route_cancelled', 'the caller cancelled the route request'),
          );
          this.metrics.get('armature_router_queue_depth').set(this.queueDepth());
        }
      };
      const waiting: Waiting = {
        request: req,
        promptTokens: req.tokenIds.length,
        enqueuedAt: Date.now(),
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      if (!queue.push(waiting)) {
        this.metrics.get('armature_router_queue_rejected_total').inc({ reason: 'full' });
        reject(
          new ArmatureError(
            'unavailable',
            'router_queue_full',
            `every worker for model ${JSON.stringify(req.model)} is busy and the router queue is full ` +
              `(${queue.capacity} waiting); retry later`,
          ),
        );
        return;
      }
      this.waitingIds.add(req.requestId);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.metrics.get('armature_router_queue_depth').set(this.queueDepth());
    });
  }

  /** Marks a waiter as done (no longer waiting, no abort listener) and returns it. */
  private settle(w: Waiting): Waiting {
    this.waitingIds.delete(w.request.requestId);
    w.detach();
    return w;
  }

  private queueDepth(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  private tryRoute(req: RouteRequest, candidates: CandidateWorker[]): RouteResponse | undefined {
    const outcome = this.disagg.route(this.prefillCandidatesFor(req), candidates, {
      requestId: req.requestId,
      model: req.model,
      tokenIds: req.tokenIds,
      pinned: Boolean(req.pinnedWorkerId),
    });
    if (!outcome) return undefined;
    this.record(req.model, outcome.decode);
    this.metrics
      .get('armature_router_disagg_decisions_total')
      .inc({ model: req.model, mode: outcome.mode, reason: outcome.reason });
    const target = (o: RouteOutcome) => ({
      instanceId: o.worker.instanceId,
      grpcAddress: o.worker.grpcAddress,
      dpRank: o.worker.dpRank,
    });
    if (outcome.prefill) this.publishPrefillQueue(outcome.prefill.worker.instanceId);
    return {
      decode: target(outcome.decode),
      prefill: outcome.prefill ? target(outcome.prefill) : undefined,
      overlapBlocks: outcome.decode.overlapBlocks,
      policy: outcome.decode.policy,
      disaggMode: outcome.mode,
      disaggReason: outcome.reason,
      blocksToPull: outcome.blocksToPull,
    };
  }

  private publishPrefillQueue(worker: string): void {
    this.metrics
      .get('armature_router_prefill_queue_tokens')
      .set({ worker }, this.disagg.prefill.active.of(worker).prefillTokens);
  }

  /** Places waiting requests, per model in queue order, while workers have room. */
  private pump(): void {
    if (this.waitingIds.size === 0) {
      return;
    }
    for (const queue of this.queues.values()) {
      queue.drain((w) => {
        let candidates: CandidateWorker[];
        try {
          // Workers may have joined, left or finished loading while it waited.
          candidates = this.candidatesFor(w.request);
        } catch (err) {
          this.settle(w).reject(err);
          return true;
        }
        const res = this.tryRoute(w.request, candidates);
        if (!res) return false;
        this.metrics.get('armature_router_queue_wait_seconds').observe((Date.now() - w.enqueuedAt) / 1000);
        this.settle(w).resolve(res);
        return true;
      });
    }
    this.metrics.get('armature_router_queue_depth').set(this.queueDepth());
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

  /** The first token arrived: the prompt is computed, on the decode worker or on a prefill worker. */
  markPrefillComplete(requestId: string): void {
    const decode = this.kv.prefillComplete(requestId);
    // A prefill worker's share of the request ends with its prefill (its pinned blocks are
    // the workers' business, reported in their load).
    const prefillWorker = this.disagg.prefill.free(requestId);
    if (prefillWorker) this.publishPrefillQueue(prefillWorker);
    if (decode || prefillWorker) this.pump();
  }

  /**
   * The prompt routed to a prefill worker is prefilled on the decode worker instead: the
   * prefill worker's share ends and the decode worker's prefill counts again (until
   * MarkPrefillComplete).
   */
  markPrefillLocal(requestId: string): void {
    const prefillWorker = this.disagg.prefill.free(requestId);
    if (prefillWorker) this.publishPrefillQueue(prefillWorker);
    if (this.kv.prefillLocal(requestId)) this.metrics.get('armature_router_prefill_fallbacks_total').inc();
    if (prefillWorker) this.pump();
  }

  /** The request ended: its load is released. (A waiting request leaves the queue by cancelling its Route.) */
  free(requestId: string): void {
    const prefillWorker = this.disagg.prefill.free(requestId);
    if (prefillWorker) this.publishPrefillQueue(prefillWorker);
    const worker = this.kv.free(requestId);
    if (worker) {
      this.metrics.get('armature_router_active_requests').set({ worker }, this.kv.active.of(worker).requests);
    }
    if (worker || prefillWorker) this.pump();
  }

  /** Another replica changed the shared active load. */
  onRemoteChange(): void {
    this.pump();
  }

  /** Stops the timers and refuses every waiting request. */
  close(): void {
    clearInterval(this.sweeper);
    clearInterval(this.ticker);
    for (const queue of this.queues.values()) {
      for (const w of queue.expire(Number.POSITIVE_INFINITY)) {
        this.settle(w).reject(new ArmatureError('unavailable', 'router_shutting_down', 'the router is shutting down'));
      }
    }
    this.metrics.get('armature_router_queue_depth').set(0);
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
      // A caller that gives up leaves the queue. (grpc-js also emits 'cancelled' when a call
      // that already answered closes, so this must not release load: Free does that.)
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      unary<RouteRequest, RouteResponse>((req) => router.route(req, abort.signal))(call, callback);
    },
    markPrefillComplete: unary<MarkPrefillCompleteRequest, MarkPrefillCompleteResponse>((req) => {
      router.markPrefillComplete(req.requestId);
      return {};
    }),
    markPrefillLocal: unary<MarkPrefillLocalRequest, MarkPrefillLocalResponse>((req) => {
      router.markPrefillLocal(req.requestId);
      return {};
    }),
    free: unary<FreeRequest, FreeResponse>((req) => {
      router.free(req.requestId);
      return {};
    }),
  };
}
