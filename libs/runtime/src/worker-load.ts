// The load a worker reports, one type for every place it travels: the engine computes it,
// the worker publishes it on the event plane (with its instance id) and answers it in
// Health (proto WorkerLoad, converted in @armature/proto), the router reads it as each
// worker's published load, and the replay simulates it.

/** What a worker is busy with. */
export interface WorkerLoad {
  /** KV blocks held by running sequences. */
  activeDecodeBlocks: number;
  /** Prompt tokens not yet computed, waiting and running requests together. */
  activePrefillTokens: number;
  waitingRequests: number;
  runningRequests: number;
  /** Used device KV blocks / total, in [0, 1]. */
  kvUsage: number;
}

/** An idle worker's load. */
export const IDLE_LOAD: Readonly<WorkerLoad> = Object.freeze({
  activeDecodeBlocks: 0,
  activePrefillTokens: 0,
  waitingRequests: 0,
  runningRequests: 0,
  kvUsage: 0,
});

/**
 * The load fields of a decoded message (msgpack may hand over bigints or extra fields);
 * a missing or non-numeric field reads as 0.
 */
export function toWorkerLoad(raw: { readonly [K in keyof WorkerLoad]?: unknown }): WorkerLoad {
  const num = (v: unknown): number => {
    const n = Number(v ?? 0);
    return Number.isFinite(n) ? n : 0;
  };
  return {
    activeDecodeBlocks: num(raw.activeDecodeBlocks),
    activePrefillTokens: num(raw.activePrefillTokens),
    waitingRequests: num(raw.waitingRequests),
    runningRequests: num(raw.runningRequests),
    kvUsage: num(raw.kvUsage),
  };
}
