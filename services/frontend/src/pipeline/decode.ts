// Stage 4, decode stream: streams the output from the attempt's decode worker (continuing a
// remote prefill when there is one), ends the prefill's share at the router on the
// worker's first answer, stops the worker when a stop string matched or it stalls, and
// decides what a worker's failure means: re-route (nothing was sent yet), migrate (the
// stream broke mid-generation: run.ts resends the prompt plus what was generated to
// another worker) or fail the request. This stage does not route; run.ts does.
import { FinishReason, type GenerateResponse } from '@armature/proto';
import { ArmatureError, asArmatureError, type RequestContext } from '@armature/runtime';
import { toGenerateRequest } from './generate-request.js';
import type { OutputText } from './output-text.js';
import type { WorkerPort, WorkerStream } from './ports.js';
import { remotePrefillOf, type Prefilled } from './prefill.js';
import type { RouteAttempt } from './route.js';
import type { FinishKind, PipelineEvent, PreparedRequest, RetryKind } from './types.js';

/** How often a request is re-routed when its worker fails before sending anything. */
export const MAX_REROUTES = 2;

/** Default of PipelineOptions.migrationLimit. */
export const DEFAULT_MIGRATION_LIMIT = 3;

/** Default of PipelineOptions.stallTimeoutMs. */
export const DEFAULT_STALL_TIMEOUT_MS = 10_000;

/** Default of PipelineOptions.acceptTimeoutMs. */
export const DEFAULT_ACCEPT_TIMEOUT_MS = 3_000;

/** Rejects with worker_unresponsive unless `accepted` settles within `ms` (0: wait). */
async function acceptedWithin(stream: WorkerStream, ms: number): Promise<void> {
  if (ms <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new ArmatureError('unavailable', 'worker_unresponsive', `the worker did not take the call in ${ms} ms`));
      stream.cancel(); // after the rejection: cancelling settles `accepted` too
    }, ms);
  });
  try {
    await Promise.race([stream.accepted, late]);
  } finally {
    clearTimeout(timer);
  }
}

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
  timeouts: { stallTimeoutMs?: number; acceptTimeoutMs?: number } = {},
): AsyncGenerator<PipelineEvent> {
  const target = attempt.decode;
  const req = toGenerateRequest(p, attempt.routeId, prefilled ? remotePrefillOf(prefilled) : undefined);
  let started = false;
  let finish: FinishKind | undefined;
  try {
    const stream = workers.generate(target.grpcAddress, req, ctx.signal);
    const messages = stream[Symbol.asyncIterator]();
    try {
      // The first read starts the call; a worker that does not take it is stopped or stuck.
      const first = messages.next();
      first.catch(() => {});
      await acceptedWithin(stream, timeouts.acceptTimeoutMs ?? 0);
      yield* relay(stream, messages, first);
    } finally {
      // As a for-await would on break or throw: closes the call if it is still open.
      messages.return?.(undefined)?.catch(() => {});
    }
    if (finish === undefined)
      throw new ArmatureError('unavailable', 'stream_ended', 'the worker ended the stream without finishing');
    yield* out.finish(finish);
  } catch (err) {
    ctx.throwIfCancelled();
    throw asArmatureError(err);
  }

  async function* relay(
    stream: WorkerStream,
    messages: AsyncIterator<GenerateResponse>,
    first: Promise<IteratorResult<GenerateResponse>>,
  ): AsyncGenerator<PipelineEvent> {
    // Before its first answer an accepted worker may be queueing or prefilling a long prompt:
    // only a dead connection (gRPC keepalive) ends that wait. After it, a wait for the next
    // message longer than stallMs is a stall: one watchdog timer, refreshed at each wait,
    // cancels the call if it fires during one (not while a slow client holds the events).
    const stallMs = timeouts.stallTimeoutMs ?? 0;
    let watchdog: NodeJS.Timeout | undefined;
    let waiting = false;
    let stalled = false;
    try {
      for (let pending: typeof first | undefined = first; ; pending = undefined) {
        let next: IteratorResult<GenerateResponse>;
        waiting = true;
        watchdog?.refresh();
        try {
          next = await (pending ?? messages.next());
        } catch (err) {
          if (stalled)
            throw new ArmatureError('unavailable', 'worker_stalled', `the worker sent nothing for ${stallMs} ms`);
          throw err;
        } finally {
          waiting = false;
        }
        if (next.done) return;
        if (!watchdog && stallMs > 0)
          watchdog = setTimeout(() => {
            if (!waiting) return; // the consumer is slow, not the worker; the next wait re-arms it
            stalled = true;
            stream.cancel();
          }, stallMs);
        yield* onMessage(stream, next.value);
        if (finish === 'stop' && out.stopped) return;
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  /** One message's events; throws the worker's failure finish reasons. */
  function* onMessage(stream: WorkerStream, msg: GenerateResponse): Generator<PipelineEvent> {
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
        return;
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
}

/** Where the request stands when its decode worker failed. */
export interface DecodeFailure {
  /** The worker had sent something (the stream yielded an event). */
  sentAnything: boolean;
  /** The client pinned the worker: no other may serve it. */
  pinned: boolean;
  /** Re-routes so far (failures before the worker answered). */
  reroutes: number;
  /** Migrations so far (failures after it answered). */
  migrations: number;
  /** PipelineOptions.migrationLimit. */
  migrationLimit: number;
  /** Prompt plus generated tokens, and the longest sequence that migrates (0: any). */
  sequenceTokens: number;
  maxSequenceTokens: number;
  cancelled: boolean;
}

/** gRPC's answer when this process could not encode or decode a message: our bug, not the worker's. */
const CODEC_FAILURE = /(serialization|deserialization) failure/i;

/** Whether a worker's failure says nothing about the request itself: another worker may serve it. */
export function isRetryable(e: ArmatureError): boolean {
  // grpc_internal is a transport failure (a reset stream); the worker's own `internal` answers are not retried.
  return e.cls === 'unavailable' || (e.reason === 'grpc_internal' && !isCodecFailure(e));
}

function isCodecFailure(e: ArmatureError): boolean {
  return e.reason === 'grpc_internal' && CODEC_FAILURE.test(`${e.message} ${e.detail ?? ''}`);
}

/**
 * What a decode worker's failure means: 'reroute' when it failed before sending anything
 * (nothing is lost; at most MAX_REROUTES times), 'migrate' when it failed mid-stream and
 * the request may move (within the migration limit and sequence length), else the error
 * for the client. `onExhausted` hears of a retryable failure with no attempt left.
 */
export function onDecodeFailure(
  err: unknown,
  worker: string,
  state: DecodeFailure,
  onExhausted?: (kind: RetryKind, reason: string) => void,
): RetryKind | ArmatureError {
  const e = asArmatureError(err);
  if (isCodecFailure(e)) {
    // A message that cannot be encoded is the frontend's failure: a 500, never a worker outage.
    return new ArmatureError('internal', 'encode_failed', 'the request could not be encoded for the worker', {
      detail: e.detail ?? e.message,
      cause: e,
    });
  }
  const retryable = isRetryable(e) && !state.pinned && !state.cancelled;
  if (retryable) {
    const kind: RetryKind = state.sentAnything ? 'migrate' : 'reroute';
    const left =
      kind === 'reroute'
        ? state.reroutes < MAX_REROUTES
        : state.migrations < state.migrationLimit &&
          (state.maxSequenceTokens === 0 || state.sequenceTokens <= state.maxSequenceTokens);
    if (left) return kind;
    onExhausted?.(kind, e.reason);
  }
  if (isRetryable(e)) {
    return new ArmatureError(
      'unavailable',
      'worker_unavailable',
      `the worker serving this request (${worker}) is unavailable`,
      { detail: e.detail ?? e.message, cause: e },
    );
  }
  return e;
}
