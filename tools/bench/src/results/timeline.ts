// Per-bucket view of a run (completions, throughput, TTFT, concurrency) for the
// "over time" plots. Buckets are 1 s, widened to whole seconds so a run has at most
// MAX_TIMELINE_POINTS of them; time 0 is the first request.
import { percentile, sortedFinite } from './distribution.js';
import type { RequestRecord, TimelinePoint } from './types.js';

export const MAX_TIMELINE_POINTS = 600;

/** Bucket width in whole seconds: 1, or coarser so that a run has at most 600 buckets. */
export function timelineBucketSeconds(durationS: number): number {
  return Math.max(1, Math.ceil(durationS / MAX_TIMELINE_POINTS));
}

/**
 * Timeline of `records` starting at `originMs` and lasting `durationMs`. Only completed
 * requests (`isCompleted`) count towards completions, tokens and TTFT; every request with
 * an endMs counts towards in-flight. Rates divide by the full bucket width, so a partial
 * last bucket reads low.
 */
export function computeTimeline(
  records: readonly RequestRecord[],
  originMs: number,
  durationMs: number,
  isCompleted: (r: RequestRecord) => boolean,
): TimelinePoint[] {
  if (records.length === 0) return [];
  const widthS = timelineBucketSeconds(durationMs / 1000);
  const widthMs = widthS * 1000;
  const buckets = Math.max(1, Math.ceil(durationMs / widthMs));
  const bucketOf = (t: number): number => Math.min(buckets - 1, Math.max(0, Math.floor((t - originMs) / widthMs)));

  const completed = new Array<number>(buckets).fill(0);
  const outputTokens = new Array<number>(buckets).fill(0);
  const inflightMs = new Array<number>(buckets).fill(0);
  const ttfts: number[][] = Array.from({ length: buckets }, () => []);

  for (const r of records) {
    if (r.endMs !== undefined && r.endMs > r.startMs) {
      for (let b = bucketOf(r.startMs); b <= bucketOf(r.endMs); b++) {
        const lo = Math.max(r.startMs, originMs + b * widthMs);
        const hi = Math.min(r.endMs, originMs + (b + 1) * widthMs);
        if (hi > lo) inflightMs[b]! += hi - lo;
      }
    }
    if (!isCompleted(r)) continue;
    completed[bucketOf(r.endMs!)]!++;
    if (r.chunkMs.length > 0) {
      // Chunks carry unknown token counts: spread the request's tokens evenly over them.
      const perChunk = r.outputTokens / r.chunkMs.length;
      for (const t of r.chunkMs) outputTokens[bucketOf(t)]! += perChunk;
    } else {
      outputTokens[bucketOf(r.endMs!)]! += r.outputTokens;
    }
    if (r.firstTokenMs !== undefined) ttfts[bucketOf(r.startMs)]!.push(r.firstTokenMs - r.startMs);
  }

  const points: TimelinePoint[] = [];
  for (let b = 0; b < buckets; b++) {
    const sorted = sortedFinite(ttfts[b]!);
    points.push({
      t_s: b * widthS,
      completed: completed[b]!,
      output_tokens_per_s: outputTokens[b]! / widthS,
      ttft_p50_ms: sorted.length > 0 ? percentile(sorted, 0.5) : null,
      inflight: inflightMs[b]! / widthMs,
    });
  }
  return points;
}
