// The engine request checks both engines and the worker share: each reason with the field
// it names, and the options that only some engines turn on.
import { describe, expect, it } from 'vitest';
import type { ModelCard } from '@armature/runtime';
import { validateEngineRequest, validateRequestFields } from './request.js';
import type { EngineRequest } from './types.js';

const card: ModelCard = {
  model: 'm',
  blockSize: 4,
  totalKvBlocks: 4,
  maxNumSeqs: 4,
  maxNumBatchedTokens: 64,
  contextLength: 32,
  tokenizer: 't',
  chatTemplate: 'chatml',
  eosTokenIds: [2],
  engine: 'test',
};
const request = (extra: Partial<EngineRequest> = {}, stop: Partial<EngineRequest['stop']> = {}): EngineRequest => ({
  requestId: 'r',
  tokenIds: [5, 6, 7],
  sampling: {},
  ...extra,
  stop: { maxTokens: 4, ignoreEos: false, stopTokenIds: [], ...stop },
});
const reasonOf = (check: () => void): { reason: string; param: string | undefined } | undefined => {
  try {
    check();
    return undefined;
  } catch (err) {
    const e = err as { cls: string; reason: string; param?: string };
    expect(e.cls).toBe('invalid_argument');
    return { reason: e.reason, param: e.param };
  }
};

describe('engine request validation', () => {
  it.each<[string, EngineRequest, string, string | undefined]>([
    ['an empty id', request({ requestId: '' }), 'invalid_request_id', undefined],
    ['an empty prompt', request({ tokenIds: [] }), 'empty_prompt', 'prompt'],
    ['a negative token id', request({ tokenIds: [1, -2] }), 'invalid_token_id', 'prompt'],
    ['max_tokens 0', request({}, { maxTokens: 0 }), 'invalid_max_tokens', 'max_tokens'],
    ['prompt + max_tokens past the context', request({}, { maxTokens: 30 }), 'context_length_exceeded', 'max_tokens'],
    ['an infinite seed', request({ sampling: { seed: Infinity } }), 'invalid_seed', 'seed'],
    ['a bad first token', request({ firstToken: 1.5 }), 'invalid_token_id', 'first_token'],
    ['an EOS first token', request({ firstToken: 2 }), 'nothing_to_decode', 'first_token'],
    ['a stop first token', request({ firstToken: 8 }, { stopTokenIds: [8] }), 'nothing_to_decode', 'first_token'],
    [
      'a first token with max_tokens 1',
      request({ firstToken: 9 }, { maxTokens: 1 }),
      'nothing_to_decode',
      'first_token',
    ],
  ])('refuses %s', (_name, req, reason, param) => {
    expect(reasonOf(() => validateEngineRequest(req, card))).toEqual({ reason, param });
  });

  it('accepts a request that can run, an EOS first token under ignore_eos included', () => {
    expect(reasonOf(() => validateEngineRequest(request(), card))).toBeUndefined();
    expect(
      reasonOf(() => validateEngineRequest(request({ firstToken: 2 }, { ignoreEos: true }), card)),
    ).toBeUndefined();
  });

  it('checks the vocabulary, KV capacity and prefill-only only when asked', () => {
    const big = request({ tokenIds: [5, 600] });
    expect(reasonOf(() => validateEngineRequest(big, card))).toBeUndefined();
    expect(reasonOf(() => validateEngineRequest(big, card, { vocabSize: 600 }))).toEqual({
      reason: 'invalid_token_id',
      param: 'prompt',
    });
    const long = request({ tokenIds: Array.from({ length: 16 }, (_, i) => i + 3) }, { maxTokens: 8 });
    expect(reasonOf(() => validateEngineRequest(long, card))).toBeUndefined();
    expect(reasonOf(() => validateEngineRequest(long, card, { kvCapacity: true }))?.reason).toBe(
      'kv_capacity_exceeded',
    );
    expect(reasonOf(() => validateEngineRequest(request({ firstToken: 9 }), card, { prefillOnly: true }))).toEqual({
      reason: 'first_token_on_prefill',
      param: 'first_token',
    });
  });

  it('checks the fields alone without a card (what the worker does before pulling KV)', () => {
    expect(reasonOf(() => validateRequestFields(request({}, { maxTokens: 10_000 })))).toBeUndefined();
    expect(reasonOf(() => validateRequestFields(request({ tokenIds: [] })))?.reason).toBe('empty_prompt');
  });
});
