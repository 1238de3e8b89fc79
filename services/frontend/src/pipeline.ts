// One request's way through the frontend: tokenize (chat template), check against the
// model card, route, stream tokens from the worker, detokenize incrementally, apply stop
// strings, and always release the router's load. Output is a stream of events the HTTP
// layer renders as SSE or as one JSON body.
import { randomUUID } from 'node:crypto';
import { FinishReason, type GenerateRequest, type GenerateResponse, type RouteResponse } from '@armature/proto';
import type { NormalizedRequest } from '@armature/openai';
import { ArmatureError, asArmatureError, createLogger, type RequestContext } from '@armature/runtime';
import {
  applyChatTemplate,
  IncrementalDetokenizer,
  loadTokenizer,
  StopStringMatcher,
  type Tokenizer,
} from '@armature/tokenizer';
import type { ServedModel, Upstream } from './upstream.js';

const log = createLogger('frontend/pipeline');

/** How often a request is re-routed when its worker fails before sending anything. */
const MAX_REROUTES = 2;

export interface PreparedRequest {
  requestId: string;
  model: ServedModel;
  tokenizer: Tokenizer;
  promptIds: number[];
  maxTokens: number;
  request: NormalizedRequest;
}

export type PipelineEvent =
  | { type: 'start'; worker: string; cachedTokens: number; promptTokens: number }
  | { type: 'text'; text: string; tokens: number }
  | { type: 'end'; finishReason: 'stop' | 'length'; completionTokens: number };

/** Validates the request against the model and tokenizes it; throws client errors. */
export async function prepare(upstream: Upstream, request: NormalizedRequest): Promise<PreparedRequest> {
  const model = upstream.model(request.model);
  if (!model) {
    throw new ArmatureError('not_found', 'model_not_found', `The model '${request.model}' does not exist`, {
      param: 'model',
    });
  }
  const tokenizer = await loadTokenizer(model.card.tokenizer);
  let promptIds: number[];
  if (request.kind === 'chat') {
    promptIds = applyChatTemplate(model.card.chatTemplate, request.messages!, tokenizer);
  } else if (typeof request.prompt === 'string') {
    promptIds = tokenizer.encode(request.prompt);
  } else {
    promptIds = request.prompt!;
    const badId = promptIds.find((id) => id >= tokenizer.vocabSize);
    if (badId !== undefined) {
      throw new ArmatureError(
        'invalid_argument',
        'invalid_token_id',
        `token id ${badId} is outside the vocabulary (${tokenizer.vocabSize})`,
        { param: 'prompt' },
      );
    }
  }
  if (promptIds.length === 0)
    throw new ArmatureError('invalid_argument', 'empty_prompt', 'the prompt is empty', { param: 'prompt' });
  const context = model.card.contextLength;
  if (promptIds.length >= context) {
    throw new ArmatureError(
      'invalid_argument',
      'context_length_exceeded',
      `This model's maximum context length is ${context} tokens, but the prompt has ${promptIds.length} tokens`,
      { param: request.kind === 'chat' ? 'messages' : 'prompt' },
    );
  }
  const room = context - promptIds.length;
  if (request.maxTokens !== undefined && request.maxTokens > room) {
    throw new ArmatureError(
      'invalid_argument',
      'context_length_exceeded',
      `This model's maximum context length is ${context} tokens; the prompt has ${promptIds.length}, so max_tokens can be at most ${room}, not ${request.maxTokens}`,
      { param: 'max_tokens' },
    );
  }
  return { requestId: randomUUID(), model, tokenizer, promptIds, maxTokens: request.maxTokens ?? room, request };
}

function toGenerateRequest(p: PreparedRequest): GenerateRequest {
  const r = p.request;
  return {
    requestId: p.requestId,
    model: r.model,
    tokenIds: p.promptIds,
    sampling: { temperature: r.temperature, topP: r.topP, topK: r.topK, seed: r.seed },
    stop: { maxTokens: p.maxTokens, ignoreEos: r.ignoreEos, stopTokenIds: [] },
  };
}

/** Streams the request's output; the caller owns `ctx` and cancels it on disconnect. */
export async function* run(
  upstream: Upstream,
  p: PreparedRequest,
  ctx: RequestContext,
  pinnedWorkerId?: string,
): AsyncGenerator<PipelineEvent> {
  const excluded: string[] = [];
  // Each routing attempt has its own id at the router, so a Free of a failed attempt can
  // never release (or race with) the load of the attempt that replaced it.
  let routeId = p.requestId;
  try {
    for (let attempt = 0; ; attempt++) {
      ctx.throwIfCancelled();
      routeId = attempt === 0 ? p.requestId : `${p.requestId}#${attempt}`;
      const route: RouteResponse = await upstream.route(
        {
          requestId: routeId,
          model: p.request.model,
          tokenIds: p.promptIds,
          pinnedWorkerId,
          excludedWorkerIds: excluded,
        },
        ctx.signal,
      );
      const target = route.decode!;
      let sentAnything = false;
      try {
        for await (const ev of streamFromWorker(upstream, p, routeId, target.instanceId, target.grpcAddress, ctx)) {
          sentAnything = true;
          yield ev;
        }
        return;
      } catch (err) {
        const e = asArmatureError(err);
        if (e.cls === 'unavailable' && !sentAnything && !pinnedWorkerId && attempt < MAX_REROUTES && !ctx.cancelled) {
          log.warn('worker failed before answering; re-routing', { requestId: p.requestId, worker: target.instanceId });
          upstream.forgetWorker(target.grpcAddress);
          upstream.notifyFree(routeId);
          excluded.push(target.instanceId);
          continue;
        }
        if (e.cls === 'unavailable' || e.reason === 'grpc_internal') {
          throw new ArmatureError(
            'unavailable',
            'worker_unavailable',
            `the worker serving this request (${target.instanceId}) is unavailable`,
            { detail: e.detail, cause: e },
          );
        }
        throw e;
      }
    }
  } finally {
    upstream.notifyFree(routeId);
  }
}

async function* streamFromWorker(
  upstream: Upstream,
  p: PreparedRequest,
  routeId: string,
  workerId: string,
  address: string,
  ctx: RequestContext,
): AsyncGenerator<PipelineEvent> {
  const call = upstream.worker(address).generate(toGenerateRequest(p));
  const onAbort = (): void => call.cancel();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const detok = new IncrementalDetokenizer(p.tokenizer);
  const stops = new StopStringMatcher(p.request.stop);
  let completionTokens = 0;
  let started = false;
  let finish: 'stop' | 'length' | undefined;
  let stoppedByString = false;
  try {
    for await (const raw of call) {
      const msg = raw as GenerateResponse;
      if (!started) {
        started = true;
        upstream.notifyPrefillComplete(routeId);
        yield { type: 'start', worker: workerId, cachedTokens: msg.cachedTokens, promptTokens: p.promptIds.length };
      }
      if (msg.tokenIds.length > 0) {
        completionTokens += msg.tokenIds.length;
        const { emit, stopped } = stops.push(detok.push(msg.tokenIds));
        yield { type: 'text', text: emit, tokens: msg.tokenIds.length }; // empty text still counts tokens for ITL
        if (stopped) {
          finish = 'stop';
          stoppedByString = true;
          call.cancel();
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
    if (!stoppedByString) {
      const tail = stops.push(detok.flush());
      const rest = tail.stopped ? tail.emit : tail.emit + stops.flush();
      if (tail.stopped) finish = 'stop';
      if (rest) yield { type: 'text', text: rest, tokens: 0 };
    }
    yield { type: 'end', finishReason: finish, completionTokens };
  } catch (err) {
    ctx.throwIfCancelled();
    throw asArmatureError(err);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}
