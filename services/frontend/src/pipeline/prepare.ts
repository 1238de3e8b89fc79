// Stage 1, prepare: finds the model, applies the chat template, tokenizes, and checks the
// tokenized prompt against the model once (@armature/openai's fitToModel). What comes out
// is a PreparedRequest with typed, resolved values; no later stage checks the request again.
import { fitToModel, type NormalizedRequest } from '@armature/openai';
import { ArmatureError, type RequestContext } from '@armature/runtime';
import { applyChatTemplate, chatTemplateIncludesBos, loadTokenizer, type Tokenizer } from '@armature/tokenizer';
import type { ModelCatalog } from './ports.js';
import type { PreparedRequest } from './types.js';

/** Validates the request against the model and tokenizes it; throws client errors. */
export async function prepare(
  models: ModelCatalog,
  ctx: RequestContext,
  request: NormalizedRequest,
): Promise<PreparedRequest> {
  const model = models.model(request.model);
  if (!model) {
    throw new ArmatureError('not_found', 'model_not_found', `The model '${request.model}' does not exist`, {
      param: 'model',
    });
  }
  const tokenizer = await loadTokenizer(model.card.tokenizer);
  const promptIds = tokenizePrompt(request, model.card.chatTemplate, tokenizer);
  const { maxTokens } = fitToModel(request, promptIds, {
    contextLength: model.card.contextLength,
    vocabSize: tokenizer.vocabSize,
  });
  return { requestId: ctx.id, model, tokenizer, promptIds, maxTokens, request };
}

/**
 * The prompt's token ids. Text and our own chat templates get the model's BOS, as llama.cpp
 * adds it; the GGUF's own template renders it already, and prompts given as token ids are
 * taken as they are.
 */
export function tokenizePrompt(request: NormalizedRequest, chatTemplate: string, tokenizer: Tokenizer): number[] {
  if (request.kind === 'chat') {
    const chatIds = applyChatTemplate(chatTemplate, request.messages!, tokenizer);
    return chatTemplateIncludesBos(chatTemplate) ? chatIds : [...tokenizer.bosTokenIds, ...chatIds];
  }
  if (typeof request.prompt === 'string') {
    const textIds = tokenizer.encode(request.prompt);
    return textIds.length === 0 ? [] : [...tokenizer.bosTokenIds, ...textIds]; // empty stays empty_prompt
  }
  return request.prompt!;
}
