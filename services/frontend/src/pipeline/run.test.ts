// The whole pipeline after prepare on the in-memory router and workers, when all goes
// well: what the client gets, and what the router and the workers were told.
import { describe, expect, it } from 'vitest';
import { FinishReason } from '@armature/proto';
import { ArmatureError } from '@armature/runtime';
import { collect, fakeFleet, FakeWorker, TEST_MODEL } from '@armature/testing';
import { run } from './run.js';
import { OPTIONS, ops, request, textOf, WORD_TOKENS } from './run-fixtures.js';

describe('run: aggregated', () => {
  it('streams start, text and end from the decode worker, and settles the route once', async () => {
    const decode = new FakeWorker('decode-0', { tokens: WORD_TOKENS, cachedTokens: 3 });
    const { router, workers } = fakeFleet([decode]);
    const { ctx, p } = await request({ temperature: 0.5, top_p: 0.9, top_k: 40, seed: 7 });
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(events[0]).toEqual({ type: 'start', worker: 'decode-0', cachedTokens: 3, promptTokens: p.promptIds.length });
    expect(textOf(events)).toBe('Hello there, world!');
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'stop', completionTokens: WORD_TOKENS.flat().length });
    expect(ops(router)).toEqual([`route ${p.requestId}`, `markPrefillComplete ${p.requestId}`, `free ${p.requestId}`]);
    const sent = decode.generateCalls[0].request;
    expect(sent).toEqual({
      requestId: p.requestId,
      model: TEST_MODEL,
      tokenIds: p.promptIds,
      sampling: { temperature: 0.5, topP: 0.9, topK: 40, seed: 7 },
      stop: { maxTokens: 4096 - p.promptIds.length, ignoreEos: false, stopTokenIds: [] },
    });
    expect(router.active.size).toBe(0);
  });
});

describe('run: remote prefill', () => {
  it('sends the first token from the prefill worker at once, then decodes from its descriptor', async () => {
    const [first, ...rest] = WORD_TOKENS;
    const prefill = new FakeWorker('prefill-0', { prefill: { firstToken: first[0], cachedTokens: 5 } });
    const decode = new FakeWorker('decode-0', { tokens: rest });
    const { router, workers } = fakeFleet([decode], prefill);
    const { ctx, p } = await request();
    const it = run({ router, workers }, OPTIONS, ctx, p)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({
      type: 'start',
      worker: 'decode-0',
      prefillWorker: 'prefill-0',
      cachedTokens: 5,
      promptTokens: p.promptIds.length,
    });
    expect((await it.next()).value).toEqual({ type: 'text', text: 'Hello', tokens: 1 });
    expect(decode.generateCalls).toHaveLength(0); // the first token did not wait for the decode worker
    const { items: events, error } = await collect({ [Symbol.asyncIterator]: () => it });
    expect(error).toBeUndefined();
    expect(events.filter((e) => e.type === 'start')).toHaveLength(0); // one start event in all
    expect('Hello' + textOf(events)).toBe('Hello there, world!');
    expect(events.at(-1)).toMatchObject({ type: 'end', completionTokens: WORD_TOKENS.flat().length });
    expect(prefill.prefillCalls[0].request.requestId).toBe(p.requestId);
    const descriptor = prefill.prefillCalls[0].response!.descriptor;
    expect(decode.generateCalls[0].request.remotePrefill).toEqual({ firstToken: first[0], descriptor });
    expect(router.idsOf('markPrefillLocal')).toEqual([]);
    expect(router.idsOf('free')).toEqual([p.requestId]);
    expect(prefill.released).toEqual([]); // the decode worker pulled it
  });

  it('sends MarkPrefillComplete exactly once when both the prefill and the decode worker end the prefill', async () => {
    const prefill = new FakeWorker('prefill-0');
    const decode = new FakeWorker('decode-0');
    const { router, workers } = fakeFleet([decode], prefill);
    const { ctx, p } = await request();
    const { error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(decode.generateCalls[0].sent).toBeGreaterThan(0); // the decode worker did answer
    expect(router.idsOf('markPrefillComplete')).toEqual([p.requestId]);
    expect(ops(router)).toEqual([`route ${p.requestId}`, `markPrefillComplete ${p.requestId}`, `free ${p.requestId}`]);
  });

  it('falls back to a local prefill with MarkPrefillLocal when the prefill worker fails', async () => {
    const prefill = new FakeWorker('prefill-0', {
      prefill: new ArmatureError('unavailable', 'grpc_unavailable', 'No connection established'),
    });
    const decode = new FakeWorker('decode-0', { tokens: WORD_TOKENS });
    const { router, workers } = fakeFleet([decode], prefill);
    const { ctx, p } = await request();
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(events[0]).toEqual({ type: 'start', worker: 'decode-0', cachedTokens: 0, promptTokens: p.promptIds.length });
    expect(textOf(events)).toBe('Hello there, world!');
    expect(decode.generateCalls[0].request.remotePrefill).toBeUndefined();
    expect(workers.forgotten).toEqual([prefill.grpcAddress]);
    expect(ops(router)).toEqual([
      `route ${p.requestId}`,
      `markPrefillLocal ${p.requestId}`,
      `markPrefillComplete ${p.requestId}`,
      `free ${p.requestId}`,
    ]);
  });

  it('falls back to a local prefill once the prefill timeout passes', async () => {
    const prefill = new FakeWorker('prefill-0', { prefill: 'hang' });
    const decode = new FakeWorker('decode-0');
    const { router, workers } = fakeFleet([decode], prefill);
    const { ctx, p } = await request();
    const sent = Date.now();
    const { items: events, error } = await collect(run({ router, workers }, { prefillTimeoutMs: 60 }, ctx, p));
    expect(error).toBeUndefined();
    expect(Date.now() - sent).toBeGreaterThanOrEqual(55);
    expect(prefill.prefillCalls[0].deadline - sent).toBeGreaterThanOrEqual(60);
    expect(prefill.prefillCalls[0].deadline - sent).toBeLessThan(1_000);
    expect(events[0]).not.toHaveProperty('prefillWorker');
    expect(router.idsOf('markPrefillLocal')).toEqual([p.requestId]);
    expect(workers.forgotten).toEqual([]); // a slow worker is not a dead one
    expect(router.idsOf('free')).toEqual([p.requestId]);
  });

  it('fails the request when the prefill worker refuses it as invalid', async () => {
    const invalid = new ArmatureError('invalid_argument', 'invalid_request', 'bad request', { param: 'prompt' });
    const prefill = new FakeWorker('prefill-0', { prefill: invalid });
    const decode = new FakeWorker('decode-0');
    const { router, workers } = fakeFleet([decode], prefill);
    const { ctx, p } = await request();
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBe(invalid);
    expect(events).toEqual([]);
    expect(decode.generateCalls).toHaveLength(0);
    expect(ops(router)).toEqual([`route ${p.requestId}`, `free ${p.requestId}`]);
  });

  it('ends at the prefill worker when the first token finishes the request, releasing the pin', async () => {
    const prefill = new FakeWorker('prefill-0', { prefill: { finishReason: FinishReason.FINISH_REASON_LENGTH } });
    const decode = new FakeWorker('decode-0');
    const { router, workers } = fakeFleet([decode], prefill);
    const { ctx, p } = await request({ max_tokens: 1 });
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(['start', 'text', 'end']);
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'length', completionTokens: 1 });
    expect(decode.generateCalls).toHaveLength(0);
    expect(prefill.released).toEqual([p.requestId]);
    expect(router.idsOf('free')).toEqual([p.requestId]);
  });
});
