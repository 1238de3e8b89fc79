// Shared by the whole-pipeline tests (run.test.ts, run-failures.test.ts): a model catalog
// with the test model, the words the fake workers stream, and a prepared chat request.
// Test support only; not exported.
import { validateRequest } from '@armature/openai';
import { RequestContext } from '@armature/runtime';
import { FakeModelCatalog, TEST_MODEL, testModelCard, type FakeRouter } from '@armature/testing';
import { loadTokenizer } from '@armature/tokenizer';
import type { ModelCatalog } from './ports.js';
import { prepare } from './prepare.js';
import type { PipelineEvent, PipelineOptions } from './types.js';

export const models = new FakeModelCatalog([testModelCard()]) satisfies ModelCatalog;
export const OPTIONS: PipelineOptions = { prefillTimeoutMs: 5_000 };
const tokenizer = await loadTokenizer(testModelCard().tokenizer);
export const WORDS = ['Hello', ' there', ',', ' world', '!'];
/** One message per word. */
export const WORD_TOKENS = WORDS.map((w) => tokenizer.encode(w));

/** A prepared chat request (`body` over a one-message default) and its context. */
export async function request(body: object = {}) {
  const ctx = new RequestContext();
  const json = { model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], ...body };
  return { ctx, p: await prepare(models, ctx, validateRequest('chat', json)) };
}

export const textOf = (events: PipelineEvent[]): string =>
  events.map((e) => (e.type === 'text' ? e.text : '')).join('');
export const ops = (router: FakeRouter): string[] => router.calls.map((c) => `${c.op} ${c.requestId}`);
