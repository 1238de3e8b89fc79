// Stage 3: the remote prefill, its fallback to a local one, and its first token.
import { describe, expect, it } from 'vitest';
import { validateRequest } from '@armature/openai';
import { FinishReason } from '@armature/proto';
import { ArmatureError, RequestContext } from '@armature/runtime';
import { FakeModelCatalog, FakeRouter, FakeWorker, FakeWorkerPool, TEST_MODEL, testModelCard } from '@armature/testing';
import { OutputText } from './output-text.js';
import type { WorkerPort } from './ports.js';
import { firstTokenEvents, prefillRemotely, remotePrefillOf } from './prefill.js';
import { prepare } from './prepare.js';
import { route } from './route.js';

const models = new FakeModelCatalog([testModelCard()]);

async function setup(prefillWorker: FakeWorker, body: object = {}) {
  const decode = new FakeWorker('decode-0');
  const router = new FakeRouter({ decode: [decode.target], prefill: prefillWorker.target });
  const workers = new FakeWorkerPool([decode, prefillWorker]) satisfies WorkerPort;
  const ctx = new RequestContext();
  const request = validateRequest('completion', { model: TEST_MODEL, prompt: 'Hello', ...body });
  const p = await prepare(models, ctx, request);
  const attempt = await route(router, ctx, p, { attempt: 0, excludedWorkerIds: [] });
  return { router, workers, ctx, p, attempt };
}

describe('prefillRemotely', () => {
  it('runs the prompt on the prefill worker within the timeout and marks the prefill complete', async () => {
    const worker = new FakeWorker('prefill-0', { prefill: { firstToken: 42 } });
    const { router, workers, ctx, p, attempt } = await setup(worker, { seed: 3, max_tokens: 9 });
    const before = Date.now();
    const prefilled = await prefillRemotely(workers, ctx, p, attempt, { prefillTimeoutMs: 1_234 });
    expect(prefilled).toMatchObject({ worker: 'prefill-0', address: worker.grpcAddress, pullable: true });
    expect(prefilled!.response.firstToken).toBe(42);
    const call = worker.prefillCalls[0];
    expect(call.request).toMatchObject({ requestId: p.requestId, tokenIds: p.promptIds, sampling: { seed: 3 } });
    expect(call.request.stop).toEqual({ maxTokens: 9, ignoreEos: false, stopTokenIds: [] });
    expect(call.deadline - before).toBeGreaterThanOrEqual(1_234);
    expect(call.deadline - Date.now()).toBeLessThanOrEqual(1_234);
    expect(router.idsOf('markPrefillComplete')).toEqual([p.requestId]);
  });

  it('answers undefined after MarkPrefillLocal when the worker is unavailable, and forgets it', async () => {
    const down = new ArmatureError('unavailable', 'grpc_unavailable', 'No connection established');
    const worker = new FakeWorker('prefill-0', { prefill: down });
    const { router, workers, ctx, p, attempt } = await setup(worker);
    expect(await prefillRemotely(workers, ctx, p, attempt, { prefillTimeoutMs: 1_000 })).toBeUndefined();
    expect(router.idsOf('markPrefillLocal')).toEqual([p.requestId]);
    expect(router.idsOf('markPrefillComplete')).toEqual([]);
    expect(workers.forgotten).toEqual([worker.grpcAddress]);
  });

  it('falls back on any other failure too, keeping the worker', async () => {
    const worker = new FakeWorker('prefill-0', { prefill: new ArmatureError('internal', 'engine_error', 'boom') });
    const { router, workers, ctx, p, attempt } = await setup(worker);
    expect(await prefillRemotely(workers, ctx, p, attempt, { prefillTimeoutMs: 1_000 })).toBeUndefined();
    expect(router.idsOf('markPrefillLocal')).toEqual([p.requestId]);
    expect(workers.forgotten).toEqual([]);
  });

  it('falls back when the prefill worker does not answer before the timeout', async () => {
    const worker = new FakeWorker('prefill-0', { prefill: 'hang' });
    const { router, workers, ctx, p, attempt } = await setup(worker);
    const started = Date.now();
    expect(await prefillRemotely(workers, ctx, p, attempt, { prefillTimeoutMs: 40 })).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(35);
    expect(router.idsOf('markPrefillLocal')).toEqual([p.requestId]);
  });

  it('throws an invalid request and the client cancellation, with no fallback', async () => {
    const invalid = new ArmatureError('invalid_argument', 'invalid_request', 'bad');
    const refusing = await setup(new FakeWorker('prefill-0', { prefill: invalid }));
    await expect(
      prefillRemotely(refusing.workers, refusing.ctx, refusing.p, refusing.attempt, { prefillTimeoutMs: 1_000 }),
    ).rejects.toBe(invalid);
    const hanging = await setup(new FakeWorker('prefill-0', { prefill: 'hang' }));
    setTimeout(() => hanging.ctx.cancel(), 10);
    await expect(
      prefillRemotely(hanging.workers, hanging.ctx, hanging.p, hanging.attempt, { prefillTimeoutMs: 5_000 }),
    ).rejects.toMatchObject({ cls: 'cancelled', reason: 'cancelled' });
    for (const { router } of [refusing, hanging]) expect(router.calls.map((c) => c.op)).toEqual(['route']);
  });
});

describe('firstTokenEvents', () => {
  it('yields the start naming both workers and the first token, and says when it ends the request', async () => {
    const worker = new FakeWorker('prefill-0', { cachedTokens: 2, prefill: { firstToken: 13225 } });
    const { workers, ctx, p, attempt } = await setup(worker);
    const prefilled = (await prefillRemotely(workers, ctx, p, attempt, { prefillTimeoutMs: 1_000 }))!;
    const out = new OutputText(p);
    const gen = firstTokenEvents(p, attempt, prefilled, out);
    const events = [gen.next().value, gen.next().value];
    expect(events).toEqual([
      {
        type: 'start',
        worker: 'decode-0',
        prefillWorker: 'prefill-0',
        cachedTokens: 2,
        promptTokens: p.promptIds.length,
      },
      { type: 'text', text: 'Hello', tokens: 1 },
    ]);
    expect(gen.next()).toEqual({ done: true, value: undefined });
    prefilled.response.finishReason = FinishReason.FINISH_REASON_LENGTH;
    expect([...firstTokenEvents(p, attempt, prefilled, new OutputText(p))]).toHaveLength(2);
    const ends = firstTokenEvents(p, attempt, prefilled, new OutputText(p));
    ends.next();
    ends.next();
    expect(ends.next()).toEqual({ done: true, value: 'length' });
  });

  it('continues from the descriptor only while the pin may still be pulled', async () => {
    const { workers, ctx, p, attempt } = await setup(new FakeWorker('prefill-0', { prefill: { firstToken: 7 } }));
    const prefilled = (await prefillRemotely(workers, ctx, p, attempt, { prefillTimeoutMs: 1_000 }))!;
    expect(remotePrefillOf(prefilled)).toEqual({ firstToken: 7, descriptor: prefilled.response.descriptor });
    prefilled.pullable = false;
    expect(remotePrefillOf(prefilled)).toEqual({ firstToken: 7, descriptor: undefined });
  });
});
