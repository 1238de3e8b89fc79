import { describe, expect, it } from 'vitest';
import { computeBlockHashes, computeSequenceHashes, limbsFromHashes, sequenceHashLimbs } from '@armature/kv';
import type { ModelCard } from '@armature/runtime';
import {
  ActiveLoadTracker,
  createPolicy,
  KvRouter,
  RouterQueue,
  type ActiveLoadOp,
  type CandidateWorker,
  type PublishedLoad,
} from './index.js';

const BLOCK = 4;
const card: ModelCard = {
  model: 'm',
  blockSize: BLOCK,
  totalKvBlocks: 1000,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 512,
  contextLength: 4096,
  tokenizer: 't',
  chatTemplate: 'chatml',
  eosTokenIds: [0],
  engine: 'mocker',
  kvEvents: 'armature',
};
const tokens = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);
const idle: PublishedLoad = {
  activeDecodeBlocks: 0,
  activePrefillTokens: 0,
  waitingRequests: 0,
  runningRequests: 0,
  kvUsage: 0,
};
const candidate = (id: string, published: PublishedLoad = idle, approximate = false): CandidateWorker => ({
  instanceId: id,
  grpcAddress: `127.0.0.1:${id.length}`,
  card,
  published,
  approximate,
});

/** Stores `prompt`'s full blocks on a worker through the index, as its KV events would. */
function store(router: KvRouter, worker: string, prompt: number[]): void {
  const hashes = computeSequenceHashes(computeBlockHashes(prompt, BLOCK));
  router.index.setHashScheme(worker, 'armature');
  router.index.applyEvent(worker, 0, {
    type: 'BlockStored',
    blockHashes: hashes,
    parentBlockHash: null,
    tokenIds: prompt.slice(0, hashes.length * BLOCK),
    blockSize: BLOCK,
    loraName: null,
    medium: 'device',
  });
}

describe('ActiveLoadTracker', () => {
  const limbs = (prompt: number[]): Uint32Array => sequenceHashLimbs(prompt, BLOCK);

  it('counts prefill until marked complete and blocks until freed', () => {
    const t = new ActiveLoadTracker();
    t.add('r1', 'w', { prefillTokens: 100, blockHashes: limbs(tokens(0, 28)), promptBlocks: 7 });
    t.add('r2', 'w', { prefillTokens: 50, blockHashes: limbs(tokens(1000, 16)), promptBlocks: 4 });
    expect(t.of('w')).toEqual({ requests: 2, prefillTokens: 150, decodeBlocks: 11 });
    t.prefillComplete('r1');
    expect(t.of('w')).toEqual({ requests: 2, prefillTokens: 50, decodeBlocks: 11 });
    expect(t.free('r1')).toBe('w');
    expect(t.free('r1')).toBeUndefined();
    expect(t.of('w')).toEqual({ requests: 1, prefillTokens: 50, decodeBlocks: 4 });
    expect(t.sweep(1000, Date.now() + 5000)).toBe(1);
    expect(t.of('w')).toEqual({ requests: 0, prefillTokens: 0, decodeBlocks: 0 });
  });

  it('counts a completed prefill again, once, when it moves back to the worker', () => {
    const t = new ActiveLoadTracker();
    t.add('r', 'w', { prefillTokens: 100, blockHashes: limbs(tokens(0, 28)), promptBlocks: 7 });
    t.prefillComplete('r'); // counted on a prefill worker instead
    expect(t.of('w').prefillTokens).toBe(0);
    expect(t.restorePrefill('r')).toBe(true);
    expect(t.restorePrefill('r')).toBe(true); // idempotent
    expect(t.of('w').prefillTokens).toBe(100);
    expect(t.restorePrefill('nobody')).toBe(false);
    t.prefillComplete('r');
    expect(t.free('r')).toBe('w');
    expect(t.of('w')).toEqual({ requests: 0, prefillTokens: 0, decodeBlocks: 0 });
  });

  it('counts a prefix shared by in-flight requests once, and partial last blocks per request', () => {
    const t = new ActiveLoadTracker();
    const shared = tokens(0, 16); // 4 full blocks
    const a = [...shared, ...tokens(100, 6)]; // + 1 full + a partial block
    const b = [...shared, ...tokens(200, 4)]; // + 1 full block
    t.add('a', 'w', { prefillTokens: a.length, blockHashes: limbs(a), promptBlocks: Math.ceil(a.length / BLOCK) });
    t.add('b', 'w', { prefillTokens: 4, blockHashes: limbs(b), promptBlocks: Math.ceil(b.length / BLOCK) });
    // 4 shared + 1 (a) + 1 (b) unique full blocks + a's partial block.
    expect(t.of('w').decodeBlocks).toBe(7);
    expect(t.activePrefixBlocks('w', limbs([...shared, ...tokens(300, 8)]))).toBe(4);
    expect(t.activePrefixBlocks('other', limbs(shared))).toBe(0);
    t.free('a');
    expect(t.of('w').decodeBlocks).toBe(5);
    t.free('b');
    expect(t.of('w')).toEqual({ requests: 0, prefillTokens: 0, decodeBlocks: 0 });
  });

  it('drops the entries of a departed replica', () => {
    const t = new ActiveLoadTracker();
    t.add('mine', 'w', { prefillTokens: 1, blockHashes: limbs(tokens(0, 4)) });
    t.add('theirs', 'w', { prefillTokens: 2, blockHashes: limbs(tokens(50, 8)) }, Date.now(), 'router-b');
    expect(t.dropOrigin('router-b')).toBe(1);
    expect(t.of('w')).toEqual({ requests: 1, prefillTokens: 1, decodeBlocks: 1 });
  });
});

describe('KvRouter', () => {
  it('sends a prompt to the worker holding its prefix and reports the overlap', () => {
    const router = new KvRouter({ policy: createPolicy('kv') });
    const prefix = tokens(0, 40); // 10 blocks
    store(router, 'b', prefix);
    const prompt = [...prefix, ...tokens(500, 10)];
    const out = router.route([candidate('a'), candidate('b'), candidate('c')], {
      requestId: 'r1',
      model: 'm',
      tokenIds: prompt,
    })!;
    expect(out.worker.instanceId).toBe('b');
    expect(out.overlapBlocks).toBe(10);
    expect(out.fullBlocks).toBe(12);
    expect(out.promptBlocks).toBe(13);
    expect(out.policy).toBe('kv');
    // Only the uncached tokens count as prefill load.
    expect(router.active.of('b')).toEqual({ requests: 1, prefillTokens: prompt.length - 40, decodeBlocks: 13 });
    for (const stage of ['hashing', 'findMatches', 'scoring', 'total'] as const) {
      expect(out.stages[stage]).toBeGreaterThanOrEqual(0);
    }
    expect(out.stages.total).toBeGreaterThanOrEqual(out.stages.findMatches);
  });

  it('spreads load when nothing is cached and balances against a cache hit when the holder is loaded', () => {
    const router = new KvRouter({ policy: createPolicy('kv') });
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const out = router.route([candidate('a'), candidate('b'), candidate('c')], {
        requestId: `r${i}`,
        model: 'm',
        tokenIds: tokens(10_000 * (i + 1), 64),
      })!;
      seen.add(out.worker.instanceId);
    }
    expect(seen.size).toBe(3);

    // A short cached prefix on a worker already loaded with 200 blocks loses to an idle worker.
    const busy = new KvRouter({ policy: createPolicy('kv') });
    store(busy, 'a', tokens(0, 8));
    const loaded = { ...idle, activeDecodeBlocks: 200 };
    const out = busy.route([candidate('a', loaded), candidate('b')], {
      requestId: 'x',
      model: 'm',
      tokenIds: tokens(0, 64),
    })!;
    expect(out.worker.instanceId).toBe('b');
  });

  it('sets busy workers aside, returns undefined when all are busy, and never refuses a pinned request', () => {
    const router = new KvRouter({ policy: createPolicy('kv'), busy: { kvUsage: 0.9, prefillTokens: 100 } });
    const full = { ...idle, kvUsage: 0.95 };
    const input = { requestId: 'r', model: 'm', tokenIds: tokens(0, 40) };
    expect(router.route([candidate('a', full), candidate('b')], input)!.worker.instanceId).toBe('b');
    router.free('r');
    expect(router.route([candidate('a', full), candidate('b', { ...idle, activePrefillTokens: 150 })], input)).toBe(
      undefined,
    );
    expect(router.active.size).toBe(0);
    const pinned = router.route([candidate('a', full)], { ...input, pinned: true })!;
    expect(pinned.worker.instanceId).toBe('a');
    expect(pinned.policy).toBe('pinned');
    // Tracked prefill counts toward the threshold too.
    const r2 = new KvRouter({ policy: createPolicy('round-robin'), busy: { prefillTokens: 100 } });
    r2.route([candidate('a')], { requestId: 'big', model: 'm', tokenIds: tokens(0, 120) });
    expect(r2.route([candidate('a')], { requestId: 'next', model: 'm', tokenIds: tokens(0, 4) })).toBeUndefined();
    r2.prefillComplete('big');
    expect(r2.route([candidate('a')], { requestId: 'next', model: 'm', tokenIds: tokens(0, 4) })).toBeDefined();
    expect(() => new KvRouter({ policy: createPolicy('kv'), busy: { kvUsage: 1.5 } })).toThrow(/kvUsage/);
  });

  it('predicts the cache of workers without KV events from its own decisions (approximate mode)', () => {
    let now = 0;
    const router = new KvRouter({ policy: createPolicy('kv'), now: () => now, approximate: { ttlMs: 1000 } });
    const ws = [candidate('a', idle, true), candidate('b', idle, true)];
    const prompt = tokens(0, 64);
    const first = router.route(ws, { requestId: 'r1', model: 'm', tokenIds: prompt })!;
    expect(first.overlapBlocks).toBe(0);
    router.free('r1');
    now = 500;
    const second = router.route(ws, { requestId: 'r2', model: 'm', tokenIds: [...prompt, 1, 2, 3, 4] })!;
    expect(second.worker.instanceId).toBe(first.worker.instanceId);
    expect(second.overlapBlocks).toBe(16);
    router.free('r2');
    now = 2_000; // past the TTL of both predictions
    const third = router.route(ws, { requestId: 'r3', model: 'm', tokenIds: prompt })!;
    expect(third.overlapBlocks).toBe(0);
  });

  it('shares active load with replicas: ops out, ops in, approximate predictions included', () => {
    const a = new KvRouter({ policy: createPolicy('kv'), replicaId: 'router-a' });
    const b = new KvRouter({ policy: createPolicy('kv'), replicaId: 'router-b' });
    const ops: ActiveLoadOp[] = [];
    a.onActiveLoad((op) => ops.push(op));
    const ws = [candidate('w1', idle, true), candidate('w2', idle, true)];
    const prompt = tokens(0, 32);
    const out = a.route(ws, { requestId: 'r', model: 'm', tokenIds: prompt })!;
    a.prefillComplete('r');
    a.prefillLocal('r'); // a remote prefill fell back: the prefill counts here again
    expect(a.active.of(out.worker.instanceId).prefillTokens).toBe(32);
    a.prefillComplete('r');
    for (const op of ops) b.applyRemote(op, 'router-a');
    expect(b.active.of(out.worker.instanceId)).toEqual(a.active.of(out.worker.instanceId));
    // b predicts the same cache, so it agrees on where the prompt's prefix lives.
    const onB = b.route(ws, { requestId: 'r2', model: 'm', tokenIds: prompt })!;
    expect(onB.worker.instanceId).toBe(out.worker.instanceId);
    expect(onB.overlapBlocks).toBe(8);
    a.free('r');
    b.applyRemote(ops.at(-1)!, 'router-a');
    expect(ops.map((o) => o.op)).toEqual(['add', 'prefill', 'local_prefill', 'prefill', 'free']);
    expect(b.active.of(out.worker.instanceId).requests).toBe(1); // only r2, b's own
  });

  it('forgets a removed worker, leaving the precise index to its feeder', () => {
    const router = new KvRouter({ policy: createPolicy('kv') });
    store(router, 'a', tokens(0, 16));
    router.route([candidate('a', idle, true)], { requestId: 'r', model: 'm', tokenIds: tokens(0, 32) });
    expect(router.predicted.blocksOf('a')).toBe(8);
    router.removeWorker('a');
    expect(router.predicted.blocksOf('a')).toBe(0);
    expect(router.active.of('a').requests).toBe(0);
    expect(router.index.blocksOf('a')).toBe(4);
    router.index.removeWorker('a');
    expect(
      router.index.findMatches(limbsFromHashes(computeSequenceHashes(computeBlockHashes(tokens(0, 16), BLOCK))))
        .workers,
    ).toEqual([]);
  });
});

describe('RouterQueue', () => {
  const item = (promptTokens: number, enqueuedAt = 0) => ({ promptTokens, enqueuedAt });

  it('serves first come first served, or shortest prompt first with ties in arrival order', () => {
    const fcfs = new RouterQueue<ReturnType<typeof item>>({ order: 'fcfs' });
    const sjf = new RouterQueue<ReturnType<typeof item>>({ order: 'shortest-prompt' });
    const items = [item(30), item(10), item(20), item(10)];
    for (const i of items) {
      fcfs.push(i);
      sjf.push(i);
    }
    const order = (q: RouterQueue<ReturnType<typeof item>>): number[] => {
      const out: number[] = [];
      q.drain((i) => (out.push(items.indexOf(i)), true));
      return out;
    };
    expect(order(fcfs)).toEqual([0, 1, 2, 3]);
    expect(order(sjf)).toEqual([1, 3, 2, 0]);
  });

  it('refuses past capacity, stops at the first item that cannot be placed, and expires old items', () => {
    const q = new RouterQueue<ReturnType<typeof item>>({ capacity: 2, timeoutMs: 100 });
    expect(q.push(item(1, 0))).toBe(true);
    expect(q.push(item(2, 50))).toBe(true);
    expect(q.push(item(3, 60))).toBe(false);
    expect(q.drain(() => false)).toBe(0);
    expect(q.length).toBe(2);
    expect(q.expire(120).map((i) => i.promptTokens)).toEqual([1]);
    expect(q.length).toBe(1);
    expect(() => new RouterQueue({ order: 'lifo' as never })).toThrow(/order/);
    expect(() => new RouterQueue({ capacity: -1 })).toThrow(/capacity/);
  });
});
