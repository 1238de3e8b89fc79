// The one conversion of a prepared request into the workers' GenerateRequest.
import { describe, expect, it } from 'vitest';
import { validateRequest } from '@armature/openai';
import { RequestContext } from '@armature/runtime';
import { FakeModelCatalog, TEST_MODEL, testModelCard } from '@armature/testing';
import { toGenerateRequest, toSamplingOptions } from './generate-request.js';
import { prepare } from './prepare.js';

const models = new FakeModelCatalog([testModelCard()]);

describe('toGenerateRequest', () => {
  it('carries the sampling settings, the resolved max_tokens and ignore_eos under the attempt id', async () => {
    const body = {
      model: TEST_MODEL,
      prompt: [4, 5],
      temperature: 0,
      top_p: 0.5,
      top_k: 8,
      seed: 3,
      ignore_eos: true,
    };
    const p = await prepare(models, new RequestContext(), validateRequest('completion', body));
    expect(toGenerateRequest(p, 'req#1')).toEqual({
      requestId: 'req#1',
      model: TEST_MODEL,
      tokenIds: [4, 5],
      sampling: { temperature: 0, topP: 0.5, topK: 8, seed: 3 },
      stop: { maxTokens: 4096 - 2, ignoreEos: true, stopTokenIds: [] },
    });
  });

  it('adds the remote prefill only when there is one', async () => {
    const p = await prepare(
      models,
      new RequestContext(),
      validateRequest('completion', { model: TEST_MODEL, prompt: [4] }),
    );
    expect(toGenerateRequest(p, 'a')).not.toHaveProperty('remotePrefill');
    expect(toGenerateRequest(p, 'a', { firstToken: 9, descriptor: undefined }).remotePrefill).toEqual({
      firstToken: 9,
      descriptor: undefined,
    });
  });

  it('leaves unset sampling fields unset (the engine defaults them)', () => {
    expect(toSamplingOptions({})).toEqual({
      temperature: undefined,
      topP: undefined,
      topK: undefined,
      seed: undefined,
    });
  });
});
