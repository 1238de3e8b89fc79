// Stage 1, prepare: finds the model, applies the chat template, tokenizes, and checks the
// tokenized prompt against the model once (@armature/openai's fitToModel). What comes out
// is a PreparedRequest with typed, resolved values; no later stage checks the request again.
// One large prompt must not stall the event loop every other request (and /live) shares:
// a prompt whose bytes alone need more tokens than the context holds is refused before it is
// tokenized, and one of more than OFF_THREAD_PROMPT_BYTES is tokenized on a pool thread.
import { fitToModel, type NormalizedRequest } from '@armature/openai';
import { ArmatureError, type RequestContext } from '@armature/runtime';
import {
  applyChatTemplate,
  chatTemplateIncludesBos,
  chatTemplateKeepsContent,
  loadTokenizer,
  sharedTokenizePool,
  type TokenizePool,
  type Tokenizer,
} from '@armature/tokenizer';
import type { ModelCatalog } from './ports.js';
import type { PreparedRequest } from './types.js';

/** Prompts of more UTF-8 bytes than this (their text, or their messages' roles and contents) are tokenized off the event loop. */
export const OFF_THREAD_PROMPT_BYTES = 16 * 1024;

/** What prepare needs of a TokenizePool. */
export type PromptTokenizePool = Pick<TokenizePool, 'encode' | 'applyChatTemplate'>;

/**
 * Validates the request against the model and tokenizes it, a large prompt on `pool`
 * (default: the process's shared TokenizePool); throws client errors.
 */
export async function prepare(
  models: ModelCatalog,
  ctx: RequestContext,
  request: NormalizedRequest,
  pool: PromptTokenizePool = sharedTokenizePool(),
): Promise<PreparedRequest> {
  const model = models.model(request.model);
  if (!model) {
    throw new ArmatureError('not_found', 'model_not_found', `The model '${request.model}' does not exist`, {
      param: 'model',
    });
  }
  const { chatTemplate, contextLength } = model.card;
  const tokenizer = await loadTokenizer(model.card.tokenizer);
  const promptBytes = promptTextBytes(request);
  refuseWhatCannotFit(request, promptBytes, chatTemplate, tokenizer, contextLength);
  const promptIds =
    promptBytes > OFF_THREAD_PROMPT_BYTES
      ? await tokenizePromptOnPool(request, chatTemplate, tokenizer, pool, ctx.signal)
      : tokenizePrompt(request, chatTemplate, tokenizer);
  const { maxTokens } = fitToModel(request, promptIds, { contextLength, vocabSize: tokenizer.vocabSize });
  return { requestId: ctx.id, model, tokenizer, promptIds, maxTokens, request };
}

/**
 * The prompt's token ids. Text and our own chat templates get the model's BOS, as llama.cpp
 * adds it; the GGUF's own template renders it already, and prompts given as token ids are
 * taken as they are.
 */
export function tokenizePrompt(request: NormalizedRequest, chatTemplate: string, tokenizer: Tokenizer): number[] {
  if (request.kind === 'chat') {
    return withBos(request, chatTemplate, tokenizer, applyChatTemplate(chatTemplate, request.messages!, tokenizer));
  }
  if (typeof request.prompt === 'string')
    return withBos(request, chatTemplate, tokenizer, tokenizer.encode(request.prompt));
  return request.prompt!;
}

/** tokenizePrompt on a pool thread: the same ids, with the event loop free meanwhile. */
async function tokenizePromptOnPool(
  request: NormalizedRequest,
  chatTemplate: string,
  tokenizer: Tokenizer,
  pool: PromptTokenizePool,
  signal: AbortSignal,
): Promise<number[]> {
  if (request.kind === 'chat') {
    const chatIds = await pool.applyChatTemplate(tokenizer.id, chatTemplate, request.messages!, { signal });
    return withBos(request, chatTemplate, tokenizer, chatIds);
  }
  if (typeof request.prompt === 'string') {
    return withBos(request, chatTemplate, tokenizer, await pool.encode(tokenizer.id, request.prompt, { signal }));
  }
  return request.prompt!;
}

function withBos(request: NormalizedRequest, chatTemplate: string, tokenizer: Tokenizer, ids: number[]): number[] {
  if (request.kind === 'chat') return chatTemplateIncludesBos(chatTemplate) ? ids : [...tokenizer.bosTokenIds, ...ids];
  return ids.length === 0 ? [] : [...tokenizer.bosTokenIds, ...ids]; // empty stays empty_prompt
}

/** The UTF-8 bytes that will be tokenized: the text prompt, or every message's role and content. */
function promptTextBytes(request: NormalizedRequest): number {
  if (request.kind === 'chat') {
    return request.messages!.reduce((n, m) => n + Buffer.byteLength(m.role) + Buffer.byteLength(m.content), 0);
  }
  return typeof request.prompt === 'string' ? Buffer.byteLength(request.prompt) : 0;
}

/**
 * Throws fitToModel's error for a prompt that fills the context when even its fewest possible
 * tokens (one per `maxTokenBytes` bytes, plus BOS) would: such a prompt is never tokenized.
 * Chats count only under templates that keep every message's content.
 */
function refuseWhatCannotFit(
  request: NormalizedRequest,
  promptBytes: number,
  chatTemplate: string,
  tokenizer: Tokenizer,
  contextLength: number,
): void {
  if (promptBytes === 0) return;
  if (request.kind === 'chat' && !chatTemplateKeepsContent(chatTemplate)) return;
  const fewestTokens = Math.ceil(promptBytes / tokenizer.maxTokenBytes) + tokenizer.bosTokenIds.length;
  if (fewestTokens < contextLength) return;
  throw new ArmatureError(
    'invalid_argument',
    'context_length_exceeded',
    `This model's maximum context length is ${contextLength} tokens, but the prompt has at least ${fewestTokens} tokens`,
    { param: request.kind === 'chat' ? 'messages' : 'prompt' },
  );
}
