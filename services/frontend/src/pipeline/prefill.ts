// Stage 3, prefill: when the router chose a prefill worker, runs the prompt there (within
// ARMATURE_PREFILL_TIMEOUT_MS) and settles the prefill at the router: MarkPrefillComplete
// when it worked, MarkPrefillLocal when the decode worker must prefill instead. Its first
// token goes out at once. It does not stream from the decode worker and does not retry.
import { FinishReason, type PrefillResponse, type RemotePrefill } from '@armature/proto';
import { asArmatureError, createLogger, type RequestContext } from '@armature/runtime';
import { toGenerateRequest } from './generate-request.js';
import type { OutputText } from './output-text.js';
import type { WorkerPort } from './ports.js';
import type { RouteAttempt } from './route.js';
import type { FinishKind, PipelineEvent, PipelineOptions, PreparedRequest } from './types.js';

const log = createLogger('frontend/pipeline');

/** A prompt prefilled on a prefill worker: what the decode worker continues from. */
export interface Prefilled {
  worker: string;
  address: string;
  response: PrefillResponse;
  /**
   * Whether a decode worker may still pull the pinned KV. A decode worker releases the pin
   * once it has pulled, so after one failed, its replacement prefills locally instead of
   * reading blocks that may already hold something else.
   */
  pullable: boolean;
}

/** Finish reasons a worker ends a request with, as the client sees them. */
export const FINISH: Partial<Record<FinishReason, FinishKind>> = {
  [FinishReason.FINISH_REASON_STOP]: 'stop',
  [FinishReason.FINISH_REASON_LENGTH]: 'length',
};

/**
 * Runs the prompt on the attempt's prefill worker. Any failure but the client's own
 * cancellation or an invalid request answers undefined, after MarkPrefillLocal: the decode
 * worker then prefills locally.
 */
export async function prefillRemotely(
  workers: WorkerPort,
  ctx: RequestContext,
  p: PreparedRequest,
  attempt: RouteAttempt,
  options: PipelineOptions,
): Promise<Prefilled | undefined> {
  const { instanceId: worker, grpcAddress: address } = attempt.prefill!;
  try {
    const deadline = Date.now() + options.prefillTimeoutMs;
    const response = await workers.prefill(address, toGenerateRequest(p, attempt.routeId), ctx.signal, deadline);
    attempt.markPrefillComplete();
    return { worker, address, response, pullable: true };
  } catch (err) {
    ctx.throwIfCancelled();
    const e = asArmatureError(err);
    // A request the prefill worker refuses as invalid would be refused by the decode worker too.
    if (e.cls === 'invalid_argument') throw e;
    log.warn('prefill worker failed; prefilling on the decode worker', {
      requestId: p.requestId,
      worker,
      reason: e.reason,
      err: e.detail ?? e.message,
    });
    if (e.cls === 'unavailable') workers.forgetWorker(address);
    attempt.markPrefillLocal();
    return undefined;
  }
}

/**
 * The prefill's output at once: the start event (naming both workers) and the first
 * token's text. Returns the finish when the first token ends the request.
 */
export function* firstTokenEvents(
  p: PreparedRequest,
  attempt: RouteAttempt,
  prefilled: Prefilled,
  out: OutputText,
): Generator<PipelineEvent, FinishKind | undefined> {
  const first = prefilled.response;
  yield {
    type: 'start',
    worker: attempt.decode.instanceId,
    prefillWorker: prefilled.worker,
    cachedTokens: first.cachedTokens,
    promptTokens: p.promptIds.length,
  };
  yield out.push([first.firstToken]);
  const finish = FINISH[first.finishReason];
  return out.stopped || finish ? (finish ?? 'stop') : undefined;
}

/** What a decode worker continues from: the first token, and the KV to pull while the pin may still be pulled. */
export function remotePrefillOf(prefilled: Prefilled): RemotePrefill {
  return {
    firstToken: prefilled.response.firstToken,
    descriptor: prefilled.pullable ? prefilled.response.descriptor : undefined,
  };
}

/** Unpins a prefill no decode worker finished with (a second release is a no-op on the worker). */
export function releasePrefill(workers: WorkerPort, prefilled: Prefilled): void {
  const d = prefilled.response.descriptor;
  if (d) workers.releaseKv(prefilled.address, d.pinId);
}
