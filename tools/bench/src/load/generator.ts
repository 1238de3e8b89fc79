// The load generator: sends a workload on a schedule, bounded in request count and in
// duration, and returns one record per request. It always stops by itself.
import type { RequestRecord } from '../results/types.js';
import { sendRequest, type SendableRequest } from './client.js';
import { sendOffsets, type ScheduleSpec } from './schedule.js';

export interface LoadOptions {
  baseUrl: string;
  model: string;
  schedule: ScheduleSpec;
  /** Stop sending after this many requests (default: the whole workload). */
  maxRequests?: number;
  /** Stop sending after this long; in-flight requests get `graceMs` more, then are cancelled. */
  maxDurationMs: number;
  graceMs?: number;
  requestTimeoutMs: number;
  sendTokenIds: boolean;
  onProgress?: (p: {
    sent: number;
    done: number;
    failed: number;
    inflight: number;
    total: number;
    elapsedMs: number;
  }) => void;
}

export interface WorkloadItem extends SendableRequest {
  arrivalMs?: number;
}

export async function runLoad(items: readonly WorkloadItem[], o: LoadOptions): Promise<RequestRecord[]> {
  const total = Math.min(items.length, o.maxRequests ?? items.length);
  const work = items.slice(0, total);
  const offsets = sendOffsets(
    o.schedule,
    work.map((w) => w.arrivalMs),
  );
  const t0 = performance.now();
  const clock = (): number => performance.now() - t0;
  const stopAll = new AbortController();
  const records: RequestRecord[] = [];
  let sent = 0;
  let done = 0;
  let failed = 0;
  const progress = (): void => o.onProgress?.({ sent, done, failed, inflight: sent - done, total, elapsedMs: clock() });
  const ticker = setInterval(progress, 250);
  const send = async (item: WorkloadItem, scheduledMs: number): Promise<void> => {
    sent++;
    const r = await sendRequest(item, scheduledMs, {
      baseUrl: o.baseUrl,
      model: o.model,
      sendTokenIds: o.sendTokenIds,
      timeoutMs: o.requestTimeoutMs,
      clock,
      signal: stopAll.signal,
    });
    records.push(r);
    done++;
    if (r.error) failed++;
  };
  const inflight = new Set<Promise<void>>();
  const track = (p: Promise<void>): void => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  try {
    if (offsets) {
      // A ramp that ends at rate 0 may schedule fewer requests than the workload holds.
      for (let i = 0; i < Math.min(work.length, offsets.length); i++) {
        const wait = offsets[i]! - clock();
        if (offsets[i]! > o.maxDurationMs) break;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (clock() > o.maxDurationMs) break;
        track(send(work[i]!, offsets[i]!));
      }
    } else {
      const concurrency = (o.schedule as { concurrency: number }).concurrency;
      let next = 0;
      const client = async (): Promise<void> => {
        while (next < work.length && clock() < o.maxDurationMs) {
          const item = work[next++]!;
          await send(item, clock());
        }
      };
      for (let c = 0; c < concurrency; c++) track(client());
    }
    // Wait for what is in flight, but not past the duration bound plus the grace.
    const graceDeadline = Math.max(o.maxDurationMs, clock()) + (o.graceMs ?? 30_000);
    while (inflight.size > 0) {
      const left = graceDeadline - clock();
      if (left <= 0) {
        stopAll.abort();
        await Promise.allSettled([...inflight]);
        break;
      }
      await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => setTimeout(r, Math.min(left, 1_000)))]);
    }
  } finally {
    clearInterval(ticker);
    progress();
  }
  return records;
}
