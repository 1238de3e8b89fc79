// Request metrics read off the pipeline's events as they pass to the renderer: time to
// first token, inter-token latency, input, cached and output tokens. It observes and
// passes every event on unchanged; it never alters or drops one.
import type { MetricsRegistry } from '@armature/metrics';
import type { PipelineEvent } from './pipeline/index.js';

/**
 * Passes `events` through, recording the frontend's token metrics; `started` is the
 * request's performance.now(). `onStart` is told when the start event passes (a stream's
 * status line goes out with it).
 */
export async function* observeEvents(
  metrics: MetricsRegistry,
  model: string,
  started: number,
  events: AsyncIterable<PipelineEvent>,
  onStart?: () => void,
): AsyncGenerator<PipelineEvent> {
  let last: number | undefined;
  for await (const ev of events) {
    if (ev.type === 'text' && ev.tokens > 0) {
      const now = performance.now();
      if (last === undefined)
        metrics.get('armature_frontend_time_to_first_token_seconds').observe({ model }, (now - started) / 1000);
      else {
        const gap = (now - last) / 1000 / ev.tokens;
        for (let i = 0; i < ev.tokens; i++)
          metrics.get('armature_frontend_inter_token_latency_seconds').observe({ model }, gap);
      }
      last = now;
    }
    if (ev.type === 'start') {
      onStart?.();
      metrics.get('armature_frontend_input_tokens_total').inc({ model }, ev.promptTokens);
      metrics.get('armature_frontend_cached_tokens_total').inc({ model }, ev.cachedTokens);
      metrics.get('armature_frontend_input_sequence_tokens').observe({ model }, ev.promptTokens);
    }
    if (ev.type === 'end') {
      metrics.get('armature_frontend_output_tokens_total').inc({ model }, ev.completionTokens);
      metrics.get('armature_frontend_output_sequence_tokens').observe({ model }, ev.completionTokens);
    }
    yield ev;
  }
}
