import { describe, expect, it } from 'vitest';
import type { ModelCard } from '@armature/runtime';
import { ActiveLoadTracker, createPolicy, type WorkerView } from './index.js';

const card: ModelCard = {
  model: 'm',
  blockSize: 16,
  totalKvBlocks: 1000,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 512,
  contextLength: 4096,
  tokenizer: 't',
  chatTemplate: 'chatml',
  eosTokenIds: [0],
  engine: 'mocker',
};
const worker = (id: string, decodeBlocks = 0, waiting = 0, trackedPrefill = 0): WorkerView => ({
  instanceId: id,
  grpcAddress: '127.0.0.1:1',
  card,
  published: {
    activeDecodeBlocks: decodeBlocks,
    activePrefillTokens: 0,
    waitingRequests: waiting,
    runningRequests: 0,
    kvUsage: 0,
  },
  tracked: { requests: 0, prefillTokens: trackedPrefill, decodeBlocks: 0 },
});
const input = { requestId: 'r', model: 'm', tokenIds: [1, 2, 3] };

describe('policies', () => {
  it('round-robin cycles through every worker in order', () => {
    const p = createPolicy('round-robin');
    const ws = [worker('b'), worker('a'), worker('c')];
    expect([0, 1, 2, 3].map(() => p.choose(ws, input).worker.instanceId)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('least-loaded picks the lightest worker, counting published and tracked load', () => {
    const p = createPolicy('least-loaded');
    expect(p.choose([worker('a', 10), worker('b', 3), worker('c', 7)], input).worker.instanceId).toBe('b');
    expect(p.choose([worker('a', 10), worker('b', 1, 1)], input).worker.instanceId).toBe('b'); // 1 + 8 < 10
    expect(p.choose([worker('a', 10), worker('b', 3, 2)], input).worker.instanceId).toBe('a');
    expect(p.choose([worker('a', 0, 0, 160), worker('b', 5)], input).worker.instanceId).toBe('b');
  });

  it('rejects unknown ids and bad parameters', () => {
    expect(() => createPolicy('nope')).toThrow(/unknown routing policy/);
    expect(() => createPolicy('least-loaded', { waitingWeight: -1 })).toThrow(/waitingWeight/);
  });
});

describe('active load', () => {
  it('counts prefill until marked complete and everything until freed', () => {
    const t = new ActiveLoadTracker();
    t.add('r1', 'w', 100, 7);
    t.add('r2', 'w', 50, 4);
    expect(t.of('w')).toEqual({ requests: 2, prefillTokens: 150, decodeBlocks: 11 });
    t.prefillComplete('r1');
    expect(t.of('w')).toEqual({ requests: 2, prefillTokens: 50, decodeBlocks: 11 });
    expect(t.free('r1')).toBe('w');
    expect(t.free('r1')).toBeUndefined();
    expect(t.of('w')).toEqual({ requests: 1, prefillTokens: 50, decodeBlocks: 4 });
    expect(t.sweep(1000, Date.now() + 5000)).toBe(1);
    expect(t.of('w')).toEqual({ requests: 0, prefillTokens: 0, decodeBlocks: 0 });
  });
});
