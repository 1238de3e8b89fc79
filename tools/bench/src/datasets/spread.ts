// Traces record arrival times coarsely (Mooncake's conversation trace in 3 s steps, with
// a dozen requests on one timestamp). Sent literally, a burst's requests race each other
// through the serving path and reach the engine in an order that depends on their size,
// which no simulator can reproduce. Spreading each burst evenly over the gap to the next
// timestamp keeps the trace's rate and order, and makes live and offline replays comparable.
import type { WorkloadRequest } from './types.js';

/** Copies `requests` with simultaneous arrivals spread over the gap to the next distinct time. */
export function spreadBursts(requests: readonly WorkloadRequest[]): WorkloadRequest[] {
  const out = requests.map((r) => ({ ...r }));
  let i = 0;
  while (i < out.length) {
    const t = out[i]!.arrivalMs;
    let j = i + 1;
    while (j < out.length && out[j]!.arrivalMs === t) j++;
    if (t !== undefined && j - i > 1) {
      const next = out[j]?.arrivalMs;
      // The last burst has no next timestamp: use the trace's mean gap so far.
      const gap = next !== undefined ? next - t : i > 0 ? (t - (out[0]!.arrivalMs ?? 0)) / i : 0;
      for (let k = i; k < j; k++) out[k]!.arrivalMs = t + ((k - i) * gap) / (j - i);
    }
    i = j;
  }
  return out;
}
