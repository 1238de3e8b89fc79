// The Router gRPC service: the adapter between the Router RPCs (Route /
// MarkPrefillComplete / MarkPrefillLocal / Free) and router-core's RouterCore, which owns
// the request lifecycle (candidates, the KvRouter / DisaggRouter decision, the load it
// places, the bounded waiting room whose full queue or long wait is a 503). Here: the
// candidates from discovery and the KV feed's readiness, the metrics as an observer,
// the timers that drive the core, and proto messages in and out.
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
  RouterCore,
  type DisaggOptions,
  type DisaggOutcome,
  type KvRouter,
  type RouteOutcome,
  type RouterCandidate,
  type RouterObserver,
  type RouterQueueOptions,
  type WorkerRole,
} from '@armature/router-core';
import { annotateActiveSpan, createLogger, toGrpcError } from '@armature/runtime';
import type { MetricsRegistry } from '@armature/metrics';
import { publishesKvEvents, type KvFeed } from './kv-feed.js';
import { OVERHEAD_STAGES } from './metric-series.js';
import type { WorkerDirectory, WorkerEntry } from './worker-directory.js';

const log = createLogger('router');

export interface RouterOptions {
  workers: WorkerDirectory;
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
  /** How long a worker that failed a request is left out, ms (router-core's default 5000). */
  inhibitMs?: number;
}

/** The router's metrics, as a RouterCore observer. */
export function routerMetrics(metrics: MetricsRegistry): RouterObserver {
  return {
    routed: (model, decision) => {
      recordOutcome(metrics, model, decision.decode);
      metrics
        .get('armature_router_disagg_decisions_total')
        .inc({ model, mode: decision.mode, reason: decision.reason });
    },
    noWorker: (model) => metrics.get('armature_router_no_worker_total').inc({ model }),
    queueRejected: (reason) => metrics.get('armature_router_queue_rejected_total').inc({ reason }),
    queueWaited: (seconds) => metrics.get('armature_router_queue_wait_seconds').observe(seconds),
    queueDepth: (depth) => metrics.get('armature_router_queue_depth').set(depth),
    prefillQueue: (worker, tokens) => metrics.get('armature_router_prefill_queue_tokens').set({ worker }, tokens),
    activeRequests: (worker, requests) => metrics.get('armature_router_active_requests').set({ worker }, requests),
    prefillFallback: () => metrics.get('armature_router_prefill_fallbacks_total').inc(),
    inhibited: (worker, reason, count) => {
      if (reason) metrics.get('armature_router_inhibitions_total').inc({ reason });
      metrics.get('armature_router_inhibited_workers').set(count);
      if (reason) log.warn('worker inhibited', { worker, reason });
    },
    workerRemoved: (worker) => {
      metrics.get('armature_router_prefill_queue_tokens').remove({ worker });
      metrics.get('armature_router_active_requests').remove({ worker });
    },
  };
}

const STAGE_KEYS = Object.keys(OVERHEAD_STAGES) as Array<keyof typeof OVERHEAD_STAGES>;

function recordOutcome(m: MetricsRegistry, model: string, outcome: RouteOutcome): void {
  const worker = outcome.worker.instanceId;
  m.get('armature_router_decisions_total').inc({ model, policy: outcome.policy, worker });
  const overhead = m.get('armature_router_overhead_seconds');
  for (const key of STAGE_KEYS) overhead.observe({ stage: OVERHEAD_STAGES[key] }, outcome.stages[key]);
  if (outcome.fullBlocks > 0) {
    m.get('armature_router_kv_hit_ratio').observe(
      { policy: outcome.policy },
      outcome.overlapBlocks / outcome.fullBlocks,
    );
    m.get('armature_router_kv_overlap_blocks_total').inc({ policy: outcome.policy }, outcome.overlapBlocks);
    m.get('armature_router_prompt_blocks_total').inc({ policy: outcome.policy }, outcome.fullBlocks);
  }
}

/** A routing decision as the Route RPC answers it. */
export function toRouteResponse(decision: DisaggOutcome): RouteResponse {
  const target = (o: RouteOutcome) => ({
    instanceId: o.worker.instanceId,
    grpcAddress: o.worker.grpcAddress,
    dpRank: o.worker.dpRank,
  });
  return {
    decode: target(decision.decode),
    prefill: decision.prefill ? target(decision.prefill) : undefined,
    overlapBlocks: decision.decode.overlapBlocks,
    policy: decision.decode.policy,
    disaggMode: decision.mode,
    disaggReason: decision.reason,
    blocksToPull: decision.blocksToPull,
  };
}

/**
 * The live router: a RouterCore whose candidates come from discovery (the WorkerDirectory) and the
 * KV feed's readiness, driven by real timers, answering with proto messages.
 */
export class Router {
  private readonly sweeper: NodeJS.Timeout;
  private readonly ticker: NodeJS.Timeout;
  /** Every model a decode worker has served, for armature_router_workers. */
  private readonly models = new Set<string>();
  readonly core: RouterCore;

  constructor(private readonly options: RouterOptions) {
    const { workers, feed } = options;
    const candidate = (entry: WorkerEntry): RouterCandidate => ({
      instanceId: entry.record.instanceId,
      grpcAddress: entry.record.grpcAddress!,
      card: entry.record.card!,
      published: entry.published,
      approximate: !publishesKvEvents(entry.record),
      ready: !feed || !publishesKvEvents(entry.record) || feed.isReady(entry.record.instanceId),
    });
    this.core = new RouterCore({
      source: { candidates: (model: string, role: WorkerRole) => workers.forModel(model, role).map(candidate) },
      decode: options.kv,
      prefill: options.disagg?.prefill,
      disagg: options.disagg,
      queue: options.queue,
      inhibitMs: options.inhibitMs,
      observer: routerMetrics(options.metrics),
    });
    // The precise index belongs to the KV feed; the rest of a departed worker's state goes here.
    workers.onRemoved((id) => {
      this.core.removeWorker(id);
      this.countWorkers();
    });
    workers.onChange(() => {
      this.core.pump();
      this.countWorkers();
    });
    feed?.onReady(() => this.core.pump());
    this.sweeper = setInterval(() => {
      const n = this.core.sweep();
      if (n > 0) log.warn('swept stale active-load entries', { count: n });
      feed?.publishGauges();
    }, 30_000);
    this.sweeper.unref();
    // Queue timeouts, and retries for busy thresholds that clear without an event.
    this.ticker = setInterval(() => this.core.tick(), 50);
    this.ticker.unref();
  }

  get kv(): KvRouter {
    return this.core.kv;
  }

  get disagg(): RouterCore['disagg'] {
    return this.core.disagg;
  }

  /**
   * Chooses the worker for a request and records its load. When every worker is busy the
   * request waits (behind earlier waiters for the same model) until one has room, the
   * queue's timeout passes, or `signal` aborts.
   */
  async route(req: RouteRequest, signal?: AbortSignal): Promise<RouteResponse> {
    const res = await this.place(req, signal);
    // On the Route RPC's span (tracing on): whom the router chose, and how much KV it found there.
    annotateActiveSpan({
      'armature.route.policy': res.policy,
      'armature.route.decode_worker': res.decode?.instanceId ?? '',
      'armature.route.prefill_worker': res.prefill?.instanceId ?? '',
      'armature.route.overlap_blocks': res.overlapBlocks,
      'armature.route.disagg_mode': res.disaggMode,
      'armature.route.prompt_tokens': req.tokenIds.length,
    });
    return res;
  }

  private place(req: RouteRequest, signal?: AbortSignal): Promise<RouteResponse> {
    return new Promise<RouteResponse>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void => void ticket.cancel();
      const detach = (): void => {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
      };
      const ticket = this.core.submit(
        {
          requestId: req.requestId,
          model: req.model,
          tokenIds: req.tokenIds,
          excludedWorkerIds: req.excludedWorkerIds,
          failedWorkerIds: req.failedWorkerIds,
          pinnedWorkerId: req.pinnedWorkerId || undefined,
        },
        {
          placed: (decision) => {
            detach();
            log.debug('routed', {
              routeId: req.requestId,
              decode: decision.decode.worker.instanceId,
              prefill: decision.prefill?.worker.instanceId,
              mode: decision.mode,
            });
            resolve(toRouteResponse(decision));
          },
          refused: (err) => {
            detach();
            reject(err);
          },
        },
      );
      if (!settled) signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** armature_router_workers: decode workers per model (a model whose last worker left stays, at 0). */
  private countWorkers(): void {
    const gauge = this.options.metrics.get('armature_router_workers');
    const counts = new Map<string, number>();
    for (const model of this.models) counts.set(model, 0);
    for (const w of this.options.workers.list()) {
      if (w.record.role !== 'decode' || !w.record.model) continue;
      this.models.add(w.record.model);
      counts.set(w.record.model, (counts.get(w.record.model) ?? 0) + 1);
    }
    for (const [model, n] of counts) gauge.set({ model }, n);
  }

  markPrefillComplete(requestId: string): void {
    this.core.markPrefillComplete(requestId);
  }

  markPrefillLocal(requestId: string): void {
    this.core.markPrefillLocal(requestId);
  }

  free(requestId: string): void {
    this.core.free(requestId);
  }

  /** Stops the timers and refuses every waiting request. */
  close(): void {
    clearInterval(this.sweeper);
    clearInterval(this.ticker);
    this.core.close();
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
