// A worker's series that exist from start, at zero, so a dashboard of a quiet worker reads
// 0 rather than "no data": per model (the one it serves), per finish reason, KV event type,
// pin ending, remote-prefill outcome, transfer backend and failure kind, each from the
// enumeration the code counts with. Each role gets the families it owns: the prefill queue
// and pins on a prefill worker, the KV pulls and transfers on a decode worker.
import { KV_EVENT_TYPES } from '@armature/kv';
import type { MetricsRegistry } from '@armature/metrics';
import { TRANSFER_ERROR_KINDS, type TransferBackendKind } from '@armature/transfer';
import { IMPORT_OUTCOMES } from './kv-puller.js';
import { PIN_ENDINGS } from './pin-table.js';
import { WORKER_FINISH_REASONS } from './worker-service.js';

export interface WorkerSeriesOptions {
  role: 'decode' | 'prefill';
  model: string;
  /** The transfer agent's backends; absent when transfers are off. */
  backends?: readonly TransferBackendKind[];
}

const PER_MODEL = [
  'armature_worker_running_requests',
  'armature_worker_waiting_requests',
  'armature_worker_kv_usage_ratio',
  'armature_worker_active_decode_blocks',
  'armature_worker_active_prefill_tokens',
  'armature_worker_batch_size',
  'armature_worker_batch_prefill_tokens',
  'armature_worker_step_seconds',
  'armature_worker_preemptions_total',
  'armature_worker_prompt_tokens_total',
  'armature_worker_prefix_cache_hit_tokens_total',
  'armature_worker_generated_tokens_total',
] as const;

const PREFILL_PER_MODEL = [
  'armature_worker_prefill_queue_depth',
  'armature_worker_pinned_requests',
  'armature_worker_pinned_blocks',
] as const;

const PER_BACKEND = [
  'armature_transfer_bytes_total',
  'armature_transfer_blocks_total',
  'armature_transfer_duration_seconds',
  'armature_transfer_bandwidth_bytes_per_second',
] as const;

/** Creates the worker's series at zero; call at start, before the engine runs a request. */
export function zeroWorkerSeries(metrics: MetricsRegistry, { role, model, backends }: WorkerSeriesOptions): void {
  for (const name of PER_MODEL) metrics.zero(name, { model });
  for (const finish_reason of WORKER_FINISH_REASONS) {
    if (finish_reason !== 'prefilled' || role === 'prefill')
      metrics.zero('armature_worker_requests_total', { model, finish_reason });
  }
  for (const type of KV_EVENT_TYPES) metrics.zero('armature_worker_kv_events_total', { type });
  if (backends) metrics.zero('armature_transfer_served_bytes_total');
  if (role === 'prefill') {
    for (const name of PREFILL_PER_MODEL) metrics.zero(name, { model });
    for (const how of PIN_ENDINGS) metrics.zero('armature_worker_pins_total', { how });
    return;
  }
  for (const outcome of IMPORT_OUTCOMES) metrics.zero('armature_worker_remote_prefill_total', { outcome });
  metrics.zero('armature_worker_kv_blocks_pulled_total');
  metrics.zero('armature_worker_kv_blocks_reused_total');
  if (!backends) return;
  for (const backend of backends) for (const name of PER_BACKEND) metrics.zero(name, { backend });
  for (const kind of TRANSFER_ERROR_KINDS) metrics.zero('armature_transfer_failures_total', { kind });
}
