// The one translation of a Worker gRPC GenerateRequest into the engine's request, and the
// checks the worker makes before it spends anything on one (pulls KV, queues a prefill):
// the model it serves, then the engine request's own fields (validateRequestFields, the
// same code the engines run). What depends on the engine's context or state (prompt +
// max_tokens beyond the context, an id in use) the engine checks when the request starts.
import type { GenerateRequest, SamplingOptions } from '@armature/proto';
import { validateRequestFields, type EngineRequest } from '@armature/engine';
import { ArmatureError, type ModelCard } from '@armature/runtime';

/** The engine's sampling options of a proto request's (every field unset when absent). */
export function samplingFromProto(sampling: SamplingOptions | undefined): EngineRequest['sampling'] {
  return {
    temperature: sampling?.temperature,
    topP: sampling?.topP,
    topK: sampling?.topK,
    seed: sampling?.seed,
  };
}

/** The engine request of a proto request, unchecked (max_tokens 0 and no stop ids when absent). */
export function engineRequestFromProto(req: GenerateRequest): EngineRequest {
  return {
    requestId: req.requestId,
    tokenIds: req.tokenIds,
    sampling: samplingFromProto(req.sampling),
    stop: {
      maxTokens: req.stop?.maxTokens ?? 0,
      ignoreEos: req.stop?.ignoreEos ?? false,
      stopTokenIds: req.stop?.stopTokenIds ?? [],
    },
    ...(req.remotePrefill ? { firstToken: req.remotePrefill.firstToken } : {}),
  };
}

/**
 * The engine request of a proto request for the worker serving `card`: throws
 * ArmatureError('not_found', 'model_not_found') for another model, and
 * ArmatureError('invalid_argument') for a request wrong on its own (see validateRequestFields).
 */
export function checkedEngineRequest(req: GenerateRequest, card: ModelCard): EngineRequest {
  if (req.model !== card.model) {
    throw new ArmatureError(
      'not_found',
      'model_not_found',
      `this worker serves ${JSON.stringify(card.model)}, not ${JSON.stringify(req.model)}`,
    );
  }
  const request = engineRequestFromProto(req);
  validateRequestFields(request);
  return request;
}
