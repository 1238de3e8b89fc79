import { describe, expect, it } from 'vitest';
import { createPolicy } from '../index.js';
import { routeInput, tally, testEnv, worker } from '../test-fixtures.js';
import { KV_DEFAULTS, compileKvParams, kvCost, kvCostTerms, softmaxWeights } from './index.js';

// Block size 16 throughout (the fixtures' card).
describe('kv cost', () => {
  it('is prompt blocks for prefill plus prompt blocks for decode on an idle worker with nothing cached', () => {
    expect(kvCostTerms(worker('a'), routeInput(10), KV_DEFAULTS)).toEqual({
      credit: 0,
      prefillBlocks: 10,
      decodeBlocks: 10,
      cost: 20,
    });
  });

  it('counts queued prefill tokens, active decode blocks, cache credit and shared prefixes', () => {
    const w = worker('a', {
      tracked: { prefillTokens: 64, decodeBlocks: 30 },
      published: { activePrefillTokens: 32, activeDecodeBlocks: 50 },
      overlap: { device: 4 },
      activePrefixBlocks: 3,
    });
    // prefill: max(64, 32) / 16 + max(10 - 4, 0) = 4 + 6; decode: max(30, 50) + (10 - 3) = 57
    expect(kvCostTerms(w, routeInput(10), KV_DEFAULTS)).toEqual({
      credit: 4,
      prefillBlocks: 10,
      decodeBlocks: 57,
      cost: 67,
    });
    // The published side can be the larger one, and may be missing.
    const published = worker('b', { tracked: { prefillTokens: 16 }, published: { activePrefillTokens: 48 } });
    expect(kvCostTerms(published, routeInput(2), KV_DEFAULTS).prefillBlocks).toBe(3 + 2);
    const silent = worker('c', { tracked: { prefillTokens: 16, decodeBlocks: 5 }, published: undefined });
    expect(kvCost(silent, routeInput(2), KV_DEFAULTS)).toBe(1 + 2 + 5 + 2);
  });

  it('credits cached blocks by tier (device 1, host 0.75, disk 0.25, remote 0 by default)', () => {
    const w = worker('a', { overlap: { device: 2, host: 4, disk: 4, remote: 8 } });
    const terms = kvCostTerms(w, routeInput(20), KV_DEFAULTS);
    expect(terms.credit).toBe(2 + 3 + 1 + 0);
    expect(terms.prefillBlocks).toBe(20 - 6);
    const custom = compileKvParams({ tierCredits: { host: 1, remote: 0.5 } });
    expect(custom.tierCredits).toEqual({ device: 1, host: 1, disk: 0.25, remote: 0.5 });
    expect(kvCostTerms(w, routeInput(20), custom).credit).toBe(2 + 4 + 1 + 4);
  });

  it('never lets the credit drive prefill below zero', () => {
    const w = worker('a', { overlap: { device: 12 } });
    expect(kvCostTerms(w, routeInput(10), KV_DEFAULTS).prefillBlocks).toBe(0);
  });

  it('scales prefill by prefillLoadScale', () => {
    const w = worker('a', { tracked: { prefillTokens: 32 }, overlap: { device: 2 } });
    // prefill 2 + 8 = 10, decode 10
    expect(kvCost(w, routeInput(10), compileKvParams({ prefillLoadScale: 2.5 }))).toBe(35);
    expect(kvCost(w, routeInput(10), compileKvParams({ prefillLoadScale: 0 }))).toBe(10);
  });
});

describe('kv policy', () => {
  it('picks the cheapest worker: the cached one unless its load outweighs the cache', () => {
    const p = createPolicy('kv', {}, testEnv());
    const input = routeInput(10);
    const cold = worker('cold');
    const warm = worker('warm', { overlap: { device: 8 } });
    expect(p.choose([cold, warm], input).worker.instanceId).toBe('warm'); // 20 vs 12
    const busyWarm = worker('warm', { overlap: { device: 8 }, published: { activeDecodeBlocks: 9 } });
    expect(p.choose([cold, busyWarm], input).worker.instanceId).toBe('cold'); // 20 vs 21
  });

  it('breaks a cost tie by the smaller index tree, then at random among equal trees', () => {
    const input = routeInput(10);
    const big = worker('big', { indexedBlocks: 500 });
    const small = worker('small', { indexedBlocks: 20 });
    const p = createPolicy('kv', {}, testEnv(11));
    for (let i = 0; i < 50; i++) expect(p.choose([big, small], input).worker.instanceId).toBe('small');
    // Costs within 1e-9 are a tie; a smaller tree does not beat a truly cheaper worker.
    const nearlyEqual = worker('near', { indexedBlocks: 500, overlap: { device: 1e-10 } });
    expect(p.choose([small, nearlyEqual], input).worker.instanceId).toBe('small');
    const cheaper = worker('cheaper', { indexedBlocks: 500, overlap: { device: 1 } });
    expect(p.choose([small, cheaper], input).worker.instanceId).toBe('cheaper');
    const twin = worker('twin', { indexedBlocks: 20 });
    const counts = tally(400, () => p.choose([big, small, twin], input).worker);
    expect(counts.get('small')).toBeGreaterThan(150);
    expect(counts.get('twin')).toBeGreaterThan(150);
    expect(counts.get('big')).toBeUndefined();
  });

  it('does not filter busy workers: the router does, the policy only ranks', () => {
    const p = createPolicy('kv', {}, testEnv());
    const swamped = worker('swamped', { published: { kvUsage: 1, waitingRequests: 100, activeDecodeBlocks: 999 } });
    expect(p.choose([swamped], routeInput(4)).worker.instanceId).toBe('swamped');
  });

  it('samples a softmax over normalised costs when temperature > 0', () => {
    const input = routeInput(10);
    // costs 20, 15, 10
    const ws = [worker('a'), worker('b', { overlap: { device: 5 } }), worker('c', { overlap: { device: 10 } })];
    const temperature = 0.5;
    const weights = softmaxWeights([20, 15, 10], temperature);
    expect(weights).toEqual([Math.exp(-2), Math.exp(-1), 1]);
    const total = weights.reduce((s, w) => s + w, 0);
    const p = createPolicy('kv', { temperature }, testEnv(7));
    const draws = 6000;
    const counts = tally(draws, () => p.choose(ws, input).worker);
    ['a', 'b', 'c'].forEach((id, i) => {
      const expected = weights[i]! / total; // 0.090, 0.245, 0.665
      expect(Math.abs((counts.get(id) ?? 0) / draws - expected)).toBeLessThan(0.025);
    });
  });

  it('samples uniformly when every cost is equal at temperature > 0', () => {
    expect(softmaxWeights([4, 4, 4], 1)).toEqual([1, 1, 1]);
    const p = createPolicy('kv', { temperature: 1 }, testEnv(9));
    const counts = tally(3000, () => p.choose([worker('a'), worker('b'), worker('c')], routeInput(3)).worker);
    for (const id of ['a', 'b', 'c']) expect(counts.get(id)).toBeGreaterThan(850);
  });

  it('validates its parameters', () => {
    expect(compileKvParams({})).toEqual(KV_DEFAULTS);
    expect(() => createPolicy('kv', { temperature: -0.1 })).toThrow(/kv: temperature must be a number >= 0/);
    expect(() => createPolicy('kv', { prefillLoadScale: '2' })).toThrow(/kv: prefillLoadScale/);
    expect(() => createPolicy('kv', { prefillLoadScale: Infinity })).toThrow(/kv: prefillLoadScale/);
    expect(() => createPolicy('kv', { tierCredits: { host: -1 } })).toThrow(/kv: tierCredits.host must be/);
    expect(() => createPolicy('kv', { tierCredits: { gpu: 1 } })).toThrow(/kv: unknown parameter "tierCredits.gpu"/);
    expect(() => createPolicy('kv', { tierCredits: 1 })).toThrow(/kv: tierCredits must be an object/);
    expect(() => createPolicy('kv', { temprature: 1 })).toThrow(/kv: unknown parameter "temprature"/);
  });
});
