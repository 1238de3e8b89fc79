// Stage 1: the model lookup, the chat template and tokenizing, and the one check of the
// tokenized prompt against the model, with max_tokens resolved; a prompt too long to fit is
// refused before it is tokenized, and a large one is tokenized on a pool thread.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { validateRequest } from '@armature/openai';
import { RequestContext } from '@armature/runtime';
import { FakeModelCatalog, TEST_MODEL, testModelCard } from '@armature/testing';
import { applyChatTemplate, loadTokenizer, TokenizePool } from '@armature/tokenizer';
import { OFF_THREAD_PROMPT_BYTES, prepare } from './prepare.js';

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

describe('prepare: large prompts', () => {
  const pool = new TokenizePool({ threads: 1 });
  afterAll(() => pool.close());
  const spiedPool = () => ({
    encode: vi.spyOn(pool, 'encode'),
    applyChatTemplate: vi.spyOn(pool, 'applyChatTemplate'),
  });
  const LARGE = 'The cat sat on the mat. 🙂 '.repeat(2000);
  const roomy = new FakeModelCatalog([testModelCard({ contextLength: 1 << 20 })]);

  it('refuses a prompt whose bytes alone need more tokens than the context, without tokenizing it', async () => {
    const encode = vi.spyOn(tokenizer, 'encode');
    const spies = spiedPool();
    try {
      const fewest = Math.ceil((1 << 20) / tokenizer.maxTokenBytes);
      await expect(prepare(models, new RequestContext(), completion('a'.repeat(1 << 20)), pool)).rejects.toMatchObject({
        cls: 'invalid_argument',
        reason: 'context_length_exceeded',
        param: 'prompt',
        message: `This model's maximum context length is ${CONTEXT} tokens, but the prompt has at least ${fewest} tokens`,
      });
      const messages = [{ role: 'user', content: '🦙'.repeat(1 << 18) }];
      await expect(prepare(models, new RequestContext(), chat({ messages }), pool)).rejects.toMatchObject({
        cls: 'invalid_argument',
        reason: 'context_length_exceeded',
        param: 'messages',
      });
      expect(encode).not.toHaveBeenCalled();
      expect(spies.encode).not.toHaveBeenCalled();
      expect(spies.applyChatTemplate).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('refuses at the bound exactly: the fewest tokens reaching the context', async () => {
    const bytes = (CONTEXT - 1) * tokenizer.maxTokenBytes;
    const atBound = completion('a'.repeat(bytes + 1));
    await expect(prepare(models, new RequestContext(), atBound, pool)).rejects.toMatchObject({
      message: `This model's maximum context length is ${CONTEXT} tokens, but the prompt has at least ${CONTEXT} tokens`,
    });
    // One byte fewer could still fit by this bound: it is tokenized, and fitToModel refuses it with its count.
    await expect(prepare(models, new RequestContext(), completion('a'.repeat(bytes)), pool)).rejects.toMatchObject({
      reason: 'context_length_exceeded',
      message: expect.stringMatching(/but the prompt has \d+ tokens$/),
    });
  });

  it('tokenizes a prompt past OFF_THREAD_PROMPT_BYTES on the pool, with the tokens of the main thread', async () => {
    expect(Buffer.byteLength(LARGE)).toBeGreaterThan(OFF_THREAD_PROMPT_BYTES);
    const spies = spiedPool();
    try {
      const text = await prepare(roomy, new RequestContext(), completion(LARGE), pool);
      expect(text.promptIds).toEqual(tokenizer.encode(LARGE));
      const messages = [{ role: 'user', content: LARGE }];
      const chatted = await prepare(roomy, new RequestContext(), chat({ messages }), pool);
      expect(chatted.promptIds).toEqual(applyChatTemplate('chatml', messages, tokenizer));
      expect(spies.encode).toHaveBeenCalledTimes(1);
      expect(spies.applyChatTemplate).toHaveBeenCalledTimes(1);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('tokenizes a small prompt on the event loop', async () => {
    const spies = spiedPool();
    try {
      await prepare(roomy, new RequestContext(), completion('Hello there'), pool);
      await prepare(roomy, new RequestContext(), chat(), pool);
      expect(spies.encode).not.toHaveBeenCalled();
      expect(spies.applyChatTemplate).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("stops tokenizing on the pool when the request's context is cancelled", async () => {
    const ctx = new RequestContext();
    const pending = prepare(roomy, ctx, completion('word '.repeat(1 << 18)), pool);
    setTimeout(() => ctx.cancel(), 10);
    await expect(pending).rejects.toMatchObject({ cls: 'cancelled' });
  });
});
