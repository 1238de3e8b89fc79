import { computeBlockHashes, computeSequenceHashes, type KvEventBatch } from '@armature/kv';
import { ArmatureError, setLogLevel } from '@armature/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineLoad, EngineOutput, EngineRequest } from '../types.js';
import { createMockerEngine, type MockerEngine } from './engine.js';
import type { MockerOptions } from './options.js';

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);
const IDLE: EngineLoad = {
  activeDecodeBlocks: 0,
  activePrefillTokens: 0,
  waitingRequests: 0,
  runningRequests: 0,
  kvUsage: 0,
};

function request(requestId: string, tokenIds: number[], maxTokens: number): EngineRequest {
  return { requestId, tokenIds, sampling: { seed: 1 }, stop: { maxTokens, ignoreEos: true, stopTokenIds: [] } };
}

async function collect(stream: AsyncIterable<EngineOutput>): Promise<EngineOutput[]> {
  const outputs: EngineOutput[] = [];
  for await (const output of stream) outputs.push(output);
  return outputs;
}

const engines: MockerEngine[] = [];
function engine(options: MockerOptions = {}): MockerEngine {
  const e = createMockerEngine({ speedup: 1e6, ...options });
  engines.push(e);
  return e;
}

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

describe('MockerEngine', () => {
  it('advertises its card', () => {
    expect(engine({ model: 'demo', blockSize: 32 }).card).toMatchObject({
      model: 'demo',
      blockSize: 32,
      engine: 'mocker',
      eosTokenIds: [199999],
    });
  });

  it('streams tokens and ends with the finish reason', async () => {
    const e = engine();
    const outputs = await collect(e.generate(request('a', range(1, 40), 20), new AbortController().signal));
    expect(outputs.length).toBeGreaterThan(1);
    expect(outputs[0]).toMatchObject({ cachedTokens: 0, promptTokens: 40 });
    expect(outputs.flatMap((o) => o.tokenIds)).toHaveLength(20);
    expect(outputs.at(-1)!.finishReason).toBe('length');
    expect(e.load()).toEqual(IDLE);
    e.checkInvariants();
  });

  it('serves concurrent requests and reports prefix hits on a repeated prompt', async () => {
    const e = engine();
    const prompt = range(1, 50);
    const signal = new AbortController().signal;
    const first = await collect(e.generate(request('a', prompt, 5), signal));
    const [again, other] = await Promise.all([
      collect(e.generate(request('b', prompt, 5), signal)),
      collect(e.generate(request('c', range(500, 10), 5), signal)),
    ]);
    expect(first[0]!.cachedTokens).toBe(0);
    expect(again[0]!.cachedTokens).toBe(48);
    expect(other[0]!.cachedTokens).toBe(0);
    // same seed and prompt, same tokens
    expect(again.flatMap((o) => o.tokenIds)).toEqual(first.flatMap((o) => o.tokenIds));
  });

  it('cancels mid-stream on abort: the stream ends cancelled and every block is freed', async () => {
    const e = engine({ speedup: 1000 });
    const controller = new AbortController();
    const outputs: EngineOutput[] = [];
    for await (const output of e.generate(request('a', range(1, 100), 5000), controller.signal)) {
      outputs.push(output);
      if (outputs.length === 3) {
        expect(e.load().activeDecodeBlocks).toBeGreaterThan(0);
        controller.abort();
      }
    }
    expect(outputs.at(-1)).toEqual({ tokenIds: [], finishReason: 'cancelled' });
    expect(outputs.length).toBe(4);
    expect(e.load()).toEqual(IDLE);
    e.checkInvariants();
  });

  it('cancels when the consumer stops reading', async () => {
    const e = engine({ speedup: 1000 });
    for await (const output of e.generate(request('a', range(1, 100), 5000), new AbortController().signal)) {
      expect(output.tokenIds).toHaveLength(1);
      break;
    }
    expect(e.load()).toEqual(IDLE);
  });

  it('answers an already aborted request with a cancelled output and no work', async () => {
    const e = engine();
    const outputs = await collect(e.generate(request('a', [1, 2, 3], 5), AbortSignal.abort()));
    expect(outputs).toEqual([{ tokenIds: [], finishReason: 'cancelled' }]);
    expect(e.load()).toEqual(IDLE);
  });

  it('throws invalid_argument for a request that can never run', () => {
    const e = engine({ contextLength: 64 });
    const attempt = (): unknown => e.generate(request('a', range(1, 60), 10), new AbortController().signal);
    expect(attempt).toThrow(ArmatureError);
    expect(attempt).toThrow(/context length/);
    expect(() => e.generate(request('b', [], 10), new AbortController().signal)).toThrow(/empty/);
  });

  it('publishes KV events and load, and dumps the cache', async () => {
    const e = engine();
    const batches: KvEventBatch[] = [];
    const loads: EngineLoad[] = [];
    e.onKvEvents((batch) => batches.push(batch));
    const stopLoads = e.onLoad((load) => loads.push(load));
    setLogLevel('error'); // the bad listener below is logged as a warning
    e.onLoad(() => {
      throw new Error('a bad listener must not stop the engine');
    });
    const prompt = range(7, 33);
    const before = Date.now() / 1000;
    // Load is sampled after each pass: a request must outlive a pass to be seen.
    await collect(e.generate(request('a', prompt, 3), new AbortController().signal));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const stored = batches.flatMap((b) => b.events).flatMap((ev) => (ev.type === 'BlockStored' ? ev.blockHashes : []));
    expect(stored).toEqual(computeSequenceHashes(computeBlockHashes(prompt, 16)));
    expect(loads.some((load) => load.runningRequests === 1 && load.activeDecodeBlocks === 3)).toBe(true);
    expect(batches[0]!.ts).toBeGreaterThanOrEqual(before - 1);
    expect(loads.length).toBeGreaterThan(0);
    expect(loads.at(-1)).toEqual(IDLE);
    expect(e.kvSnapshot().flatMap((ev) => (ev.type === 'BlockStored' ? ev.blockHashes : []))).toEqual(stored);
    stopLoads();
    const count = loads.length;
    await collect(e.generate(request('b', [1, 2], 1), new AbortController().signal));
    expect(loads).toHaveLength(count);
    setLogLevel('info');
  });

  it('publishes opaque hashes that an indexer recomputes, or no events at all', async () => {
    const prompt = range(7, 48);
    const ours = computeSequenceHashes(computeBlockHashes(prompt, 16));
    const opaque = engine({ kvEvents: 'opaque' });
    const silent = engine({ kvEvents: 'none' });
    expect(opaque.card.kvEvents).toBe('opaque');
    expect(silent.card.kvEvents).toBe('none');
    const heard: KvEventBatch[] = [];
    opaque.onKvEvents((b) => heard.push(b));
    silent.onKvEvents((b) => heard.push(b));
    await collect(opaque.generate(request('a', prompt, 1), new AbortController().signal));
    await collect(silent.generate(request('b', prompt, 1), new AbortController().signal));
    const stored = heard.flatMap((b) => b.events).filter((ev) => ev.type === 'BlockStored');
    expect(stored.length).toBeGreaterThan(0);
    const hashes = stored.flatMap((ev) => ev.blockHashes);
    expect(hashes).toHaveLength(ours.length);
    for (const h of hashes) expect(ours).not.toContain(h); // only the silent engine's would match, and it said nothing
    // Parents are scrambled consistently: each stored run's parent is the previous block's engine hash.
    for (let i = 1; i < stored.length; i++) expect(stored[i]!.parentBlockHash).toBe(stored[i - 1]!.blockHashes.at(-1));
    expect(stored.flatMap((ev) => ev.tokenIds)).toEqual(prompt);
    expect(silent.kvSnapshot()).toEqual([]);
    expect(opaque.kvSnapshot().flatMap((ev) => (ev.type === 'BlockStored' ? ev.blockHashes : []))).toEqual(hashes);
    expect(() => createMockerEngine({ kvEvents: 'sometimes' as never })).toThrow(/kvEvents/);
  });

  it('runs at the perf model pace, divided by speedup', async () => {
    // Prefill of 16 tokens ~16.7 ms plus 4 decode passes of ~5.7 ms: ~40 ms in real time.
    const slow = engine({ speedup: 1 });
    let started = performance.now();
    await collect(slow.generate(request('a', range(1, 16), 5), new AbortController().signal));
    const slowMs = performance.now() - started;
    expect(slowMs).toBeGreaterThanOrEqual(38);

    const fast = engine({ speedup: 1e6, maxNumSeqs: 256 });
    started = performance.now();
    await Promise.all(
      range(0, 100).map((i) =>
        collect(fast.generate(request(`r${i}`, range(i * 100, 64), 64), new AbortController().signal)),
      ),
    );
    // At real speed this would take 64 passes of tens of ms each: seconds.
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('fails open streams with unavailable on close and refuses new requests', async () => {
    const e = engine({ speedup: 100 });
    const stream = e.generate(request('a', range(1, 10), 5000), new AbortController().signal);
    const pending = collect(stream);
    pending.catch(() => {}); // awaited below, after close
    await new Promise((resolve) => setTimeout(resolve, 5));
    await e.close();
    await expect(pending).rejects.toMatchObject({ cls: 'unavailable', reason: 'engine_closed' });
    expect(() => e.generate(request('b', [1], 1), new AbortController().signal)).toThrow(ArmatureError);
    expect(e.load()).toEqual(IDLE);
  });
});
