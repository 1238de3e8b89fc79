// Property test of the mocker core: random workloads on small block pools (so preemption
// and eviction happen often) must keep the bookkeeping consistent after every operation,
// leak nothing, honour max_tokens, keep the KV event stream consistent with the cache, and
// produce for each request exactly the tokens it would produce alone.
import type { KvEvent } from '@armature/kv';
import { ArmatureError } from '@armature/runtime';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EngineOutput, EngineRequest } from '../types.js';
import { compileMockerOptions, type MockerOptions } from './options.js';
import { MockerCore } from './scheduler.js';

const EOS = 199999;

const configArb = fc.record({
  blockSize: fc.constantFrom(1, 2, 4, 8),
  totalKvBlocks: fc.integer({ min: 2, max: 24 }),
  maxNumSeqs: fc.integer({ min: 1, max: 6 }),
  maxNumBatchedTokens: fc.integer({ min: 1, max: 48 }),
  eosProbability: fc.constantFrom(0, 0.05, 0.3),
  enablePrefixCaching: fc.boolean(),
});

const addArb = fc.record({
  kind: fc.constant('add' as const),
  base: fc.integer({ min: 0, max: 2 }),
  sharedTokens: fc.integer({ min: 0, max: 24 }),
  ownTokens: fc.integer({ min: 0, max: 16 }),
  maxTokens: fc.integer({ min: 1, max: 24 }),
  ignoreEos: fc.boolean(),
  seed: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
  stopOnToken: fc.boolean(),
});
const stepArb = fc.record({ kind: fc.constant('step' as const), count: fc.integer({ min: 1, max: 4 }) });
const cancelArb = fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() });
const commandsArb = fc.array(
  fc.oneof({ arbitrary: addArb, weight: 3 }, { arbitrary: stepArb, weight: 4 }, { arbitrary: cancelArb, weight: 1 }),
  {
    maxLength: 40,
  },
);

interface Tracked {
  request: EngineRequest;
  outputs: EngineOutput[];
  cancelled: boolean;
  finished: boolean;
}

function soloTokens(options: MockerOptions, request: EngineRequest): number[] {
  const solo = new MockerCore(
    compileMockerOptions({ ...options, totalKvBlocks: 4096, maxNumSeqs: 1, maxNumBatchedTokens: 8192 }),
  );
  solo.add(request, 0);
  const tokens: number[] = [];
  while (solo.hasWork()) for (const { output } of solo.step(0).outputs) tokens.push(...output.tokenIds);
  return tokens;
}

describe('MockerCore under random workloads', () => {
  it('keeps its invariants, leaks no block and honours max_tokens', () => {
    let preemptions = 0;
    let prefixHits = 0;
    let rejections = 0;
    fc.assert(
      fc.property(configArb, commandsArb, (config, commands) => {
        const options: MockerOptions = { ...config, vocabRange: [256, 300] };
        const events: KvEvent[] = [];
        const mocker = new MockerCore(compileMockerOptions(options), {
          onKvEvents: (batch) => {
            expect(batch.events.length).toBeGreaterThan(0);
            events.push(...batch.events);
          },
        });
        const tracked: Tracked[] = [];
        const byId = new Map<string, Tracked>();
        let now = 0;

        const step = (): void => {
          const result = mocker.step(now);
          now += result.durationMs;
          preemptions += result.preempted.length;
          // A pass that had to preempt admits nobody, so its victims are still waiting.
          for (const id of result.preempted) expect(mocker.stateOf(id)).toBe('waiting');
          expect(result.prefillTokens + result.decodeSequences).toBeLessThanOrEqual(config.maxNumBatchedTokens);
          for (const { requestId, output } of result.outputs) {
            const t = byId.get(requestId)!;
            expect(t.finished || t.cancelled).toBe(false);
            t.outputs.push(output);
            if (output.finishReason) t.finished = true;
          }
        };

        for (const command of commands) {
          if (command.kind === 'add') {
            const shared = Array.from({ length: command.sharedTokens }, (_, i) => 1000 * (command.base + 1) + i);
            const own = Array.from({ length: command.ownTokens }, (_, i) => 50_000 + 100 * tracked.length + i);
            const tokenIds = [...shared, ...own];
            const request: EngineRequest = {
              requestId: `r${tracked.length}`,
              tokenIds,
              sampling: command.seed === undefined ? {} : { seed: command.seed },
              stop: {
                maxTokens: command.maxTokens,
                ignoreEos: command.ignoreEos,
                stopTokenIds: command.stopOnToken ? [260] : [],
              },
            };
            try {
              mocker.add(request, now);
            } catch (err) {
              expect(err).toBeInstanceOf(ArmatureError);
              const fits =
                Math.ceil((tokenIds.length + command.maxTokens - 1) / config.blockSize) <= config.totalKvBlocks;
              expect(tokenIds.length === 0 || !fits).toBe(true);
              rejections++;
              continue;
            }
            const t: Tracked = { request, outputs: [], cancelled: false, finished: false };
            tracked.push(t);
            byId.set(request.requestId, t);
          } else if (command.kind === 'step') {
            for (let i = 0; i < command.count && mocker.hasWork(); i++) {
              step();
              mocker.checkInvariants();
            }
          } else if (tracked.length > 0) {
            const t = tracked[command.pick % tracked.length]!;
            const wasLive = !t.finished && !t.cancelled;
            expect(mocker.cancel(t.request.requestId)).toBe(wasLive);
            if (wasLive) t.cancelled = true;
          }
          mocker.checkInvariants();
        }

        for (let guard = 0; mocker.hasWork(); guard++) {
          expect(guard).toBeLessThan(20_000);
          step();
          mocker.checkInvariants();
        }
        mocker.flush(now);

        // Nothing leaks.
        expect(mocker.blocks.usedBlocks).toBe(0);
        expect(mocker.blocks.freeBlocks).toBe(config.totalKvBlocks);
        expect(mocker.load()).toEqual({
          activeDecodeBlocks: 0,
          activePrefillTokens: 0,
          waitingRequests: 0,
          runningRequests: 0,
          kvUsage: 0,
        });

        // The event stream describes the cache.
        const live = new Set<bigint>();
        for (const event of events) {
          if (event.type === 'BlockStored') for (const h of event.blockHashes) live.add(h);
          if (event.type === 'BlockRemoved') for (const h of event.blockHashes) expect(live.delete(h)).toBe(true);
        }
        const snapshot = mocker.kvSnapshot().flatMap((e) => (e.type === 'BlockStored' ? e.blockHashes : []));
        expect(new Set(snapshot)).toEqual(live);
        expect(snapshot.length).toBeLessThanOrEqual(config.totalKvBlocks);

        // Every request ended once, within its limits, with the tokens it makes alone.
        for (const t of tracked) {
          const tokens = t.outputs.flatMap((o) => o.tokenIds);
          const { maxTokens, ignoreEos, stopTokenIds } = t.request.stop;
          expect(tokens.length).toBeLessThanOrEqual(maxTokens);
          if (t.cancelled) continue;
          expect(t.finished).toBe(true);
          const first = t.outputs[0]!;
          expect(first.promptTokens).toBe(t.request.tokenIds.length);
          expect(first.cachedTokens! % config.blockSize).toBe(0);
          expect(first.cachedTokens!).toBeLessThan(t.request.tokenIds.length);
          if (first.cachedTokens! > 0) prefixHits++;
          const reason = t.outputs.at(-1)!.finishReason;
          const last = tokens.at(-1)!;
          if (reason === 'length') expect(tokens.length).toBe(maxTokens);
          else {
            expect(reason).toBe('stop');
            expect((!ignoreEos && last === EOS) || stopTokenIds.includes(last)).toBe(true);
          }
          expect(tokens).toEqual(soloTokens(options, t.request));
        }
      }),
      { numRuns: 300 },
    );
    // The workloads did exercise the hard paths.
    expect(preemptions).toBeGreaterThan(0);
    expect(prefixHits).toBeGreaterThan(0);
    expect(rejections).toBeGreaterThan(0);
  });
});
