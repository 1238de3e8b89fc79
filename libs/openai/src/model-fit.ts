// The checks of a request that need the model: the tokenized prompt against the vocabulary
// and the context length, and max_tokens against the room the prompt leaves. validate.ts
// checks each field's shape once; this checks its fit once, and resolves max_tokens to a
// number so that nothing downstream re-checks or re-derives it.
import { ArmatureError } from '@armature/runtime';
import type { NormalizedRequest } from './validate.js';

/** What the served model allows: from its deployment card and its tokenizer. */
export interface ModelLimits {
  /** Prompt plus completion tokens, at most. */
  contextLength: number;
  /** Token ids are below this. */
  vocabSize: number;
}

/** A request that fits the model, with its limits resolved. */
export interface ModelFit {
  /** Tokens to generate at most: the request's max_tokens, or all the room the context leaves. */
  maxTokens: number;
}

/**
 * Checks the tokenized prompt and max_tokens against the model; throws the client error
 * (`invalid_token_id`, `empty_prompt`, `context_length_exceeded`) naming the param.
 */
export function fitToModel(request: NormalizedRequest, promptIds: readonly number[], limits: ModelLimits): ModelFit {
  // Prompts given as token ids are checked against the vocabulary; text is tokenized into it.
  if (Array.isArray(request.prompt)) {
    const badId = request.prompt.find((id) => id >= limits.vocabSize);
    if (badId !== undefined) {
      throw new ArmatureError(
        'invalid_argument',
        'invalid_token_id',
        `token id ${badId} is outside the vocabulary (${limits.vocabSize})`,
        { param: 'prompt' },
      );
    }
  }
  if (promptIds.length === 0)
    throw new ArmatureError('invalid_argument', 'empty_prompt', 'the prompt is empty', { param: 'prompt' });
  const context = limits.contextLength;
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
    const param = request.maxTokensParam ?? 'max_tokens';
    throw new ArmatureError(
      'invalid_argument',
      'context_length_exceeded',
      `This model's maximum context length is ${context} tokens; the prompt has ${promptIds.length}, so ${param} can be at most ${room}, not ${request.maxTokens}`,
      { param },
    );
  }
  return { maxTokens: request.maxTokens ?? room };
}
