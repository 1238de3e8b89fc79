// Request validation: each field checked once, for its shape, into typed values.
import { describe, expect, it } from 'vitest';
import { validateRequest } from './validate.js';

const chat = (extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('validateRequest', () => {
  it('normalizes a chat request with its sampling settings grouped', () => {
    const r = validateRequest('chat', chat({ temperature: 0.7, top_p: 1, top_k: 40, seed: 5, stop: 'END' }));
    expect(r).toEqual({
      kind: 'chat',
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      prompt: undefined,
      maxTokens: undefined,
      stop: ['END'],
      sampling: { temperature: 0.7, topP: 1, topK: 40, seed: 5 },
      stream: false,
      includeUsage: false,
      ignoreEos: false,
      echo: false,
    });
  });

  it('takes max_completion_tokens over max_tokens', () => {
    expect(validateRequest('chat', chat({ max_tokens: 9 })).maxTokens).toBe(9);
    expect(validateRequest('chat', chat({ max_tokens: 9, max_completion_tokens: 4 })).maxTokens).toBe(4);
    expect(validateRequest('chat', chat({ max_tokens: 9, max_completion_tokens: 4 })).maxTokensParam).toBe(
      'max_completion_tokens',
    );
    expect(validateRequest('chat', chat({ max_tokens: 9 })).maxTokensParam).toBe('max_tokens');
  });

  it.each([
    [{ max_tokens: 0 }, 'max_tokens', "'max_tokens' must be in [1, 4294967295]; got 0"],
    [{ max_tokens: 'ten' }, 'max_tokens', "'max_tokens' must be an integer"],
    [{ max_completion_tokens: 1.5 }, 'max_completion_tokens', "'max_completion_tokens' must be an integer"],
    [{ temperature: 2.5 }, 'temperature', "'temperature' must be between 0 and 2; got 2.5"],
    [{ top_p: 0 }, 'top_p', "'top_p' must be greater than 0 and at most 1; got 0"],
    [{ top_k: -2 }, 'top_k', "'top_k' must be in [-1, 2147483647]; got -2"],
    [{ n: 2 }, 'n', "only 'n' = 1 is supported"],
    [
      { stream_options: { include_usage: true } },
      'stream_options',
      "'stream_options' is only allowed when 'stream' is true",
    ],
  ])('refuses %j naming %s', (extra, param, message) => {
    expect(() => validateRequest('chat', chat(extra))).toThrow(
      expect.objectContaining({ param, message, reason: 'invalid_value' }),
    );
  });

  it('refuses empty prompts and prompts of the wrong type', () => {
    expect(() => validateRequest('completion', { model: 'm', prompt: '' })).toThrow(
      expect.objectContaining({ param: 'prompt' }),
    );
    expect(() => validateRequest('completion', { model: 'm', prompt: [] })).toThrow(
      expect.objectContaining({ param: 'prompt' }),
    );
    expect(() => validateRequest('completion', { model: 'm', prompt: [1, -1] })).toThrow(
      expect.objectContaining({ param: 'prompt' }),
    );
    expect(validateRequest('completion', { model: 'm', prompt: [[1, 2]] }).prompt).toEqual([1, 2]);
  });
});

// Each numeric field within what the worker wire (proto/armature/v1/common.proto) and the
// engines take: a value valid here never fails in the gRPC encoder.
describe('validateRequest: ranges at the door', () => {
  it.each([
    [{ seed: -1 }, 'seed', "'seed' must be in [0, 9007199254740991]; got -1"],
    [{ seed: 2 ** 53 }, 'seed', "'seed' must be in [0, 9007199254740991]; got 9007199254740992"],
    [{ seed: 1.5 }, 'seed', "'seed' must be an integer"],
    [{ seed: '7' }, 'seed', "'seed' must be an integer"],
    [{ top_k: 2 ** 31 }, 'top_k', "'top_k' must be in [-1, 2147483647]; got 2147483648"],
    [{ top_k: 0.5 }, 'top_k', "'top_k' must be an integer"],
    [{ max_tokens: 2 ** 32 }, 'max_tokens', "'max_tokens' must be in [1, 4294967295]; got 4294967296"],
    [{ max_tokens: -5 }, 'max_tokens', "'max_tokens' must be in [1, 4294967295]; got -5"],
    [
      { max_completion_tokens: 2 ** 32 },
      'max_completion_tokens',
      "'max_completion_tokens' must be in [1, 4294967295]; got 4294967296",
    ],
    [{ temperature: -0.01 }, 'temperature', "'temperature' must be between 0 and 2; got -0.01"],
    [{ temperature: '1' }, 'temperature', "'temperature' must be a number"],
    [{ top_p: 1.0001 }, 'top_p', "'top_p' must be greater than 0 and at most 1; got 1.0001"],
    [{ top_p: 1e-300 }, 'top_p', "'top_p' must be greater than 0 and at most 1; got 1e-300"],
    [{ n: 0 }, 'n', "only 'n' = 1 is supported"],
    [{ n: 1.5 }, 'n', "'n' must be an integer"],
    [{ stream: 'yes' }, 'stream', "'stream' must be a boolean"],
    [{ ignore_eos: 1 }, 'ignore_eos', "'ignore_eos' must be a boolean"],
  ])('refuses %j naming %s', (extra, param, message) => {
    expect(() => validateRequest('chat', chat(extra))).toThrow(
      expect.objectContaining({ cls: 'invalid_argument', param, message, reason: 'invalid_value' }),
    );
  });

  it('takes the edges of each range', () => {
    const edges = validateRequest(
      'chat',
      chat({ temperature: 2, top_p: 1, top_k: 2 ** 31 - 1, seed: 2 ** 53 - 1, max_tokens: 2 ** 32 - 1, n: 1 }),
    );
    expect(edges.sampling).toEqual({ temperature: 2, topP: 1, topK: 2 ** 31 - 1, seed: 2 ** 53 - 1 });
    expect(edges.maxTokens).toBe(2 ** 32 - 1);
    const low = validateRequest('chat', chat({ temperature: 0, top_p: 1e-30, top_k: 0, seed: 0, max_tokens: 1 }));
    expect(low.sampling).toEqual({ temperature: 0, topP: 1e-30, topK: 0, seed: 0 });
  });

  it("reads top_k -1 (vLLM's 'disabled') as 0 (llama.cpp's), and -0 as 0", () => {
    expect(validateRequest('chat', chat({ top_k: -1 })).sampling.topK).toBe(0);
    expect(Object.is(validateRequest('chat', chat({ seed: -0 })).sampling.seed, 0)).toBe(true);
  });

  it('takes null as absent', () => {
    const r = validateRequest('chat', chat({ temperature: null, seed: null, max_tokens: null, stop: null, n: null }));
    expect(r.sampling).toEqual({ temperature: undefined, topP: undefined, topK: undefined, seed: undefined });
    expect(r.maxTokens).toBeUndefined();
  });

  it('refuses token ids past the uint32 the wire carries', () => {
    expect(() => validateRequest('completion', { model: 'm', prompt: [1, 2 ** 32] })).toThrow(
      expect.objectContaining({ param: 'prompt' }),
    );
    expect(validateRequest('completion', { model: 'm', prompt: [2 ** 32 - 1] }).prompt).toEqual([2 ** 32 - 1]);
  });

  it('refuses text with a lone surrogate, which the tokenizer would silently replace', () => {
    expect(() => validateRequest('completion', { model: 'm', prompt: 'a\ud800b' })).toThrow(
      expect.objectContaining({ param: 'prompt', reason: 'invalid_value' }),
    );
    expect(() => validateRequest('chat', chat({ messages: [{ role: 'user', content: '\udc00' }] }))).toThrow(
      expect.objectContaining({ param: 'messages[0].content' }),
    );
    expect(() =>
      validateRequest('chat', chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'x\ud800' }] }] })),
    ).toThrow(expect.objectContaining({ param: 'messages[0].content[0].text' }));
    expect(() => validateRequest('chat', chat({ stop: ['ok', '\ud800'] }))).toThrow(
      expect.objectContaining({ param: 'stop[1]' }),
    );
    // A surrogate pair is one character, and fine.
    expect(validateRequest('completion', { model: 'm', prompt: 'a\ud83d\ude00' }).prompt).toBe('a😀');
  });

  it('echoes text prompts only: a prompt of token ids has no text to echo', () => {
    expect(validateRequest('completion', { model: 'm', prompt: 'hi', echo: true }).echo).toBe(true);
    expect(() => validateRequest('completion', { model: 'm', prompt: [1, 2], echo: true })).toThrow(
      expect.objectContaining({ param: 'echo', reason: 'invalid_value' }),
    );
  });
});
