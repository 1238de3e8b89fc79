// The one conversion of a prepared request into the workers' GenerateRequest (for Prefill
// and for Generate alike): sampling settings, stop conditions, and the remote prefill a
// decode worker continues from. No stage builds a GenerateRequest or copies a field itself.
import type { SamplingParams } from '@armature/openai';
import type { GenerateRequest, RemotePrefill, SamplingOptions, StopConditions } from '@armature/proto';
import type { PreparedRequest } from './types.js';

/** The client's sampling settings as the workers take them (absent fields: the engine's defaults). */
export function toSamplingOptions(sampling: SamplingParams): SamplingOptions {
  return { temperature: sampling.temperature, topP: sampling.topP, topK: sampling.topK, seed: sampling.seed };
}

/** Stop conditions: max_tokens as resolved by prepare; stop strings stay with the frontend. */
export function toStopConditions(p: PreparedRequest): StopConditions {
  return { maxTokens: p.maxTokens, ignoreEos: p.request.ignoreEos, stopTokenIds: [] };
}

/** The request a worker runs, under the routing attempt's id. */
export function toGenerateRequest(p: PreparedRequest, routeId: string, remotePrefill?: RemotePrefill): GenerateRequest {
  return {
    requestId: routeId,
    model: p.request.model,
    tokenIds: p.promptIds,
    sampling: toSamplingOptions(p.request.sampling),
    stop: toStopConditions(p),
    ...(remotePrefill ? { remotePrefill } : {}),
  };
}
