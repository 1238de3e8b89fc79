// The frontend's series that exist at zero before their first use, so a dashboard of a
// quiet cluster reads 0 rather than "no data": at start, the retry kinds; per model, as
// its first worker appears, the request, token, latency, stage and admission series (the
// requests counter under status 200 only: other statuses are known once they happen).
import type { MetricsRegistry } from '@armature/metrics';
import { ADMISSION_REJECT_REASONS } from './admission.js';
import type { PipelineOptions, RetryKind } from './pipeline/types.js';

type PipelineStage = Parameters<NonNullable<PipelineOptions['onStage']>>[0];
/** A stage of armature_frontend_stage_seconds: the pipeline's, and the HTTP server's own. */
export type FrontendStage = 'tokenize' | 'first_byte' | PipelineStage;

const STAGES: Record<FrontendStage, true> = { tokenize: true, route: true, prefill: true, first_byte: true };
const RETRY_KINDS: Record<RetryKind, true> = { reroute: true, migrate: true };

/** armature_frontend_requests_total's endpoint for each kind of inference request. */
export const ENDPOINT_LABELS: Readonly<Record<'chat' | 'completion', string>> = {
  chat: 'chat_completions',
  completion: 'completions',
};

const PER_MODEL = [
  'armature_frontend_inflight_requests',
  'armature_frontend_time_to_first_token_seconds',
  'armature_frontend_inter_token_latency_seconds',
  'armature_frontend_request_duration_seconds',
  'armature_frontend_input_tokens_total',
  'armature_frontend_output_tokens_total',
  'armature_frontend_cached_tokens_total',
  'armature_frontend_input_sequence_tokens',
  'armature_frontend_output_sequence_tokens',
  'armature_frontend_disconnects_total',
  'armature_frontend_admission_waiting',
  'armature_frontend_admission_wait_seconds',
] as const;

/** Creates the frontend's start-time series at zero. */
export function zeroFrontendSeries(metrics: MetricsRegistry): void {
  for (const kind of Object.keys(RETRY_KINDS)) metrics.zero('armature_frontend_retries_exhausted_total', { kind });
}

/** Creates `model`'s series at zero; call when the model is first served, before its first request. */
export function zeroModelSeries(metrics: MetricsRegistry, model: string): void {
  for (const name of PER_MODEL) metrics.zero(name, { model });
  for (const stage of Object.keys(STAGES)) metrics.zero('armature_frontend_stage_seconds', { model, stage });
  for (const reason of ADMISSION_REJECT_REASONS)
    metrics.zero('armature_frontend_admission_rejected_total', { model, reason });
  for (const endpoint of Object.values(ENDPOINT_LABELS))
    metrics.zero('armature_frontend_requests_total', { model, endpoint, status: '200' });
}
