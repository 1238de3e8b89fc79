// Finds a replica that is running but no longer answers (an event loop stuck in a loop, a
// process stopped, a deadlocked native call): a crash restarts itself, a hang does not. The
// supervisor probes each ready replica's HTTP endpoint (the frontend's /live, a router's or
// worker's /metrics) and kills one that misses `failures` probes in a row, so the normal
// restart path runs. The threshold is long on purpose: a replica paused for a while (a GC
// pause, a chaos test's SIGSTOP) must come back on its own, not be replaced.

export interface LivenessOptions {
  /** Time between the end of one probe and the next, ms (default 5000). */
  intervalMs?: number;
  /** How long one probe waits for an answer, ms (default 2000). */
  timeoutMs?: number;
  /** Consecutive failed probes before the replica is killed (default 6: about 40 s unresponsive). */
  failures?: number;
}

export type CompiledLiveness = Required<LivenessOptions>;

/** Validated liveness options with their defaults; throws RangeError on a bad value. */
export function compileLiveness(options: LivenessOptions = {}): CompiledLiveness {
  const compiled = {
    intervalMs: options.intervalMs ?? 5_000,
    timeoutMs: options.timeoutMs ?? 2_000,
    failures: options.failures ?? 6,
  };
  for (const [key, value] of Object.entries(compiled))
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`liveness.${key} must be an integer >= 1`);
  return compiled;
}

/** A host to connect to for a service bound to `host` (a wildcard bind answers on loopback). */
export function probeHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Probes `url` until stopped; calls `onUnresponsive(failures)` once after `failures` probes in
 * a row got no 2xx answer in time, and stops. Returns the function that stops it.
 */
export function watchLiveness(
  url: string,
  options: CompiledLiveness,
  onUnresponsive: (failures: number) => void,
): () => void {
  let stopped = false;
  let failed = 0;
  let timer: NodeJS.Timeout | undefined;
  const probe = async (): Promise<void> => {
    const ok = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs) })
      .then(async (res) => {
        await res.body?.cancel();
        return res.ok;
      })
      .catch(() => false);
    if (stopped) return;
    failed = ok ? 0 : failed + 1;
    if (failed >= options.failures) {
      stopped = true;
      onUnresponsive(failed);
      return;
    }
    schedule();
  };
  const schedule = (): void => {
    timer = setTimeout(() => void probe(), options.intervalMs);
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
