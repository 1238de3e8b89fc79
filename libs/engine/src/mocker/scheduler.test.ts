import {
  computeBlockHashes,
  computeSequenceHashes,
  type BlockStored,
  type KvEvent,
  type KvEventBatch,
} from '@armature/kv';
import { ArmatureError } from '@armature/runtime';
import { describe, expect, it } from 'vitest';
import type { EngineLoad, EngineOutput, EngineRequest } from '../types.js';
import { compileMockerOptions, type MockerOptions } from './options.js';
import { MockerCore, type MockerStep } from './scheduler.js';

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);

function request(
  requestId: string,
  tokenIds: number[],
  maxTokens: number,
  extra: Partial<EngineRequest> = {},
): EngineRequest {
  return { requestId, tokenIds, sampling: {}, stop: { maxTokens, ignoreEos: true, stopTokenIds: [] }, ...extra };
}

function core(options: MockerOptions = {}, sink?: { batches: KvEventBatch[]; loads: EngineLoad[] }): MockerCore {
  return new MockerCore(compileMockerOptions({ blockSize: 4, totalKvBlocks: 64, ...options }), {
    onKvEvents: (batch) => sink?.batches.push(batch),
    onLoad: (load) => sink?.loads.push(load),
  });
}

/** Steps until idle; returns every request's outputs and every step. */
function drain(
  mocker: MockerCore,
  startMs = 0,
): { outputs: Map<string, EngineOutput[]>; steps: MockerStep[]; endMs: number } {
  const outputs = new Map<string, EngineOutput[]>();
  const steps: MockerStep[] = [];
  let now = startMs;
  for (let i = 0; mocker.hasWork(); i++) {
    if (i > 100_000) throw new Error('no progress');
    const step = mocker.step(now);
    mocker.checkInvariants();
    steps.push(step);
    now += step.durationMs;
    for (const { requestId, output } of step.outputs) {
      const list = outputs.get(requestId) ?? [];
      list.push(output);
      outputs.set(requestId, list);
    }
  }
  return { outputs, steps, endMs: now };
}

const tokensOf = (outputs: EngineOutput[] | undefined): number[] => (outputs ?? []).flatMap((o) => o.tokenIds);
const finishOf = (outputs: EngineOutput[] | undefined) => outputs?.[outputs.length - 1]?.finishReason;
const storedHashes = (events: KvEvent[]): bigint[] =>
  events.filter((e): e is BlockStored => e.type === 'BlockStored').flatMap((e) => e.blockHashes);
const allEvents = (batches: KvEventBatch[]): KvEvent[] => batches.flatMap((b) => b.events);

describe('MockerCore', () => {
  it('prefills, then decodes one token per pass until max_tokens', () => {
    const mocker = core();
    mocker.add(request('a', range(1, 10), 5), 0);
    const { outputs, steps } = drain(mocker);
    const out = outputs.get('a')!;
    expect(out).toHaveLength(5);
    expect(out.every((o) => o.tokenIds.length === 1)).toBe(true);
    expect(out[0]).toMatchObject({ cachedTokens: 0, promptTokens: 10 });
    expect(out[1]!.cachedTokens).toBeUndefined();
    expect(finishOf(out)).toBe('length');
    expect(out.slice(0, -1).every((o) => o.finishReason === undefined)).toBe(true);
    expect(steps.map((s) => [s.prefillTokens, s.decodeSequences])).toEqual([
      [10, 0],
      [0, 1],
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    expect(mocker.blocks.usedBlocks).toBe(0);
  });

  it('times each pass with the perf model of its batch', () => {
    const mocker = core({ totalKvBlocks: 100 });
    const model = mocker.config.perfModel;
    mocker.add(request('a', range(1, 40), 10), 0);
    const first = mocker.step(0);
    expect(first.durationMs).toBeCloseTo(model.prefillMs(40), 9);
    const second = mocker.step(first.durationMs);
    // 40 prompt tokens + 1 sampled token need 11 blocks of 4
    expect(second.durationMs).toBeCloseTo(model.decodeMs(11 / 100), 9);
    mocker.add(request('b', range(500, 20), 3), 0);
    const mixed = mocker.step(0);
    expect(mixed.prefillTokens).toBe(20);
    expect(mixed.decodeSequences).toBe(1);
    expect(mixed.durationMs).toBeCloseTo(model.prefillMs(20) + model.decodeMs(mocker.blocks.usedBlocks / 100), 9);
  });

  it('reports a repeated prompt prefix as cachedTokens and skips its prefill', () => {
    const mocker = core();
    const prompt = range(1, 18); // 4 full blocks of 4 + 2 tokens
    mocker.add(request('a', prompt, 2), 0);
    drain(mocker);
    mocker.add(request('b', prompt, 2), 0);
    const { outputs, steps } = drain(mocker);
    expect(outputs.get('b')![0]).toMatchObject({ cachedTokens: 16, promptTokens: 18 });
    expect(steps[0]!.prefillTokens).toBe(2);
    // A fully cached, block-aligned prompt still computes its last block.
    const aligned = range(1, 16);
    mocker.add(request('c', aligned, 1), 0);
    const c = drain(mocker);
    expect(c.outputs.get('c')![0]!.cachedTokens).toBe(12);
    expect(c.steps[0]!.prefillTokens).toBe(4);
  });

  it('does not hit the cache with prefix caching off', () => {
    const mocker = core({ enablePrefixCaching: false });
    mocker.add(request('a', range(1, 18), 2), 0);
    drain(mocker);
    mocker.add(request('b', range(1, 18), 2), 0);
    expect(drain(mocker).outputs.get('b')![0]!.cachedTokens).toBe(0);
  });

  it('publishes stored blocks whose hashes are the prompt and output sequence hashes', () => {
    const sink = { batches: [] as KvEventBatch[], loads: [] as EngineLoad[] };
    const mocker = core({ dpRank: 3 }, sink);
    const prompt = range(1000, 14);
    mocker.add(request('a', prompt, 9), 0);
    const { outputs } = drain(mocker, 5000);
    const stored = storedHashes(allEvents(sink.batches));
    const all = [...prompt, ...tokensOf(outputs.get('a'))];
    // The last sampled token is never computed, so blocks up to the 22 computed tokens exist.
    const expected = computeSequenceHashes(computeBlockHashes(all.slice(0, all.length - 1), 4));
    expect(stored).toEqual(expected);
    expect(stored.slice(0, 3)).toEqual(computeSequenceHashes(computeBlockHashes(prompt, 4)));
    const first = allEvents(sink.batches)[0] as BlockStored;
    expect(first.parentBlockHash).toBeNull();
    expect(first.tokenIds).toEqual(prompt.slice(0, 12));
    expect(sink.batches[0]!.dpRank).toBe(3);
    expect(sink.batches[0]!.ts).toBe(5);
    expect(sink.batches.every((b) => b.events.length > 0)).toBe(true);
  });

  it('publishes removals on eviction and keeps kvSnapshot equal to stored minus removed', () => {
    const sink = { batches: [] as KvEventBatch[], loads: [] as EngineLoad[] };
    const mocker = core({ totalKvBlocks: 8 }, sink);
    const a = range(1, 16);
    mocker.add(request('a', a, 1), 0);
    drain(mocker);
    mocker.add(request('b', range(100, 28), 1), 0);
    drain(mocker);
    const events = allEvents(sink.batches);
    const removed = events.flatMap((e) => (e.type === 'BlockRemoved' ? e.blockHashes : []));
    expect(removed.length).toBeGreaterThan(0);
    const aHashes = computeSequenceHashes(computeBlockHashes(a, 4));
    expect(removed.every((h) => aHashes.includes(h))).toBe(true);
    const live = new Set<bigint>();
    for (const event of events) {
      if (event.type === 'BlockStored') event.blockHashes.forEach((h) => live.add(h));
      if (event.type === 'BlockRemoved') event.blockHashes.forEach((h) => live.delete(h));
    }
    expect(new Set(storedHashes(mocker.kvSnapshot()))).toEqual(live);
  });

  it('generates the same tokens for the same seed, however it is batched', () => {
    const prompt = range(7, 30);
    const alone = core();
    alone.add(request('x', prompt, 40, { sampling: { seed: 42 } }), 0);
    const solo = tokensOf(drain(alone).outputs.get('x'));

    const busy = core({ maxNumBatchedTokens: 5, maxNumSeqs: 3 });
    busy.add(request('y', range(900, 50), 40), 0);
    busy.add(request('x', prompt, 40, { sampling: { seed: 42 } }), 0);
    busy.add(request('z', prompt, 40, { sampling: { seed: 43 } }), 0);
    const { outputs } = drain(busy);
    expect(tokensOf(outputs.get('x'))).toEqual(solo);
    expect(tokensOf(outputs.get('z'))).not.toEqual(solo);
    expect(solo).toHaveLength(40);
    expect(solo.every((t) => t >= 256 && t < 100000)).toBe(true);

    // Without a seed the prompt seeds it.
    const m = core();
    m.add(request('p', prompt, 10), 0);
    m.add(request('q', prompt, 10), 0);
    m.add(request('r', range(8, 30), 10), 0);
    const unseeded = drain(m).outputs;
    expect(tokensOf(unseeded.get('p'))).toEqual(tokensOf(unseeded.get('q')));
    expect(tokensOf(unseeded.get('p'))).not.toEqual(tokensOf(unseeded.get('r')));
  });

  it('stops on EOS unless ignore_eos, and on stop token ids', () => {
    const always = core({ eosProbability: 1 });
    always.add(request('ignore', range(1, 5), 12), 0);
    always.add(request('eos', range(1, 5), 12, { stop: { maxTokens: 12, ignoreEos: false, stopTokenIds: [] } }), 0);
    const { outputs } = drain(always);
    expect(tokensOf(outputs.get('ignore'))).toHaveLength(12);
    expect(tokensOf(outputs.get('ignore'))).not.toContain(199999);
    expect(finishOf(outputs.get('ignore'))).toBe('length');
    expect(outputs.get('eos')).toEqual([
      { tokenIds: [199999], cachedTokens: 0, promptTokens: 5, finishReason: 'stop' },
    ]);

    const narrow = core({ vocabRange: [500, 502], eosProbability: 0 });
    narrow.add(request('s', range(1, 5), 100, { stop: { maxTokens: 100, ignoreEos: false, stopTokenIds: [501] } }), 0);
    const s = drain(narrow).outputs.get('s')!;
    expect(finishOf(s)).toBe('stop');
    expect(tokensOf(s).at(-1)).toBe(501);
    expect(
      tokensOf(s)
        .slice(0, -1)
        .every((t) => t === 500),
    ).toBe(true);
  });

  it('emits EOS at roughly the configured rate', () => {
    const mocker = core({ eosProbability: 0.1, totalKvBlocks: 4096, maxNumSeqs: 256 });
    for (let i = 0; i < 400; i++) {
      mocker.add(
        request(`r${i}`, [i + 1, 2, 3], 200, { stop: { maxTokens: 200, ignoreEos: false, stopTokenIds: [] } }),
        0,
      );
    }
    const lengths = [...drain(mocker).outputs.values()].map((o) => tokensOf(o).length);
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    expect(mean).toBeGreaterThan(8);
    expect(mean).toBeLessThan(12);
  });

  it('chunks prefill under max_num_batched_tokens, decode tokens first', () => {
    const mocker = core({ maxNumBatchedTokens: 8 });
    mocker.add(request('d', range(1, 3), 20), 0);
    mocker.step(0); // d prefilled, now decoding
    mocker.add(request('p', range(100, 30), 2), 0);
    const { steps, outputs } = drain(mocker);
    for (const step of steps) expect(step.prefillTokens + step.decodeSequences).toBeLessThanOrEqual(8);
    // d decodes every pass; p gets the 7 tokens left: 30 = 7 + 7 + 7 + 7 + 2
    expect(steps.slice(0, 5).map((s) => s.prefillTokens)).toEqual([7, 7, 7, 7, 2]);
    expect(steps.slice(0, 5).every((s) => s.decodeSequences === 1)).toBe(true);
    expect(outputs.get('p')![0]!.promptTokens).toBe(30);
    expect(tokensOf(outputs.get('d'))).toHaveLength(19);
  });

  it('runs at most max_num_seqs at once and admits FCFS', () => {
    const mocker = core({ maxNumSeqs: 2 });
    for (const id of ['a', 'b', 'c', 'd'])
      mocker.add(
        request(
          id,
          range(1, 4).map((t) => t + id.charCodeAt(0) * 10),
          3,
        ),
        0,
      );
    const firstOutputStep = new Map<string, number>();
    let step = 0;
    while (mocker.hasWork()) {
      const result = mocker.step(0);
      expect(mocker.load().runningRequests).toBeLessThanOrEqual(2);
      for (const { requestId } of result.outputs)
        if (!firstOutputStep.has(requestId)) firstOutputStep.set(requestId, step);
      step++;
    }
    expect(firstOutputStep.get('a')).toBe(0);
    expect(firstOutputStep.get('b')).toBe(0);
    expect(firstOutputStep.get('c')).toBeGreaterThan(0);
    expect(firstOutputStep.get('d')).toBe(firstOutputStep.get('c'));
  });

  it('preempts the most recently admitted request when blocks run out, and it recomputes', () => {
    // 6 blocks of 4: two requests of 8 prompt + 12 output tokens (5 blocks each) cannot both finish.
    const mocker = core({ totalKvBlocks: 6 });
    mocker.add(request('old', range(1, 8), 12), 0);
    mocker.add(request('new', range(50, 8), 12), 0);
    const { steps, outputs } = drain(mocker);
    const preempted = steps.flatMap((s) => s.preempted);
    expect(preempted.length).toBeGreaterThan(0);
    expect(new Set(preempted)).toEqual(new Set(['new']));
    expect(tokensOf(outputs.get('old'))).toHaveLength(12);
    expect(tokensOf(outputs.get('new'))).toHaveLength(12);
    // Recomputation shows up as prefill beyond the two prompts.
    const prefilled = steps.reduce((n, s) => n + s.prefillTokens, 0);
    expect(prefilled).toBeGreaterThan(16);
    // and the preempted request's tokens are what it would have produced alone
    const alone = core();
    alone.add(request('new', range(50, 8), 12), 0);
    expect(tokensOf(outputs.get('new'))).toEqual(tokensOf(drain(alone).outputs.get('new')));
  });

  it('cancel frees a request wherever it is', () => {
    const mocker = core({ maxNumSeqs: 1 });
    mocker.add(request('run', range(1, 10), 50), 0);
    mocker.add(request('wait', range(100, 10), 50), 0);
    mocker.step(0);
    expect(mocker.load()).toMatchObject({ runningRequests: 1, waitingRequests: 1 });
    expect(mocker.blocks.usedBlocks).toBeGreaterThan(0);
    expect(mocker.cancel('wait')).toBe(true);
    expect(mocker.cancel('run')).toBe(true);
    expect(mocker.cancel('run')).toBe(false);
    mocker.checkInvariants();
    expect(mocker.hasWork()).toBe(false);
    expect(mocker.load()).toEqual({
      activeDecodeBlocks: 0,
      activePrefillTokens: 0,
      waitingRequests: 0,
      runningRequests: 0,
      kvUsage: 0,
    });
  });

  it('reports load, and publishes it only when it changes', () => {
    const sink = { batches: [] as KvEventBatch[], loads: [] as EngineLoad[] };
    const mocker = core({ maxNumBatchedTokens: 4, totalKvBlocks: 10 }, sink);
    mocker.add(request('a', range(1, 10), 2), 0);
    expect(mocker.load()).toEqual({
      activeDecodeBlocks: 0,
      activePrefillTokens: 10,
      waitingRequests: 1,
      runningRequests: 0,
      kvUsage: 0,
    });
    mocker.step(0);
    expect(mocker.load()).toEqual({
      activeDecodeBlocks: 1,
      activePrefillTokens: 6,
      waitingRequests: 0,
      runningRequests: 1,
      kvUsage: 0.1,
    });
    expect(sink.loads).toHaveLength(1);
    const steps = drain(mocker).steps.length;
    expect(sink.loads.length).toBeLessThanOrEqual(1 + steps);
    expect(sink.loads.at(-1)).toEqual({
      activeDecodeBlocks: 0,
      activePrefillTokens: 0,
      waitingRequests: 0,
      runningRequests: 0,
      kvUsage: 0,
    });
    for (let i = 1; i < sink.loads.length; i++) expect(sink.loads[i]).not.toEqual(sink.loads[i - 1]);
    const published = sink.loads.length;
    mocker.flush(0);
    expect(sink.loads).toHaveLength(published);
  });

  it.each([
    ['empty_prompt', request('a', [], 4)],
    ['context_length_exceeded', request('a', range(1, 60), 5)],
    ['invalid_max_tokens', request('a', range(1, 4), 0)],
    ['invalid_token_id', request('a', [1, -2], 4)],
    ['invalid_seed', request('a', [1, 2], 4, { sampling: { seed: Number.POSITIVE_INFINITY } })],
    ['kv_capacity_exceeded', request('a', range(1, 30), 30)],
  ])('rejects a request as %s', (reason, req) => {
    const mocker = core({ contextLength: 64, totalKvBlocks: 8 });
    try {
      mocker.add(req, 0);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ArmatureError);
      expect((err as ArmatureError).cls).toBe('invalid_argument');
      expect((err as ArmatureError).reason).toBe(reason);
    }
    expect(mocker.hasWork()).toBe(false);
  });

  it('rejects a duplicate request id', () => {
    const mocker = core();
    mocker.add(request('a', [1, 2], 4), 0);
    expect(() => mocker.add(request('a', [1, 2], 4), 0)).toThrow(/already running/);
  });
});

describe('MockerCore.importPrefix (KV pulled from a prefill worker)', () => {
  it('registers the full blocks as cached: the request then computes only the rest, and events report them', () => {
    const sink = { batches: [] as KvEventBatch[], loads: [] as EngineLoad[] };
    const m = core({}, sink);
    const prompt = range(100, 18); // 4 full blocks of 4 + 2 tokens
    expect(m.importPrefix(prompt, 0)).toBe(4);
    expect(m.importPrefix(prompt, 0)).toBe(0); // already held
    expect(storedHashes(allEvents(sink.batches))).toHaveLength(4);
    m.add(request('r', prompt, 2), 0);
    const { outputs, steps } = drain(m);
    expect(outputs.get('r')![0]!.cachedTokens).toBe(16);
    expect(steps[0]!.prefillTokens).toBe(2);
    expect(tokensOf(outputs.get('r'))).toHaveLength(2);
    m.checkInvariants();
    expect(m.blocks.usedBlocks).toBe(0);
  });

  it('imports nothing when prefix caching is off or the blocks do not fit', () => {
    expect(core({ enablePrefixCaching: false }).importPrefix(range(0, 16), 0)).toBe(0);
    const small = core({ totalKvBlocks: 3 });
    expect(small.importPrefix(range(0, 16), 0)).toBe(0);
    small.checkInvariants();
  });
});
