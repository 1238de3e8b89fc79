// Stage 2: one routing attempt and its settling at the router, each notification at most once.
import { describe, expect, it } from 'vitest';
import { validateRequest } from '@armature/openai';
import { ArmatureError, RequestContext } from '@armature/runtime';
import { FakeModelCatalog, FakeRouter, FakeWorker, TEST_MODEL, testModelCard } from '@armature/testing';
import type { RouterPort } from './ports.js';
import { prepare } from './prepare.js';
import { route } from './route.js';

const models = new FakeModelCatalog([testModelCard()]);
const decode = [new FakeWorker('decode-0'), new FakeWorker('decode-1')];
const prefill = new FakeWorker('prefill-0');

async function prepared() {
  const ctx = new RequestContext();
  const p = await prepare(models, ctx, validateRequest('completion', { model: TEST_MODEL, prompt: [1, 2, 3] }));
  return { ctx, p };
}

describe('route', () => {
  it('asks for the prompt under the attempt id, with the pin and the excluded workers', async () => {
    const router = new FakeRouter({ decode: decode.map((w) => w.target) }) satisfies RouterPort;
    const { ctx, p } = await prepared();
    const first = await route(router, ctx, p, { attempt: 0, excludedWorkerIds: [] });
    expect(first.routeId).toBe(p.requestId);
    expect(first.decode.instanceId).toBe('decode-0');
    expect(first.prefill).toBeUndefined();
    const excluded = ['decode-0'];
    const second = await route(router, ctx, p, { attempt: 2, pinnedWorkerId: undefined, excludedWorkerIds: excluded });
    excluded.push('decode-1'); // the router got a copy
    expect(second.routeId).toBe(`${p.requestId}#2`);
    expect(second.decode.instanceId).toBe('decode-1');
    expect(router.routeRequests()[1]).toEqual({
      requestId: `${p.requestId}#2`,
      model: TEST_MODEL,
      tokenIds: [1, 2, 3],
      pinnedWorkerId: undefined,
      excludedWorkerIds: ['decode-0'],
      failedWorkerIds: [],
    });
  });

  it('names the prefill worker when the router chose one', async () => {
    const router = new FakeRouter({ decode: [decode[0].target], prefill: prefill.target });
    const { ctx, p } = await prepared();
    const attempt = await route(router, ctx, p, { attempt: 0, excludedWorkerIds: [] });
    expect(attempt.prefill).toEqual(prefill.target);
  });

  it("passes the router's refusal on", async () => {
    const refusal = new ArmatureError('unavailable', 'worker_not_found', 'worker decode-9 is not available');
    const router = new FakeRouter({
      decode: [],
      decide: () => {
        throw refusal;
      },
    });
    const { ctx, p } = await prepared();
    await expect(route(router, ctx, p, { attempt: 0, excludedWorkerIds: [] })).rejects.toBe(refusal);
  });
});

describe('RouteAttempt', () => {
  it('sends MarkPrefillComplete at most once and Free exactly once, and nothing after Free', async () => {
    const router = new FakeRouter({ decode: [decode[0].target], prefill: prefill.target });
    const { ctx, p } = await prepared();
    const attempt = await route(router, ctx, p, { attempt: 0, excludedWorkerIds: [] });
    attempt.markPrefillLocal();
    attempt.markPrefillComplete();
    attempt.markPrefillComplete();
    attempt.free();
    attempt.free();
    attempt.markPrefillComplete();
    attempt.markPrefillLocal();
    expect(router.calls.map((c) => c.op)).toEqual(['route', 'markPrefillLocal', 'markPrefillComplete', 'free']);
    expect(router.active.size).toBe(0);
  });
});
