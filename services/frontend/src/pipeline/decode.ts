// Stage 4, decode stream: streams the output from the attempt's decode worker (continuing a
// remote prefill when there is one), ends the prefill's share at the router on the
// worker's first answer, stops the worker when a stop string matched, and decides what a
// worker's failure means: re-route (nothing was sent yet) or fail the request.
//
// Migration (next issue) belongs here: a stream that breaks after tokens were sent would be
// resumed on another worker by re-sending the prompt plus the tokens generated so far,
// instead of failing in `onDecodeFailure`. This stage does not route; run.ts does.
import { FinishReason } from '@armature/proto';
import { ArmatureError, asArmatureError, type RequestContext } from '@armature/runtime';
import { toGenerateRequest } from './generate-request.js';
import type { OutputText } from './output-text.js';
import type { WorkerPort } from './ports.js';
import { remotePrefillOf, type Prefilled } from './prefill.js';
import type { RouteAttempt } from './route.js';
import type { FinishKind, PipelineEvent, PreparedRequest } from './types.js';

/** How often a request is re-routed when its worker fails before sending anything. */
export const MAX_REROUTES = 2;

/**
 * Streams the request's output from the decode worker: a start event on its first answer,
 * text events, and the end. Throws the worker's failure as an ArmatureError, or the
 * cancellation reason once the request is cancelled.
 */
export async function* decodeStream(
  workers: WorkerPort,
  ctx: RequestContext,
  p: PreparedRequest,
  attempt: RouteAttempt,
  out: OutputText,
  prefilled: Prefilled | undefined,
): AsyncGenerator<PipelineEvent> {
  const target = attempt.decode;
  const req = toGenerateRequest(p, attempt.routeId, prefilled ? remotePrefillOf(prefilled) : undefined);
  let started = false;
  let finish: FinishKind | undefined;
  try {
    const stream = workers.generate(target.grpcAddress, req, ctx.signal);
    for await (const msg of stream) {
      if (!started) {
        started = true;
        // The prompt is computed now, unless a remote prefill said so already for this attempt.
        attempt.markPrefillComplete();
        yield {
          type: 'start',
          worker: target.instanceId,
          cachedTokens: msg.cachedTokens,
          promptTokens: p.promptIds.length,
        };
      }
      if (msg.tokenIds.length > 0) {
        yield out.push(msg.tokenIds);
        if (out.stopped) {
          finish = 'stop';
          stream.cancel();
          break;
        }
      }
      if (msg.finishReason === FinishReason.FINISH_REASON_STOP) finish = 'stop';
      else if (msg.finishReason === FinishReason.FINISH_REASON_LENGTH) finish = 'length';
      else if (msg.finishReason === FinishReason.FINISH_REASON_CANCELLED) {
        throw new ArmatureError('unavailable', 'worker_cancelled', 'the worker cancelled the request');
      } else if (msg.finishReason === FinishReason.FINISH_REASON_ERROR) {
        throw new ArmatureError('internal', 'worker_error', 'the worker failed while generating');
      }
    }
    if (finish === undefined)
      throw new ArmatureError('unavailable', 'stream_ended', 'the worker ended the stream without finishing');
    yield* out.finish(finish);
  } catch (err) {
    ctx.throwIfCancelled();
    throw asArmatureError(err);
  }
}

/** Where the request stands when its decode worker failed. */
export interface DecodeFailure {
  /** The worker had sent something (the stream yielded an event). */
  sentAnything: boolean;
  /** The client pinned the worker: no other may serve it. */
  pinned: boolean;
  /** Routing attempt that failed: 0 first. */
  attempt: number;
  cancelled: boolean;
}

/**
 * What a decode worker's failure means: 'reroute' when it was unavailable before sending
 * anything (nothing is lost; at most MAX_REROUTES times), else the error for the client.
 */
export function onDecodeFailure(err: unknown, worker: string, state: DecodeFailure): 'reroute' | ArmatureError {
  const e = asArmatureError(err);
  if (
    e.cls === 'unavailable' &&
    !state.sentAnything &&
    !state.pinned &&
    state.attempt < MAX_REROUTES &&
    !state.cancelled
  )
    return 'reroute';
  // A failure after tokens went out ends the request here; migration will resume it instead.
  if (e.cls === 'unavailable' || e.reason === 'grpc_internal') {
    return new ArmatureError(
      'unavailable',
      'worker_unavailable',
      `the worker serving this request (${worker}) is unavailable`,
      {
        detail: e.detail,
        cause: e,
      },
    );
  }
  return e;
}
