// Stage 4: the decode stream from one worker, and what its failures mean.
import { describe, expect, it } from 'vitest';
import { validateRequest } from '@armature/openai';
import { FinishReason } from '@armature/proto';
import { ArmatureError, asArmatureError, RequestContext } from '@armature/runtime';
import { FakeModelCatalog, FakeRouter, FakeWorker, FakeWorkerPool, TEST_MODEL, testModelCard } from '@armature/testing';
import { decodeStream, MAX_REROUTES, onDecodeFailure, type DecodeFailure } from './decode.js';
import { OutputText } from './output-text.js';
import { prepare } from './prepare.js';
import { route } from './route.js';
import type { PipelineEvent } from './types.js';

const models = new FakeModelCatalog([testModelCard()]);

async function decodeWith(worker: FakeWorker) {
  const router = new FakeRouter({ decode: [worker.target] });
  const workers = new FakeWorkerPool([worker]);
  const ctx = new RequestContext();
  const request = validateRequest('completion', { model: TEST_MODEL, prompt: [1, 2, 3] });
  const p = await prepare(models, ctx, request);
  const attempt = await route(router, ctx, p, { attempt: 0, excludedWorkerIds: [] });
  const events: PipelineEvent[] = [];
  let error: ArmatureError | undefined;
  try {
    for await (const ev of decodeStream(workers, ctx, p, attempt, new OutputText(p), undefined)) events.push(ev);
  } catch (err) {
    error = asArmatureError(err);
  }
  return { router, events, error, p };
}

describe('decodeStream', () => {
  it('starts on the first answer, marking the prefill complete once, and ends with the finish reason', async () => {
    const worker = new FakeWorker('decode-0', { tokens: [[], [9906], [1917]], cachedTokens: 2 });
    const { router, events, error, p } = await decodeWith(worker);
    expect(error).toBeUndefined();
    expect(events[0]).toEqual({ type: 'start', worker: 'decode-0', cachedTokens: 2, promptTokens: 3 });
    expect(events.filter((e) => e.type === 'text')).toHaveLength(2); // an empty message adds no text event
    expect(events.at(-1)).toEqual({ type: 'end', finishReason: 'stop', completionTokens: 2 });
    expect(router.idsOf('markPrefillComplete')).toEqual([p.requestId]);
    expect(worker.generateCalls[0].request.remotePrefill).toBeUndefined();
  });

  it.each([
    [FinishReason.FINISH_REASON_CANCELLED, 'unavailable', 'worker_cancelled'],
    [FinishReason.FINISH_REASON_ERROR, 'internal', 'worker_error'],
    [FinishReason.FINISH_REASON_UNSPECIFIED, 'unavailable', 'stream_ended'],
  ])('turns the last message finishing with %s into %s/%s', async (finishReason, cls, reason) => {
    const { events, error } = await decodeWith(new FakeWorker('decode-0', { tokens: [[1], [2]], finishReason }));
    expect(events.map((e) => e.type)).toEqual(['start', 'text', 'text']);
    expect(error).toMatchObject({ cls, reason });
  });

  it("passes the worker's failure on as it is", async () => {
    const { events, error } = await decodeWith(new FakeWorker('decode-0', { failAfter: 0 }));
    expect(events).toEqual([]);
    expect(error).toMatchObject({ cls: 'unavailable', reason: 'grpc_unavailable' });
  });
});

describe('onDecodeFailure', () => {
  const down = new ArmatureError('unavailable', 'grpc_unavailable', 'No connection established');
  const fresh: DecodeFailure = {
    sentAnything: false,
    pinned: false,
    reroutes: 0,
    migrations: 0,
    migrationLimit: 3,
    sequenceTokens: 100,
    maxSequenceTokens: 0,
    cancelled: false,
  };
  const midStream = { ...fresh, sentAnything: true };

  it('re-routes an unavailable worker that sent nothing, up to MAX_REROUTES times', () => {
    expect(onDecodeFailure(down, 'decode-0', fresh)).toBe('reroute');
    expect(onDecodeFailure(down, 'decode-0', { ...fresh, reroutes: MAX_REROUTES - 1 })).toBe('reroute');
    const exhausted: string[] = [];
    expect(
      onDecodeFailure(down, 'decode-0', { ...fresh, reroutes: MAX_REROUTES }, (kind) => exhausted.push(kind)),
    ).toMatchObject({
      cls: 'unavailable',
      reason: 'worker_unavailable',
      message: 'the worker serving this request (decode-0) is unavailable',
    });
    expect(exhausted).toEqual(['reroute']);
  });

  it('migrates a stream that broke after tokens were sent, within the limit and the sequence length', () => {
    expect(onDecodeFailure(down, 'decode-0', midStream)).toBe('migrate');
    const stalled = new ArmatureError('unavailable', 'worker_stalled', 'silent');
    expect(onDecodeFailure(stalled, 'decode-0', { ...midStream, migrations: 2 })).toBe('migrate');
    const exhausted: string[] = [];
    const onExhausted = (kind: string): void => void exhausted.push(kind);
    expect(onDecodeFailure(down, 'decode-0', { ...midStream, migrations: 3 }, onExhausted)).toMatchObject({
      reason: 'worker_unavailable',
    });
    expect(onDecodeFailure(down, 'decode-0', { ...midStream, maxSequenceTokens: 99 }, onExhausted)).toMatchObject({
      reason: 'worker_unavailable',
    });
    expect(onDecodeFailure(down, 'decode-0', { ...midStream, migrationLimit: 0 }, onExhausted)).toMatchObject({
      reason: 'worker_unavailable',
    });
    expect(exhausted).toEqual(['migrate', 'migrate', 'migrate']);
  });

  it('fails the request when pinned or cancelled', () => {
    for (const state of [
      { ...fresh, pinned: true },
      { ...midStream, pinned: true },
      { ...fresh, cancelled: true },
    ]) {
      expect(onDecodeFailure(down, 'decode-0', state)).toMatchObject({ reason: 'worker_unavailable' });
    }
  });

  it('retries a gRPC internal failure (a reset stream), and passes the worker’s own errors on', () => {
    const internal = new ArmatureError('internal', 'grpc_internal', 'stream reset');
    expect(onDecodeFailure(internal, 'decode-1', fresh)).toBe('reroute');
    expect(onDecodeFailure(internal, 'decode-1', midStream)).toBe('migrate');
    expect(onDecodeFailure(internal, 'decode-1', { ...midStream, pinned: true })).toMatchObject({
      cls: 'unavailable',
      reason: 'worker_unavailable',
    });
    const engine = new ArmatureError('internal', 'worker_error', 'the worker failed while generating');
    expect(onDecodeFailure(engine, 'decode-1', midStream)).toBe(engine);
    const invalid = new ArmatureError('invalid_argument', 'invalid_request', 'bad');
    expect(onDecodeFailure(invalid, 'decode-1', midStream)).toBe(invalid);
  });

  it('calls a message gRPC could not encode an internal error, neither retried nor blamed on the worker', () => {
    const codec = new ArmatureError('internal', 'grpc_internal', 'Request message serialization failure: bad uint32');
    expect(onDecodeFailure(codec, 'decode-1', fresh)).toMatchObject({ cls: 'internal', reason: 'encode_failed' });
  });
});
