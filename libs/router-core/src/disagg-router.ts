// Disaggregated routing: the choice of a (prefill worker, decode worker) pair, and whether
// to disaggregate at all. The decode worker is chosen first, from the decode pool with its
// own policy (load-aware); what it already caches decides how much prompt is left to
// compute. Short remainders are prefilled locally on the decode worker (moving KV costs
// more than computing a little), as is everything when the prefill pool is saturated or
// empty; otherwise the prefill pool's policy (KV-aware) picks the prefill worker, and the
// decode worker pulls only the blocks it lacks. Pure decision code, shared by the live
// router and the offline simulator; it sends nothing.
import { ArmatureError } from '@armature/runtime';
import type { CandidateWorker, KvRouter, RouteOutcome, RouteRequestInput } from './kv-router.js';
import { createPolicy } from './policies/index.js';

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

/** The mode each reason leads to: every (mode, reason) pair a decision can have. */
export const DISAGG_MODE_OF: Readonly<Record<DisaggReason, DisaggMode>> = {
  no_prefill_workers: 'aggregated',
  short_prompt: 'local-prefill',
  prefill_saturated: 'local-prefill',
  remote: 'remote-prefill',
};

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

/** The options with their defaults filled in; throws RangeError for bad values. */
export function resolveDisaggOptions(options: DisaggOptions = {}): Required<DisaggOptions> {
  const minRemotePrefillTokens = options.minRemotePrefillTokens ?? DEFAULTS.minRemotePrefillTokens;
  const maxPrefillQueueTokens = options.maxPrefillQueueTokens ?? DEFAULTS.maxPrefillQueueTokens;
  if (!Number.isInteger(minRemotePrefillTokens) || minRemotePrefillTokens < 0) {
    throw new RangeError(`minRemotePrefillTokens must be an integer >= 0, got ${options.minRemotePrefillTokens}`);
  }
  if (typeof maxPrefillQueueTokens !== 'number' || !(maxPrefillQueueTokens > 0)) {
    throw new RangeError(`maxPrefillQueueTokens must be > 0, got ${options.maxPrefillQueueTokens}`);
  }
  return { minRemotePrefillTokens, maxPrefillQueueTokens };
}

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
    const resolved = resolveDisaggOptions(options);
    this.minRemotePrefillTokens = resolved.minRemotePrefillTokens;
    this.maxPrefillQueueTokens = resolved.maxPrefillQueueTokens;
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
    const local = (reason: Exclude<DisaggReason, 'remote'>): DisaggOutcome => ({
      mode: DISAGG_MODE_OF[reason],
      reason,
      decode,
      uncachedTokens,
      blocksToPull: 0,
    });
    if (prefillCandidates.length === 0) return local('no_prefill_workers');
    if (uncachedTokens < this.minRemotePrefillTokens) return local('short_prompt');
    if (prefillCandidates.every((c) => this.queuedPrefillTokens(c) >= this.maxPrefillQueueTokens)) {
      return local('prefill_saturated');
    }
    const prefill = this.prefill.route(prefillCandidates, request);
    if (!prefill) return local('prefill_saturated'); // every prefill worker past a busy threshold
    // The decode worker computes nothing: its prefill load goes to the prefill worker.
    this.decode.prefillComplete(request.requestId);
    return {
      mode: DISAGG_MODE_OF.remote,
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

/** A deployment's disaggregation settings: the thresholds and the prefill pool's policy. */
export interface DisaggSettings {
  options: DisaggOptions;
  prefillPolicy: string;
  prefillParams: Record<string, unknown>;
}

const SETTINGS = new Set(['minRemotePrefillTokens', 'maxPrefillQueueTokens', 'prefillPolicy', 'prefillParams']);

/**
 * Reads raw disaggregation settings (the graph's `router.disagg`, ARMATURE_DISAGG); unknown
 * keys and bad values throw ArmatureError('invalid_argument'), so a typo fails at start-up.
 */
export function compileDisaggSettings(raw: unknown): DisaggSettings {
  const bad = (message: string): ArmatureError =>
    new ArmatureError('invalid_argument', 'bad_disagg_settings', `disaggregation settings: ${message}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('expected an object');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) if (!SETTINGS.has(key)) throw bad(`disagg.${key}: unknown setting`);
  const prefillPolicy = r.prefillPolicy ?? 'kv';
  if (typeof prefillPolicy !== 'string') throw bad('prefillPolicy must be a policy id');
  const prefillParams = r.prefillParams ?? {};
  if (typeof prefillParams !== 'object' || prefillParams === null || Array.isArray(prefillParams))
    throw bad('prefillParams must be an object');
  createPolicy(prefillPolicy, prefillParams as Record<string, unknown>); // throws for unknown ids and bad params
  const options: DisaggOptions = {};
  if (r.minRemotePrefillTokens !== undefined) options.minRemotePrefillTokens = r.minRemotePrefillTokens as number;
  if (r.maxPrefillQueueTokens !== undefined) options.maxPrefillQueueTokens = r.maxPrefillQueueTokens as number;
  try {
    resolveDisaggOptions(options);
  } catch (err) {
    throw bad((err as Error).message);
  }
  return { options, prefillPolicy, prefillParams: prefillParams as Record<string, unknown> };
}
