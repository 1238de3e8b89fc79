// Before any request, each service already exports every family it owns whose labels it
// knows (per model, worker, policy, backend, and each enumerated reason), at zero, so a
// dashboard of a quiet cluster never reads "no data"; and no service exports another's.
// A worker that leaves takes its series on the router with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@armature/testing';
import { MODEL, startCluster, type Cluster } from './cluster.js';

type Role = 'frontend' | 'router' | 'decode' | 'prefill' | 'planner';

const PROCESS = [
  'armature_build_info',
  'armature_process_resident_memory_bytes',
  'armature_process_heap_used_bytes',
  'armature_process_cpu_seconds_total',
  'armature_process_event_loop_lag_seconds',
  'armature_process_gc_pause_seconds',
  'armature_tracing_spans_exported_total',
  'armature_tracing_errors_total',
];

const WORKER = [
  'armature_worker_requests_total',
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
  'armature_worker_engine_up',
  'armature_worker_model_info',
  'armature_worker_kv_total_blocks',
  'armature_worker_max_num_seqs',
  'armature_worker_generated_tokens_total',
  'armature_worker_kv_events_total',
  'armature_transfer_served_bytes_total',
];

/** The families each role exports before any request (armature_frontend_retries_total waits for its first reason). */
const EXPECTED_AT_START: Record<Role, string[]> = {
  frontend: [
    ...PROCESS,
    'armature_frontend_requests_total',
    'armature_frontend_inflight_requests',
    'armature_frontend_time_to_first_token_seconds',
    'armature_frontend_inter_token_latency_seconds',
    'armature_frontend_request_duration_seconds',
    'armature_frontend_stage_seconds',
    'armature_frontend_input_tokens_total',
    'armature_frontend_output_tokens_total',
    'armature_frontend_cached_tokens_total',
    'armature_frontend_input_sequence_tokens',
    'armature_frontend_output_sequence_tokens',
    'armature_frontend_disconnects_total',
    'armature_frontend_admission_rejected_total',
    'armature_frontend_admission_waiting',
    'armature_frontend_admission_wait_seconds',
    'armature_frontend_retries_exhausted_total',
  ],
  router: [
    ...PROCESS,
    'armature_router_decisions_total',
    'armature_router_overhead_seconds',
    'armature_router_kv_hit_ratio',
    'armature_router_kv_overlap_blocks_total',
    'armature_router_prompt_blocks_total',
    'armature_router_kv_events_applied_total',
    'armature_router_kv_events_skipped_total',
    'armature_router_kv_gaps_total',
    'armature_router_kv_recoveries_total',
    'armature_router_indexed_blocks',
    'armature_router_queue_depth',
    'armature_router_queue_rejected_total',
    'armature_router_queue_wait_seconds',
    'armature_router_replica_ops_total',
    'armature_router_inhibitions_total',
    'armature_router_inhibited_workers',
    'armature_router_health_checks_total',
    'armature_router_worker_healthy',
    'armature_router_workers',
    'armature_router_active_requests',
    'armature_router_disagg_decisions_total',
    'armature_router_prefill_fallbacks_total',
    'armature_router_prefill_queue_tokens',
    'armature_router_no_worker_total',
  ],
  decode: [
    ...PROCESS,
    ...WORKER,
    'armature_worker_remote_prefill_total',
    'armature_worker_kv_blocks_pulled_total',
    'armature_worker_kv_blocks_reused_total',
    'armature_transfer_bytes_total',
    'armature_transfer_blocks_total',
    'armature_transfer_duration_seconds',
    'armature_transfer_bandwidth_bytes_per_second',
    'armature_transfer_failures_total',
  ],
  prefill: [
    ...PROCESS,
    ...WORKER,
    'armature_worker_prefill_queue_depth',
    'armature_worker_pinned_requests',
    'armature_worker_pinned_blocks',
    'armature_worker_pins_total',
  ],
  planner: [
    ...PROCESS,
    'armature_planner_observed_load',
    'armature_planner_predicted_load',
    'armature_planner_observed_latency_seconds',
    'armature_planner_estimated_latency_seconds',
    'armature_planner_proposed_replicas',
    'armature_planner_desired_replicas',
    'armature_planner_ready_replicas',
    'armature_planner_decisions_total',
    'armature_planner_worker_seconds_total',
    'armature_planner_observe_errors_total',
    'armature_planner_connector_errors_total',
  ],
};

const M = `model="${MODEL}"`;
/** Zero series each role has from start (its known label values), one per line as exposed. */
const ZERO_AT_START: Record<Role, string[]> = {
  frontend: [
    `armature_frontend_inflight_requests{${M}} 0`,
    `armature_frontend_requests_total{${M},endpoint="chat_completions",status="200"} 0`,
    `armature_frontend_requests_total{${M},endpoint="completions",status="200"} 0`,
    `armature_frontend_time_to_first_token_seconds_count{${M}} 0`,
    `armature_frontend_stage_seconds_count{${M},stage="tokenize"} 0`,
    `armature_frontend_stage_seconds_count{${M},stage="first_byte"} 0`,
    `armature_frontend_admission_rejected_total{${M},reason="queue_full"} 0`,
    `armature_frontend_admission_rejected_total{${M},reason="client_limit"} 0`,
    'armature_frontend_retries_exhausted_total{kind="migrate"} 0',
  ],
  router: [
    ...['decode-0', 'decode-1'].flatMap((w) => [
      `armature_router_decisions_total{${M},policy="round-robin",worker="${w}"} 0`,
      `armature_router_active_requests{worker="${w}"} 0`,
    ]),
    'armature_router_prefill_queue_tokens{worker="prefill-0"} 0',
    ...['decode-0', 'decode-1', 'prefill-0'].map((w) => `armature_router_worker_healthy{worker="${w}"} 1`),
    `armature_router_workers{${M}} 2`,
    `armature_router_no_worker_total{${M}} 0`,
    `armature_router_disagg_decisions_total{${M},mode="aggregated",reason="no_prefill_workers"} 0`,
    `armature_router_disagg_decisions_total{${M},mode="remote-prefill",reason="remote"} 0`,
    'armature_router_overhead_seconds_count{stage="total"} 0',
    'armature_router_kv_hit_ratio_count{policy="round-robin"} 0',
    'armature_router_queue_rejected_total{reason="full"} 0',
    'armature_router_queue_rejected_total{reason="timeout"} 0',
    'armature_router_replica_ops_total{op="add"} 0',
    'armature_router_inhibitions_total{reason="request_failed"} 0',
    'armature_router_kv_gaps_total{kind="loss"} 0',
    'armature_router_kv_events_skipped_total{reason="undecodable"} 0',
  ],
  decode: [
    `armature_worker_requests_total{${M},finish_reason="stop"} 0`,
    `armature_worker_requests_total{${M},finish_reason="evicted"} 0`,
    `armature_worker_running_requests{${M}} 0`,
    `armature_worker_step_seconds_count{${M}} 0`,
    'armature_worker_kv_events_total{type="BlockStored"} 0',
    'armature_worker_remote_prefill_total{outcome="imported"} 0',
    'armature_worker_remote_prefill_total{outcome="transfer_failed"} 0',
    'armature_worker_kv_blocks_pulled_total 0',
    ...['shm', 'tcp'].flatMap((backend) => [
      `armature_transfer_bytes_total{backend="${backend}"} 0`,
      `armature_transfer_duration_seconds_count{backend="${backend}"} 0`,
    ]),
    'armature_transfer_failures_total{kind="timeout"} 0',
  ],
  prefill: [
    `armature_worker_requests_total{${M},finish_reason="prefilled"} 0`,
    `armature_worker_prefill_queue_depth{${M}} 0`,
    `armature_worker_pinned_blocks{${M}} 0`,
    'armature_worker_pins_total{how="released"} 0',
    'armature_worker_pins_total{how="expired"} 0',
  ],
  planner: [
    'armature_planner_observed_load{series="requests_per_second"} 0',
    'armature_planner_proposed_replicas{pool="prefill",mode="throughput"} 0',
    'armature_planner_decisions_total{pool="decode",direction="up",cause="load"} 0',
    'armature_planner_worker_seconds_total{pool="prefill"} 0',
    'armature_planner_observe_errors_total{source="scrape"} 0',
    'armature_planner_connector_errors_total{connector="advisory"} 0',
  ],
};

let cluster: Cluster;
beforeAll(async () => {
  // An advisory planner with a long interval: it exports its families and decides nothing yet.
  cluster = await startCluster({
    workers: 2,
    prefillWorkers: 1,
    planner: { mode: 'load', connector: 'advisory', intervalMs: 600_000 },
  });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function page(role: Role, instanceId?: string): Promise<string> {
  if (role === 'frontend') return (await fetch(`${cluster.url}/metrics`)).text();
  const records = await cluster.discovery.list({ role });
  const record = instanceId ? records.find((r) => r.instanceId === instanceId) : records[0];
  return (await fetch(`http://${record!.metricsAddress}/metrics`)).text();
}

/** The families with at least one sample on an exposition, sorted. */
function familiesWithSamples(text: string): string[] {
  const declared = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const out = new Set<string>();
  for (const [, name] of text.matchAll(/^([a-zA-Z_:][\w:]*)[{ ]/gm)) {
    const family = declared.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '');
    out.add(family);
  }
  return [...out].sort();
}

const lines = (text: string): Set<string> => new Set(text.split('\n'));

describe('metrics of a cluster that has served nothing', () => {
  it('has, on each service, exactly the families it owns, with zero series for the labels it knows', async () => {
    for (const role of ['frontend', 'router', 'decode', 'prefill', 'planner'] as const) {
      const expected = [...EXPECTED_AT_START[role]].sort();
      // The router's per-worker gauges follow discovery and the first KV-state load.
      await waitFor(
        async () => familiesWithSamples(await page(role)).join() === expected.join(),
        5_000,
        50,
        `${role}'s families`,
      ).catch(() => {});
      const text = await page(role);
      expect(familiesWithSamples(text), role).toEqual(expected);
      const exposed = lines(text);
      for (const series of ZERO_AT_START[role]) expect(exposed.has(series), `${role}: ${series}`).toBe(true);
    }
  });

  it("drops a departed worker's series on the router, keeping the others'", async () => {
    const victim = cluster.workers.get('decode-1')!;
    victim.kill('SIGTERM');
    await victim.exited;
    await waitFor(async () => !(await page('router')).includes('worker="decode-1"'), 5_000, 50, 'decode-1 gone');
    const exposed = lines(await page('router'));
    expect(exposed.has(`armature_router_decisions_total{${M},policy="round-robin",worker="decode-0"} 0`)).toBe(true);
    expect(exposed.has('armature_router_active_requests{worker="decode-0"} 0')).toBe(true);
    expect(exposed.has(`armature_router_workers{${M}} 1`)).toBe(true);
  });
});
