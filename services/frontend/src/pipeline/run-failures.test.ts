// The whole pipeline after prepare on the in-memory router and workers, when workers
// fail, the client cancels, or the output hits a limit.
import { describe, expect, it } from 'vitest';
import { FinishReason } from '@armature/proto';
import { collect, fakeFleet, FakeWorker } from '@armature/testing';
import { MAX_REROUTES } from './decode.js';
import { run } from './run.js';
import { OPTIONS, ops, request, textOf, WORD_TOKENS } from './run-fixtures.js';

describe('run: worker failures', () => {
  it('re-routes a decode worker that fails before its first token, excluding it, on a new attempt id', async () => {
    const broken = new FakeWorker('decode-0', { failAfter: 0 });
    const healthy = new FakeWorker('decode-1', { tokens: WORD_TOKENS });
    const { router, workers } = fakeFleet([broken, healthy]);
    const { ctx, p } = await request();
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(events[0]).toMatchObject({ type: 'start', worker: 'decode-1' });
    expect(textOf(events)).toBe('Hello there, world!');
    const retry = `${p.requestId}#1`;
    expect(router.routeRequests().map((r) => [r.requestId, r.excludedWorkerIds])).toEqual([
      [p.requestId, []],
      [retry, ['decode-0']],
    ]);
    expect(ops(router)).toEqual([
      `route ${p.requestId}`,
      `free ${p.requestId}`,
      `route ${retry}`,
      `markPrefillComplete ${retry}`,
      `free ${retry}`,
    ]);
    expect(workers.forgotten).toEqual([broken.grpcAddress]);
  });

  it('re-routes after a remote prefill without re-prefilling, and sends MarkPrefillComplete once per attempt', async () => {
    const prefill = new FakeWorker('prefill-0');
    const broken = new FakeWorker('decode-0', { failAfter: 0 });
    const healthy = new FakeWorker('decode-1');
    const { router, workers } = fakeFleet([broken, healthy], prefill);
    const { ctx, p } = await request();
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(events.filter((e) => e.type === 'start')).toEqual([expect.objectContaining({ worker: 'decode-0' })]);
    expect(prefill.prefillCalls).toHaveLength(1);
    // The pin may be gone with the failed worker's pull: the next one prefills, after the first token.
    expect(healthy.generateCalls[0].request.remotePrefill).toEqual({ firstToken: 1, descriptor: undefined });
    expect(router.idsOf('markPrefillComplete')).toEqual([p.requestId, `${p.requestId}#1`]);
    expect(router.idsOf('free')).toEqual([p.requestId, `${p.requestId}#1`]);
  });

  it(`gives up with worker_unavailable after ${MAX_REROUTES} re-routes`, async () => {
    const all = [0, 1, 2, 3].map((i) => new FakeWorker(`decode-${i}`, { failAfter: 0 }));
    const { router, workers } = fakeFleet(all);
    const { ctx, p } = await request();
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(events).toEqual([]);
    expect(error).toMatchObject({ cls: 'unavailable', reason: 'worker_unavailable' });
    expect(error!.message).toContain(`decode-${MAX_REROUTES}`);
    const ids = [p.requestId, `${p.requestId}#1`, `${p.requestId}#2`];
    expect(router.idsOf('route')).toEqual(ids);
    expect(router.idsOf('free')).toEqual(ids);
    expect(all[3].generateCalls).toHaveLength(0);
  });

  it('does not re-route a request pinned to the worker that failed', async () => {
    const broken = new FakeWorker('decode-0', { failAfter: 0 });
    const { router, workers } = fakeFleet([broken, new FakeWorker('decode-1')]);
    const { ctx, p } = await request();
    const { error } = await collect(run({ router, workers }, OPTIONS, ctx, p, 'decode-0'));
    expect(error).toMatchObject({ reason: 'worker_unavailable' });
    expect(router.routeRequests()).toEqual([expect.objectContaining({ pinnedWorkerId: 'decode-0' })]);
    expect(router.idsOf('free')).toEqual([p.requestId]);
  });
});

describe('run: cancellation', () => {
  it('reaches the worker call mid-stream, and Free is still sent exactly once', async () => {
    const decode = new FakeWorker('decode-0', { tokens: WORD_TOKENS, hangAfter: 1 });
    const { router, workers } = fakeFleet([decode]);
    const { ctx, p } = await request();
    const it = run({ router, workers }, OPTIONS, ctx, p)[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ type: 'start' });
    expect((await it.next()).value).toMatchObject({ type: 'text', text: 'Hello' });
    const pending = it.next();
    ctx.cancel();
    await expect(pending).rejects.toMatchObject({ cls: 'cancelled' });
    expect(decode.generateCalls[0].cancelled).toBe(true);
    expect(decode.generateCalls[0].signal.aborted).toBe(true);
    expect(router.idsOf('free')).toEqual([p.requestId]);
  });

  it('cancels a waiting prefill without falling back to a local one', async () => {
    const prefill = new FakeWorker('prefill-0', { prefill: 'hang' });
    const decode = new FakeWorker('decode-0');
    const { router, workers } = fakeFleet([decode], prefill);
    const { ctx, p } = await request();
    setTimeout(() => ctx.cancel(), 20);
    const { error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toMatchObject({ cls: 'cancelled' });
    expect(decode.generateCalls).toHaveLength(0);
    expect(ops(router)).toEqual([`route ${p.requestId}`, `free ${p.requestId}`]);
  });
});

describe('run: output limits', () => {
  it('ends at a stop string, cancels the worker, and finishes with stop', async () => {
    const decode = new FakeWorker('decode-0', { tokens: WORD_TOKENS });
    const { router, workers } = fakeFleet([decode]);
    const { ctx, p } = await request({ stop: ['e, wo'] }); // spans three messages
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('Hello ther');
    const through = WORD_TOKENS.slice(0, 4).flat().length; // up to the message that completed the stop string
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'stop', completionTokens: through });
    expect(decode.generateCalls[0].cancelled).toBe(true);
    expect(decode.generateCalls[0].outcome).toBe('closed');
    expect(router.idsOf('free')).toEqual([p.requestId]);
  });

  it('passes the resolved max_tokens to the worker and its length finish to the client', async () => {
    const decode = new FakeWorker('decode-0', {
      tokens: [[1], [2], [3]],
      finishReason: FinishReason.FINISH_REASON_LENGTH,
    });
    const { router, workers } = fakeFleet([decode]);
    const { ctx, p } = await request({ max_tokens: 3 });
    const { items: events } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(decode.generateCalls[0].request.stop?.maxTokens).toBe(3);
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'length', completionTokens: 3 });
  });
});
