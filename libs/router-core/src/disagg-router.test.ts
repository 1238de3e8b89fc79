import { describe, expect, it } from 'vitest';
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import type { ModelCard } from '@armature/runtime';
import { createPolicy, DisaggRouter, KvRouter, type CandidateWorker, type PublishedLoad } from './index.js';

const BLOCK = 16;
const card: ModelCard = {
  model: 'm',
  blockSize: BLOCK,
  totalKvBlocks: 10_000,
  maxNumSeqs: 64,
  maxNumBatchedTokens: 8192,
  contextLength: 65_536,
  tokenizer: 't',
  chatTemplate: 'chatml',
  eosTokenIds: [0],
  engine: 'mocker',
  kvEvents: 'armature',
};
const idle: PublishedLoad = {
  activeDecodeBlocks: 0,
  activePrefillTokens: 0,
  waitingRequests: 0,
  runningRequests: 0,
  kvUsage: 0,
};
const worker = (id: string, published: PublishedLoad = idle): CandidateWorker => ({
  instanceId: id,
  grpcAddress: `127.0.0.1:${id.length}`,
  card,
  published,
  approximate: false,
});
const tokens = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);

function cache(router: KvRouter, id: string, prompt: number[]): void {
  const hashes = computeSequenceHashes(computeBlockHashes(prompt, BLOCK));
  router.index.setHashScheme(id, 'armature');
  router.index.applyEvent(id, 0, {
    type: 'BlockStored',
    blockHashes: hashes,
    parentBlockHash: null,
    tokenIds: prompt.slice(0, hashes.length * BLOCK),
    blockSize: BLOCK,
    loraName: null,
    medium: 'device',
  });
}

function setup(options = {}): DisaggRouter {
  return new DisaggRouter(
    new KvRouter({ policy: createPolicy('kv') }),
    new KvRouter({ policy: createPolicy('least-loaded') }),
    options,
  );
}

describe('DisaggRouter', () => {
  const prefillPool = [worker('p0'), worker('p1')];
  const decodePool = [worker('d0'), worker('d1')];

  it('serves aggregated when no prefill worker is up', () => {
    const r = setup().route([], decodePool, { requestId: 'a', model: 'm', tokenIds: tokens(0, 8000) })!;
    expect(r.mode).toBe('aggregated');
    expect(r.reason).toBe('no_prefill_workers');
    expect(r.prefill).toBeUndefined();
  });

  it('prefills short uncached remainders locally, at the configured threshold', () => {
    const router = setup({ minRemotePrefillTokens: 1000 });
    const short = router.route(prefillPool, decodePool, { requestId: 's', model: 'm', tokenIds: tokens(0, 999) })!;
    expect([short.mode, short.reason]).toEqual(['local-prefill', 'short_prompt']);
    expect(router.decode.active.of(short.decode.worker.instanceId).prefillTokens).toBe(999);
    const long = router.route(prefillPool, decodePool, { requestId: 'l', model: 'm', tokenIds: tokens(5000, 1000) })!;
    expect([long.mode, long.reason]).toEqual(['remote-prefill', 'remote']);
    // The long prompt's prefill load is on the prefill worker, not the decode worker.
    expect(router.prefill.active.of(long.prefill!.worker.instanceId).prefillTokens).toBe(1000);
    expect(router.decode.active.of(long.decode.worker.instanceId).prefillTokens).toBe(0);
    expect(long.blocksToPull).toBe(Math.ceil(1000 / BLOCK));
  });

  it('counts what the decode worker caches: a long prompt mostly cached there stays local, and only missing blocks are pulled', () => {
    const router = setup({ minRemotePrefillTokens: 2048 });
    const prefix = tokens(0, 8000);
    cache(router.decode, 'd1', prefix);
    const mostlyCached = router.route(prefillPool, [worker('d1')], {
      requestId: 'c',
      model: 'm',
      tokenIds: [...prefix, ...tokens(90_000, 500)],
    })!;
    expect(mostlyCached.mode).toBe('local-prefill');
    expect(mostlyCached.uncachedTokens).toBe(8500 - 500 * BLOCK);

    const partly = router.route(prefillPool, [worker('d1')], {
      requestId: 'p',
      model: 'm',
      tokenIds: [...prefix.slice(0, 1600), ...tokens(50_000, 4000)],
    })!;
    expect(partly.mode).toBe('remote-prefill');
    expect(partly.decode.overlapBlocks).toBe(100);
    expect(partly.blocksToPull).toBe(Math.ceil(5600 / BLOCK) - 100);
  });

  it('sends the prompt to the prefill worker that caches it', () => {
    const router = setup();
    const prompt = tokens(0, 6000);
    cache(router.prefill, 'p1', prompt);
    const r = router.route(prefillPool, decodePool, { requestId: 'k', model: 'm', tokenIds: prompt })!;
    expect(r.prefill!.worker.instanceId).toBe('p1');
    expect(r.prefill!.overlapBlocks).toBe(375);
  });

  it('prefills locally when the prefill pool is saturated or busy', () => {
    const router = setup({ maxPrefillQueueTokens: 10_000 });
    const loaded = { ...idle, activePrefillTokens: 20_000 };
    const sat = router.route([worker('p0', loaded), worker('p1', loaded)], decodePool, {
      requestId: 'x',
      model: 'm',
      tokenIds: tokens(0, 5000),
    })!;
    expect([sat.mode, sat.reason]).toEqual(['local-prefill', 'prefill_saturated']);
    expect(router.prefill.active.size).toBe(0);

    const busy = new DisaggRouter(
      new KvRouter({ policy: createPolicy('kv'), busy: { kvUsage: 0.5 } }),
      new KvRouter({ policy: createPolicy('least-loaded') }),
    );
    const full = { ...idle, kvUsage: 0.9 };
    const r = busy.route([worker('p0', full)], decodePool, { requestId: 'y', model: 'm', tokenIds: tokens(0, 5000) })!;
    expect([r.mode, r.reason]).toEqual(['local-prefill', 'prefill_saturated']);
  });

  it('returns undefined when every decode worker is busy, and validates its options', () => {
    const router = new DisaggRouter(
      new KvRouter({ policy: createPolicy('kv') }),
      new KvRouter({ policy: createPolicy('least-loaded'), busy: { kvUsage: 0.5 } }),
    );
    const full = { ...idle, kvUsage: 0.9 };
    expect(
      router.route(prefillPool, [worker('d0', full)], { requestId: 'z', model: 'm', tokenIds: tokens(0, 5000) }),
    ).toBe(undefined);
    expect(router.prefill.active.size).toBe(0);
    expect(() => setup({ minRemotePrefillTokens: -1 })).toThrow(/minRemotePrefillTokens/);
    expect(() => setup({ maxPrefillQueueTokens: 0 })).toThrow(/maxPrefillQueueTokens/);
  });
});
