import { describe, expect, it } from 'vitest';
import { createPolicy } from '../index.js';
import { routeInput, tally, testEnv, worker } from '../test-fixtures.js';
import { SCORERS, WEIGHTED_SCORERS_DEFAULTS, compileWeightedScorersParams, weightedScores } from './index.js';

describe('weighted-scorers scorers', () => {
  it('prefix: cached blocks over prompt blocks, in any tier; 0 for an empty prompt', () => {
    const ws = [worker('a'), worker('b', { overlap: { device: 2, host: 1 } }), worker('c', { overlap: { disk: 8 } })];
    expect(SCORERS.prefix.score(ws, routeInput(8))).toEqual([0, 3 / 8, 1]);
    expect(SCORERS.prefix.score(ws, routeInput(0))).toEqual([0, 0, 0]);
  });

  it('queue: (maxQ − q) / (maxQ − minQ) over waiting plus tracked requests; 1 when all equal', () => {
    const ws = [
      worker('a', { published: { waitingRequests: 4 } }),
      worker('b', { published: { waitingRequests: 1 }, tracked: { requests: 1 } }),
      worker('c', { published: undefined, tracked: { requests: 0 } }),
    ];
    expect(SCORERS.queue.score(ws, routeInput(1))).toEqual([0, 0.5, 1]);
    expect(SCORERS.queue.score([worker('a'), worker('b')], routeInput(1))).toEqual([1, 1]);
  });

  it('kv-usage: 1 − published usage; 1 when nothing published', () => {
    const ws = [worker('a', { published: { kvUsage: 0.25 } }), worker('b', { published: undefined })];
    expect(SCORERS['kv-usage'].score(ws, routeInput(1))).toEqual([0.75, 1]);
  });
});

describe('weighted-scorers policy', () => {
  it('sums weight × clamped score', () => {
    const input = routeInput(4);
    const ws = [
      worker('a', { overlap: { device: 4 }, published: { waitingRequests: 2, kvUsage: 0.5 } }),
      worker('b', { published: { kvUsage: 0.1 } }),
      // An overlap past the prompt and a usage above 1 (bad reports) are clamped to [0, 1].
      worker('c', { overlap: { device: 8 }, published: { waitingRequests: 1, kvUsage: 1.5 } }),
    ];
    // a: 3·1 + 2·0 + 2·0.5 = 4; b: 0 + 2·1 + 2·0.9 = 3.8; c: 3·1 + 2·0.5 + 2·0 = 4
    const totals = weightedScores(ws, input, WEIGHTED_SCORERS_DEFAULTS);
    expect(totals.map((t) => Number(t.toFixed(12)))).toEqual([4, 3.8, 4]);
    const custom = compileWeightedScorersParams({ weights: { prefix: 0, 'kv-usage': 1 } });
    expect(custom.weights).toEqual({ prefix: 0, queue: 2, 'kv-usage': 1 });
    // a: 0 + 0 + 0.5; b: 2 + 0.9; c: 1 + 0
    expect(weightedScores(ws, input, custom).map((t) => Number(t.toFixed(12)))).toEqual([0.5, 2.9, 1]);
  });

  it('picks the highest total, ties at random', () => {
    const input = routeInput(4);
    const cached = worker('cached', { overlap: { device: 4 }, published: { waitingRequests: 1 } });
    const idle = worker('idle');
    const p = createPolicy('weighted-scorers', {}, testEnv(8));
    // cached: 3 + 0 + 2 = 5; idle: 0 + 2 + 2 = 4
    expect(p.choose([cached, idle], input).worker.instanceId).toBe('cached');
    const queueOnly = createPolicy('weighted-scorers', { weights: { prefix: 0 } }, testEnv(8));
    expect(queueOnly.choose([cached, idle], input).worker.instanceId).toBe('idle');
    const counts = tally(
      300,
      () => p.choose([worker('x'), worker('y'), worker('z', { published: { kvUsage: 0.9 } })], input).worker,
    );
    expect(counts.get('x')).toBeGreaterThan(100);
    expect(counts.get('y')).toBeGreaterThan(100);
    expect(counts.get('z')).toBeUndefined();
  });

  it('validates its parameters', () => {
    expect(compileWeightedScorersParams({})).toEqual(WEIGHTED_SCORERS_DEFAULTS);
    expect(() => createPolicy('weighted-scorers', { weights: { lora: 1 } })).toThrow(
      /weighted-scorers: unknown parameter "weights.lora"; known: prefix, queue, kv-usage/,
    );
    expect(() => createPolicy('weighted-scorers', { weights: { queue: -1 } })).toThrow(
      /weighted-scorers: weights.queue must be a number >= 0/,
    );
    expect(() => createPolicy('weighted-scorers', { weights: { prefix: 0, queue: 0, 'kv-usage': 0 } })).toThrow(
      /at least one scorer/,
    );
    expect(() => createPolicy('weighted-scorers', { scorers: ['prefix'] })).toThrow(/unknown parameter "scorers"/);
    expect(() => createPolicy('weighted-scorers', { weights: [] })).toThrow(/weights must be an object/);
  });
});
