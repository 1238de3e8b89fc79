import { describe, expect, it } from 'vitest';
import { createPolicy, POLICY_IDS } from './policies/index.js';
import type { WorkerView } from './types.js';
import { tally, testEnv, routeInput, worker as workerWith } from './policies/test-fixtures.js';

const worker = (id: string, decodeBlocks = 0, waiting = 0, trackedPrefill = 0): WorkerView =>
  workerWith(id, {
    published: { activeDecodeBlocks: decodeBlocks, waitingRequests: waiting },
    tracked: { prefillTokens: trackedPrefill },
  });
const input = routeInput(1);

describe('policies', () => {
  it('registers every policy by id', () => {
    expect([...POLICY_IDS].sort()).toEqual(
      ['cache-aware', 'kv', 'least-loaded', 'power-of-two', 'random', 'round-robin', 'weighted-scorers'].sort(),
    );
    for (const id of POLICY_IDS) expect(createPolicy(id, {}, testEnv()).id).toBe(id);
  });

  it('round-robin cycles through every worker in order', () => {
    const p = createPolicy('round-robin');
    const ws = [worker('b'), worker('a'), worker('c')];
    expect([0, 1, 2, 3].map(() => p.choose(ws, input).worker.instanceId)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('round-robin orders data-parallel ranks of one instance by rank', () => {
    const p = createPolicy('round-robin');
    const ws = [workerWith('a', { dpRank: 1 }), workerWith('a', { dpRank: 0 })];
    expect([0, 1].map(() => p.choose(ws, input).worker.dpRank)).toEqual([0, 1]);
  });

  it('decisions carry only the worker (the router reports the overlap)', () => {
    for (const id of ['round-robin', 'random', 'least-loaded']) {
      expect(Object.keys(createPolicy(id).choose([worker('a')], input))).toEqual(['worker']);
    }
  });

  it('random uses the injected random source and reaches every worker', () => {
    const ws = [worker('a'), worker('b'), worker('c')];
    const p = createPolicy('random', {}, { random: () => 0.5, now: () => 0 });
    expect(p.choose(ws, input).worker.instanceId).toBe('b');
    const seeded = createPolicy('random', {}, testEnv(3));
    const counts = tally(3000, () => seeded.choose(ws, input).worker);
    for (const id of ['a', 'b', 'c']) expect(counts.get(id)).toBeGreaterThan(850);
  });

  it('least-loaded picks the lightest worker, counting published and tracked load', () => {
    const p = createPolicy('least-loaded');
    expect(p.choose([worker('a', 10), worker('b', 3), worker('c', 7)], input).worker.instanceId).toBe('b');
    expect(p.choose([worker('a', 10), worker('b', 1, 1)], input).worker.instanceId).toBe('b'); // 1 + 8 < 10
    expect(p.choose([worker('a', 10), worker('b', 3, 2)], input).worker.instanceId).toBe('a');
    expect(p.choose([worker('a', 0, 0, 160), worker('b', 5)], input).worker.instanceId).toBe('b');
    // A worker that has published nothing yet counts only what the router tracks.
    const silent = workerWith('s', { published: undefined, tracked: { decodeBlocks: 2 } });
    expect(p.choose([worker('a', 3), silent], input).worker.instanceId).toBe('s');
  });

  it('least-loaded breaks ties at random', () => {
    const p = createPolicy('least-loaded', {}, testEnv(5));
    const counts = tally(200, () => p.choose([worker('a', 4), worker('b', 4), worker('c', 9)], input).worker);
    expect(counts.get('a')).toBeGreaterThan(60);
    expect(counts.get('b')).toBeGreaterThan(60);
    expect(counts.get('c')).toBeUndefined();
  });

  it('rejects unknown ids, unknown parameters and bad values', () => {
    expect(() => createPolicy('nope')).toThrow(/unknown routing policy/);
    expect(() => createPolicy('least-loaded', { waitingWeight: -1 })).toThrow(/least-loaded: waitingWeight/);
    expect(() => createPolicy('least-loaded', { waitingWeight: 'x' })).toThrow(/waitingWeight/);
    expect(() => createPolicy('least-loaded', { waitingWeigth: 4 })).toThrow(
      /least-loaded: unknown parameter "waitingWeigth"/,
    );
    expect(() => createPolicy('round-robin', { step: 2 })).toThrow(/round-robin: unknown parameter "step"/);
    expect(() => createPolicy('random', { seed: 2 })).toThrow(/random: unknown parameter "seed"/);
    expect(() => createPolicy('kv', null as unknown as Record<string, unknown>)).toThrow(
      /kv: parameters must be an object/,
    );
  });
});
