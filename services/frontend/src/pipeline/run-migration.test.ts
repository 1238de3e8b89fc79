// Mid-stream migration on the in-memory router and workers: a stream that breaks or stalls
// after tokens went out continues on another worker, which gets the prompt plus every
// token generated so far and the budget left; the client sees one stream.
import { describe, expect, it } from 'vitest';
import { FinishReason } from '@armature/proto';
import { ArmatureError } from '@armature/runtime';
import { collect, fakeFleet, FakeWorker } from '@armature/testing';
import { run } from './run.js';
import { OPTIONS, ops, request, textOf, WORD_TOKENS } from './run-fixtures.js';
import type { PipelineOptions, RetryKind } from './types.js';

const retries = (): { options: PipelineOptions; seen: string[] } => {
  const seen: string[] = [];
  return {
    seen,
    options: {
      ...OPTIONS,
      onRetry: (kind: RetryKind, reason: string, worker: string) => seen.push(`${kind} ${reason} ${worker}`),
      onRetriesExhausted: (kind: RetryKind, reason: string) => seen.push(`exhausted ${kind} ${reason}`),
    },
  };
};

describe('run: mid-stream migration', () => {
  it('continues a broken stream on another worker: prompt + tokens so far, budget left, one stream', async () => {
    const breaking = new FakeWorker('decode-0', { tokens: WORD_TOKENS, failAfter: 2 });
    const spare = new FakeWorker('decode-1', { tokens: WORD_TOKENS.slice(2) });
    const { router, workers } = fakeFleet([breaking, spare]);
    const { ctx, p } = await request({ max_tokens: 50 });
    const { options, seen } = retries();
    const { items: events, error } = await collect(run({ router, workers }, options, ctx, p));
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('Hello there, world!');
    expect(events.filter((e) => e.type === 'start')).toEqual([expect.objectContaining({ worker: 'decode-0' })]);
    const total = WORD_TOKENS.flat().length;
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'stop', completionTokens: total });
    const sent = [...WORD_TOKENS[0], ...WORD_TOKENS[1]];
    const resumed = spare.generateCalls[0].request;
    expect(resumed.tokenIds).toEqual([...p.promptIds, ...sent]);
    expect(resumed.stop?.maxTokens).toBe(50 - sent.length);
    const retry = `${p.requestId}#1`;
    expect(router.routeRequests()[1]).toMatchObject({
      requestId: retry,
      tokenIds: [...p.promptIds, ...sent],
      excludedWorkerIds: ['decode-0'],
      failedWorkerIds: ['decode-0'],
    });
    expect(ops(router)).toEqual([
      `route ${p.requestId}`,
      `markPrefillComplete ${p.requestId}`,
      `free ${p.requestId}`,
      `route ${retry}`,
      `markPrefillComplete ${retry}`,
      `free ${retry}`,
    ]);
    expect(seen).toEqual(['migrate grpc_unavailable decode-0']);
    expect(workers.forgotten).toEqual([breaking.grpcAddress]);
  });

  it('migrates a stalled stream (no message within stallTimeoutMs) and cancels the stalled call', async () => {
    const stalling = new FakeWorker('decode-0', { tokens: WORD_TOKENS, hangAfter: 1 });
    const spare = new FakeWorker('decode-1', { tokens: WORD_TOKENS.slice(1) });
    const { router, workers } = fakeFleet([stalling, spare]);
    const { ctx, p } = await request();
    const { options, seen } = retries();
    const { items: events, error } = await collect(
      run({ router, workers }, { ...options, stallTimeoutMs: 50 }, ctx, p),
    );
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('Hello there, world!');
    expect(seen).toEqual(['migrate worker_stalled decode-0']);
    expect(stalling.generateCalls[0].cancelled).toBe(true);
    expect(spare.generateCalls[0].request.tokenIds).toEqual([...p.promptIds, ...WORD_TOKENS[0]]);
  });

  it('does not count a slow client as a stalled worker: the deadline runs only while waiting for the worker', async () => {
    const worker = new FakeWorker('decode-0', { tokens: WORD_TOKENS });
    const { router, workers } = fakeFleet([worker, new FakeWorker('decode-1')]);
    const { ctx, p } = await request();
    const events = [];
    for await (const ev of run({ router, workers }, { ...OPTIONS, stallTimeoutMs: 30 }, ctx, p)) {
      events.push(ev);
      await new Promise((r) => setTimeout(r, 80)); // the client reads slowly
    }
    expect(textOf(events)).toBe('Hello there, world!');
    expect(router.idsOf('route')).toEqual([p.requestId]);
    expect(worker.generateCalls[0]!.cancelled).toBe(false);
  });

  it('waits as long as it takes for the first answer: the stall deadline starts after it', async () => {
    const slow = new FakeWorker('decode-0', { tokens: WORD_TOKENS, firstDelayMs: 300 });
    const { router, workers } = fakeFleet([slow]);
    const { ctx, p } = await request();
    const { items, error } = await collect(run({ router, workers }, { ...OPTIONS, stallTimeoutMs: 200 }, ctx, p));
    expect(error).toBeUndefined();
    expect(textOf(items)).toBe('Hello there, world!');
  });

  it('gives up after migrationLimit migrations, with what was sent kept and one error', async () => {
    const all = [0, 1, 2, 3, 4].map((i) => new FakeWorker(`decode-${i}`, { tokens: WORD_TOKENS, failAfter: 1 }));
    const { router, workers } = fakeFleet(all);
    const { ctx, p } = await request();
    const { options, seen } = retries();
    const { items: events, error } = await collect(run({ router, workers }, { ...options, migrationLimit: 2 }, ctx, p));
    expect(error).toMatchObject({ cls: 'unavailable', reason: 'worker_unavailable' });
    expect(error!.message).toContain('decode-2');
    expect(events.filter((e) => e.type === 'start')).toHaveLength(1);
    expect(textOf(events)).toBe('HelloHelloHello'); // each scripted worker restarts its words
    expect(seen).toEqual([
      'migrate grpc_unavailable decode-0',
      'migrate grpc_unavailable decode-1',
      'exhausted migrate grpc_unavailable',
    ]);
    expect(all[3].generateCalls).toHaveLength(0);
    expect(router.idsOf('free')).toEqual([p.requestId, `${p.requestId}#1`, `${p.requestId}#2`]);
  });

  it('does not migrate when turned off, nor past migrationMaxSeqLen', async () => {
    for (const limits of [{ migrationLimit: 0 }, { migrationMaxSeqLen: 1 }]) {
      const breaking = new FakeWorker('decode-0', { tokens: WORD_TOKENS, failAfter: 2 });
      const spare = new FakeWorker('decode-1');
      const { router, workers } = fakeFleet([breaking, spare]);
      const { ctx, p } = await request();
      const { error } = await collect(run({ router, workers }, { ...OPTIONS, ...limits }, ctx, p));
      expect(error).toMatchObject({ reason: 'worker_unavailable' });
      expect(spare.generateCalls).toHaveLength(0);
    }
  });

  it('ends with length, without another worker, when the break came after the last token of the budget', async () => {
    const breaking = new FakeWorker('decode-0', { tokens: [[11], [12], [13]], failAfter: 2 });
    const spare = new FakeWorker('decode-1');
    const { router, workers } = fakeFleet([breaking, spare]);
    const { ctx, p } = await request({ max_tokens: 2 });
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'length', completionTokens: 2 });
    expect(spare.generateCalls).toHaveLength(0);
    expect(router.idsOf('route')).toEqual([p.requestId]);
  });

  it('keeps a stop string that spans the break', async () => {
    const breaking = new FakeWorker('decode-0', { tokens: WORD_TOKENS, failAfter: 2 });
    const spare = new FakeWorker('decode-1', { tokens: WORD_TOKENS.slice(2) });
    const { router, workers } = fakeFleet([breaking, spare]);
    const { ctx, p } = await request({ stop: ['there,'] });
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('Hello ');
    expect(events.at(-1)).toMatchObject({ type: 'end', finishReason: 'stop' });
  });

  it('migrates a disaggregated request: the continuation is prefilled where it decodes, the pin released', async () => {
    const prefill = new FakeWorker('prefill-0');
    const breaking = new FakeWorker('decode-0', { tokens: [[2], [3], [4]], failAfter: 1 });
    const spare = new FakeWorker('decode-1', { tokens: [[3], [4]] });
    const { router, workers } = fakeFleet([breaking, spare], prefill);
    const { ctx, p } = await request();
    const { items: events, error } = await collect(run({ router, workers }, OPTIONS, ctx, p));
    expect(error).toBeUndefined();
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'stop', completionTokens: 4 });
    const resumed = spare.generateCalls[0].request;
    expect(resumed.tokenIds).toEqual([...p.promptIds, 1, 2]); // the prefill's first token, then decode-0's
    expect(resumed.remotePrefill).toBeUndefined();
    expect(prefill.prefillCalls).toHaveLength(1);
    expect(prefill.released).toEqual([prefill.prefillCalls[0].response!.descriptor!.pinId]);
    expect(router.idsOf('markPrefillLocal')).toEqual([`${p.requestId}#1`]);
  });

  it('does not migrate a worker’s own error, nor a request pinned to it', async () => {
    const engineError = new ArmatureError('internal', 'worker_error', 'engine failed');
    const erring = new FakeWorker('decode-0', { tokens: WORD_TOKENS, failAfter: 2, failWith: engineError });
    const { router, workers } = fakeFleet([erring, new FakeWorker('decode-1')]);
    const { ctx, p } = await request();
    expect((await collect(run({ router, workers }, OPTIONS, ctx, p))).error).toMatchObject({ reason: 'worker_error' });

    const breaking = new FakeWorker('decode-0', { tokens: WORD_TOKENS, failAfter: 2 });
    const fleet = fakeFleet([breaking, new FakeWorker('decode-1')]);
    const second = await request();
    const { error } = await collect(run(fleet, OPTIONS, second.ctx, second.p, 'decode-0'));
    expect(error).toMatchObject({ reason: 'worker_unavailable' });
  });

  it('a worker that ends its stream cancelled (drained) migrates too', async () => {
    const draining = new FakeWorker('decode-0', {
      tokens: WORD_TOKENS.slice(0, 2),
      finishReason: FinishReason.FINISH_REASON_CANCELLED,
    });
    const spare = new FakeWorker('decode-1', { tokens: WORD_TOKENS.slice(2) });
    const { router, workers } = fakeFleet([draining, spare]);
    const { ctx, p } = await request();
    const { options, seen } = retries();
    const { items: events, error } = await collect(run({ router, workers }, options, ctx, p));
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('Hello there, world!');
    expect(seen).toEqual(['migrate worker_cancelled decode-0']);
  });

  it('re-routes a call the worker never takes (a stopped process) after acceptTimeoutMs', async () => {
    const stopped = new FakeWorker('decode-0', { unresponsive: true });
    const spare = new FakeWorker('decode-1', { tokens: WORD_TOKENS });
    const { router, workers } = fakeFleet([stopped, spare]);
    const { ctx, p } = await request();
    const { options, seen } = retries();
    const { items: events, error } = await collect(
      run({ router, workers }, { ...options, acceptTimeoutMs: 50 }, ctx, p),
    );
    expect(error).toBeUndefined();
    expect(textOf(events)).toBe('Hello there, world!');
    expect(seen).toEqual(['reroute worker_unresponsive decode-0']);
    expect(stopped.generateCalls[0].cancelled).toBe(true);
    expect(router.routeRequests()[1]).toMatchObject({ failedWorkerIds: ['decode-0'] });
  });
});
