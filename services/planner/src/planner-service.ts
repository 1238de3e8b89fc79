// The Planner gRPC service: reports the configuration, the pools' counts and the plans
// with their reasons. It changes nothing; the runner's connector does.
import type { handleUnaryCall } from '@grpc/grpc-js';
import type {
  GetPlannerStateRequest,
  ListPlansRequest,
  ListPlansResponse,
  PlannerServer,
  PlannerState,
  PlanRecord,
} from '@armature/proto';
import type { PlannerRunner, PlanWithApply } from './planner-runner.js';

export function planRecord(p: PlanWithApply): PlanRecord {
  return {
    atMs: p.atMs,
    observedRequests: p.observed.requests,
    observedIsl: p.observed.isl,
    observedOsl: p.observed.osl,
    observedTtftMs: p.observed.ttftMs,
    observedItlMs: p.observed.itlMs,
    observedKvHitRate: p.observed.kvHitRate,
    predictedRequests: p.predicted.requests,
    predictedIsl: p.predicted.isl,
    predictedOsl: p.predicted.osl,
    decisions: p.decisions.map((d) => ({
      pool: d.pool,
      from: d.from,
      to: d.to,
      throughput: d.throughput,
      load: d.load,
      reason: d.reason,
      estimatedTtftMs: d.estimatedTtftMs,
      estimatedItlMs: d.estimatedItlMs,
      applied: p.applied[d.pool] ?? false,
    })),
    held: p.held,
  };
}

export function plannerGrpcHandlers(runner: PlannerRunner, connector: string): PlannerServer {
  const getState: handleUnaryCall<GetPlannerStateRequest, PlannerState> = (_call, callback) => {
    const config = runner.options.planner.config;
    const latest = runner.plans[runner.plans.length - 1];
    callback(null, {
      mode: config.mode,
      connector,
      predictor: config.predictor.id,
      intervalMs: config.intervalMs,
      sloTtftMs: config.sloTtftMs,
      sloItlMs: config.sloItlMs,
      pools: runner.pools.map((pool) => {
        const r = runner.lastReplicas[pool];
        const limits = config.pools[pool]!;
        return {
          pool,
          min: limits.min,
          max: limits.max,
          desired: r?.desired ?? 0,
          ready: r?.ready ?? 0,
          starting: r?.starting ?? 0,
        };
      }),
      latest: latest ? planRecord(latest) : undefined,
      connectorErrors: runner.connectorErrors,
    });
  };
  const listPlans: handleUnaryCall<ListPlansRequest, ListPlansResponse> = (call, callback) => {
    const limit = call.request.limit > 0 ? call.request.limit : 100;
    callback(null, { plans: runner.plans.slice(-limit).map(planRecord) });
  };
  return { getState, listPlans };
}
