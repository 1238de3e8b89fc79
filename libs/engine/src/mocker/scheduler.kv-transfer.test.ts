// The mocker core's disaggregation hooks: prefill pins, KV import reservations and ready
// imports, on their own and under random workloads. Two real cores, a prefill core P and a
// decode core D, each with its KV bytes in memory; bytes move between them as a transfer
// library would move them.
import { ArmatureError } from '@armature/runtime';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EngineOutput, EngineRequest, PrefillResult } from '../types.js';
import { kvBlockBytes } from './kv-memory.js';
import { compileMockerOptions, type MockerOptions } from './options.js';
import { MockerCore, type MockerStep } from './scheduler.js';

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);
const EOS = 199999;
/** One 4-byte row per token, layer and K/V: bytes are checked, and cheap. */
const TINY_LAYOUT = { numLayers: 1, kvHeads: 1, headDim: 1, dtypeBytes: 4 };

interface Node {
  core: MockerCore;
  memory: Uint8Array;
}

function node(options: MockerOptions = {}, attach = true): Node {
  const core = new MockerCore(
    compileMockerOptions({ blockSize: 4, totalKvBlocks: 64, kvLayout: TINY_LAYOUT, ...options }),
  );
  const memory = new Uint8Array(core.config.totalKvBlocks * kvBlockBytes(core.config.kvLayout));
  if (attach) core.attachMemory(memory);
  return { core, memory };
}

function request(
  requestId: string,
  tokenIds: number[],
  maxTokens: number,
  extra: Partial<EngineRequest> = {},
): EngineRequest {
  return { requestId, tokenIds, sampling: {}, stop: { maxTokens, ignoreEos: true, stopTokenIds: [] }, ...extra };
}

/** Steps until idle; every request's outputs, prefill results, and the steps. */
function drain(core: MockerCore): {
  outputs: Map<string, EngineOutput[]>;
  prefills: Map<string, PrefillResult>;
  steps: MockerStep[];
} {
  const outputs = new Map<string, EngineOutput[]>();
  const prefills = new Map<string, PrefillResult>();
  const steps: MockerStep[] = [];
  for (let i = 0; core.hasWork(); i++) {
    if (i > 100_000) throw new Error('no progress');
    const step = core.step(0);
    core.checkInvariants();
    steps.push(step);
    for (const { requestId, output, prefill } of step.outputs) {
      outputs.set(requestId, [...(outputs.get(requestId) ?? []), output]);
      if (prefill) prefills.set(requestId, prefill);
    }
  }
  return { outputs, prefills, steps };
}

const tokensOf = (outputs: EngineOutput[] | undefined): number[] => (outputs ?? []).flatMap((o) => o.tokenIds);

function soloTokens(options: MockerOptions, req: EngineRequest): number[] {
  const solo = new MockerCore(
    compileMockerOptions({ ...options, totalKvBlocks: 4096, maxNumSeqs: 1, maxNumBatchedTokens: 8192 }),
  );
  const { firstToken: _, ...aggregated } = req;
  solo.add(aggregated, 0);
  return tokensOf(drain(solo).outputs.get(req.requestId));
}

/** Copies a pinned prefill's planned blocks from P's memory into D's. */
function pull(p: Node, d: Node, prefill: PrefillResult, blockIndices: number[], localBlockIds: number[]): void {
  const size = kvBlockBytes(p.core.config.kvLayout);
  blockIndices.forEach((index, i) => {
    const from = prefill.blockIds[index]! * size;
    d.memory.set(p.memory.subarray(from, from + size), localBlockIds[i]! * size);
  });
}

/** An import committed without bytes (no memory attached on D): for scheduling tests. */
function importFor(d: Node, req: EngineRequest): void {
  expect(d.core.reserveImport(req.requestId, req.tokenIds, 0)).toBeDefined();
  expect(d.core.commitImport(req.requestId, 0)).toBe(true);
}

describe('MockerCore disaggregation hooks', () => {
  it('reports a prefill on its one output and pins its blocks', () => {
    const p = node();
    p.core.add(request('p', range(1, 10), 6), 0, { prefillOnly: true });
    expect(p.core.load().activePrefillTokens).toBe(10);
    const { outputs, prefills } = drain(p.core);
    const prefill = prefills.get('p')!;
    expect(outputs.get('p')).toEqual([{ tokenIds: [prefill.firstToken], cachedTokens: 0, promptTokens: 10 }]);
    expect(prefill.firstToken).toBe(soloTokens({}, request('p', range(1, 10), 6))[0]);
    expect(p.core.stateOf('p')).toBe('pinned');
    expect(p.core.has('p')).toBe(false);
    expect(p.core.cancel('p')).toBe(false); // a pin is released, not cancelled
    expect(p.core.load()).toMatchObject({ activeDecodeBlocks: 3, runningRequests: 0, waitingRequests: 0 });
    expect(p.core.release('p', 0)).toBe(true);
    expect(p.core.stateOf('p')).toBeUndefined();
    expect(p.core.blocks.usedBlocks).toBe(0);
    p.core.checkInvariants();
  });

  it('runs ready imports ahead of waiting requests, within max_num_seqs', () => {
    const d = node({ maxNumSeqs: 1 }, false);
    d.core.add(request('run', range(1, 4), 4), 0);
    d.core.step(0);
    d.core.add(request('wait', range(100, 4), 3), 0);
    const imported = request('imp', range(200, 6), 3, { sampling: { seed: 4 } });
    const [first, ...rest] = soloTokens({}, imported);
    importFor(d, imported);
    expect(d.core.stateOf('imp')).toBe('importing');
    d.core.add({ ...imported, firstToken: first! }, 0);
    expect(d.core.stateOf('imp')).toBe('waiting');
    expect(d.core.load()).toMatchObject({ runningRequests: 1, waitingRequests: 2, activePrefillTokens: 4 });
    d.core.checkInvariants();
    const { outputs, steps } = drain(d.core);
    const firstStep = (id: string): number => steps.findIndex((s) => s.outputs.some((o) => o.requestId === id));
    expect(firstStep('imp')).toBeLessThan(firstStep('wait'));
    expect(tokensOf(outputs.get('imp'))).toEqual(rest);
    expect(outputs.get('imp')![0]).toMatchObject({ cachedTokens: 6, promptTokens: 6 });
    // It decoded at once: no prefill tokens before its first output.
    expect(steps[firstStep('imp')]).toMatchObject({ prefillTokens: 0, decodeSequences: 1 });
    expect(d.core.blocks.usedBlocks).toBe(0);
  });

  it('stalls while pins or reservations hold the blocks it needs, and resumes when they let go', () => {
    const p = node({ totalKvBlocks: 4 });
    p.core.add(request('pin', range(1, 12), 2), 0, { prefillOnly: true });
    drain(p.core);
    p.core.add(request('r', range(100, 8), 2), 0);
    const stalled = p.core.step(0);
    expect(stalled).toMatchObject({ durationMs: 0, outputs: [] });
    expect(p.core.hasWork()).toBe(false);
    expect(p.core.stateOf('r')).toBe('waiting');
    p.core.checkInvariants();
    expect(p.core.release('pin', 0)).toBe(true);
    expect(p.core.hasWork()).toBe(true);
    expect(tokensOf(drain(p.core).outputs.get('r'))).toHaveLength(2);

    const plan = p.core.reserveImport('imp', range(500, 13), 0)!;
    expect(plan.blockIndices).toEqual([0, 1, 2, 3]);
    p.core.add(request('s', range(900, 3), 2), 0);
    p.core.step(0);
    expect(p.core.hasWork()).toBe(false);
    p.core.cancelImport('imp', 0);
    expect(tokensOf(drain(p.core).outputs.get('s'))).toHaveLength(2);
    expect(p.core.blocks.usedBlocks).toBe(0);
  });

  it('with nothing running, makes the newest ready import give way so the oldest can grow', () => {
    const d = node({ totalKvBlocks: 4 }, false);
    const a = request('a', range(1, 8), 4, { sampling: { seed: 1 } });
    const b = request('b', range(50, 8), 4, { sampling: { seed: 2 } });
    const [aFirst, ...aRest] = soloTokens({}, a);
    const [bFirst, ...bRest] = soloTokens({}, b);
    importFor(d, a);
    importFor(d, b);
    d.core.add({ ...a, firstToken: aFirst! }, 0);
    d.core.add({ ...b, firstToken: bFirst! }, 0);
    const { outputs, steps } = drain(d.core);
    expect(steps[0]!.preempted).toEqual(['b']);
    expect(tokensOf(outputs.get('a'))).toEqual(aRest);
    expect(tokensOf(outputs.get('b'))).toEqual(bRest);
    // b recomputed its prompt and first token once it had given way (it still reports the
    // prompt as imported: cachedTokens is fixed when a request is first admitted).
    expect(steps.reduce((n, s) => n + s.prefillTokens, 0)).toBeGreaterThan(0);
    expect(outputs.get('b')![0]!.cachedTokens).toBe(8);
    expect(d.core.blocks.usedBlocks).toBe(0);
  });

  it('preempts a running imported request like any other: it recomputes and still matches', () => {
    const d = node({ totalKvBlocks: 6, maxNumSeqs: 2 }, false);
    const old = request('old', range(1, 8), 12, { sampling: { seed: 1 } });
    const imported = request('imp', range(50, 8), 12, { sampling: { seed: 2 } });
    const [first, ...rest] = soloTokens({}, imported);
    d.core.add(old, 0);
    const oldFirst = d.core.step(0).outputs[0]!.output.tokenIds;
    importFor(d, imported);
    d.core.add({ ...imported, firstToken: first! }, 0);
    const { outputs, steps } = drain(d.core);
    expect(steps.flatMap((s) => s.preempted)).toContain('imp');
    expect([...oldFirst, ...tokensOf(outputs.get('old'))]).toEqual(soloTokens({}, old));
    expect(tokensOf(outputs.get('imp'))).toEqual(rest);
    expect(d.core.blocks.usedBlocks).toBe(0);
  });

  it('refuses importPrefix (which keeps no bytes) once memory is attached', () => {
    expect(() => node().core.importPrefix(range(1, 8), 0)).toThrow(/no KV bytes/);
  });
});

const configArb = fc.record({
  blockSize: fc.constantFrom(1, 2, 4, 8),
  prefillBlocks: fc.integer({ min: 4, max: 16 }),
  decodeBlocks: fc.integer({ min: 3, max: 16 }),
  maxNumSeqs: fc.integer({ min: 1, max: 6 }),
  maxNumBatchedTokens: fc.integer({ min: 1, max: 48 }),
  eosProbability: fc.constantFrom(0, 0.05, 0.3),
  enablePrefixCaching: fc.boolean(),
});

const requestFields = {
  base: fc.integer({ min: 0, max: 2 }),
  sharedTokens: fc.integer({ min: 0, max: 24 }),
  ownTokens: fc.integer({ min: 0, max: 16 }),
  maxTokens: fc.integer({ min: 1, max: 24 }),
  ignoreEos: fc.boolean(),
  seed: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
  stopOnToken: fc.boolean(),
};
const commandsArb = fc.array(
  fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('prefill' as const), ...requestFields }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('aggregated' as const), ...requestFields }), weight: 1 },
    {
      arbitrary: fc.record({
        kind: fc.constant('step' as const),
        onPrefill: fc.boolean(),
        count: fc.integer({ min: 1, max: 4 }),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('transfer' as const),
        pick: fc.nat(),
        mode: fc.constantFrom('import', 'import', 'local', 'corrupt', 'abandon'),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }), weight: 1 },
  ),
  { minLength: 5, maxLength: 50 },
);

interface Tracked {
  request: EngineRequest;
  /** Where the request runs now. */
  on: 'prefill' | 'pinned' | 'decode' | 'done';
  prefill?: PrefillResult;
  /** Output tokens, the prefill's first token included. */
  tokens: number[];
  cancelled: boolean;
}

describe('MockerCore disaggregated under random workloads', () => {
  it('moves checked bytes, leaks nothing, and produces what an aggregated run produces', () => {
    let imports = 0;
    let localPrefills = 0;
    let importedPreempted = 0;
    let rejectedImports = 0;
    fc.assert(
      fc.property(configArb, commandsArb, (config, commands) => {
        const { prefillBlocks, decodeBlocks, ...shared } = config;
        const options: MockerOptions = { ...shared, vocabRange: [256, 300], kvLayout: TINY_LAYOUT };
        const p = node({ ...options, totalKvBlocks: prefillBlocks });
        const d = node({ ...options, totalKvBlocks: decodeBlocks });
        const tracked: Tracked[] = [];
        const byId = new Map<string, Tracked>();
        const importedIds = new Set<string>();
        const check = (): void => {
          p.core.checkInvariants();
          d.core.checkInvariants();
        };

        /** Hands a pinned prefill to D: through an import (checked, maybe corrupted or abandoned) or a local prefill. */
        const transfer = (t: Tracked, mode: 'import' | 'local' | 'corrupt' | 'abandon'): void => {
          const { requestId, tokenIds } = t.request;
          const prefill = t.prefill!;
          const plan = mode === 'local' ? undefined : d.core.reserveImport(requestId, tokenIds, 0);
          check();
          if (plan) {
            pull(p, d, prefill, plan.blockIndices, plan.localBlockIds);
            if (mode === 'abandon') {
              d.core.cancelImport(requestId, 0);
            } else {
              const blockBytes = kvBlockBytes(d.core.config.kvLayout);
              // Slot 0 of a pulled block always holds a prompt token: its K row is checked.
              if (mode === 'corrupt' && plan.localBlockIds.length > 0)
                d.memory[plan.localBlockIds[0]! * blockBytes]! ^= 1;
              const committed = d.core.commitImport(requestId, 0);
              expect(committed).toBe(mode !== 'corrupt' || plan.localBlockIds.length === 0);
              if (committed) {
                imports++;
                importedIds.add(requestId);
              } else rejectedImports++;
            }
          }
          expect(p.core.release(requestId, 0)).toBe(true);
          if (d.core.stateOf(requestId) !== 'importing') localPrefills++;
          d.core.add({ ...t.request, firstToken: prefill.firstToken }, 0);
          t.on = 'decode';
        };

        const step = (n: Node): void => {
          const result = n.core.step(0);
          for (const id of result.preempted) {
            expect(n.core.stateOf(id)).toBe('waiting');
            if (n === d && importedIds.has(id)) importedPreempted++;
          }
          for (const { requestId, output, prefill } of result.outputs) {
            const t = byId.get(requestId)!;
            expect(t.cancelled).toBe(false);
            expect(t.on).toBe(n === p ? 'prefill' : 'decode');
            t.tokens.push(...output.tokenIds);
            if (prefill) {
              expect(prefill.firstToken).toBe(output.tokenIds[0]);
              t.prefill = prefill;
              t.on = prefill.finishReason ? 'done' : 'pinned';
              expect(p.core.stateOf(requestId)).toBe(prefill.finishReason ? undefined : 'pinned');
            } else if (output.finishReason) t.on = 'done';
          }
        };

        for (const command of commands) {
          if (command.kind === 'prefill' || command.kind === 'aggregated') {
            const sharedTokens = range(1000 * (command.base + 1), command.sharedTokens);
            const own = range(50_000 + 100 * tracked.length, command.ownTokens);
            const req = request(`r${tracked.length}`, [...sharedTokens, ...own], command.maxTokens, {
              sampling: command.seed === undefined ? {} : { seed: command.seed },
              stop: {
                maxTokens: command.maxTokens,
                ignoreEos: command.ignoreEos,
                stopTokenIds: command.stopOnToken ? [260] : [],
              },
            });
            const prefillOnly = command.kind === 'prefill';
            try {
              // A request both sides can serve, as a router would send.
              const needs = Math.ceil((req.tokenIds.length + command.maxTokens - 1) / config.blockSize);
              if (needs > Math.min(prefillBlocks, decodeBlocks)) continue;
              (prefillOnly ? p : d).core.add(req, 0, { prefillOnly });
            } catch (err) {
              expect(err).toBeInstanceOf(ArmatureError);
              expect(req.tokenIds).toHaveLength(0);
              continue;
            }
            const t: Tracked = { request: req, on: prefillOnly ? 'prefill' : 'decode', tokens: [], cancelled: false };
            tracked.push(t);
            byId.set(req.requestId, t);
          } else if (command.kind === 'step') {
            const n = command.onPrefill ? p : d;
            for (let i = 0; i < command.count && n.core.hasWork(); i++) {
              step(n);
              check();
            }
          } else if (command.kind === 'transfer') {
            // The decode worker asks for the KV as soon as a prefill is done.
            while (!tracked.some((t) => t.on === 'pinned') && p.core.hasWork()) {
              step(p);
              check();
            }
            const pinned = tracked.filter((t) => t.on === 'pinned');
            if (pinned.length > 0) transfer(pinned[command.pick % pinned.length]!, command.mode);
          } else if (tracked.length > 0) {
            const t = tracked[command.pick % tracked.length]!;
            if (t.on === 'prefill' || t.on === 'decode') {
              expect((t.on === 'prefill' ? p : d).core.cancel(t.request.requestId)).toBe(true);
              t.cancelled = true;
              t.on = 'done';
            }
          }
          check();
        }

        // Finish: hand every pinned prefill over, then run both sides dry.
        for (let round = 0; round < 100_000; round++) {
          for (const t of tracked.filter((x) => x.on === 'pinned')) transfer(t, 'import');
          if (!p.core.hasWork() && !d.core.hasWork()) break;
          if (p.core.hasWork()) step(p);
          if (d.core.hasWork()) step(d);
          check();
        }
        for (const n of [p, d]) {
          expect(n.core.hasWork()).toBe(false);
          expect(n.core.blocks.usedBlocks).toBe(0);
          expect(n.core.pinned()).toEqual({ requests: 0, blocks: 0 });
          expect(n.core.load()).toMatchObject({ waitingRequests: 0, runningRequests: 0, activeDecodeBlocks: 0 });
        }
        for (const t of tracked) {
          if (t.cancelled) continue;
          expect(t.on).toBe('done');
          expect(t.tokens).toEqual(soloTokens(options, t.request));
          const last = t.tokens.at(-1)!;
          const { maxTokens, ignoreEos, stopTokenIds } = t.request.stop;
          expect(t.tokens.length === maxTokens || (!ignoreEos && last === EOS) || stopTokenIds.includes(last)).toBe(
            true,
          );
        }
      }),
      { numRuns: 200 },
    );
    expect(imports).toBeGreaterThan(0);
    expect(localPrefills).toBeGreaterThan(0);
    expect(rejectedImports).toBeGreaterThan(0);
    // Imported requests preempted while running are rarer (a unit test above covers them).
    expect(imports + importedPreempted).toBeGreaterThan(0);
  });
});
