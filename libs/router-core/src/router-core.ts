// The lifecycle of a routed request, written once for the live router service and the
// offline replay: candidates (a model's workers minus excluded and inhibited ones, or the pinned one;
// those whose KV state is loaded first), a decision by the DisaggRouter (the decode
// worker, and a prefill worker or a local prefill), the load it places, and the waiting
// room for requests that find every worker busy (per model, bounded, timed out, in
// order). Load is released by markPrefillComplete / markPrefillLocal / free, and each
// release retries the waiting requests.
//
// Two ports connect it to its surroundings: a CandidateSource says which workers exist
// (discovery live, the simulated pools offline) and a RouterObserver hears what was
// decided (metrics, publishing active load to router replicas). It keeps no timers and
// does no I/O: its caller drives `tick()` (timeouts, retries for busy thresholds that
// clear without an event) and `sweep()` on its own clock, so the replay runs it in
// virtual time. Placing a request never awaits: a waiter is answered synchronously
// from `submit` or from the call that freed room.
import { ArmatureError } from '@armature/runtime';
import { DisaggRouter, type DisaggOptions, type DisaggOutcome } from './disagg-router.js';
import { KvRouter, type ActiveLoadOp, type CandidateWorker } from './kv-router.js';
import { createPolicy } from './policies/index.js';
import { DEFAULT_INHIBIT_MS, Inhibitions, type InhibitReason } from './inhibitions.js';
import { RouterQueue, type QueueRejectReason, type RouterQueueOptions } from './router-queue.js';

export type WorkerRole = 'decode' | 'prefill';

/** A worker as its source knows it. */
export interface RouterCandidate extends CandidateWorker {
  /**
   * Its KV state is loaded into the index. Workers that are not are left out while any
   * worker of the pool is ready (while none is, all are scored without the index).
   */
  ready: boolean;
}

/** Where the router finds workers. */
export interface CandidateSource {
  /** The workers serving `model` in `role` now (possibly none). */
  candidates(model: string, role: WorkerRole): readonly RouterCandidate[];
}

/** What the router hears about each decision and release; every hook is optional. */
export interface RouterObserver {
  /** A request was placed. */
  routed?(model: string, decision: DisaggOutcome): void;
  /** No worker (or no healthy one) serves the model. */
  noWorker?(model: string): void;
  /** A waiting request was refused: the queue was full, or it waited past the timeout. */
  queueRejected?(reason: QueueRejectReason): void;
  /** A waiting request was placed after `seconds` in the queue. */
  queueWaited?(seconds: number): void;
  /** Requests waiting, over every model (after each change). */
  queueDepth?(depth: number): void;
  /** Prompt tokens routed to a prefill worker and not yet prefilled. */
  prefillQueue?(worker: string, tokens: number): void;
  /** Requests the router has on a decode worker. */
  activeRequests?(worker: string, requests: number): void;
  /** A remote prefill fell back to the decode worker. */
  prefillFallback?(): void;
  /** A worker left; forget what is kept about it. */
  workerRemoved?(worker: string): void;
  /** An active-load change this router made (replicas apply it). */
  activeLoad?(pool: WorkerRole, op: ActiveLoadOp): void;
  /** A worker is inhibited (`reason`: why) or no longer is (reason undefined); `count`: inhibited now. */
  inhibited?(worker: string, reason: string | undefined, count: number): void;
}

export interface RouteCall {
  requestId: string;
  model: string;
  tokenIds: readonly number[];
  /** Workers not to use (they failed this request). */
  excludedWorkerIds?: readonly string[];
  /** Workers that just failed this request on the request path: inhibited for every request. */
  failedWorkerIds?: readonly string[];
  /** Route to exactly this worker: no busy check, no queueing, no prefill worker. */
  pinnedWorkerId?: string;
}

/** How a submitted request is answered: exactly one of the two is called, once. */
export interface Waiter {
  placed(decision: DisaggOutcome): void;
  refused(err: ArmatureError): void;
}

/** A submitted request; cancel() takes it out of the queue (true if it was waiting). */
export interface RouteTicket {
  cancel(): boolean;
}

export interface RouterCoreOptions {
  source: CandidateSource;
  /** The decode pool's router (every deployment has one). */
  decode: KvRouter;
  /** The prefill pool's router (default: the `kv` policy over the decode router's index). */
  prefill?: KvRouter;
  disagg?: DisaggOptions;
  queue?: RouterQueueOptions;
  observer?: RouterObserver;
  /** Milliseconds (default Date.now); the replay passes its virtual clock. */
  now?: () => number;
  /**
   * How long a worker that failed a request is left out, ms (default 5000; 0: never):
   * a dead or stalled worker stops getting requests long before its discovery lease lapses.
   */
  inhibitMs?: number;
}

interface Waiting {
  call: RouteCall;
  promptTokens: number;
  enqueuedAt: number;
  waiter: Waiter;
}

const NO_TICKET: RouteTicket = { cancel: () => false };

export class RouterCore {
  readonly kv: KvRouter;
  readonly disagg: DisaggRouter;
  private readonly source: CandidateSource;
  private readonly observers: RouterObserver[] = [];
  private readonly now: () => number;
  private readonly queueOptions: RouterQueueOptions | undefined;
  /** One queue per model, so a busy model never holds up another's requests. */
  private readonly queues = new Map<string, RouterQueue<Waiting>>();
  private readonly waitingIds = new Set<string>();
  private readonly inhibitions: Inhibitions;

  constructor(options: RouterCoreOptions) {
    this.source = options.source;
    this.kv = options.decode;
    if (options.observer) this.observers.push(options.observer);
    this.now = options.now ?? Date.now;
    this.queueOptions = options.queue;
    this.inhibitions = new Inhibitions(options.inhibitMs ?? DEFAULT_INHIBIT_MS, this.now, (worker, reason, count) =>
      this.notify('inhibited', worker, reason, count),
    );
    new RouterQueue(options.queue); // validates the options now rather than at the first busy moment
    const prefill = options.prefill ?? new KvRouter({ policy: createPolicy('kv'), index: this.kv.index });
    this.disagg = new DisaggRouter(prefill, this.kv, options.disagg);
    this.kv.onActiveLoad((op) => this.notify('activeLoad', 'decode', op));
    if (prefill !== this.kv) prefill.onActiveLoad((op) => this.notify('activeLoad', 'prefill', op));
  }

  /** Adds an observer (metrics, replica publishing); each hears every later event. */
  addObserver(observer: RouterObserver): void {
    this.observers.push(observer);
  }

  /** The prefill pool's router. */
  get prefill(): KvRouter {
    return this.disagg.prefill;
  }

  /**
   * Routes a request. Invalid calls and models nobody serves throw ArmatureError at once;
   * otherwise the waiter is answered now, or later when a worker has room, the queue's
   * timeout passes (refused) or the ticket is cancelled (refused).
   */
  submit(call: RouteCall, waiter: Waiter): RouteTicket {
    if (!call.model) throw new ArmatureError('invalid_argument', 'missing_model', 'model is required');
    if (!call.requestId) throw new ArmatureError('invalid_argument', 'missing_request_id', 'request_id is required');
    for (const w of call.failedWorkerIds ?? []) this.inhibit(w, 'request_failed');
    const candidates = this.candidatesFor(call);
    const queue = this.queueFor(call.model);
    // Pinned requests skip the busy check, so they never wait; others do not overtake waiters.
    if (call.pinnedWorkerId || queue.length === 0) {
      const decision = this.tryRoute(call, candidates);
      if (decision) {
        waiter.placed(decision);
        return NO_TICKET;
      }
    }
    if (this.waitingIds.has(call.requestId)) {
      throw new ArmatureError(
        'invalid_argument',
        'duplicate_request_id',
        `request ${JSON.stringify(call.requestId)} is already waiting for a worker`,
      );
    }
    const waiting: Waiting = { call, promptTokens: call.tokenIds.length, enqueuedAt: this.now(), waiter };
    if (!queue.push(waiting)) {
      this.notify('queueRejected', 'full');
      waiter.refused(
        new ArmatureError(
          'unavailable',
          'router_queue_full',
          `every worker for model ${JSON.stringify(call.model)} is busy and the router queue is full ` +
            `(${queue.capacity} waiting); retry later`,
        ),
      );
      return NO_TICKET;
    }
    this.waitingIds.add(call.requestId);
    this.publishDepth();
    return {
      cancel: () => {
        if (!queue.remove(waiting)) return false;
        this.waitingIds.delete(call.requestId);
        waiting.waiter.refused(
          new ArmatureError('cancelled', 'route_cancelled', 'the caller cancelled the route request'),
        );
        this.publishDepth();
        return true;
      },
    };
  }

  /** The first token arrived: the prompt is computed, on the decode worker or on a prefill worker. */
  markPrefillComplete(requestId: string): void {
    const decode = this.kv.prefillComplete(requestId);
    // A prefill worker's share of the request ends with its prefill (its pinned blocks are
    // the workers' business, reported in their load).
    const prefillWorker = this.releasePrefill(requestId);
    if (decode || prefillWorker) this.pump();
  }

  /**
   * The prompt routed to a prefill worker is prefilled on the decode worker instead: the
   * prefill worker's share ends and the decode worker's prefill counts again (until
   * markPrefillComplete).
   */
  markPrefillLocal(requestId: string): void {
    const prefillWorker = this.releasePrefill(requestId);
    if (this.kv.prefillLocal(requestId)) this.notify('prefillFallback');
    if (prefillWorker) this.pump();
  }

  /** The request ended: its load is released. (A waiting request leaves the queue through its ticket.) */
  free(requestId: string): void {
    const prefillWorker = this.releasePrefill(requestId);
    const worker = this.kv.free(requestId);
    if (worker) this.notify('activeRequests', worker, this.kv.active.of(worker).requests);
    if (worker || prefillWorker) this.pump();
  }

  /**
   * Leaves a worker out of every decision for inhibitMs (a request failed on it, or its
   * health check did), unless it is the only one left; a later call extends it.
   */
  inhibit(instanceId: string, reason: InhibitReason): void {
    this.inhibitions.add(instanceId, reason);
  }

  /** Ends a worker's inhibition early (it answered its health check). */
  uninhibit(instanceId: string): void {
    if (this.inhibitions.remove(instanceId)) this.pump();
  }

  /** Whether the worker is inhibited now. */
  isInhibited(instanceId: string): boolean {
    return this.inhibitions.has(instanceId);
  }

  /** Workers inhibited now. */
  inhibitedCount(): number {
    return this.inhibitions.count();
  }

  /** A worker left: its predictions, load and policy state go (its indexed blocks belong to the index's feeder). */
  removeWorker(instanceId: string): void {
    this.inhibitions.forget(instanceId);
    this.kv.removeWorker(instanceId);
    this.disagg.prefill.removeWorker(instanceId);
    this.notify('workerRemoved', instanceId);
    this.pump();
  }

  /** Applies an active-load change a router replica made, then retries the waiting requests. */
  applyRemote(pool: WorkerRole, op: ActiveLoadOp, origin: string): void {
    (pool === 'prefill' ? this.disagg.prefill : this.kv).applyRemote(op, origin);
    this.pump();
  }

  /** Drops the active load a departed (or restarted) replica placed; returns how many requests. */
  dropOrigin(origin: string): number {
    const pools = this.disagg.prefill === this.kv ? [this.kv] : [this.kv, this.disagg.prefill];
    let dropped = 0;
    for (const r of pools) dropped += r.active.dropOrigin(origin);
    if (dropped > 0) this.pump();
    return dropped;
  }

  /** Places waiting requests, per model in queue order, while workers have room. */
  pump(): void {
    if (this.waitingIds.size === 0) return;
    for (const queue of this.queues.values()) {
      queue.drain((w) => {
        let candidates: RouterCandidate[];
        try {
          // Workers may have joined, left or finished loading while it waited.
          candidates = this.candidatesFor(w.call);
        } catch (err) {
          this.waitingIds.delete(w.call.requestId);
          w.waiter.refused(err as ArmatureError);
          return true;
        }
        const decision = this.tryRoute(w.call, candidates);
        if (!decision) return false;
        this.waitingIds.delete(w.call.requestId);
        this.notify('queueWaited', (this.now() - w.enqueuedAt) / 1000);
        w.waiter.placed(decision);
        return true;
      });
    }
    this.publishDepth();
  }

  /** Refuses requests that waited past the queue timeout. */
  expire(): void {
    if (this.waitingIds.size === 0) return;
    const now = this.now();
    for (const queue of this.queues.values()) {
      for (const w of queue.expire(now)) {
        this.waitingIds.delete(w.call.requestId);
        this.notify('queueRejected', 'timeout');
        w.waiter.refused(
          new ArmatureError(
            'unavailable',
            'router_queue_timeout',
            `every worker for model ${JSON.stringify(w.call.model)} stayed busy for ${queue.timeoutMs} ms`,
          ),
        );
      }
    }
  }

  /** Timeouts, lapsed inhibitions, then a retry (busy thresholds can clear without an event): what the caller's clock drives. */
  tick(): void {
    this.inhibitions.lapse();
    if (this.waitingIds.size === 0) return;
    this.expire();
    this.publishDepth();
    this.pump();
  }

  /** Frees active-load entries older than `maxAgeMs` (their Free was lost); returns how many. */
  sweep(maxAgeMs?: number): number {
    const now = this.now();
    return this.kv.active.sweep(maxAgeMs, now) + this.disagg.prefill.active.sweep(maxAgeMs, now);
  }

  /** Requests waiting, over every model. */
  get queueDepth(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Refuses every waiting request (the router is shutting down). */
  close(): void {
    for (const queue of this.queues.values()) {
      for (const w of queue.expire(Number.POSITIVE_INFINITY)) {
        this.waitingIds.delete(w.call.requestId);
        w.waiter.refused(new ArmatureError('unavailable', 'router_shutting_down', 'the router is shutting down'));
      }
    }
    this.notify('queueDepth', 0);
  }

  private notify<K extends keyof RouterObserver>(hook: K, ...args: Parameters<NonNullable<RouterObserver[K]>>): void {
    for (const o of this.observers) (o[hook] as ((...a: typeof args) => void) | undefined)?.call(o, ...args);
  }

  private releasePrefill(requestId: string): string | undefined {
    const worker = this.disagg.prefill.free(requestId);
    if (worker) this.notify('prefillQueue', worker, this.disagg.prefill.active.of(worker).prefillTokens);
    return worker;
  }

  private publishDepth(): void {
    this.notify('queueDepth', this.queueDepth);
  }

  private queueFor(model: string): RouterQueue<Waiting> {
    let q = this.queues.get(model);
    if (!q) {
      q = new RouterQueue<Waiting>(this.queueOptions);
      this.queues.set(model, q);
    }
    return q;
  }

  /** Prefill workers for a request (may be empty: the request is then served aggregated). */
  private prefillCandidatesFor(call: RouteCall): RouterCandidate[] {
    if (call.pinnedWorkerId) return [];
    // No fallback to an inhibited prefill worker: without one the request is served aggregated.
    const usable = without(this.source.candidates(call.model, 'prefill'), call.excludedWorkerIds);
    return readyFirst(usable.filter((w) => !this.inhibitions.has(w.instanceId)));
  }

  /** The decode workers a request may go to now; throws `unavailable` when there are none. */
  private candidatesFor(call: RouteCall): RouterCandidate[] {
    const all = this.source.candidates(call.model, 'decode');
    if (all.length === 0) {
      this.notify('noWorker', call.model);
      throw new ArmatureError('unavailable', 'no_worker', `no worker is serving model ${JSON.stringify(call.model)}`);
    }
    if (call.pinnedWorkerId) {
      const pinned = all.filter((w) => w.instanceId === call.pinnedWorkerId);
      if (pinned.length === 0) {
        throw new ArmatureError(
          'unavailable',
          'pinned_worker_unavailable',
          `worker ${JSON.stringify(call.pinnedWorkerId)} is not serving model ${JSON.stringify(call.model)}`,
        );
      }
      return pinned;
    }
    const usable = without(all, call.excludedWorkerIds);
    if (usable.length === 0) {
      this.notify('noWorker', call.model);
      throw new ArmatureError(
        'unavailable',
        'no_worker',
        `no healthy worker left for model ${JSON.stringify(call.model)}`,
      );
    }
    return readyFirst(this.inhibitions.spare(usable));
  }

  private tryRoute(call: RouteCall, candidates: RouterCandidate[]): DisaggOutcome | undefined {
    const decision = this.disagg.route(this.prefillCandidatesFor(call), candidates, {
      requestId: call.requestId,
      model: call.model,
      tokenIds: call.tokenIds,
      pinned: Boolean(call.pinnedWorkerId),
    });
    if (!decision) return undefined;
    const worker = decision.decode.worker.instanceId;
    this.notify('routed', call.model, decision);
    this.notify('activeRequests', worker, this.kv.active.of(worker).requests);
    if (decision.prefill) {
      const p = decision.prefill.worker.instanceId;
      this.notify('prefillQueue', p, this.disagg.prefill.active.of(p).prefillTokens);
    }
    return decision;
  }
}

function without(workers: readonly RouterCandidate[], excluded: readonly string[] | undefined): RouterCandidate[] {
  if (!excluded || excluded.length === 0) return [...workers];
  const set = new Set(excluded);
  return workers.filter((w) => !set.has(w.instanceId));
}

/** The ready workers; all of them while none is (route without the index rather than wait). */
function readyFirst(workers: RouterCandidate[]): RouterCandidate[] {
  const ready = workers.filter((w) => w.ready);
  return ready.length > 0 ? ready : workers;
}
