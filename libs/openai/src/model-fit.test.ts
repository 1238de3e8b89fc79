// The one check of a tokenized request against the model, resolving max_tokens.
import { describe, expect, it } from 'vitest';
import { fitToModel } from './model-fit.js';
import { validateRequest } from './validate.js';

const limits = { contextLength: 10, vocabSize: 100 };
const completion = (prompt: string | number[], extra: object = {}) =>
  validateRequest('completion', { model: 'm', prompt, ...extra });

describe('fitToModel', () => {
  it('resolves max_tokens to the room the prompt leaves, or keeps the one asked for', () => {
    expect(fitToModel(completion([1, 2, 3]), [1, 2, 3], limits)).toEqual({ maxTokens: 7 });
    expect(fitToModel(completion([1, 2, 3], { max_tokens: 7 }), [1, 2, 3], limits)).toEqual({ maxTokens: 7 });
  });

  it('refuses max_tokens past the room', () => {
    expect(() => fitToModel(completion([1, 2, 3], { max_tokens: 8 }), [1, 2, 3], limits)).toThrow(
      expect.objectContaining({
        cls: 'invalid_argument',
        reason: 'context_length_exceeded',
        param: 'max_tokens',
        message:
          "This model's maximum context length is 10 tokens; the prompt has 3, so max_tokens can be at most 7, not 8",
      }),
    );
  });

  it('names max_completion_tokens when that is the field that asked for too many', () => {
    expect(() => fitToModel(completion([1, 2, 3], { max_completion_tokens: 8 }), [1, 2, 3], limits)).toThrow(
      expect.objectContaining({
        param: 'max_completion_tokens',
        message:
          "This model's maximum context length is 10 tokens; the prompt has 3, so max_completion_tokens can be at most 7, not 8",
      }),
    );
  });

  it('refuses a prompt that fills the context, naming messages for chat', () => {
    const ten = Array.from({ length: 10 }, (_, i) => i);
    expect(() => fitToModel(completion(ten), ten, limits)).toThrow(
      expect.objectContaining({ reason: 'context_length_exceeded', param: 'prompt' }),
    );
    const chat = validateRequest('chat', { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    expect(() => fitToModel(chat, ten, limits)).toThrow(expect.objectContaining({ param: 'messages' }));
  });

  it('refuses token ids outside the vocabulary and a prompt that tokenized to nothing', () => {
    expect(() => fitToModel(completion([1, 100]), [1, 100], limits)).toThrow(
      expect.objectContaining({ reason: 'invalid_token_id', message: 'token id 100 is outside the vocabulary (100)' }),
    );
    expect(() => fitToModel(completion(' '), [], limits)).toThrow(
      expect.objectContaining({ reason: 'empty_prompt', param: 'prompt' }),
    );
  });
});
