// The metric names catalog: every metric Armature exports, with its type, help text and
// labels. Names follow armature_<area>_<name>_<unit>; counters end in _total, durations
// are in seconds. Dashboards and tests check their queries against this file.
// One file past 450 lines on purpose: it is the single list of every name, and grows with them.

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
const STAGE_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;
const RATIO_BUCKETS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1] as const;
const BANDWIDTH_BUCKETS = [1e6, 1e7, 1e8, 2.5e8, 5e8, 1e9, 2.5e9, 5e9, 1e10, 2.5e10, 5e10, 1e11] as const;
const TOKEN_BUCKETS = [1, 16, 64, 256, 1024, 4096, 16384, 65536, 131072] as const;

export const METRICS = {
  // every process
  armature_build_info: {
    type: 'gauge',
    help: 'Always 1: the service, its Armature version and Node.js version.',
    labels: ['service', 'version', 'node'],
  },
  armature_process_resident_memory_bytes: { type: 'gauge', help: 'Resident set size.', labels: [] },
  armature_process_heap_used_bytes: { type: 'gauge', help: 'V8 heap in use.', labels: [] },
  armature_process_cpu_seconds_total: {
    type: 'counter',
    help: 'CPU time the process used (user + system).',
    labels: [],
  },
  armature_process_event_loop_lag_seconds: {
    type: 'gauge',
    help: 'Event-loop delay since the last scrape: p50, p99 and max (a blocked loop shows as a large max).',
    labels: ['stat'],
  },
  armature_process_gc_pause_seconds: {
    type: 'histogram',
    help: 'Garbage-collection pauses, by kind (minor, major, incremental, weakcb).',
    labels: ['kind'],
    buckets: FAST_BUCKETS,
  },
  armature_tracing_spans_exported_total: {
    type: 'counter',
    help: 'Trace spans this process exported to its OTLP endpoint.',
    labels: [],
  },
  armature_tracing_errors_total: {
    type: 'counter',
    help: 'Tracing problems, by kind: export (a batch of spans not delivered) and config (a malformed OTEL_* value, ignored).',
    labels: ['kind'],
  },
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
  armature_frontend_stage_seconds: {
    type: 'histogram',
    help: 'Time spent in each stage of a request: tokenize, route and prefill (remote prefill calls), and first_byte (arrival to the status line).',
    labels: ['model', 'stage'],
    buckets: STAGE_BUCKETS,
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
  armature_frontend_admission_rejected_total: {
    type: 'counter',
    help: 'Requests refused at the door: queue_full and queue_timeout (503), client_limit (429).',
    labels: ['model', 'reason'],
  },
  armature_frontend_admission_waiting: {
    type: 'gauge',
    help: 'Requests waiting for an admission slot.',
    labels: ['model'],
  },
  armature_frontend_admission_wait_seconds: {
    type: 'histogram',
    help: 'Time admitted requests waited for a slot.',
    labels: ['model'],
    buckets: LATENCY_BUCKETS,
  },
  armature_frontend_retries_total: {
    type: 'counter',
    help: 'Requests moved to another worker: kind reroute (it failed before answering) or migrate (mid-stream), by reason.',
    labels: ['kind', 'reason'],
  },
  armature_frontend_retries_exhausted_total: {
    type: 'counter',
    help: 'Requests whose worker failed with no re-route or migration left, by kind.',
    labels: ['kind'],
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
    help: 'Active-load changes received from router replicas, by op (add, prefill, local_prefill, free).',
    labels: ['op'],
  },
  armature_router_inhibitions_total: {
    type: 'counter',
    help: 'Workers left out of routing for a while after a failure, by reason.',
    labels: ['reason'],
  },
  armature_router_inhibited_workers: { type: 'gauge', help: 'Workers inhibited now.', labels: [] },
  armature_router_health_checks_total: {
    type: 'counter',
    help: "The router's worker health checks, by result (ok, failed, canary_ok).",
    labels: ['result'],
  },
  armature_router_worker_healthy: {
    type: 'gauge',
    help: 'Whether the router sees the worker healthy (1) or failing its checks (0).',
    labels: ['worker'],
  },
  armature_router_workers: { type: 'gauge', help: 'Workers the router can choose from.', labels: ['model'] },
  armature_router_active_requests: {
    type: 'gauge',
    help: 'Requests routed and not yet freed, per worker.',
    labels: ['worker'],
  },
  armature_router_disagg_decisions_total: {
    type: 'counter',
    help: 'How prompts were prefilled: aggregated, local-prefill or remote-prefill, and why.',
    labels: ['model', 'mode', 'reason'],
  },
  armature_router_prefill_fallbacks_total: {
    type: 'counter',
    help: 'Prompts routed to a prefill worker that were prefilled on the decode worker instead (the frontend fell back).',
    labels: [],
  },
  armature_router_prefill_queue_tokens: {
    type: 'gauge',
    help: 'Prompt tokens this router has placed on each prefill worker and not yet seen prefilled.',
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
  armature_worker_batch_size: {
    type: 'histogram',
    help: "Sequences in each forward pass (batch) of the worker's engine.",
    labels: ['model'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  },
  armature_worker_batch_prefill_tokens: {
    type: 'histogram',
    help: 'Prompt tokens computed in each forward pass.',
    labels: ['model'],
    buckets: TOKEN_BUCKETS,
  },
  armature_worker_step_seconds: {
    type: 'histogram',
    help: 'Duration of one forward pass (the mocker: its modelled time; llama.cpp does not report it).',
    labels: ['model'],
    buckets: FAST_BUCKETS,
  },
  armature_worker_preemptions_total: {
    type: 'counter',
    help: 'Requests preempted (their KV blocks taken back; they recompute later).',
    labels: ['model'],
  },
  armature_worker_prompt_tokens_total: {
    type: 'counter',
    help: 'Prompt tokens of the requests the worker started.',
    labels: ['model'],
  },
  armature_worker_prefix_cache_hit_tokens_total: {
    type: 'counter',
    help: "Prompt tokens found in the worker's prefix cache (the hit rate is this over prompt tokens).",
    labels: ['model'],
  },
  armature_worker_engine_up: {
    type: 'gauge',
    help: 'Whether the engine is running (1) or closed or failed (0).',
    labels: ['model', 'engine'],
  },
  armature_worker_model_info: {
    type: 'gauge',
    help: 'Always 1: the model card the worker serves (engine, tokenizer, block size, context length).',
    labels: ['model', 'engine', 'tokenizer', 'block_size', 'context_length'],
  },
  armature_worker_kv_total_blocks: {
    type: 'gauge',
    help: "KV blocks of the worker's cache (the model card's totalKvBlocks).",
    labels: ['model'],
  },
  armature_worker_max_num_seqs: {
    type: 'gauge',
    help: 'Sequences the engine runs at most at once (the model card).',
    labels: ['model'],
  },
  armature_worker_generated_tokens_total: {
    type: 'counter',
    help: 'Tokens generated by the engine.',
    labels: ['model'],
  },
  armature_worker_kv_events_total: { type: 'counter', help: 'KV events published, by type.', labels: ['type'] },
  // disaggregated serving, on the workers
  armature_worker_prefill_queue_depth: {
    type: 'gauge',
    help: 'Prefill worker: requests waiting for their prefill.',
    labels: ['model'],
  },
  armature_worker_pinned_requests: {
    type: 'gauge',
    help: 'Prefill worker: prefilled prompts whose KV blocks are pinned for a decode worker.',
    labels: ['model'],
  },
  armature_worker_pinned_blocks: {
    type: 'gauge',
    help: 'Prefill worker: KV blocks pinned for decode workers.',
    labels: ['model'],
  },
  armature_worker_pins_total: {
    type: 'counter',
    help: 'Prefill worker: pins ended, by how (released by the decode worker, expired, closed at shutdown).',
    labels: ['how'],
  },
  armature_worker_remote_prefill_total: {
    type: 'counter',
    help: 'Decode worker: remotely prefilled requests, by outcome (imported, or why it prefilled locally).',
    labels: ['outcome'],
  },
  armature_worker_kv_blocks_pulled_total: {
    type: 'counter',
    help: 'Decode worker: prompt KV blocks pulled from prefill workers.',
    labels: [],
  },
  armature_worker_kv_blocks_reused_total: {
    type: 'counter',
    help: "Decode worker: prompt KV blocks of remote prefills found in the worker's own prefix cache (not pulled).",
    labels: [],
  },
  // KV transfer library
  armature_transfer_bytes_total: {
    type: 'counter',
    help: 'Bytes of KV blocks moved by successful transfers, by backend.',
    labels: ['backend'],
  },
  armature_transfer_blocks_total: {
    type: 'counter',
    help: 'KV blocks moved by successful transfers, by backend.',
    labels: ['backend'],
  },
  armature_transfer_duration_seconds: {
    type: 'histogram',
    help: 'Duration of one successful transfer (a list of blocks), by backend.',
    labels: ['backend'],
    buckets: FAST_BUCKETS,
  },
  armature_transfer_bandwidth_bytes_per_second: {
    type: 'histogram',
    help: 'Bandwidth of one successful transfer, by backend.',
    labels: ['backend'],
    buckets: BANDWIDTH_BUCKETS,
  },
  armature_transfer_failures_total: {
    type: 'counter',
    help: 'Failed transfers, by error kind (peer_unreachable, timeout, checksum_mismatch, bad_request, closed).',
    labels: ['kind'],
  },
  armature_transfer_served_bytes_total: {
    type: 'counter',
    help: "Bytes of this worker's KV blocks served to peers over TCP.",
    labels: [],
  },
  // planner
  armature_planner_observed_load: {
    type: 'gauge',
    help: 'What the last interval brought: requests per second (series=requests_per_second), mean ISL and OSL in tokens, and the prefix-cache hit rate.',
    labels: ['series'],
  },
  armature_planner_predicted_load: {
    type: 'gauge',
    help: "The predictor's forecast for the next interval: requests per second, mean ISL and OSL in tokens.",
    labels: ['series'],
  },
  armature_planner_observed_latency_seconds: {
    type: 'gauge',
    help: 'Mean TTFT (kind=ttft) and ITL (kind=itl) over the last interval, as the planner read them.',
    labels: ['kind'],
  },
  armature_planner_estimated_latency_seconds: {
    type: 'gauge',
    help: "Load mode's estimate of the next TTFT or ITL on the pool's least-loaded worker.",
    labels: ['pool', 'kind'],
  },
  armature_planner_proposed_replicas: {
    type: 'gauge',
    help: 'Replicas each mode proposed for the pool (mode=throughput or load) and the count after the constraints (mode=final).',
    labels: ['pool', 'mode'],
  },
  armature_planner_desired_replicas: {
    type: 'gauge',
    help: 'Replicas the planner last asked the connector for.',
    labels: ['pool'],
  },
  armature_planner_ready_replicas: {
    type: 'gauge',
    help: 'Replicas of the pool serving at the last decision.',
    labels: ['pool'],
  },
  armature_planner_decisions_total: {
    type: 'counter',
    help: 'Decisions per pool by direction (up, down, hold) and cause (throughput, load, constraint, held: metrics missing or no traffic).',
    labels: ['pool', 'direction', 'cause'],
  },
  armature_planner_worker_seconds_total: {
    type: 'counter',
    help: 'Replica-seconds the pool has held (ready and starting replicas over time): the cost the planner minimises.',
    labels: ['pool'],
  },
  armature_planner_observe_errors_total: {
    type: 'counter',
    help: 'Failed reads of the metrics the planner observes, by source (prometheus, scrape).',
    labels: ['source'],
  },
  armature_planner_connector_errors_total: {
    type: 'counter',
    help: 'Failed attempts to apply replica counts, by connector (each retried with back-off).',
    labels: ['connector'],
  },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;
