// OpenAI response objects (chat.completion, chat.completion.chunk, text_completion).

export type OpenAiFinishReason = 'stop' | 'length' | null;

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

export function usage(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

export interface ResponseIdentity {
  id: string;
  created: number;
  model: string;
}

export function chatCompletion(who: ResponseIdentity, text: string, finish: OpenAiFinishReason, u: Usage) {
  return {
    id: who.id,
    object: 'chat.completion' as const,
    created: who.created,
    model: who.model,
    choices: [
      { index: 0, message: { role: 'assistant' as const, content: text }, logprobs: null, finish_reason: finish },
    ],
    usage: u,
  };
}

export function chatChunk(
  who: ResponseIdentity,
  delta: { role?: 'assistant'; content?: string },
  finish: OpenAiFinishReason,
) {
  return {
    id: who.id,
    object: 'chat.completion.chunk' as const,
    created: who.created,
    model: who.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
}

export function textCompletion(who: ResponseIdentity, text: string, finish: OpenAiFinishReason, u?: Usage) {
  return {
    id: who.id,
    object: 'text_completion' as const,
    created: who.created,
    model: who.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    ...(u ? { usage: u } : {}),
  };
}

/** The final streamed chunk carrying only usage (stream_options.include_usage). */
export function usageChunk(who: ResponseIdentity, object: 'chat.completion.chunk' | 'text_completion', u: Usage) {
  return { id: who.id, object, created: who.created, model: who.model, choices: [], usage: u };
}
