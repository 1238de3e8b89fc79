// The router's series that exist at zero before their first use, so a dashboard of a quiet
// cluster reads 0 rather than "no data": at start, those whose labels the router knows
// (its policy, the decision stages, and the enumerations the code counts with); then per
// worker as workers join (removed again when they leave, so departed workers do not
// linger) and per model as a model's first worker joins.
import { KV_EVENT_TYPES } from '@armature/kv';
import type { MetricsRegistry } from '@armature/metrics';
import {
  ACTIVE_LOAD_OPS,
  DISAGG_MODE_OF,
  INHIBIT_REASONS,
  PINNED_POLICY,
  QUEUE_REJECT_REASONS,
  type DisaggReason,
  type StageTimings,
} from '@armature/router-core';
import { HEALTH_CHECK_RESULTS } from './health-checker.js';
import { KV_GAP_KINDS, KV_LOAD_KINDS, KV_LOAD_OUTCOMES, KV_SKIP_REASONS } from './kv-feed.js';
import type { WorkerDirectory } from './worker-directory.js';

/** armature_router_overhead_seconds's stage for each timing of a decision. */
export const OVERHEAD_STAGES: Readonly<Record<keyof StageTimings, string>> = {
  hashing: 'hashing',
  findMatches: 'find_matches',
  scoring: 'scoring',
  total: 'total',
};

/** Creates the router's start-time series at zero; `policy` is the decode pool's policy id. Call before serving. */
export function zeroRouterSeries(metrics: MetricsRegistry, policy: string): void {
  for (const stage of Object.values(OVERHEAD_STAGES)) metrics.zero('armature_router_overhead_seconds', { stage });
  metrics.zero('armature_router_kv_hit_ratio', { policy });
  metrics.zero('armature_router_kv_overlap_blocks_total', { policy });
  metrics.zero('armature_router_prompt_blocks_total', { policy });
  for (const type of KV_EVENT_TYPES) metrics.zero('armature_router_kv_events_applied_total', { type });
  for (const reason of KV_SKIP_REASONS) metrics.zero('armature_router_kv_events_skipped_total', { reason });
  for (const kind of KV_GAP_KINDS) metrics.zero('armature_router_kv_gaps_total', { kind });
  for (const kind of KV_LOAD_KINDS) {
    for (const outcome of KV_LOAD_OUTCOMES) metrics.zero('armature_router_kv_recoveries_total', { kind, outcome });
  }
  metrics.zero('armature_router_queue_depth');
  metrics.zero('armature_router_queue_wait_seconds');
  for (const reason of QUEUE_REJECT_REASONS) metrics.zero('armature_router_queue_rejected_total', { reason });
  for (const op of ACTIVE_LOAD_OPS) metrics.zero('armature_router_replica_ops_total', { op });
  for (const reason of INHIBIT_REASONS) metrics.zero('armature_router_inhibitions_total', { reason });
  metrics.zero('armature_router_inhibited_workers');
  for (const result of HEALTH_CHECK_RESULTS) metrics.zero('armature_router_health_checks_total', { result });
  metrics.zero('armature_router_prefill_fallbacks_total');
}

/**
 * Follows `directory`: a decode worker that joins gets its decisions under `policy` and its
 * active requests at zero, a prefill worker its queued prompt tokens, and a model its
 * first worker serves its disaggregation decisions and no-worker count. A departed worker's
 * decisions series go (the core's workerRemoved observer removes its gauges).
 */
export function followWorkerSeries(metrics: MetricsRegistry, directory: WorkerDirectory, policy: string): void {
  const models = new Set<string>();
  const decodeModel = new Map<string, string>();
  directory.onAdded(({ record }) => {
    const worker = record.instanceId;
    const model = record.model!; // the directory keeps only workers with a model
    if (record.role === 'prefill') {
      metrics.zero('armature_router_prefill_queue_tokens', { worker });
      return;
    }
    decodeModel.set(worker, model);
    metrics.zero('armature_router_decisions_total', { model, policy, worker });
    metrics.zero('armature_router_active_requests', { worker });
    if (models.has(model)) return;
    models.add(model);
    metrics.zero('armature_router_no_worker_total', { model });
    for (const [reason, mode] of Object.entries(DISAGG_MODE_OF) as Array<[DisaggReason, string]>)
      metrics.zero('armature_router_disagg_decisions_total', { model, mode, reason });
  });
  directory.onRemoved((worker) => {
    const model = decodeModel.get(worker);
    if (model === undefined) return;
    decodeModel.delete(worker);
    const decisions = metrics.get('armature_router_decisions_total');
    for (const p of new Set([policy, PINNED_POLICY])) decisions.remove({ model, policy: p, worker });
  });
}
