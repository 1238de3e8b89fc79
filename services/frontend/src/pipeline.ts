// One request's way through the frontend: tokenize (chat template), check against the
// model card, route, run the prompt on a prefill worker when the router picked one (its
// first token goes out at once), stream the rest from the decode worker, detokenize
// incrementally, apply stop strings, and always release the router's load. Output is a
// stream of events the HTTP layer renders as SSE or as one JSON body.
import { randomUUID } from 'node:crypto';
import {
  FinishReason,
  type GenerateRequest,
  type GenerateResponse,
  type PrefillResponse,
  type RouteResponse,
} from '@armature/proto';
import type { NormalizedRequest } from '@armature/openai';
import { ArmatureError, asArmatureError, createLogger, type RequestContext } from '@armature/runtime';
import {
  applyChatTemplate,
  chatTemplateIncludesBos,
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
  | { type: 'start'; worker: string; prefillWorker?: string; cachedTokens: number; promptTokens: number }
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
  // Text and our own chat templates get the model's BOS, as llama.cpp adds it; the GGUF's own
  // template renders it already, and prompts given as token ids are taken as they are.
  if (request.kind === 'chat') {
    const template = model.card.chatTemplate;
    const chatIds = applyChatTemplate(template, request.messages!, tokenizer);
    promptIds = chatTemplateIncludesBos(template) ? chatIds : [...tokenizer.bosTokenIds, ...chatIds];
  } else if (typeof request.prompt === 'string') {
    const textIds = tokenizer.encode(request.prompt);
    promptIds = textIds.length === 0 ? [] : [...tokenizer.bosTokenIds, ...textIds]; // empty stays empty_prompt
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

function toGenerateRequest(p: PreparedRequest, workerRequestId: string): GenerateRequest {
  const r = p.request;
  return {
    requestId: workerRequestId,
    model: r.model,
    tokenIds: p.promptIds,
    sampling: { temperature: r.temperature, topP: r.topP, topK: r.topK, seed: r.seed },
    stop: { maxTokens: p.maxTokens, ignoreEos: r.ignoreEos, stopTokenIds: [] },
  };
}

/** Turns token ids into text across workers: incremental detokenizing and stop strings. */
class OutputText {
  private readonly detok: IncrementalDetokenizer;
  private readonly stops: StopStringMatcher;
  completionTokens = 0;
  /** A stop string matched: nothing more is emitted. */
  stopped = false;

  constructor(p: PreparedRequest) {
    this.detok = new IncrementalDetokenizer(p.tokenizer);
    this.stops = new StopStringMatcher(p.request.stop);
  }

  push(tokenIds: number[]): PipelineEvent {
    this.completionTokens += tokenIds.length;
    const { emit, stopped } = this.stops.push(this.detok.push(tokenIds));
    if (stopped) this.stopped = true;
    return { type: 'text', text: emit, tokens: tokenIds.length }; // empty text still counts tokens for ITL
  }

  /** The held-back tail at the end of generation; sets `stopped` if a stop string ends in it. */
  flush(): string {
    if (this.stopped) return '';
    const tail = this.stops.push(this.detok.flush());
    if (tail.stopped) {
      this.stopped = true;
      return tail.emit;
    }
    return tail.emit + this.stops.flush();
  }
}

const FINISH: Partial<Record<FinishReason, 'stop' | 'length'>> = {
  [FinishReason.FINISH_REASON_STOP]: 'stop',
  [FinishReason.FINISH_REASON_LENGTH]: 'length',
};

/** A prompt prefilled on a prefill worker: what the decode worker continues from. */
interface Prefilled {
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

/** Streams the request's output; the caller owns `ctx` and cancels it on disconnect. */
export async function* run(
  upstream: Upstream,
  p: PreparedRequest,
  ctx: RequestContext,
  pinnedWorkerId?: string,
): AsyncGenerator<PipelineEvent> {
  const excluded: string[] = [];
  const out = new OutputText(p);
  // Each routing attempt has its own id at the router, so a Free of a failed attempt can
  // never release (or race with) the load of the attempt that replaced it.
  let routeId = p.requestId;
  let prefilled: Prefilled | undefined;
  let started = false;
  let decoded = false;
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
      if (route.prefill && !prefilled) {
        prefilled = await prefillRemotely(
          upstream,
          p,
          routeId,
          route.prefill.instanceId,
          route.prefill.grpcAddress,
          ctx,
        );
        // The prefill worker failed or timed out: the decode worker prefills, and the router
        // moves the prefill's load there.
        if (!prefilled) upstream.notifyPrefillLocal(routeId);
        else {
          upstream.notifyPrefillComplete(routeId);
          started = true;
          const first = prefilled.response;
          yield {
            type: 'start',
            worker: target.instanceId,
            prefillWorker: prefilled.worker,
            cachedTokens: first.cachedTokens,
            promptTokens: p.promptIds.length,
          };
          yield out.push([first.firstToken]);
          const finish = FINISH[first.finishReason];
          if (out.stopped || finish) {
            // The first token ends the request: no decode worker is needed.
            if (first.descriptor) upstream.releaseKv(prefilled.address, first.descriptor.pinId);
            prefilled = undefined;
            yield* finishText(out, finish ?? 'stop');
            return;
          }
        }
      }
      let sentAnything = false;
      try {
        const stream = streamFromWorker(
          upstream,
          p,
          routeId,
          target.instanceId,
          target.grpcAddress,
          ctx,
          out,
          prefilled,
        );
        for await (const ev of stream) {
          sentAnything = true;
          if (ev.type === 'start') {
            if (started) continue;
            started = true;
          }
          yield ev;
        }
        decoded = true;
        return;
      } catch (err) {
        const e = asArmatureError(err);
        if (e.cls === 'unavailable' && !sentAnything && !pinnedWorkerId && attempt < MAX_REROUTES && !ctx.cancelled) {
          // Before the decode worker answered nothing is lost: the first token is kept, and the
          // next decode worker prefills the prompt itself (the pin may be gone with the pull).
          log.warn('worker failed before answering; re-routing', { requestId: p.requestId, worker: target.instanceId });
          if (prefilled) prefilled.pullable = false;
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
    // Unpin a prefill no decode worker finished with (a decode worker that pulled it
    // released it already; a second release is a no-op).
    const d = prefilled?.response.descriptor;
    if (prefilled && d && !decoded) upstream.releaseKv(prefilled.address, d.pinId);
  }
}

/**
 * Runs the prompt on the prefill worker. Any failure but the client's own cancellation
 * answers undefined: the decode worker then prefills locally.
 */
async function prefillRemotely(
  upstream: Upstream,
  p: PreparedRequest,
  routeId: string,
  worker: string,
  address: string,
  ctx: RequestContext,
): Promise<Prefilled | undefined> {
  try {
    const response = await upstream.prefill(address, toGenerateRequest(p, routeId), ctx.signal);
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
    if (e.cls === 'unavailable') upstream.forgetWorker(address);
    return undefined;
  }
}

function* finishText(out: OutputText, finish: 'stop' | 'length'): Generator<PipelineEvent> {
  const rest = out.flush();
  if (rest) yield { type: 'text', text: rest, tokens: 0 };
  yield { type: 'end', finishReason: out.stopped ? 'stop' : finish, completionTokens: out.completionTokens };
}

async function* streamFromWorker(
  upstream: Upstream,
  p: PreparedRequest,
  routeId: string,
  workerId: string,
  address: string,
  ctx: RequestContext,
  out: OutputText,
  prefilled: Prefilled | undefined,
): AsyncGenerator<PipelineEvent> {
  const req = toGenerateRequest(p, routeId);
  if (prefilled) {
    req.remotePrefill = {
      firstToken: prefilled.response.firstToken,
      descriptor: prefilled.pullable ? prefilled.response.descriptor : undefined,
    };
  }
  const call = upstream.worker(address).generate(req);
  const onAbort = (): void => call.cancel();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let started = false;
  let finish: 'stop' | 'length' | undefined;
  try {
    for await (const raw of call) {
      const msg = raw as GenerateResponse;
      if (!started) {
        started = true;
        // Idempotent: after a remote prefill it was already sent for this attempt, or the
        // attempt is a re-route whose own prefill share must end now.
        upstream.notifyPrefillComplete(routeId);
        yield { type: 'start', worker: workerId, cachedTokens: msg.cachedTokens, promptTokens: p.promptIds.length };
      }
      if (msg.tokenIds.length > 0) {
        yield out.push(msg.tokenIds);
        if (out.stopped) {
          finish = 'stop';
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
    yield* finishText(out, finish);
  } catch (err) {
    ctx.throwIfCancelled();
    throw asArmatureError(err);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}
