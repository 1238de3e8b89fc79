// The metric names catalog: every metric Armature exports, with its type, help text and
// labels. Names follow armature_<area>_<name>_<unit>; counters end in _total, durations
// are in seconds. Dashboards and tests check their queries against this file.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  type: MetricType;
  help: string;
  labels: readonly string[];
  buckets?: readonly number[];
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;
const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;
const ROUTER_STAGE_BUCKETS = [
  0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
] as const;
const RATIO_BUCKETS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1] as const;
const TOKEN_BUCKETS = [1, 16, 64, 256, 1024, 4096, 16384, 65536, 131072] as const;

export const METRICS = {
  // frontend
  armature_frontend_requests_total: {
    type: 'counter',
    help: 'HTTP inference requests finished, by endpoint and status code.',
    labels: ['model', 'endpoint', 'status'],
  },
  armature_frontend_inflight_requests: {
    type: 'gauge',
    help: 'Inference requests being served now.',
    labels: ['model'],
  },
  armature_frontend_time_to_first_token_seconds: {
    type: 'histogram',
    help: 'Time from request arrival to the first output token.',
    labels: ['model'],
    buckets: LATENCY_BUCKETS,
  },
  armature_frontend_inter_token_latency_seconds: {
    type: 'histogram',
    help: 'Time between consecutive output tokens of a request.',
    labels: ['model'],
    buckets: FAST_BUCKETS,
  },
  armature_frontend_request_duration_seconds: {
    type: 'histogram',
    help: 'Time from request arrival to the last byte of the response.',
    labels: ['model'],
    buckets: LATENCY_BUCKETS,
  },
  armature_frontend_input_tokens_total: {
    type: 'counter',
    help: 'Prompt tokens of served requests.',
    labels: ['model'],
  },
  armature_frontend_output_tokens_total: { type: 'counter', help: 'Completion tokens returned.', labels: ['model'] },
  armature_frontend_cached_tokens_total: {
    type: 'counter',
    help: 'Prompt tokens the worker found in its prefix cache.',
    labels: ['model'],
  },
  armature_frontend_input_sequence_tokens: {
    type: 'histogram',
    help: 'Prompt length per request.',
    labels: ['model'],
    buckets: TOKEN_BUCKETS,
  },
  armature_frontend_output_sequence_tokens: {
    type: 'histogram',
    help: 'Completion length per request.',
    labels: ['model'],
    buckets: TOKEN_BUCKETS,
  },
  armature_frontend_disconnects_total: {
    type: 'counter',
    help: 'Requests cancelled because the client went away.',
    labels: ['model'],
  },
  // router
  armature_router_decisions_total: {
    type: 'counter',
    help: 'Routing decisions, by policy and chosen worker.',
    labels: ['model', 'policy', 'worker'],
  },
  armature_router_overhead_seconds: {
    type: 'histogram',
    help: 'Router time per decision, by stage: hashing, find_matches, scoring, total.',
    labels: ['stage'],
    buckets: ROUTER_STAGE_BUCKETS,
  },
  armature_router_kv_hit_ratio: {
    type: 'histogram',
    help: 'Per decision, prompt blocks the chosen worker holds / prompt blocks.',
    labels: ['policy'],
    buckets: RATIO_BUCKETS,
  },
  armature_router_kv_overlap_blocks_total: {
    type: 'counter',
    help: 'Prompt blocks the chosen workers held (the KV hit rate is this over prompt blocks).',
    labels: ['policy'],
  },
  armature_router_prompt_blocks_total: {
    type: 'counter',
    help: 'Prompt blocks routed.',
    labels: ['policy'],
  },
  armature_router_kv_events_applied_total: {
    type: 'counter',
    help: 'KV events applied to the router index, by type.',
    labels: ['type'],
  },
  armature_router_kv_events_skipped_total: {
    type: 'counter',
    help: 'KV event batches skipped: undecodable, or from an unknown publisher.',
    labels: ['reason'],
  },
  armature_router_kv_gaps_total: {
    type: 'counter',
    help: 'KV event sequence gaps seen, by kind (loss or publisher restart).',
    labels: ['kind'],
  },
  armature_router_kv_recoveries_total: {
    type: 'counter',
    help: 'KV state loads from workers (DumpKvState), by kind (range, full) and outcome.',
    labels: ['kind', 'outcome'],
  },
  armature_router_indexed_blocks: {
    type: 'gauge',
    help: 'KV blocks the router index holds, per worker.',
    labels: ['worker'],
  },
  armature_router_queue_depth: {
    type: 'gauge',
    help: 'Requests waiting in the router queue because every worker is busy.',
    labels: [],
  },
  armature_router_queue_rejected_total: {
    type: 'counter',
    help: 'Requests refused by the router queue, by reason (full, timeout).',
    labels: ['reason'],
  },
  armature_router_queue_wait_seconds: {
    type: 'histogram',
    help: 'Time requests waited in the router queue.',
    labels: [],
    buckets: LATENCY_BUCKETS,
  },
  armature_router_replica_ops_total: {
    type: 'counter',
    help: 'Active-load changes received from router replicas, by op (add, prefill, free).',
    labels: ['op'],
  },
  armature_router_workers: { type: 'gauge', help: 'Workers the router can choose from.', labels: ['model'] },
  armature_router_active_requests: {
    type: 'gauge',
    help: 'Requests routed and not yet freed, per worker.',
    labels: ['worker'],
  },
  armature_router_no_worker_total: {
    type: 'counter',
    help: 'Route calls that found no worker for the model.',
    labels: ['model'],
  },
  // workers
  armature_worker_requests_total: {
    type: 'counter',
    help: 'Requests a worker finished, by finish reason.',
    labels: ['model', 'finish_reason'],
  },
  armature_worker_running_requests: { type: 'gauge', help: 'Sequences in the running batch.', labels: ['model'] },
  armature_worker_waiting_requests: { type: 'gauge', help: 'Requests waiting for admission.', labels: ['model'] },
  armature_worker_kv_usage_ratio: {
    type: 'gauge',
    help: 'Used KV blocks / total KV blocks on device.',
    labels: ['model'],
  },
  armature_worker_active_decode_blocks: {
    type: 'gauge',
    help: 'KV blocks held by running sequences.',
    labels: ['model'],
  },
  armature_worker_active_prefill_tokens: {
    type: 'gauge',
    help: 'Prompt tokens admitted but not yet prefilled.',
    labels: ['model'],
  },
  armature_worker_generated_tokens_total: {
    type: 'counter',
    help: 'Tokens generated by the engine.',
    labels: ['model'],
  },
  armature_worker_kv_events_total: { type: 'counter', help: 'KV events published, by type.', labels: ['type'] },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;
