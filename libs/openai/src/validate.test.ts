// Request validation: each field checked once, for its shape, into typed values.
import { describe, expect, it } from 'vitest';
import { validateRequest } from './validate.js';

const chat = (extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('validateRequest', () => {
  it('normalizes a chat request with its sampling settings grouped', () => {
    const r = validateRequest('chat', chat({ temperature: 0.7, top_p: 1, top_k: -1, seed: 5, stop: 'END' }));
    expect(r).toEqual({
      kind: 'chat',
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      prompt: undefined,
      maxTokens: undefined,
      stop: ['END'],
      sampling: { temperature: 0.7, topP: 1, topK: -1, seed: 5 },
      stream: false,
      includeUsage: false,
      ignoreEos: false,
      echo: false,
    });
  });

  it('takes max_completion_tokens over max_tokens', () => {
    expect(validateRequest('chat', chat({ max_tokens: 9 })).maxTokens).toBe(9);
    expect(validateRequest('chat', chat({ max_tokens: 9, max_completion_tokens: 4 })).maxTokens).toBe(4);
  });

  it.each([
    [{ max_tokens: 0 }, 'max_tokens', "'max_tokens' must be in [1, 9007199254740991]; got 0"],
    [{ max_tokens: 'ten' }, 'max_tokens', "'max_tokens' must be an integer"],
    [{ max_completion_tokens: 1.5 }, 'max_completion_tokens', "'max_completion_tokens' must be an integer"],
    [{ temperature: 2.5 }, 'temperature', "'temperature' must be between 0 and 2; got 2.5"],
    [{ top_p: 0 }, 'top_p', "'top_p' must be greater than 0 and at most 1; got 0"],
    [{ top_k: -2 }, 'top_k', "'top_k' must be in [-1, 9007199254740991]; got -2"],
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
