// The decision engine of a router, shared by the live router service and the offline
// simulator: it hashes the prompt, asks the KV indexes what each candidate holds (the
// precise index fed by KV events, the approximate one fed by its own decisions for
// workers that publish none), fills in each candidate's view, sets busy workers aside,
// lets the policy choose, and records the choice as active load. It does no I/O and
// keeps no clock of its own; queueing, gRPC and the event plane live in services/router.
import {
  ApproxKvIndexer,
  KvIndexer,
  sequenceHashLimbs,
  type ApproxIndexerOptions,
  type OverlapScores,
} from '@armature/kv';
import type { ModelCard } from '@armature/runtime';
import { ActiveLoadTracker } from './active-load.js';
import type { KvOverlap, PublishedLoad, RouteInput, RoutingPolicy, WorkerView } from './types.js';

/** A worker the router may choose, as its caller knows it. */
export interface CandidateWorker {
  instanceId: string;
  grpcAddress: string;
  card: ModelCard;
  published: PublishedLoad | undefined;
  /** The worker publishes no KV events: its cache is predicted from the router's own decisions. */
  approximate: boolean;
}

/** Thresholds past which a worker takes no new requests (requests wait in the router queue). */
export interface BusyThresholds {
  /** Published KV usage fraction in [0, 1] at or above which a worker is busy. */
  kvUsage?: number;
  /** Unprefilled prompt tokens (tracked or published) at or above which a worker is busy. */
  prefillTokens?: number;
}

export interface KvRouterOptions {
  policy: RoutingPolicy;
  busy?: BusyThresholds;
  approximate?: ApproxIndexerOptions;
  /** Clock for predictions and active-load ages (default Date.now). */
  now?: () => number;
  /** Id of this router replica, stamped on the active load it creates. */
  replicaId?: string;
  /**
   * The precise index to read (default: a new one). Routers of a disaggregated deployment
   * share one, fed by every worker's events, each reading its own pool's workers.
   */
  index?: KvIndexer;
}

export interface RouteRequestInput {
  requestId: string;
  model: string;
  tokenIds: readonly number[];
  /** Skip the policy and the busy check: the caller passes exactly one candidate. */
  pinned?: boolean;
}

/** Seconds spent per stage of one decision. */
export interface StageTimings {
  hashing: number;
  findMatches: number;
  scoring: number;
  total: number;
}

export interface RouteOutcome {
  worker: WorkerView;
  /** Prompt blocks (a partial last block included). */
  promptBlocks: number;
  /** Leading prompt blocks the chosen worker is believed to hold. */
  overlapBlocks: number;
  /** Full prompt blocks (the ones that can be cached). */
  fullBlocks: number;
  policy: string;
  stages: StageTimings;
}

/** Active-load changes, as replicas share them over the event plane. */
export type ActiveLoadOp =
  | {
      op: 'add';
      requestId: string;
      workerId: string;
      dpRank: number;
      prefillTokens: number;
      /** Full-block sequence hashes as limb pairs. */
      blockHashes: Uint32Array;
      promptBlocks: number;
      /** The worker is in approximate mode: replicas record the same prediction. */
      approximate: boolean;
    }
  | { op: 'prefill'; requestId: string }
  /** The prompt is prefilled on the request's worker after all: its prefill counts again. */
  | { op: 'local_prefill'; requestId: string }
  | { op: 'free'; requestId: string };

const OPS: Record<ActiveLoadOp['op'], true> = { add: true, prefill: true, local_prefill: true, free: true };
/** Every active-load op (armature_router_replica_ops_total's op). */
export const ACTIVE_LOAD_OPS = Object.keys(OPS) as ReadonlyArray<ActiveLoadOp['op']>;

/** The policy a decision names when the caller pinned the worker (no policy chose it). */
export const PINNED_POLICY = 'pinned';

const ZERO_OVERLAP: Readonly<KvOverlap> = Object.freeze({ blocks: 0, device: 0, host: 0, disk: 0, remote: 0 });
const hrSeconds = (from: bigint, to: bigint): number => Number(to - from) / 1e9;

export class KvRouter {
  /** Precise index, fed by the workers' KV events. */
  readonly index: KvIndexer;
  /** Predicted caches of workers that publish no events. */
  readonly predicted: ApproxKvIndexer;
  readonly active = new ActiveLoadTracker();
  readonly policy: RoutingPolicy;
  private readonly busy: BusyThresholds;
  private readonly now: () => number;
  private readonly replicaId: string | undefined;
  private readonly listeners: Array<(op: ActiveLoadOp) => void> = [];

  constructor(options: KvRouterOptions) {
    this.policy = options.policy;
    this.busy = validateBusy(options.busy ?? {});
    this.now = options.now ?? Date.now;
    this.replicaId = options.replicaId;
    this.predicted = new ApproxKvIndexer(options.approximate);
    this.index = options.index ?? new KvIndexer();
  }

  /** Listens to the active-load changes this router makes (to publish them to replicas). */
  onActiveLoad(listener: (op: ActiveLoadOp) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Chooses one of `candidates` (non-empty, one model) and records the request's load on it;
   * undefined when every candidate is busy (the caller queues the request and retries).
   */
  route(candidates: readonly CandidateWorker[], request: RouteRequestInput): RouteOutcome | undefined {
    const started = process.hrtime.bigint();
    const card = candidates[0]!.card;
    const blockSize = Math.max(1, card.blockSize);
    const blockHashes = sequenceHashLimbs(request.tokenIds, blockSize);
    const fullBlocks = blockHashes.length >>> 1;
    const promptBlocks = Math.ceil(request.tokenIds.length / blockSize);
    const hashed = process.hrtime.bigint();

    let precise: OverlapScores | undefined;
    let approximate: OverlapScores | undefined;
    if (fullBlocks > 0) {
      for (const c of candidates) {
        if (c.approximate) approximate ??= this.predicted.findMatches(blockHashes, fullBlocks, this.now());
        else precise ??= this.index.findMatches(blockHashes, fullBlocks);
      }
    }
    const matched = process.hrtime.bigint();

    const preciseBest = bestRanks(precise);
    const approximateBest = bestRanks(approximate);
    const views: WorkerView[] = [];
    for (const c of candidates) {
      const best = (c.approximate ? approximateBest : preciseBest)?.get(c.instanceId);
      const tracked = this.active.of(c.instanceId);
      const view: WorkerView = {
        instanceId: c.instanceId,
        grpcAddress: c.grpcAddress,
        dpRank: best?.dpRank ?? 0,
        card: c.card,
        published: c.published,
        tracked,
        overlap: best ? { blocks: best.depth, ...best.tiers } : { ...ZERO_OVERLAP },
        activePrefixBlocks: this.active.activePrefixBlocks(c.instanceId, blockHashes, fullBlocks),
        indexedBlocks: c.approximate ? this.predicted.blocksOf(c.instanceId) : this.index.blocksOf(c.instanceId),
      };
      if (request.pinned || !this.isBusy(view)) views.push(view);
    }
    if (views.length === 0) return undefined;

    const input: RouteInput = {
      requestId: request.requestId,
      model: request.model,
      tokenIds: request.tokenIds,
      promptBlocks,
      blockHashes,
    };
    const worker = request.pinned ? views[0]! : this.policy.choose(views, input).worker;
    const scored = process.hrtime.bigint();

    const approximateWorker = candidates.find((c) => c.instanceId === worker.instanceId)!.approximate;
    this.commit(input, worker, approximateWorker, fullBlocks);
    const overlapBlocks = worker.overlap.blocks;
    return {
      worker,
      promptBlocks,
      overlapBlocks,
      fullBlocks,
      policy: request.pinned ? PINNED_POLICY : this.policy.id,
      stages: {
        hashing: hrSeconds(started, hashed),
        findMatches: hrSeconds(hashed, matched),
        scoring: hrSeconds(matched, scored),
        total: hrSeconds(started, process.hrtime.bigint()),
      },
    };
  }

  private commit(input: RouteInput, worker: WorkerView, approximate: boolean, fullBlocks: number): void {
    const blockSize = Math.max(1, worker.card.blockSize);
    const op: ActiveLoadOp = {
      op: 'add',
      requestId: input.requestId,
      workerId: worker.instanceId,
      dpRank: worker.dpRank,
      prefillTokens: Math.max(0, input.tokenIds.length - worker.overlap.blocks * blockSize),
      blockHashes: input.blockHashes,
      promptBlocks: input.promptBlocks,
      approximate,
    };
    this.applyAdd(op, this.replicaId);
    if (approximate && fullBlocks > 0) {
      this.predicted.record(worker.instanceId, worker.dpRank, input.blockHashes, fullBlocks, this.now());
    }
    this.policy.observe?.(input, worker);
    this.emit(op);
  }

  private applyAdd(op: Extract<ActiveLoadOp, { op: 'add' }>, origin: string | undefined): void {
    this.active.add(
      op.requestId,
      op.workerId,
      { prefillTokens: op.prefillTokens, blockHashes: op.blockHashes, promptBlocks: op.promptBlocks },
      this.now(),
      origin,
    );
  }

  /** True when the worker is past a busy threshold. */
  isBusy(view: WorkerView): boolean {
    const { kvUsage, prefillTokens } = this.busy;
    if (kvUsage !== undefined && (view.published?.kvUsage ?? 0) >= kvUsage) return true;
    if (prefillTokens !== undefined) {
      const pending = Math.max(view.tracked.prefillTokens, view.published?.activePrefillTokens ?? 0);
      if (pending >= prefillTokens) return true;
    }
    return false;
  }

  /** The request's first token arrived. */
  prefillComplete(requestId: string): boolean {
    const known = this.active.prefillComplete(requestId);
    if (known) this.emit({ op: 'prefill', requestId });
    return known;
  }

  /** The prompt is prefilled on the request's worker after all (a remote prefill fell back). */
  prefillLocal(requestId: string): boolean {
    const known = this.active.restorePrefill(requestId);
    if (known) this.emit({ op: 'local_prefill', requestId });
    return known;
  }

  /** The request ended; returns the worker it was on. */
  free(requestId: string): string | undefined {
    const worker = this.active.free(requestId);
    if (worker) this.emit({ op: 'free', requestId });
    return worker;
  }

  /** Applies an active-load change another replica made. */
  applyRemote(op: ActiveLoadOp, origin: string): void {
    switch (op.op) {
      case 'add': {
        this.applyAdd(op, origin);
        const fullBlocks = op.blockHashes.length >>> 1;
        if (op.approximate && fullBlocks > 0) {
          this.predicted.record(op.workerId, op.dpRank, op.blockHashes, fullBlocks, this.now());
        }
        return;
      }
      case 'prefill':
        this.active.prefillComplete(op.requestId);
        return;
      case 'local_prefill':
        this.active.restorePrefill(op.requestId);
        return;
      case 'free':
        this.active.free(op.requestId);
        return;
    }
  }

  /**
   * A worker left: its predictions, load and policy state are forgotten. Its blocks in the
   * precise index are not: whoever feeds the index (the router's KV feed) owns them, so a
   * worker that leaves and returns at once is not left with an empty index.
   */
  removeWorker(instanceId: string): void {
    this.predicted.removeWorker(instanceId);
    this.active.dropWorker(instanceId);
    this.policy.forgetWorker?.(instanceId);
  }

  private emit(op: ActiveLoadOp): void {
    for (const l of this.listeners) l(op);
  }
}

type WorkerOverlap = OverlapScores['workers'][number];

/** Each instance's deepest data-parallel rank. */
function bestRanks(scores: OverlapScores | undefined): Map<string, WorkerOverlap> | undefined {
  if (!scores || scores.workers.length === 0) return undefined;
  const best = new Map<string, WorkerOverlap>();
  for (const w of scores.workers) {
    const seen = best.get(w.instanceId);
    if (!seen || w.depth > seen.depth) best.set(w.instanceId, w);
  }
  return best;
}

function validateBusy(busy: BusyThresholds): BusyThresholds {
  if (busy.kvUsage !== undefined && !(busy.kvUsage > 0 && busy.kvUsage <= 1)) {
    throw new RangeError(`busy.kvUsage must be in (0, 1], got ${busy.kvUsage}`);
  }
  if (busy.prefillTokens !== undefined && !(busy.prefillTokens > 0)) {
    throw new RangeError(`busy.prefillTokens must be > 0, got ${busy.prefillTokens}`);
  }
  return { ...busy };
}
