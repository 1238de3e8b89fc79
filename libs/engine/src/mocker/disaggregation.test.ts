// Disaggregated serving on real mocker engines: a prefill engine P and a decode engine D,
// each with its KV in memory of its own, and the bytes copied between them as a transfer
// library would, must produce exactly what an aggregated engine A produces.
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineLoad, EngineOutput, EngineRequest, ImportPlan, PrefillResult } from '../types.js';
import { createMockerEngine, type MockerEngine } from './engine.js';
import { kvRowValue } from './kv-memory.js';
import type { MockerOptions } from './options.js';

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);
const BLOCK = 4;
const IDLE: EngineLoad = {
  activeDecodeBlocks: 0,
  activePrefillTokens: 0,
  waitingRequests: 0,
  runningRequests: 0,
  kvUsage: 0,
};

interface Node {
  engine: MockerEngine;
  memory: Uint8Array;
}

const started: MockerEngine[] = [];
function node(options: MockerOptions = {}, shared = false): Node {
  const engine = createMockerEngine({ speedup: 1e6, blockSize: BLOCK, totalKvBlocks: 64, ...options });
  started.push(engine);
  const bytes = engine.kv.totalBlocks * engine.kv.blockBytes;
  const memory = new Uint8Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  engine.kv.attachMemory(memory);
  return { engine, memory };
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((e) => e.close()));
});

function request(
  requestId: string,
  tokenIds: number[],
  maxTokens: number,
  extra: Partial<EngineRequest> = {},
): EngineRequest {
  return { requestId, tokenIds, sampling: {}, stop: { maxTokens, ignoreEos: true, stopTokenIds: [] }, ...extra };
}

const signal = (): AbortSignal => new AbortController().signal;

async function collect(stream: AsyncIterable<EngineOutput>): Promise<EngineOutput[]> {
  const outputs: EngineOutput[] = [];
  for await (const output of stream) outputs.push(output);
  return outputs;
}

const tokensOf = (outputs: EngineOutput[]): number[] => outputs.flatMap((o) => o.tokenIds);

async function aggregated(a: Node, req: EngineRequest): Promise<number[]> {
  return tokensOf(await collect(a.engine.generate(req, signal())));
}

/** What a transfer library does: copies each planned block from P's memory to D's. */
function pull(p: Node, d: Node, prefill: PrefillResult, plan: ImportPlan): void {
  const size = p.engine.kv.blockBytes;
  plan.blockIndices.forEach((index, i) => {
    const from = prefill.blockIds[index]! * size;
    d.memory.set(p.memory.subarray(from, from + size), plan.localBlockIds[i]! * size);
  });
}

/** Prefill on P, pull the missing blocks into D, decode on D; the whole output, first token first. */
async function disaggregated(
  p: Node,
  d: Node,
  req: EngineRequest,
): Promise<{ tokens: number[]; plan?: ImportPlan; prefill: PrefillResult; decoded: EngineOutput[] }> {
  const prefill = await p.engine.kv.prefill(req, signal());
  if (prefill.finishReason) return { tokens: [prefill.firstToken], prefill, decoded: [] };
  const plan = d.engine.kv.reserveImport(req.requestId, req.tokenIds);
  expect(plan).toBeDefined();
  pull(p, d, prefill, plan!);
  expect(p.engine.kv.release(req.requestId)).toBe(true);
  expect(d.engine.kv.commitImport(req.requestId)).toBe(true);
  const decoded = await collect(d.engine.generate({ ...req, firstToken: prefill.firstToken }, signal()));
  return { tokens: [prefill.firstToken, ...tokensOf(decoded)], plan: plan!, prefill, decoded };
}

function expectIdle(...nodes: Node[]): void {
  for (const { engine } of nodes) {
    expect(engine.load()).toEqual(IDLE);
    expect(engine.kv.pinned()).toEqual({ requests: 0, blocks: 0 });
    engine.checkInvariants();
  }
}

describe('disaggregated prefill/decode on mocker engines', () => {
  it.each([
    ['a block-aligned prompt', 12, undefined],
    ['a partial last block', 13, undefined],
    ['a prompt shorter than one block', 3, undefined],
    ['a block-aligned prompt, seeded', 16, 7],
    ['a partial last block, seeded', 9, 8],
    ['a prompt shorter than one block, seeded', 1, 9],
  ])('produces the aggregated tokens for %s', async (_, length, seed) => {
    const [p, d, a] = [node(), node({}, true), node()];
    const req = request('r', range(1000, length), 11, { sampling: seed === undefined ? {} : { seed } });
    const expected = await aggregated(a, req);
    const { tokens, plan, prefill, decoded } = await disaggregated(p, d, req);
    expect(tokens).toEqual(expected);
    expect(tokens).toHaveLength(11);
    expect(prefill).toMatchObject({ promptTokens: length, cachedTokens: 0 });
    expect(prefill.blockIds).toHaveLength(Math.ceil(length / BLOCK));
    expect(prefill.blockHashes).toEqual(computeSequenceHashes(computeBlockHashes(req.tokenIds, BLOCK)));
    expect(plan!.cachedBlocks).toBe(0);
    expect(plan!.blockIndices).toEqual(range(0, Math.ceil(length / BLOCK)));
    // The decode side computed no prompt token: all are reported cached, and the first token is not re-sent.
    expect(decoded[0]).toMatchObject({ cachedTokens: length, promptTokens: length });
    expect(decoded.at(-1)!.finishReason).toBe('length');
    expectIdle(p, d, a);
  });

  it('matches aggregated runs that stop on EOS, including a first token that ends the request', async () => {
    const options: MockerOptions = { eosProbability: 0.3 };
    const [p, d, a] = [node(options), node(options), node(options)];
    let endedAtFirst = 0;
    for (let seed = 0; seed < 40; seed++) {
      const req = request(`r${seed}`, range(200 + seed, 6 + (seed % 7)), 12, {
        sampling: { seed },
        stop: { maxTokens: 12, ignoreEos: false, stopTokenIds: [] },
      });
      const expected = await aggregated(a, req);
      const { tokens, prefill } = await disaggregated(p, d, req);
      expect(tokens).toEqual(expected);
      if (prefill.finishReason) {
        endedAtFirst++;
        expect(prefill).toMatchObject({ finishReason: 'stop', firstToken: 199999, blockIds: [] });
      }
    }
    expect(endedAtFirst).toBeGreaterThan(0);
    expectIdle(p, d, a);
  });

  it('pulls only the blocks the decode engine lacks', async () => {
    const [p, d, a] = [node(), node(), node()];
    const x = request('x', range(10, 13), 6, { sampling: { seed: 3 } });
    expect((await disaggregated(p, d, x)).plan!.blockIndices).toEqual([0, 1, 2, 3]);
    // y shares x's first two full blocks.
    const y = request('y', [...range(10, 8), ...range(700, 9)], 6, { sampling: { seed: 4 } });
    const run = await disaggregated(p, d, y);
    expect(run.plan).toMatchObject({ cachedBlocks: 2, blockIndices: [2, 3, 4] });
    expect(run.plan!.localBlockIds).toHaveLength(3);
    expect(run.decoded[0]!.cachedTokens).toBe(17);
    expect(run.tokens).toEqual(await aggregated(a, y));
    // The same prompt again: every full block is cached, only the partial last one is pulled.
    const again = await disaggregated(p, d, { ...y, requestId: 'y2' });
    expect(again.plan).toMatchObject({ cachedBlocks: 4, blockIndices: [4] });
    expect(again.tokens).toEqual(run.tokens);
    expectIdle(p, d, a);
  });

  it('rejects corrupted bytes and frees the reservation; both the import and the local path still match', async () => {
    const [p, d, a] = [node(), node(), node()];
    const req = request('r', range(40, 10), 8, { sampling: { seed: 5 } });
    const expected = await aggregated(a, req);
    const prefill = await p.engine.kv.prefill(req, signal());
    expect(p.engine.kv.pinned()).toEqual({ requests: 1, blocks: 3 });
    const size = d.engine.kv.blockBytes;
    const rowBytes = size / (2 * 2 * BLOCK); // default layout: 2 layers, K and V
    const rowAt = (block: number, layer: number, kv: number, slot: number): number =>
      block * size + ((layer * 2 + kv) * BLOCK + slot) * rowBytes;

    // One byte of a full block's row (layer 1, V, slot 2) is wrong.
    let plan = d.engine.kv.reserveImport('r', req.tokenIds)!;
    pull(p, d, prefill, plan);
    d.memory[rowAt(plan.localBlockIds[1]!, 1, 1, 2) + 1]! ^= 0x80;
    expect(d.engine.load().activeDecodeBlocks).toBe(3);
    expect(d.engine.kv.commitImport('r')).toBe(false);
    expect(d.engine.load()).toEqual(IDLE);
    expect(() => d.engine.kv.commitImport('r')).toThrow(expect.objectContaining({ cls: 'not_found' }));

    // The partial last block: a slot the prompt fills is checked, one past it is not.
    plan = d.engine.kv.reserveImport('r', req.tokenIds)!;
    expect(plan.blockIndices).toEqual([0, 1, 2]); // the failed commit registered nothing
    pull(p, d, prefill, plan);
    d.memory[rowAt(plan.localBlockIds[2]!, 1, 0, 1) + 3]! ^= 1;
    expect(d.engine.kv.commitImport('r')).toBe(false);
    plan = d.engine.kv.reserveImport('r', req.tokenIds)!;
    pull(p, d, prefill, plan);
    d.memory[rowAt(plan.localBlockIds[2]!, 0, 0, 3)]! ^= 1; // the prompt fills slots 0 and 1 only
    expect(d.engine.kv.commitImport('r')).toBe(true);
    const imported = await collect(d.engine.generate({ ...req, firstToken: prefill.firstToken }, signal()));
    expect([prefill.firstToken, ...tokensOf(imported)]).toEqual(expected);
    expect(p.engine.kv.release('r')).toBe(true);
    expect(p.engine.kv.release('r')).toBe(false);

    // Without an import the decode engine prefills prompt + first token itself.
    const local = await collect(
      d.engine.generate({ ...req, requestId: 'local', firstToken: prefill.firstToken }, signal()),
    );
    expect([prefill.firstToken, ...tokensOf(local)]).toEqual(expected);
    expect(local[0]).toMatchObject({ cachedTokens: 8, promptTokens: 10 }); // the two full blocks are cached now
    expectIdle(p, d, a);
  });

  it('fails a commit whose bytes never arrived, and one whose blocks came from another prompt', async () => {
    const [p, d] = [node(), node()];
    const req = request('r', range(40, 8), 4);
    await p.engine.kv.prefill(req, signal());
    d.engine.kv.reserveImport('r', req.tokenIds);
    expect(d.engine.kv.commitImport('r')).toBe(false); // all zeros
    const other = request('o', range(41, 8), 4);
    const otherPrefill = await p.engine.kv.prefill(other, signal());
    const plan = d.engine.kv.reserveImport('r', req.tokenIds)!;
    pull(p, d, otherPrefill, plan);
    expect(d.engine.kv.commitImport('r')).toBe(false);
    p.engine.kv.release('r');
    p.engine.kv.release('o');
    expectIdle(p, d);
  });

  it('prefills locally on the decode engine without an import, partly from its prefix cache', async () => {
    const [p, d, a] = [node(), node(), node()];
    const req = request('r', range(60, 14), 9, { sampling: { seed: 11 } });
    const expected = await aggregated(a, req);
    await collect(d.engine.generate(request('warm', range(60, 8), 2), signal()));
    const prefill = await p.engine.kv.prefill(req, signal());
    p.engine.kv.release('r');
    const local = await collect(d.engine.generate({ ...req, firstToken: prefill.firstToken }, signal()));
    expect([prefill.firstToken, ...tokensOf(local)]).toEqual(expected);
    expect(local[0]).toMatchObject({ cachedTokens: 8, promptTokens: 14 });
    expectIdle(p, d, a);
  });

  it('writes bytes for decoded tokens too: a follow-up turn pulls blocks the prefill engine filled while decoding', async () => {
    const [p, d, a] = [node(), node(), node()];
    const turn = request('t1', range(300, 6), 12, { sampling: { seed: 1 } });
    const answer = tokensOf(await collect(p.engine.generate(turn, signal()))); // aggregated, on P
    const next = request('t2', [...turn.tokenIds, ...answer, 5, 6, 7], 5, { sampling: { seed: 2 } });
    const run = await disaggregated(p, d, next);
    // P served the first 4 blocks (6 prompt + 10 decoded tokens) from its cache; D pulled and checked them all.
    expect(run.prefill.cachedTokens).toBe(16);
    expect(run.plan!.blockIndices).toEqual([0, 1, 2, 3, 4, 5]);
    expect(run.tokens).toEqual(await aggregated(a, next));
    expectIdle(p, d, a);
  });

  it('writes each prompt token row as kvRowValue of its prefix, position, token, layer and K/V', async () => {
    const p = node({ kvLayout: { numLayers: 3, kvHeads: 1, headDim: 2, dtypeBytes: 4 } });
    expect(p.engine.kv.layout).toEqual({ numLayers: 3, kvHeads: 1, headDim: 2, dtypeBytes: 4, blockSize: BLOCK });
    expect(p.engine.kv.blockBytes).toBe(3 * 2 * 8 * BLOCK);
    const req = request('r', range(5, 10), 3);
    const prefill = await p.engine.kv.prefill(req, signal());
    const view = new DataView(p.memory.buffer);
    const rowBytes = 8;
    for (let position = 0; position < 10; position++) {
      const block = Math.floor(position / BLOCK);
      const parent = block === 0 ? null : prefill.blockHashes[block - 1]!;
      const base = prefill.blockIds[block]! * p.engine.kv.blockBytes;
      for (let layer = 0; layer < 3; layer++) {
        for (const kv of [0, 1] as const) {
          const row = base + ((layer * 2 + kv) * BLOCK + (position % BLOCK)) * rowBytes;
          const expected = kvRowValue(parent, position, req.tokenIds[position]!, layer, kv);
          expect([view.getUint32(row, true), view.getUint32(row + 4, true)]).toEqual([expected, expected]);
        }
      }
    }
    p.engine.kv.release('r');
    expectIdle(p);
  });
});

describe('prefill pins', () => {
  it('pins the prompt blocks until release, counting them as used', async () => {
    const p = node();
    const prefill = await p.engine.kv.prefill(request('r', range(1, 13), 5), signal());
    expect(prefill.finishReason).toBeUndefined();
    expect(p.engine.kv.pinned()).toEqual({ requests: 1, blocks: 4 });
    expect(p.engine.load()).toMatchObject({ activeDecodeBlocks: 4, kvUsage: 4 / 64, runningRequests: 0 });
    // The same prompt twice shares its full blocks: three shared, two partial ones.
    await p.engine.kv.prefill(request('s', range(1, 13), 5), signal());
    expect(p.engine.kv.pinned()).toEqual({ requests: 2, blocks: 5 });
    p.engine.checkInvariants();
    expect(p.engine.kv.release('r')).toBe(true);
    expect(p.engine.kv.release('s')).toBe(true);
    expect(p.engine.kv.release('nobody')).toBe(false);
    expectIdle(p);
  });

  it('keeps a pinned id reserved until release', async () => {
    const p = node();
    await p.engine.kv.prefill(request('r', range(1, 5), 5), signal());
    expect(() => p.engine.generate(request('r', [1, 2], 3), signal())).toThrow(/already running/);
    await expect(p.engine.kv.prefill(request('r', [1, 2], 3), signal())).rejects.toMatchObject({
      cls: 'invalid_argument',
      reason: 'duplicate_request_id',
    });
    expect(() => p.engine.kv.reserveImport('r', [1, 2])).toThrow(/already running/);
    p.engine.kv.release('r');
    await collect(p.engine.generate(request('r', [1, 2], 3), signal()));
    expectIdle(p);
  });

  it.each([
    ['max_tokens 1', {}, { maxTokens: 1, ignoreEos: true, stopTokenIds: [] }, 'length'],
    ['EOS', { eosProbability: 1 }, { maxTokens: 5, ignoreEos: false, stopTokenIds: [] }, 'stop'],
    [
      'a stop token id',
      { vocabRange: [500, 501] as [number, number] },
      { maxTokens: 5, ignoreEos: true, stopTokenIds: [500] },
      'stop',
    ],
  ])('pins nothing when the first token ends the request: %s', async (_, options, stop, reason) => {
    const p = node(options);
    const prefill = await p.engine.kv.prefill(request('r', range(1, 8), 5, { stop }), signal());
    expect(prefill).toMatchObject({ finishReason: reason, blockIds: [], promptTokens: 8 });
    expect(prefill.blockHashes).toHaveLength(2);
    expect(p.engine.kv.release('r')).toBe(false);
    // The decode side refuses to continue a finished request.
    expect(() =>
      p.engine.generate(request('d', range(1, 8), 5, { stop, firstToken: prefill.firstToken }), signal()),
    ).toThrow(expect.objectContaining({ reason: 'nothing_to_decode' }));
    expectIdle(p);
  });

  it('rejects and frees on abort before the first token, whether queued or computed but not yet delivered', async () => {
    const p = node({ speedup: 1 });
    const queued = new AbortController();
    const pending = p.engine.kv.prefill(request('q', range(1, 40), 5), queued.signal);
    queued.abort();
    await expect(pending).rejects.toMatchObject({ cls: 'cancelled', reason: 'request_cancelled' });
    // At real speed a pass takes tens of ms: abort while the engine paces it, the first token
    // sampled (and the prompt pinned) but not yet delivered.
    const late = new AbortController();
    const paced = p.engine.kv.prefill(request('l', range(1, 200), 5), late.signal);
    await new Promise((resolve) => setTimeout(resolve, 3));
    expect(p.engine.kv.pinned().requests).toBe(1);
    late.abort();
    await expect(paced).rejects.toMatchObject({ cls: 'cancelled' });
    await expect(p.engine.kv.prefill(request('a', [1], 5), AbortSignal.abort())).rejects.toMatchObject({
      cls: 'cancelled',
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expectIdle(p);
  });

  it('rejects invalid prefills as generate() throws, and fails them on close', async () => {
    const p = node({ contextLength: 32, speedup: 1 });
    await expect(p.engine.kv.prefill(request('r', [], 5), signal())).rejects.toMatchObject({ reason: 'empty_prompt' });
    await expect(p.engine.kv.prefill(request('r', range(1, 30), 5), signal())).rejects.toMatchObject({
      reason: 'context_length_exceeded',
    });
    await expect(p.engine.kv.prefill(request('r', [1, 2], 5, { firstToken: 7 }), signal())).rejects.toMatchObject({
      reason: 'first_token_on_prefill',
    });
    const pending = p.engine.kv.prefill(request('r', range(1, 16), 5), signal());
    pending.catch(() => {});
    await p.engine.close();
    await expect(pending).rejects.toMatchObject({ cls: 'unavailable' });
    await expect(p.engine.kv.prefill(request('s', [1], 5), signal())).rejects.toMatchObject({ cls: 'unavailable' });
  });
});

describe('KV imports', () => {
  it('returns undefined when the free blocks do not suffice, holding nothing', () => {
    const d = node({ totalKvBlocks: 4 });
    expect(d.engine.kv.reserveImport('big', range(1, 17))).toBeUndefined();
    expect(d.engine.kv.reserveImport('r', range(1, 12))).toMatchObject({ blockIndices: [0, 1, 2] });
    expect(d.engine.kv.reserveImport('s', range(100, 8))).toBeUndefined();
    d.engine.kv.cancelImport('r');
    expectIdle(d);
  });

  it('frees a reservation on cancelImport, committed or not, and ignores unknown ids', async () => {
    const [p, d] = [node(), node()];
    const req = request('r', range(1, 10), 4);
    const prefill = await p.engine.kv.prefill(req, signal());
    d.engine.kv.reserveImport('r', req.tokenIds);
    expect(d.engine.load().activeDecodeBlocks).toBe(3);
    d.engine.kv.cancelImport('r');
    expect(d.engine.load()).toEqual(IDLE);
    const plan = d.engine.kv.reserveImport('r', req.tokenIds)!;
    pull(p, d, prefill, plan);
    expect(d.engine.kv.commitImport('r')).toBe(true);
    expect(d.engine.kv.commitImport('r')).toBe(true); // idempotent
    d.engine.kv.cancelImport('r');
    d.engine.kv.cancelImport('r');
    d.engine.kv.cancelImport('nobody');
    p.engine.kv.release('r');
    expectIdle(p, d);
    // The committed blocks stay cached: a new import of the prompt pulls only the partial block.
    expect(d.engine.kv.reserveImport('again', req.tokenIds)).toMatchObject({ cachedBlocks: 2, blockIndices: [2] });
    d.engine.kv.cancelImport('again');
  });

  it('validates its arguments', async () => {
    const d = node();
    expect(() => d.engine.kv.reserveImport('r', [])).toThrow(expect.objectContaining({ cls: 'invalid_argument' }));
    expect(() => d.engine.kv.reserveImport('r', [1, -1])).toThrow(
      expect.objectContaining({ reason: 'invalid_token_id' }),
    );
    expect(() => d.engine.kv.commitImport('nobody')).toThrow(expect.objectContaining({ cls: 'not_found' }));
    d.engine.kv.reserveImport('r', [1, 2, 3]);
    expect(() => d.engine.kv.reserveImport('r', [1, 2, 3])).toThrow(
      expect.objectContaining({ reason: 'duplicate_request_id' }),
    );
    // An import not yet committed keeps its id; a committed one is taken only by a request with a first token and the same prompt.
    expect(() => d.engine.generate(request('r', [1, 2, 3], 4, { firstToken: 9 }), signal())).toThrow(/already running/);
    expect(d.engine.kv.commitImport('r')).toBe(false); // nothing was written
    expect(() => d.engine.generate(request('x', [1, 2, 3], 4, { firstToken: -3 }), signal())).toThrow(
      expect.objectContaining({ reason: 'invalid_token_id', param: 'first_token' }),
    );
    expectIdle(d);
  });

  it('rejects a decode request that lacks a first token, or whose prompt differs from the import (freeing it)', async () => {
    const [p, d] = [node(), node()];
    const req = request('r', range(1, 6), 4);
    const prefill = await p.engine.kv.prefill(req, signal());
    const plan = d.engine.kv.reserveImport('r', req.tokenIds)!;
    pull(p, d, prefill, plan);
    p.engine.kv.release('r');
    expect(d.engine.kv.commitImport('r')).toBe(true);
    expect(() => d.engine.generate(req, signal())).toThrow(/already running/);
    expect(() =>
      d.engine.generate({ ...req, tokenIds: range(2, 6), firstToken: prefill.firstToken }, signal()),
    ).toThrow(expect.objectContaining({ reason: 'import_mismatch' }));
    // Nothing else would take the mismatched import: it is freed, and the request prefills locally.
    const decoded = await collect(d.engine.generate({ ...req, firstToken: prefill.firstToken }, signal()));
    expect(tokensOf(decoded)).toHaveLength(3);
    expectIdle(p, d);
  });

  it('frees an imported request cancelled before or while it decodes', async () => {
    const [p, d] = [node(), node({ speedup: 100 })];
    const req = request('r', range(1, 10), 200);
    const prefill = await p.engine.kv.prefill(req, signal());
    pull(p, d, prefill, d.engine.kv.reserveImport('r', req.tokenIds)!);
    p.engine.kv.release('r');
    d.engine.kv.commitImport('r');
    const controller = new AbortController();
    const outputs: EngineOutput[] = [];
    for await (const output of d.engine.generate({ ...req, firstToken: prefill.firstToken }, controller.signal)) {
      outputs.push(output);
      if (outputs.length === 2) controller.abort();
    }
    expect(outputs.at(-1)).toEqual({ tokenIds: [], finishReason: 'cancelled' });
    expectIdle(p, d);
    // Cancelled soon after it starts.
    const again = await p.engine.kv.prefill({ ...req, requestId: 's' }, signal());
    pull(p, d, again, d.engine.kv.reserveImport('s', req.tokenIds)!);
    p.engine.kv.release('s');
    d.engine.kv.commitImport('s');
    const stream = d.engine.generate({ ...req, requestId: 's', firstToken: again.firstToken }, AbortSignal.timeout(1));
    expect((await collect(stream)).at(-1)!.finishReason).toBe('cancelled');
    expectIdle(p, d);
    // Cancelled before it was even asked for: the committed import goes too.
    const third = await p.engine.kv.prefill({ ...req, requestId: 'u' }, signal());
    pull(p, d, third, d.engine.kv.reserveImport('u', req.tokenIds)!);
    p.engine.kv.release('u');
    d.engine.kv.commitImport('u');
    const aborted = d.engine.generate({ ...req, requestId: 'u', firstToken: third.firstToken }, AbortSignal.abort());
    expect(await collect(aborted)).toEqual([{ tokenIds: [], finishReason: 'cancelled' }]);
    expectIdle(p, d);
  });
});

describe('kv memory attachment', () => {
  it('refuses memory that is too small, a second attachment, and one after the first request', async () => {
    const e = createMockerEngine({ speedup: 1e6, blockSize: BLOCK, totalKvBlocks: 8 });
    started.push(e);
    expect(e.kv.blockBytes).toBe((16 * 1024) / 4); // the default layout: 1 KiB per token
    expect(() => e.kv.attachMemory(new Uint8Array(8 * e.kv.blockBytes - 1))).toThrow(
      expect.objectContaining({ reason: 'kv_memory_too_small' }),
    );
    e.kv.attachMemory(new Uint8Array(8 * e.kv.blockBytes));
    expect(() => e.kv.attachMemory(new Uint8Array(8 * e.kv.blockBytes))).toThrow(
      expect.objectContaining({ reason: 'kv_memory_attached' }),
    );
    const late = createMockerEngine({ speedup: 1e6, blockSize: BLOCK, totalKvBlocks: 8 });
    started.push(late);
    await collect(late.generate(request('r', [1, 2, 3, 4, 5], 2), signal()));
    expect(() => late.kv.attachMemory(new Uint8Array(8 * late.kv.blockBytes))).toThrow(
      expect.objectContaining({ reason: 'kv_cache_in_use' }),
    );
  });

  it('runs disaggregated without memory too: nothing is written or checked', async () => {
    const engines = [0, 1, 2].map(() => {
      const engine = createMockerEngine({ speedup: 1e6, blockSize: BLOCK, totalKvBlocks: 64 });
      started.push(engine);
      return { engine, memory: new Uint8Array(0) };
    });
    const [p, d, a] = engines as [Node, Node, Node];
    const req = request('r', range(3, 11), 7, { sampling: { seed: 2 } });
    const prefill = await p.engine.kv.prefill(req, signal());
    const plan = d.engine.kv.reserveImport('r', req.tokenIds)!;
    p.engine.kv.release('r');
    expect(d.engine.kv.commitImport('r')).toBe(true);
    const decoded = await collect(d.engine.generate({ ...req, firstToken: prefill.firstToken }, signal()));
    expect(plan.blockIndices).toEqual([0, 1, 2]);
    expect([prefill.firstToken, ...tokensOf(decoded)]).toEqual(await aggregated(a, req));
    expectIdle(p, d, a);
  });
});
