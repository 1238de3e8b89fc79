// The llama.cpp engine on the project's generated model, on CPU, through real
// node-llama-cpp: greedy determinism, prefix reuse that changes nothing but the work done,
// concurrent slots, a queue beyond them, cancellation that frees the slot, stop
// conditions, continuation after a first token produced elsewhere, and KV events that
// name exactly the blocks the slots hold.
import { relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvIndexer, sequenceHashLimbs, type KvEventBatch } from '@armature/kv';
import type { EngineOutput, EngineRequest } from '../types.js';
import type { LlamaCppEngine } from './engine.js';
import { createLlamaCppEngine } from './load.js';
import { ensureTestModel } from './test-model.js';

const BLOCK = 16;

/** A prompt of real word tokens (ids past the specials), distinct per seed. */
const prompt = (seed: number, n: number): number[] => [
  1,
  ...Array.from({ length: n - 1 }, (_, i) => 300 + ((seed * 7919 + i * 104_729) % 3_000)),
];

const request = (id: string, tokenIds: number[], over: Partial<EngineRequest> = {}): EngineRequest => ({
  requestId: id,
  tokenIds,
  sampling: { temperature: 0 },
  stop: { maxTokens: 12, ignoreEos: false, stopTokenIds: [] },
  ...over,
});

async function collect(stream: AsyncIterable<EngineOutput>): Promise<{ tokens: number[]; outputs: EngineOutput[] }> {
  const outputs: EngineOutput[] = [];
  for await (const out of stream) outputs.push(out);
  return { tokens: outputs.flatMap((o) => o.tokenIds), outputs };
}

describe('llama.cpp engine', () => {
  let engine: LlamaCppEngine;
  let other: LlamaCppEngine;
  const batches: KvEventBatch[] = [];

  beforeAll(async () => {
    const modelPath = await ensureTestModel();
    engine = await createLlamaCppEngine({ modelPath, sequences: 2, contextSize: 1024, threads: 1, blockSize: BLOCK });
    engine.onKvEvents((b) => batches.push(b));
    other = await createLlamaCppEngine({ modelPath, sequences: 1, contextSize: 1024, threads: 1, blockSize: BLOCK });
  }, 30_000);
  afterAll(async () => {
    await engine?.close();
    await other?.close();
  });

  it('advertises a card for the GGUF: its tokenizer, template and end tokens', () => {
    expect(engine.card).toMatchObject({
      engine: 'llamacpp',
      blockSize: BLOCK,
      maxNumSeqs: 2,
      chatTemplate: 'gguf',
      tokenizer: expect.stringMatching(/^gguf:.*armature-tiny-llama-[0-9a-f]+\.gguf$/),
    });
    expect(engine.card.contextLength).toBeGreaterThanOrEqual(1024);
    expect(engine.card.eosTokenIds).toEqual(expect.arrayContaining([2, 260]));
  });

  it('names its model file by absolute path, so the frontend can load the same tokenizer', async () => {
    const modelPath = await ensureTestModel();
    const relativeEngine = await createLlamaCppEngine({
      modelPath: relative(process.cwd(), modelPath),
      sequences: 1,
      contextSize: 256,
      threads: 1,
    });
    try {
      expect(relativeEngine.card.tokenizer).toBe(`gguf:${modelPath}`);
    } finally {
      await relativeEngine.close();
    }
  });

  it('is deterministic under greedy sampling, across engines', async () => {
    const p = prompt(1, 40);
    const a = await collect(engine.generate(request('g1', p), new AbortController().signal));
    const b = await collect(other.generate(request('g2', p), new AbortController().signal));
    expect(a.tokens).toHaveLength(12);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.outputs[0]).toMatchObject({ promptTokens: 40 });
    expect(a.outputs.at(-1)!.finishReason).toBe('length');
    // Seeded sampling is reproducible too.
    const seeded = (id: string) => request(id, p, { sampling: { temperature: 0.8, seed: 42 } });
    const s1 = await collect(engine.generate(seeded('s1'), new AbortController().signal));
    const s2 = await collect(other.generate(seeded('s2'), new AbortController().signal));
    expect(s1.tokens).toEqual(s2.tokens);
  });

  it('samples afresh for each unseeded request, even within one second', async () => {
    const p = prompt(9, 20);
    const texts: string[] = [];
    for (const id of ['u1', 'u2', 'u3', 'u4']) {
      const unseeded = request(id, p, { sampling: { temperature: 1 } });
      texts.push((await collect(engine.generate(unseeded, new AbortController().signal))).tokens.join(','));
    }
    expect(new Set(texts).size).toBeGreaterThan(1);
  });

  it('reuses a cached prefix: only the new tokens are evaluated, the output is unchanged', async () => {
    const base = prompt(2, 100);
    await collect(engine.generate(request('p1', base), new AbortController().signal));
    const extended = [...base, ...prompt(3, 30).slice(1)];
    const hit = await collect(engine.generate(request('p2', extended), new AbortController().signal));
    expect(hit.outputs[0]!.cachedTokens).toBe(100);
    const cold = await collect(other.generate(request('p3', extended), new AbortController().signal));
    expect(cold.outputs[0]!.cachedTokens).toBeLessThanOrEqual(1); // only BOS, which every prompt shares
    expect(hit.tokens).toEqual(cold.tokens);
    // A repeated prompt re-evaluates only its last token.
    const again = await collect(engine.generate(request('p4', extended), new AbortController().signal));
    expect(again.outputs[0]!.cachedTokens).toBe(extended.length - 1);
    expect(again.tokens).toEqual(cold.tokens);
  });

  it('runs slots concurrently, queues the rest in order, and stops on max_tokens and stop ids', async () => {
    const prompts = [4, 5, 6, 7].map((s) => prompt(s, 30));
    const expected: number[][] = [];
    for (const [i, p] of prompts.entries())
      expected.push((await collect(other.generate(request(`e${i}`, p), new AbortController().signal))).tokens);
    const streams = prompts.map((p, i) => engine.generate(request(`c${i}`, p), new AbortController().signal));
    expect(engine.load()).toMatchObject({ runningRequests: 2, waitingRequests: 2 });
    const results = await Promise.all(streams.map(collect));
    results.forEach((r, i) => expect(r.tokens).toEqual(expected[i]));
    expect(engine.load()).toMatchObject({ runningRequests: 0, waitingRequests: 0 });

    const stopAt = expected[0]![4]!;
    const stopped = await collect(
      engine.generate(
        request('st', prompts[0]!, { stop: { maxTokens: 12, ignoreEos: false, stopTokenIds: [stopAt] } }),
        new AbortController().signal,
      ),
    );
    expect(stopped.tokens).toEqual(expected[0]!.slice(0, expected[0]!.indexOf(stopAt) + 1));
    expect(stopped.outputs.at(-1)!.finishReason).toBe('stop');
  });

  it('frees the slot when a request is cancelled, waiting or running', async () => {
    const long = request('long', prompt(8, 20), { stop: { maxTokens: 900, ignoreEos: true, stopTokenIds: [] } });
    const abort = new AbortController();
    const outputs: EngineOutput[] = [];
    const iter = engine.generate(long, abort.signal)[Symbol.asyncIterator]();
    outputs.push((await iter.next()).value as EngineOutput);
    abort.abort();
    for (let r = await iter.next(); !r.done; r = await iter.next()) outputs.push(r.value);
    expect(outputs.at(-1)!.finishReason).toBe('cancelled');
    expect(outputs.flatMap((o) => o.tokenIds).length).toBeLessThan(900);
    await expect.poll(() => engine.load().runningRequests).toBe(0);
    // A request that gave up while queued never runs.
    const busy = [0, 1].map((i) => engine.generate(request(`b${i}`, prompt(9 + i, 20)), new AbortController().signal));
    const quitter = new AbortController();
    const queued = engine.generate(request('q', prompt(11, 20)), quitter.signal);
    quitter.abort();
    expect((await collect(queued)).outputs).toEqual([{ tokenIds: [], finishReason: 'cancelled' }]);
    await Promise.all(busy.map(collect));
    // The id is free again.
    expect(
      (await collect(engine.generate(request('long', prompt(8, 20)), new AbortController().signal))).tokens,
    ).toHaveLength(12);
  });

  it('continues after a first token produced elsewhere, as the aggregated run would', async () => {
    const p = prompt(12, 50);
    const full = (await collect(other.generate(request('f0', p), new AbortController().signal))).tokens;
    const rest = await collect(
      engine.generate(request('f1', p, { firstToken: full[0] }), new AbortController().signal),
    );
    expect([full[0], ...rest.tokens]).toEqual(full);
    expect(rest.outputs[0]).toMatchObject({ promptTokens: 50 });
    expect(() =>
      engine.generate(
        request('f2', p, { firstToken: 5, stop: { maxTokens: 1, ignoreEos: false, stopTokenIds: [] } }),
        new AbortController().signal,
      ),
    ).toThrow(/first token already ends/);
  });

  it('publishes KV events that name exactly the full blocks its slots hold', () => {
    const index = new KvIndexer();
    index.setHashScheme('w', 'armature');
    for (const b of batches) index.applyBatch('w', b);
    for (const tokens of engine.slotTokens()) {
      const blocks = Math.floor(tokens.length / BLOCK);
      const match = index.findMatches(sequenceHashLimbs(tokens, BLOCK)).workers[0];
      expect(match?.depth ?? 0).toBe(blocks);
    }
    const snapshot = new KvIndexer();
    snapshot.setHashScheme('w', 'armature');
    snapshot.applyBatch('w', { ts: 0, events: engine.kvSnapshot(), dpRank: null });
    const all = (i: KvIndexer) =>
      [...engine.slotTokens()].map((t) => i.findMatches(sequenceHashLimbs(t, BLOCK)).workers[0]?.depth ?? 0);
    expect(all(snapshot)).toEqual(all(index));
  });

  it('rejects requests it can never run', () => {
    const signal = new AbortController().signal;
    expect(() => engine.generate(request('x1', []), signal)).toThrow(/empty/);
    expect(() => engine.generate(request('x2', [1, 999_999]), signal)).toThrow(/outside the vocabulary/);
    expect(() =>
      engine.generate(
        request('x3', prompt(1, 10), { stop: { maxTokens: 5000, ignoreEos: false, stopTokenIds: [] } }),
        signal,
      ),
    ).toThrow(/context length/);
  });
});

describe('llama.cpp engine: disaggregated prefill and decode', () => {
  let prefillEngine: LlamaCppEngine;
  let decodeEngine: LlamaCppEngine;
  let aggregated: LlamaCppEngine;
  const memories = new Map<LlamaCppEngine, Uint8Array>();

  beforeAll(async () => {
    const modelPath = await ensureTestModel();
    const make = () =>
      createLlamaCppEngine({ modelPath, sequences: 2, contextSize: 1024, threads: 1, blockSize: BLOCK });
    [prefillEngine, decodeEngine, aggregated] = await Promise.all([make(), make(), make()]);
    for (const e of [prefillEngine, decodeEngine]) {
      const memory = new Uint8Array(e.kv.totalBlocks * e.kv.blockBytes);
      e.kv.attachMemory(memory);
      memories.set(e, memory);
    }
  }, 30_000);
  afterAll(async () => {
    await Promise.all([prefillEngine, decodeEngine, aggregated].filter(Boolean).map((e) => e.close()));
  });

  /** What the transfer library does between the two workers: copy the pinned staging blocks. */
  function pull(from: LlamaCppEngine, to: LlamaCppEngine, fromBlocks: number[], toBlocks: number[]): void {
    const src = memories.get(from)!;
    const dst = memories.get(to)!;
    const size = from.kv.blockBytes;
    fromBlocks.forEach((b, i) => dst.set(src.subarray(b * size, (b + 1) * size), toBlocks[i]! * size));
  }

  it('exports the prompt state, and the decode worker continues with the aggregated tokens', async () => {
    for (const [seed, length] of [
      [20, 37],
      [21, 160],
    ] as const) {
      const p = prompt(seed, length);
      const expected = (await collect(aggregated.generate(request(`a${seed}`, p), new AbortController().signal)))
        .tokens;
      const pre = await prefillEngine.kv.prefill(request(`r${seed}`, p), new AbortController().signal);
      expect(pre.firstToken).toBe(expected[0]);
      expect(pre.finishReason).toBeUndefined();
      expect(pre.stateBytes).toBeGreaterThan(length * 256);
      expect(pre.blockIds).toHaveLength(Math.ceil(pre.stateBytes! / prefillEngine.kv.blockBytes));
      expect(pre.blockHashes).toHaveLength(Math.floor(length / BLOCK));
      expect(prefillEngine.kv.pinned()).toEqual({ requests: 1, blocks: pre.blockIds.length });

      const plan = decodeEngine.kv.reserveImport(`r${seed}`, p, pre.stateBytes)!;
      expect(plan.blockIndices).toEqual(pre.blockIds.map((_, i) => i));
      pull(prefillEngine, decodeEngine, pre.blockIds, plan.localBlockIds);
      expect(prefillEngine.kv.release(`r${seed}`)).toBe(true);
      expect(decodeEngine.kv.commitImport(`r${seed}`)).toBe(true);
      const rest = await collect(
        decodeEngine.generate(request(`r${seed}`, p, { firstToken: pre.firstToken }), new AbortController().signal),
      );
      expect([pre.firstToken, ...rest.tokens]).toEqual(expected);
      // Nothing was recomputed: the whole prompt came with the state.
      expect(rest.outputs[0]!.cachedTokens).toBe(length);
    }
    expect(prefillEngine.kv.pinned()).toEqual({ requests: 0, blocks: 0 });
  });

  it('prefills locally when the restored state does not hold the prompt, and frees what it reserved', async () => {
    const a = prompt(30, 60);
    const b = prompt(31, 60);
    const expected = (await collect(aggregated.generate(request('mb', b), new AbortController().signal))).tokens;
    const pre = await prefillEngine.kv.prefill(request('ma', a), new AbortController().signal);
    // The state of prompt a, imported for prompt b.
    const plan = decodeEngine.kv.reserveImport('mb', b, pre.stateBytes)!;
    pull(prefillEngine, decodeEngine, pre.blockIds, plan.localBlockIds);
    prefillEngine.kv.release('ma');
    decodeEngine.kv.commitImport('mb');
    const rest = await collect(
      decodeEngine.generate(request('mb', b, { firstToken: expected[0] }), new AbortController().signal),
    );
    expect([expected[0], ...rest.tokens]).toEqual(expected);
    expect(rest.outputs[0]!.cachedTokens).toBeLessThan(60);
    // A cancelled reservation frees its staging blocks; the staging area is whole again.
    const free = (e: LlamaCppEngine) => (e as unknown as { states: { freeBlocks: number } }).states.freeBlocks;
    const before = free(decodeEngine);
    decodeEngine.kv.reserveImport('c1', b, 5 * decodeEngine.kv.blockBytes);
    expect(free(decodeEngine)).toBe(before - 5);
    decodeEngine.kv.cancelImport('c1');
    expect(free(decodeEngine)).toBe(decodeEngine.kv.totalBlocks);
    expect(free(prefillEngine)).toBe(prefillEngine.kv.totalBlocks);
  });

  it('frees the staging blocks of an imported request cancelled while it waits for a slot', async () => {
    const free = (e: LlamaCppEngine) => (e as unknown as { states: { freeBlocks: number } }).states.freeBlocks;
    const long = (id: string) =>
      request(id, prompt(50, 20), { stop: { maxTokens: 600, ignoreEos: true, stopTokenIds: [] } });
    const busy = [0, 1].map((i) => {
      const abort = new AbortController();
      return { abort, done: collect(decodeEngine.generate(long(`busy${i}`), abort.signal)) };
    });
    const p = prompt(51, 40);
    const pre = await prefillEngine.kv.prefill(request('qi', p), new AbortController().signal);
    const plan = decodeEngine.kv.reserveImport('qi', p, pre.stateBytes)!;
    pull(prefillEngine, decodeEngine, pre.blockIds, plan.localBlockIds);
    prefillEngine.kv.release('qi');
    decodeEngine.kv.commitImport('qi');
    const quitter = new AbortController();
    const queued = decodeEngine.generate(request('qi', p, { firstToken: pre.firstToken }), quitter.signal);
    expect(decodeEngine.load().waitingRequests).toBe(1);
    quitter.abort();
    expect((await collect(queued)).outputs).toEqual([{ tokenIds: [], finishReason: 'cancelled' }]);
    expect(free(decodeEngine)).toBe(decodeEngine.kv.totalBlocks);
    for (const b of busy) b.abort.abort();
    await Promise.all(busy.map((b) => b.done));
  });

  it('pins nothing when the first token ends the request', async () => {
    const pre = await prefillEngine.kv.prefill(
      request('one', prompt(40, 20), { stop: { maxTokens: 1, ignoreEos: false, stopTokenIds: [] } }),
      new AbortController().signal,
    );
    expect(pre.finishReason).toBe('length');
    expect(pre.blockIds).toEqual([]);
    expect(prefillEngine.kv.pinned().requests).toBe(0);
  });
});

/**
 * Records llama.cpp's batches at node-llama-cpp's native boundary (version pinned in
 * package.json): for each batch, the tokens each sequence put in it.
 */
function recordBatches(engine: LlamaCppEngine): Array<Array<{ seq: number; tokens: number }>> {
  const context = (engine as unknown as { context: { _ctx: Record<string, unknown> } }).context;
  const native = context._ctx;
  expect(typeof native.initBatch).toBe('function');
  expect(typeof native.addToBatch).toBe('function');
  const batches: Array<Array<{ seq: number; tokens: number }>> = [];
  context._ctx = new Proxy(native, {
    get(target, key) {
      const value = target[key as string];
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (key === 'initBatch') return (...a: unknown[]) => (batches.push([]), fn(...a));
      if (key === 'addToBatch')
        return (seq: number, first: number, tokens: Uint32Array, logits: Uint32Array) => (
          batches.at(-1)!.push({ seq, tokens: tokens.length }),
          fn(seq, first, tokens, logits)
        );
      return fn;
    },
  });
  return batches;
}

describe('llama.cpp engine: lock-step batches', () => {
  it('evaluates the next tokens of all decoding requests in one batch per step', async () => {
    const SEQS = 4;
    const MAX = 40;
    const modelPath = await ensureTestModel();
    const engine = await createLlamaCppEngine({ modelPath, sequences: SEQS, contextSize: 1024, threads: 1 });
    try {
      const batches = recordBatches(engine);
      const long = (i: number): EngineRequest =>
        request(`ls${i}`, prompt(60 + i, 24), { stop: { maxTokens: MAX, ignoreEos: true, stopTokenIds: [] } });
      const results = await Promise.all(
        Array.from({ length: SEQS }, (_, i) => collect(engine.generate(long(i), new AbortController().signal))),
      );
      for (const r of results) expect(r.tokens).toHaveLength(MAX);
      // One batch holds the prompts (or a few do), then every decode step is one batch of all SEQS tokens.
      const decodeBatches = batches.filter((b) => b.every((e) => e.tokens === 1)).map((b) => b.length);
      const full = decodeBatches.filter((n) => n === SEQS).length;
      expect(decodeBatches.reduce((a, n) => a + n, 0)).toBeGreaterThanOrEqual(SEQS * (MAX - 2));
      expect(full).toBeGreaterThanOrEqual(MAX - 3);
      expect(decodeBatches.length).toBeLessThanOrEqual(MAX + 1);
    } finally {
      await engine.close();
    }
  });

  it('keeps decoding requests in every batch while a long prompt is evaluated', async () => {
    const modelPath = await ensureTestModel();
    const engine = await createLlamaCppEngine({
      modelPath,
      sequences: 3,
      contextSize: 1024,
      batchSize: 128,
      threads: 1,
    });
    try {
      const batches = recordBatches(engine);
      const aborts = [new AbortController(), new AbortController()];
      const decoders = aborts.map((abort, i) => {
        const r = request(`dec${i}`, prompt(90 + i, 24), {
          stop: { maxTokens: 900, ignoreEos: true, stopTokenIds: [] },
        });
        return engine.generate(r, abort.signal)[Symbol.asyncIterator]();
      });
      await Promise.all(decoders.map((d) => d.next()));
      batches.length = 0;
      const done = Promise.all(decoders.map((d) => collect({ [Symbol.asyncIterator]: () => d })));
      // 700 prompt tokens in batches of 128: six or more batches of prompt chunks.
      const long = await collect(
        engine.generate(
          request('longprompt', prompt(95, 700), { stop: { maxTokens: 1, ignoreEos: true, stopTokenIds: [] } }),
          new AbortController().signal,
        ),
      );
      expect(long.tokens).toHaveLength(1);
      for (const abort of aborts) abort.abort();
      await done;
      const promptBatches = batches.filter((b) => b.some((e) => e.tokens > 1));
      expect(promptBatches.length).toBeGreaterThanOrEqual(6);
      // Both decoding requests ride along in every one of them, instead of every other.
      for (const b of promptBatches) expect(b.filter((e) => e.tokens === 1)).toHaveLength(2);
    } finally {
      await engine.close();
    }
  });
});

describe('llama.cpp engine: end of sequence', () => {
  let plain: LlamaCppEngine;
  let ending: LlamaCppEngine;
  let expected: number[];
  let eosLike: number;
  let at: number;
  const p = prompt(70, 30);
  const greedy = (id: string, ignoreEos: boolean): EngineRequest =>
    request(id, p, { stop: { maxTokens: 24, ignoreEos, stopTokenIds: [] } });

  beforeAll(async () => {
    plain = await createLlamaCppEngine({ modelPath: await ensureTestModel(), sequences: 1, threads: 1 });
    expected = (await collect(plain.generate(greedy('plain', true), new AbortController().signal))).tokens;
    // The model whose EOS takes the place of the 6th greedy token.
    eosLike = expected[5]!;
    at = expected.indexOf(eosLike);
    const modelPath = await ensureTestModel({ eosLike });
    ending = await createLlamaCppEngine({ modelPath, sequences: 1, threads: 1 });
  }, 60_000);
  afterAll(async () => {
    await plain?.close();
    await ending?.close();
  });

  it('ends a request at EOS with finish reason stop', async () => {
    expect(ending.card.eosTokenIds).toContain(2);
    const out = await collect(ending.generate(greedy('eos', false), new AbortController().signal));
    expect(out.tokens).toEqual([...expected.slice(0, at), 2]);
    expect(out.outputs.at(-1)!.finishReason).toBe('stop');
    expect(ending.load().runningRequests).toBe(0);
  });

  it('goes past EOS with ignore_eos, up to max_tokens', async () => {
    const out = await collect(ending.generate(greedy('past', true), new AbortController().signal));
    expect(out.tokens.slice(0, at + 1)).toEqual([...expected.slice(0, at), 2]);
    expect(out.tokens).toHaveLength(24);
    expect(out.outputs.at(-1)!.finishReason).toBe('length');
  });
});

describe('llama.cpp engine: shutdown', () => {
  it('fails the streams still running with unavailable', async () => {
    const engine = await createLlamaCppEngine({ modelPath: await ensureTestModel(), sequences: 2, threads: 1 });
    const long = (id: string): EngineRequest =>
      request(id, prompt(80, 20), { stop: { maxTokens: 2000, ignoreEos: true, stopTokenIds: [] } });
    const streams = [long('s0'), long('s1'), long('s2')].map((r) =>
      engine.generate(r, new AbortController().signal)[Symbol.asyncIterator](),
    );
    await streams[0]!.next();
    await streams[1]!.next();
    await engine.close();
    for (const stream of streams) {
      await expect(
        (async () => {
          for (let r = await stream.next(); !r.done; r = await stream.next());
        })(),
      ).rejects.toMatchObject({ cls: 'unavailable' });
    }
  });
});
