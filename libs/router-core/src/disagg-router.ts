// Disaggregated routing: the choice of a (prefill worker, decode worker) pair, and whether
// to disaggregate at all. The decode worker is chosen first, from the decode pool with its
// own policy (load-aware); what it already caches decides how much prompt is left to
// compute. Short remainders are prefilled locally on the decode worker (moving KV costs
// more than computing a little), as is everything when the prefill pool is saturated or
// empty; otherwise the prefill pool's policy (KV-aware) picks the prefill worker, and the
// decode worker pulls only the blocks it lacks. Pure decision code, shared by the live
// router and the offline simulator; it sends nothing.
import type { CandidateWorker, KvRouter, RouteOutcome, RouteRequestInput } from './kv-router.js';

export interface DisaggOptions {
  /**
   * Prefill on the decode worker when the prompt tokens it does not cache are fewer than
   * this (default 2048).
   */
  minRemotePrefillTokens?: number;
  /**
   * The prefill pool counts as saturated when every prefill worker has at least this many
   * prompt tokens queued (default 131072); requests then prefill locally.
   */
  maxPrefillQueueTokens?: number;
}

export type DisaggMode = 'aggregated' | 'local-prefill' | 'remote-prefill';

/** Why the pair was chosen as it was (also a metric label). */
export type DisaggReason = 'no_prefill_workers' | 'short_prompt' | 'prefill_saturated' | 'remote';

export interface DisaggOutcome {
  mode: DisaggMode;
  reason: DisaggReason;
  decode: RouteOutcome;
  /** Set in remote-prefill mode. */
  prefill?: RouteOutcome;
  /** Prompt tokens the decode worker does not cache. */
  uncachedTokens: number;
  /** Blocks (a partial last one included) the decode worker pulls from the prefill worker (remote-prefill only). */
  blocksToPull: number;
}

const DEFAULTS = { minRemotePrefillTokens: 2048, maxPrefillQueueTokens: 131_072 };

export class DisaggRouter {
  readonly minRemotePrefillTokens: number;
  readonly maxPrefillQueueTokens: number;

  constructor(
    /** Chooses among prefill workers (typically the `kv` policy). */
    readonly prefill: KvRouter,
    /** Chooses among decode workers (typically `least-loaded` or `kv`). */
    readonly decode: KvRouter,
    options: DisaggOptions = {},
  ) {
    this.minRemotePrefillTokens = options.minRemotePrefillTokens ?? DEFAULTS.minRemotePrefillTokens;
    this.maxPrefillQueueTokens = options.maxPrefillQueueTokens ?? DEFAULTS.maxPrefillQueueTokens;
    if (!Number.isInteger(this.minRemotePrefillTokens) || this.minRemotePrefillTokens < 0) {
      throw new RangeError(`minRemotePrefillTokens must be an integer >= 0, got ${options.minRemotePrefillTokens}`);
    }
    if (!(this.maxPrefillQueueTokens > 0)) {
      throw new RangeError(`maxPrefillQueueTokens must be > 0, got ${options.maxPrefillQueueTokens}`);
    }
  }

  /**
   * Chooses the pair and records the load on both pools; undefined when every decode worker
   * is busy (the caller queues the request). Prefill load is released with
   * `prefill.free(requestId)` once the decode worker holds the blocks; decode load as usual.
   */
  route(
    prefillCandidates: readonly CandidateWorker[],
    decodeCandidates: readonly CandidateWorker[],
    request: RouteRequestInput,
  ): DisaggOutcome | undefined {
    const decode = this.decode.route(decodeCandidates, request);
    if (!decode) return undefined;
    const blockSize = Math.max(1, decode.worker.card.blockSize);
    const uncachedTokens = Math.max(0, request.tokenIds.length - decode.overlapBlocks * blockSize);
    const local = (mode: DisaggMode, reason: DisaggReason): DisaggOutcome => ({
      mode,
      reason,
      decode,
      uncachedTokens,
      blocksToPull: 0,
    });
    if (prefillCandidates.length === 0) return local('aggregated', 'no_prefill_workers');
    if (uncachedTokens < this.minRemotePrefillTokens) return local('local-prefill', 'short_prompt');
    if (prefillCandidates.every((c) => this.queuedPrefillTokens(c) >= this.maxPrefillQueueTokens)) {
      return local('local-prefill', 'prefill_saturated');
    }
    const prefill = this.prefill.route(prefillCandidates, request);
    if (!prefill) return local('local-prefill', 'prefill_saturated'); // every prefill worker past a busy threshold
    // The decode worker computes nothing: its prefill load goes to the prefill worker.
    this.decode.prefillComplete(request.requestId);
    return {
      mode: 'remote-prefill',
      reason: 'remote',
      decode,
      prefill,
      uncachedTokens,
      blocksToPull: Math.max(0, decode.promptBlocks - decode.overlapBlocks),
    };
  }

  private queuedPrefillTokens(c: CandidateWorker): number {
    return Math.max(this.prefill.active.of(c.instanceId).prefillTokens, c.published?.activePrefillTokens ?? 0);
  }
}
