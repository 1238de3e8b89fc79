// The in-memory workers keep the WorkerPort's promises, as the gRPC Upstream does.
import { describe, expect, it } from 'vitest';
import { FinishReason } from '@armature/proto';
import { ArmatureError, asArmatureError } from '@armature/runtime';
import { FakeWorker, FakeWorkerPool } from './fake-worker.js';
import { workerPortConformance } from './worker-port-conformance.js';

workerPortConformance('FakeWorkerPool', async () => {
  const worker = new FakeWorker('decode-0', { tokens: Array.from({ length: 50 }, (_, i) => [i + 1]), prefill: 'hang' });
  const cancelled = (id: string): boolean =>
    worker.generateCalls.some((c) => c.request.requestId === id && c.cancelled);
  return {
    port: new FakeWorkerPool([worker]),
    worker: worker.grpcAddress,
    deadWorker: 'fake://nobody',
    sawCancel: cancelled,
    sawRelease: (pin) => worker.released.includes(pin),
  };
});

const signal = (): AbortSignal => new AbortController().signal;
const request = { requestId: 'r', model: 'm', tokenIds: [1, 2] };

describe('FakeWorker scripts', () => {
  it('finishes the last message and records the call', async () => {
    const w = new FakeWorker('w', { tokens: [[1], [2, 3]], cachedTokens: 4 });
    const got = [];
    for await (const msg of w.generate(request, signal())) got.push(msg);
    expect(got).toEqual([
      { tokenIds: [1], finishReason: FinishReason.FINISH_REASON_UNSPECIFIED, cachedTokens: 4, promptTokens: 2 },
      { tokenIds: [2, 3], finishReason: FinishReason.FINISH_REASON_STOP, cachedTokens: 0, promptTokens: 2 },
    ]);
    expect(w.generateCalls[0]).toMatchObject({ request, sent: 2, cancelled: false, outcome: 'finished' });
  });

  it('fails before the first message or mid-stream, with the scripted error', async () => {
    const broken = new ArmatureError('internal', 'grpc_internal', 'reset');
    const w = new FakeWorker('w', { tokens: [[1], [2], [3]], failAfter: 2, failWith: broken });
    const got: number[] = [];
    const err = await (async () => {
      for await (const msg of w.generate(request, signal())) got.push(...msg.tokenIds);
    })().catch(asArmatureError);
    expect(got).toEqual([1, 2]);
    expect(err).toBe(broken);
    expect(w.generateCalls[0].outcome).toBe('failed');
  });

  it('answers Prefill with a descriptor pinned under the request id, and records it', async () => {
    const w = new FakeWorker('p', { prefill: { firstToken: 8 } });
    const response = await w.prefill(request, signal(), Date.now() + 1_000);
    expect(response).toMatchObject({
      firstToken: 8,
      promptTokens: 2,
      descriptor: { pinId: 'r', prefillInstanceId: 'p' },
    });
    expect(w.prefillCalls[0].response).toBe(response);
  });
});
