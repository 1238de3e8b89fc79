import { describe, expect, it } from 'vitest';
import type { WorkerView } from '../../types.js';
import { createPolicy } from '../index.js';
import { loadScore } from '../least-loaded/index.js';
import { routeInput, seededRandom, tally, testEnv, worker } from '../test-fixtures.js';
import { samplePair } from './index.js';

const input = routeInput(2);
const loaded = (id: string, decodeBlocks: number): WorkerView =>
  worker(id, { published: { activeDecodeBlocks: decodeBlocks } });

describe('power-of-two', () => {
  it('samples two distinct candidates, every pair reachable', () => {
    const ws = ['a', 'b', 'c', 'd'].map((id) => worker(id));
    const random = seededRandom(2);
    const pairs = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const [x, y] = samplePair(ws, random);
      expect(x!.instanceId).not.toBe(y!.instanceId);
      pairs.add([x!.instanceId, y!.instanceId].sort().join(''));
    }
    expect([...pairs].sort()).toEqual(['ab', 'ac', 'ad', 'bc', 'bd', 'cd']);
    expect(samplePair([ws[0]!], random)).toEqual([ws[0]]);
  });

  it('never picks the worse of the two sampled', () => {
    const ws = [loaded('a', 5), loaded('b', 1), loaded('c', 9), loaded('d', 3)];
    const draws: number[] = [];
    const recording = seededRandom(4);
    const env = {
      random: () => {
        const r = recording();
        draws.push(r);
        return r;
      },
      now: () => 0,
    };
    const p = createPolicy('power-of-two', {}, env);
    for (let i = 0; i < 500; i++) {
      draws.length = 0;
      const chosen = p.choose(ws, input).worker;
      // Replay the two draws the policy made to recover the pair it sampled.
      let k = 0;
      const pair = samplePair(ws, () => draws[k++]!);
      const better = pair.reduce((x, y) =>
        loadScore(x, { waitingWeight: 8 }) <= loadScore(y, { waitingWeight: 8 }) ? x : y,
      );
      expect(chosen).toBe(better);
    }
  });

  it('spreads over all workers but favours the less loaded (the most loaded is never chosen)', () => {
    const ws = [loaded('a', 0), loaded('b', 10), loaded('c', 20)];
    const p = createPolicy('power-of-two', {}, testEnv(6));
    const counts = tally(3000, () => p.choose(ws, input).worker);
    // a wins both pairs it is in (2/3), b wins against c (1/3), c never.
    expect(Math.abs(counts.get('a')! / 3000 - 2 / 3)).toBeLessThan(0.03);
    expect(Math.abs(counts.get('b')! / 3000 - 1 / 3)).toBeLessThan(0.03);
    expect(counts.get('c')).toBeUndefined();
    const idle = ['a', 'b', 'c', 'd', 'e'].map((id) => worker(id));
    const even = tally(5000, () => p.choose(idle, input).worker);
    for (const w of idle) expect(even.get(w.instanceId)).toBeGreaterThan(850);
  });

  it('takes the only candidate and counts waiting requests by waitingWeight', () => {
    const p = createPolicy('power-of-two', { waitingWeight: 100 }, testEnv());
    expect(p.choose([loaded('solo', 50)], input).worker.instanceId).toBe('solo');
    const queued = worker('queued', { published: { waitingRequests: 1 } });
    for (let i = 0; i < 20; i++) expect(p.choose([queued, loaded('busy', 50)], input).worker.instanceId).toBe('busy');
  });

  it('validates its parameters', () => {
    expect(() => createPolicy('power-of-two', { waitingWeight: -2 })).toThrow(/power-of-two: waitingWeight must be/);
    expect(() => createPolicy('power-of-two', { choices: 3 })).toThrow(/power-of-two: unknown parameter "choices"/);
  });
});
