// The checks of an engine request, in one place: both engines run validateEngineRequest
// before queueing a request, and the worker service runs validateRequestFields on a
// request from the wire before it pulls any KV for it. Every failure is
// ArmatureError('invalid_argument') with a stable reason and the offending field as
// `param`, so the boundaries (gRPC, HTTP) render them alike. What depends on an engine's
// state (a request id already in use, an import that does not match) stays in the engine.
import { ArmatureError, type ModelCard } from '@armature/runtime';
import type { EngineRequest } from './types.js';

/** Token ids are u32 on the wire. */
const MAX_TOKEN_ID = 2 ** 32 - 1;

/** Whether `id` can be a token id at all (an integer in [0, 2^32)). */
export const isTokenId = (id: unknown): id is number =>
  typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_TOKEN_ID;

/** ArmatureError('invalid_argument', reason, message), naming `param` when given. */
export function invalidRequest(reason: string, message: string, param?: string): ArmatureError {
  return new ArmatureError('invalid_argument', reason, message, param === undefined ? {} : { param });
}

/** What an engine checks beyond its card. */
export interface EngineRequestChecks {
  /** Token ids must be below it (the llama.cpp model's vocabulary); default: any u32 id. */
  vocabSize?: number;
  /** The request is a prefill only (disaggregated serving), which has no first token yet; default false. */
  prefillOnly?: boolean;
  /**
   * Paged KV (the mocker): prompt + max_tokens - 1 tokens must fit in the card's
   * totalKvBlocks blocks of blockSize; default false.
   */
  kvCapacity?: boolean;
}

/**
 * Throws ArmatureError('invalid_argument') for a request that can never run on an engine
 * with this card: a bad id, prompt, token id, max_tokens or seed, prompt + max_tokens
 * beyond the context, or a first token that already ends the request.
 */
export function validateEngineRequest(request: EngineRequest, card: ModelCard, checks: EngineRequestChecks = {}): void {
  const { tokenIds, stop, sampling, firstToken } = request;
  validateRequestFields(request, checks.vocabSize);
  const { contextLength, blockSize, totalKvBlocks } = card;
  if (tokenIds.length + stop.maxTokens > contextLength) {
    throw invalidRequest(
      'context_length_exceeded',
      `prompt (${tokenIds.length} tokens) + max_tokens (${stop.maxTokens}) exceeds the context length ${contextLength}`,
      'max_tokens',
    );
  }
  // The last sampled token is never fed back, so prompt + max_tokens - 1 tokens need slots.
  if (checks.kvCapacity && Math.ceil((tokenIds.length + stop.maxTokens - 1) / blockSize) > totalKvBlocks) {
    throw invalidRequest(
      'kv_capacity_exceeded',
      `the request needs more than the ${totalKvBlocks} KV blocks this engine has`,
      'max_tokens',
    );
  }
  if (sampling.seed !== undefined && !Number.isFinite(sampling.seed))
    throw invalidRequest('invalid_seed', 'seed must be a finite number', 'seed');
  if (firstToken === undefined) return;
  if (checks.prefillOnly)
    throw invalidRequest('first_token_on_prefill', 'a prefill-only request has no first token yet', 'first_token');
  if (!isTokenId(firstToken) || (checks.vocabSize !== undefined && firstToken >= checks.vocabSize))
    throw invalidRequest(
      'invalid_token_id',
      badTokenMessage('first token id', firstToken, checks.vocabSize),
      'first_token',
    );
  const endsAtOnce =
    (!stop.ignoreEos && card.eosTokenIds.includes(firstToken)) ||
    stop.stopTokenIds.includes(firstToken) ||
    stop.maxTokens <= 1;
  if (endsAtOnce) throw invalidRequest('nothing_to_decode', 'the first token already ends the request', 'first_token');
}

/**
 * Throws ArmatureError('invalid_argument') for what is wrong with a request on its own,
 * whatever engine runs it: the request id, the prompt and its token ids (below
 * `vocabSize` when given), max_tokens.
 */
export function validateRequestFields(request: EngineRequest, vocabSize?: number): void {
  const { requestId, tokenIds, stop } = request;
  if (typeof requestId !== 'string' || requestId === '')
    throw invalidRequest('invalid_request_id', 'request id must be a non-empty string');
  validatePrompt(tokenIds, vocabSize);
  if (!Number.isSafeInteger(stop.maxTokens) || stop.maxTokens < 1)
    throw invalidRequest('invalid_max_tokens', 'max_tokens must be a positive integer', 'max_tokens');
}

/** Throws ArmatureError('invalid_argument') for an empty prompt or a bad token id (one at or past `vocabSize`, when given). */
export function validatePrompt(tokenIds: readonly number[], vocabSize?: number): void {
  if (tokenIds.length === 0) throw invalidRequest('empty_prompt', 'the prompt is empty', 'prompt');
  for (const id of tokenIds) {
    if (!isTokenId(id) || (vocabSize !== undefined && id >= vocabSize))
      throw invalidRequest('invalid_token_id', badTokenMessage('token id', id, vocabSize), 'prompt');
  }
}

function badTokenMessage(what: string, id: number, vocabSize: number | undefined): string {
  return vocabSize === undefined ? `invalid ${what} ${id}` : `${what} ${id} is outside the vocabulary (${vocabSize})`;
}
