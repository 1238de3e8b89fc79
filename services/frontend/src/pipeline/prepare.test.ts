// Stage 1: the model lookup, the chat template and tokenizing, and the one check of the
// tokenized prompt against the model, with max_tokens resolved.
import { describe, expect, it } from 'vitest';
import { validateRequest } from '@armature/openai';
import { RequestContext } from '@armature/runtime';
import { FakeModelCatalog, TEST_MODEL, testModelCard } from '@armature/testing';
import { applyChatTemplate, loadTokenizer } from '@armature/tokenizer';
import { prepare } from './prepare.js';

const CONTEXT = 64;
const models = new FakeModelCatalog([testModelCard({ contextLength: CONTEXT })]);
const tokenizer = await loadTokenizer(testModelCard().tokenizer);

const chat = (extra: object = {}) =>
  validateRequest('chat', { model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], ...extra });
const completion = (prompt: unknown, extra: object = {}) =>
  validateRequest('completion', { model: TEST_MODEL, prompt, ...extra });

describe('prepare', () => {
  it('renders the chat template, tokenizes it, and takes the request context id', async () => {
    const ctx = new RequestContext();
    const p = await prepare(models, ctx, chat());
    expect(p.requestId).toBe(ctx.id);
    expect(p.promptIds).toEqual(applyChatTemplate('chatml', [{ role: 'user', content: 'hi' }], tokenizer));
    expect(p.tokenizer.id).toBe('gpt-tokenizer:o200k_base');
    expect(p.model.card.contextLength).toBe(CONTEXT);
  });

  it('tokenizes text prompts and takes token-id prompts as they are', async () => {
    const text = await prepare(models, new RequestContext(), completion('Hello there'));
    expect(text.promptIds).toEqual(tokenizer.encode('Hello there'));
    const ids = await prepare(models, new RequestContext(), completion([5, 6, 7]));
    expect(ids.promptIds).toEqual([5, 6, 7]);
  });

  it('resolves max_tokens: the room the context leaves, or the one asked for', async () => {
    const open = await prepare(models, new RequestContext(), completion([1, 2, 3, 4]));
    expect(open.maxTokens).toBe(CONTEXT - 4);
    const asked = await prepare(models, new RequestContext(), completion([1, 2, 3, 4], { max_tokens: 10 }));
    expect(asked.maxTokens).toBe(10);
    const completionTokens = await prepare(
      models,
      new RequestContext(),
      completion([1, 2, 3, 4], { max_tokens: 10, max_completion_tokens: 7 }),
    );
    expect(completionTokens.maxTokens).toBe(7);
  });

  it('refuses an unknown model with 404 model_not_found', async () => {
    await expect(
      prepare(models, new RequestContext(), validateRequest('completion', { model: 'nope', prompt: 'x' })),
    ).rejects.toMatchObject({ cls: 'not_found', reason: 'model_not_found', param: 'model' });
  });

  it('refuses token ids outside the vocabulary', async () => {
    await expect(prepare(models, new RequestContext(), completion([1, tokenizer.vocabSize + 5]))).rejects.toMatchObject(
      {
        reason: 'invalid_token_id',
        param: 'prompt',
        message: `token id ${tokenizer.vocabSize + 5} is outside the vocabulary (${tokenizer.vocabSize})`,
      },
    );
  });

  it('refuses a prompt that fills the context, naming prompt or messages', async () => {
    const long = Array.from({ length: CONTEXT }, (_, i) => i + 1);
    await expect(prepare(models, new RequestContext(), completion(long))).rejects.toMatchObject({
      reason: 'context_length_exceeded',
      param: 'prompt',
      message: `This model's maximum context length is ${CONTEXT} tokens, but the prompt has ${CONTEXT} tokens`,
    });
    await expect(
      prepare(models, new RequestContext(), chat({ messages: [{ role: 'user', content: 'word '.repeat(100) }] })),
    ).rejects.toMatchObject({ reason: 'context_length_exceeded', param: 'messages' });
  });

  it('refuses max_tokens beyond the room the prompt leaves', async () => {
    await expect(
      prepare(models, new RequestContext(), completion([1, 2, 3, 4], { max_tokens: CONTEXT })),
    ).rejects.toMatchObject({
      cls: 'invalid_argument',
      reason: 'context_length_exceeded',
      param: 'max_tokens',
      message: `This model's maximum context length is ${CONTEXT} tokens; the prompt has 4, so max_tokens can be at most ${CONTEXT - 4}, not ${CONTEXT}`,
    });
  });
});
