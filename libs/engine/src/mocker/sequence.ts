// A request's state inside the mocker core: its tokens and their block hashes, its seeded
// sampler, how far its KV is computed. It validates requests (the reasons generate() throws),
// builds sequences (a request continuing after a remote prefill's first token included) and
// applies stop conditions. It does not schedule, hold blocks or write KV bytes.
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import { ArmatureError } from '@armature/runtime';
import type { EngineRequest } from '../types.js';
import type { MockerConfig } from './options.js';
import { TokenSampler, requestSeed } from './sampler.js';

export interface Sequence {
  readonly request: EngineRequest;
  readonly id: string;
  /** Prompt then generated tokens (a remote prefill's first token included). */
  readonly tokens: number[];
  readonly promptLength: number;
  /** Sequence hashes of every full block of `tokens`. */
  readonly hashes: bigint[];
  readonly sampler: TokenSampler;
  readonly stopTokenIds: ReadonlySet<number>;
  /** Ends after its first token, its prompt's blocks pinned for a decode worker. */
  readonly prefillOnly: boolean;
  /** Tokens whose KV is computed in the blocks currently held. */
  computed: number;
  /** Output tokens so far, a remote prefill's first token included. */
  generated: number;
  /** All tokens but the last sampled one are computed: the next pass decodes. */
  prefilled: boolean;
  /** Prompt tokens not computed here (prefix cache at first admission, or imported). */
  cachedTokens: number;
  admitted: boolean;
  firstOutputSent: boolean;
}

const MAX_TOKEN_ID = 2 ** 32 - 1;

export const isTokenId = (id: unknown): id is number =>
  typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_TOKEN_ID;

export function invalid(reason: string, message: string, param?: string): ArmatureError {
  return new ArmatureError('invalid_argument', reason, message, param === undefined ? {} : { param });
}

/** Throws ArmatureError('invalid_argument') for a request that can never run on this engine. */
export function validateRequest(config: MockerConfig, request: EngineRequest, prefillOnly: boolean): void {
  const { requestId, tokenIds, stop, sampling, firstToken } = request;
  const { contextLength, blockSize, totalKvBlocks } = config;
  if (typeof requestId !== 'string' || requestId === '')
    throw invalid('invalid_request_id', 'request id must be a non-empty string');
  validatePrompt(tokenIds);
  if (!Number.isSafeInteger(stop.maxTokens) || stop.maxTokens < 1)
    throw invalid('invalid_max_tokens', 'max_tokens must be a positive integer', 'max_tokens');
  if (tokenIds.length + stop.maxTokens > contextLength) {
    throw invalid(
      'context_length_exceeded',
      `prompt (${tokenIds.length} tokens) + max_tokens (${stop.maxTokens}) exceeds the context length ${contextLength}`,
      'max_tokens',
    );
  }
  // The last sampled token is never fed back, so prompt + max_tokens - 1 tokens need slots.
  if (Math.ceil((tokenIds.length + stop.maxTokens - 1) / blockSize) > totalKvBlocks) {
    throw invalid(
      'kv_capacity_exceeded',
      `the request needs more than the ${totalKvBlocks} KV blocks this engine has`,
      'max_tokens',
    );
  }
  if (sampling.seed !== undefined && !Number.isFinite(sampling.seed))
    throw invalid('invalid_seed', 'seed must be a finite number', 'seed');
  if (firstToken === undefined) return;
  if (prefillOnly)
    throw invalid('first_token_on_prefill', 'a prefill-only request has no first token yet', 'first_token');
  if (!isTokenId(firstToken)) throw invalid('invalid_token_id', `invalid first token id ${firstToken}`, 'first_token');
  if (finishReasonOf(config, stop, new Set(stop.stopTokenIds), firstToken, 1) !== undefined)
    throw invalid('nothing_to_decode', 'the first token already ends the request', 'first_token');
}

/** Throws ArmatureError('invalid_argument') for an empty prompt or a bad token id. */
export function validatePrompt(tokenIds: readonly number[]): void {
  if (tokenIds.length === 0) throw invalid('empty_prompt', 'the prompt is empty', 'prompt');
  for (const id of tokenIds) if (!isTokenId(id)) throw invalid('invalid_token_id', `invalid token id ${id}`, 'prompt');
}

/**
 * A new sequence for a validated request, nothing computed. With firstToken its tokens are
 * prompt + [firstToken], one token generated, and the sampler past its first draw (the
 * prefill worker's), so what follows is what an aggregated run would produce.
 */
export function newSequence(config: MockerConfig, request: EngineRequest, prefillOnly: boolean): Sequence {
  const { requestId, tokenIds, stop, sampling, firstToken } = request;
  const prompt = tokenIds.slice();
  const tokens = firstToken === undefined ? prompt.slice() : [...prompt, firstToken];
  // Seeded by the prompt alone, as an aggregated run of the request would be.
  const sampler = new TokenSampler(requestSeed(prompt, sampling.seed), {
    vocabRange: config.vocabRange,
    eosTokenId: config.eosTokenIds[0]!,
    eosProbability: config.eosProbability,
    ignoreEos: stop.ignoreEos,
  });
  if (firstToken !== undefined) sampler.next();
  return {
    request,
    id: requestId,
    tokens,
    promptLength: prompt.length,
    hashes: computeSequenceHashes(computeBlockHashes(tokens, config.blockSize)),
    sampler,
    stopTokenIds: new Set(stop.stopTokenIds),
    prefillOnly,
    computed: 0,
    generated: firstToken === undefined ? 0 : 1,
    prefilled: false,
    cachedTokens: 0,
    admitted: false,
    firstOutputSent: false,
  };
}

/** Appends a sampled token, extending the hashes when it fills a block. */
export function appendToken(seq: Sequence, token: number, blockSize: number): void {
  seq.tokens.push(token);
  seq.generated++;
  seq.prefilled = true;
  if (seq.tokens.length % blockSize !== 0) return;
  const local = computeBlockHashes(seq.tokens.slice(seq.tokens.length - blockSize), blockSize)[0]!;
  const parent = seq.hashes[seq.hashes.length - 1];
  seq.hashes.push(parent === undefined ? local : computeSequenceHashes([parent, local])[1]!);
}

/** Whether `token`, the request's `generated`-th output token, ends it, and why. */
export function finishReasonOf(
  config: MockerConfig,
  stop: EngineRequest['stop'],
  stopTokenIds: ReadonlySet<number>,
  token: number,
  generated: number,
): 'stop' | 'length' | undefined {
  if (!stop.ignoreEos && config.eosTokenIds.includes(token)) return 'stop';
  if (stopTokenIds.has(token)) return 'stop';
  if (generated >= stop.maxTokens) return 'length';
  return undefined;
}

export function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
