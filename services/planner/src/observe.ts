// Turns two cumulative snapshots into one interval's observation: requests started and
// their mean ISL, mean OSL of what finished, mean TTFT and ITL, the prefix-cache hit rate,
// and each worker's passes (count, mean step time, mean prompt tokens) with its load now.
// A counter that went down (a service restarted) counts from zero. What could not be read
// stays undefined, with the reason in `missing`: the planner holds and says why.
import type { Observation, Pool, PoolReplicas, WorkerObservation } from '@armature/planner-core';
import type { ClusterSnapshot, Totals } from './sources.js';

const delta = (now: number, before: number): number => (now >= before ? now - before : now);
const deltaTotals = (now: Totals, before: Totals | undefined): Totals =>
  before && now.count >= before.count
    ? { count: now.count - before.count, sum: delta(now.sum, before.sum) }
    : { count: now.count, sum: now.sum };
const mean = (t: Totals, scale = 1): number | undefined => (t.count > 0 ? (t.sum / t.count) * scale : undefined);

/** The observation between `before` and `now`; `replicas` come from the connector. */
export function observe(
  before: ClusterSnapshot,
  now: ClusterSnapshot,
  replicas: Partial<Record<Pool, PoolReplicas>>,
): Observation {
  const missing = [...now.errors, ...(now.missing ?? [])];
  let requests: number | undefined;
  let isl: number | undefined;
  let osl: number | undefined;
  let ttftMs: number | undefined;
  let itlMs: number | undefined;
  let kvHitRate: number | undefined;
  if (now.frontend && before.frontend) {
    const f = now.frontend;
    const b = before.frontend;
    const input = deltaTotals(f.input, b.input);
    requests = input.count;
    isl = mean(input);
    osl = mean(deltaTotals(f.output, b.output));
    ttftMs = mean(deltaTotals(f.ttftSeconds, b.ttftSeconds), 1000);
    itlMs = mean(deltaTotals(f.itlSeconds, b.itlSeconds), 1000);
    const inputTokens = delta(f.inputTokens, b.inputTokens);
    if (inputTokens > 0) kvHitRate = Math.min(1, delta(f.cachedTokens, b.cachedTokens) / inputTokens);
  } else if (!now.frontend && missing.length === 0) missing.push('no frontend metrics');
  else if (now.frontend && !before.frontend) missing.push('the frontend metrics came back this interval');
  const previous = new Map(before.workers.map((w) => [w.id, w]));
  const workers: WorkerObservation[] = now.workers.map((w) => {
    const steps = deltaTotals(w.steps, previous.get(w.id)?.steps);
    const prefill = deltaTotals(w.batchPrefillTokens, previous.get(w.id)?.batchPrefillTokens);
    const kvTokens = w.activeDecodeBlocks * w.blockSize;
    return {
      id: w.id,
      pool: w.pool,
      activePrefillTokens: w.activePrefillTokens,
      activeKvTokens: kvTokens,
      ...(steps.count > 0
        ? {
            passes: {
              count: steps.count,
              meanMs: (steps.sum / steps.count) * 1000,
              meanPrefillTokens: prefill.sum / steps.count,
              meanKvTokens: kvTokens,
            },
          }
        : {}),
    };
  });
  return {
    atMs: now.atMs,
    durationMs: Math.max(1, now.atMs - before.atMs),
    requests,
    isl,
    osl,
    ttftMs,
    itlMs,
    kvHitRate,
    workers,
    replicas,
    ...(missing.length > 0 ? { missing } : {}),
  };
}
