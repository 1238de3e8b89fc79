// RouterCore on its own, in virtual time: the lifecycle both the router service and the
// replay run. A static candidate source stands in for discovery; the clock is a variable.
import { describe, expect, it } from 'vitest';
import { ArmatureError, type ModelCard } from '@armature/runtime';
import { createPolicy } from './policies/index.js';
import { KvRouter } from './kv-router.js';
import { testCard } from './policies/test-fixtures.js';
import { RouterCore, type RouterCandidate, type RouterObserver, type WorkerRole } from './router-core.js';
import type { DisaggOutcome } from './disagg-router.js';

const card: ModelCard = { ...testCard, blockSize: 4, kvEvents: 'none' };

const worker = (instanceId: string, ready = true): RouterCandidate => ({
  instanceId,
  grpcAddress: '',
  card,
  published: undefined,
  approximate: true,
  ready,
});

const tokens = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => i + from);

interface Answer {
  decision?: DisaggOutcome;
  error?: ArmatureError;
}

function setup(options: { pools?: Partial<Record<WorkerRole, RouterCandidate[]>>; timeoutMs?: number } = {}) {
  let now = 0;
  const pools: Record<WorkerRole, RouterCandidate[]> = {
    decode: options.pools?.decode ?? [worker('d0')],
    prefill: options.pools?.prefill ?? [],
  };
  const events: string[] = [];
  const observer: RouterObserver = {
    routed: (_m, d) => events.push(`routed ${d.decode.worker.instanceId}`),
    queueRejected: (reason) => events.push(`rejected ${reason}`),
    queueWaited: (s) => events.push(`waited ${s}`),
    prefillFallback: () => events.push('fallback'),
    workerRemoved: (w) => events.push(`removed ${w}`),
    inhibited: (w, reason, count) => events.push(`inhibited ${w} ${reason ?? 'ended'} ${count}`),
  };
  // Any prompt not yet prefilled makes a worker busy.
  const decode = new KvRouter({ policy: createPolicy('kv'), busy: { prefillTokens: 1 }, now: () => now });
  const core = new RouterCore({
    source: { candidates: (model, role) => (model === 'm' ? pools[role] : []) },
    decode,
    queue: { capacity: 2, timeoutMs: options.timeoutMs ?? 1_000 },
    disagg: { minRemotePrefillTokens: 16 },
    observer,
    now: () => now,
  });
  const submit = (
    requestId: string,
    n = 8,
    extra: { pinnedWorkerId?: string; excludedWorkerIds?: string[]; failedWorkerIds?: string[] } = {},
  ) => {
    const answer: Answer = {};
    const ticket = core.submit(
      { requestId, model: 'm', tokenIds: tokens(n, requestId.length * 100), ...extra },
      { placed: (d) => (answer.decision = d), refused: (e) => (answer.error = e) },
    );
    return { answer, ticket };
  };
  return { core, pools, events, submit, advance: (ms: number) => (now += ms) };
}

describe('RouterCore', () => {
  it('answers synchronously, queues while busy, and places waiters in order as load is released', () => {
    const { core, submit, events, advance } = setup();
    expect(submit('a').answer.decision?.decode.worker.instanceId).toBe('d0');
    const b = submit('bb');
    const c = submit('ccc');
    expect([b.answer, c.answer, core.queueDepth]).toEqual([{}, {}, 2]);
    expect(submit('dddd').answer.error).toMatchObject({ reason: 'router_queue_full' });
    advance(250);
    core.markPrefillComplete('a');
    expect(b.answer.decision).toBeDefined();
    expect(c.answer).toEqual({});
    core.markPrefillComplete('bb');
    expect(c.answer.decision).toBeDefined();
    expect(core.queueDepth).toBe(0);
    expect(events.filter((e) => e.startsWith('waited'))).toEqual(['waited 0.25', 'waited 0.25']);
  });

  it('times out on its clock, cancels, and refuses a duplicate waiting id', () => {
    const { core, submit, events, advance } = setup({ timeoutMs: 500 });
    submit('a');
    const quitter = submit('quitter');
    const patient = submit('patient');
    expect(() => submit('patient')).toThrow(/already waiting/);
    expect(quitter.ticket.cancel()).toBe(true);
    expect(quitter.ticket.cancel()).toBe(false);
    expect(quitter.answer.error).toMatchObject({ cls: 'cancelled', reason: 'route_cancelled' });
    advance(499);
    core.tick();
    expect(patient.answer).toEqual({});
    advance(1);
    core.tick();
    expect(patient.answer.error).toMatchObject({ cls: 'unavailable', reason: 'router_queue_timeout' });
    expect(events).toContain('rejected timeout');
    expect(core.queueDepth).toBe(0);
  });

  it('pins past the busy check, excludes failed workers, and prefers workers whose KV state is loaded', () => {
    const { core, pools, submit } = setup({ pools: { decode: [worker('d0'), worker('d1', false)] } });
    expect(submit('a').answer.decision?.decode.worker.instanceId).toBe('d0');
    // d0 is busy and d1 is not ready, but d1 is all that is left when d0 is excluded.
    expect(submit('b', 8, { excludedWorkerIds: ['d0'] }).answer.decision?.decode.worker.instanceId).toBe('d1');
    expect(submit('c', 8, { pinnedWorkerId: 'd0' }).answer.decision?.decode.policy).toBe('pinned');
    expect(() => submit('d', 8, { pinnedWorkerId: 'nobody' })).toThrow(/not serving model/);
    expect(() => submit('e', 8, { excludedWorkerIds: ['d0', 'd1'] })).toThrow(/no healthy worker left/);
    pools.decode = [];
    expect(() => submit('f')).toThrow(/no worker is serving model "m"/);
    expect(() => core.submit({ requestId: 'g', model: 'other', tokenIds: [1] }, { placed() {}, refused() {} })).toThrow(
      ArmatureError,
    );
  });

  it('a waiter whose workers all left is refused when the queue is retried', () => {
    const { core, pools, submit } = setup();
    submit('a');
    const b = submit('bb');
    pools.decode = [];
    core.removeWorker('d0');
    expect(b.answer.error).toMatchObject({ reason: 'no_worker' });
    expect(core.queueDepth).toBe(0);
  });

  it('moves a fallen-back prefill from the prefill worker to the decode worker', () => {
    const { core, submit, events } = setup({ pools: { prefill: [worker('p0')] } });
    const { answer } = submit('a', 40);
    expect(answer.decision).toMatchObject({ mode: 'remote-prefill', blocksToPull: 10 });
    expect(core.prefill.active.of('p0').prefillTokens).toBe(40);
    expect(core.kv.active.of('d0').prefillTokens).toBe(0);
    core.markPrefillLocal('a');
    expect(core.prefill.active.size).toBe(0);
    expect(core.kv.active.of('d0').prefillTokens).toBe(40);
    expect(events).toContain('fallback');
    core.free('a');
    expect(core.kv.active.size).toBe(0);
  });

  it('tells observers about active-load changes by pool, and applies a replica’s', () => {
    const { core, submit } = setup({ pools: { prefill: [worker('p0')] } });
    const ops: string[] = [];
    core.addObserver({ activeLoad: (pool, op) => ops.push(`${pool}:${op.op}`) });
    submit('a', 40);
    core.markPrefillComplete('a');
    core.free('a');
    // The remote prefill takes the prompt off the decode worker at once, and again at the first token.
    expect(ops).toEqual([
      'decode:add',
      'prefill:add',
      'decode:prefill',
      'decode:prefill',
      'prefill:free',
      'decode:free',
    ]);
    core.applyRemote(
      'decode',
      {
        op: 'add',
        requestId: 'r',
        workerId: 'd0',
        dpRank: 0,
        prefillTokens: 5,
        blockHashes: new Uint32Array(0),
        promptBlocks: 2,
        approximate: false,
      },
      'other',
    );
    expect(core.kv.active.of('d0').prefillTokens).toBe(5);
    expect(core.dropOrigin('other')).toBe(1);
    expect(core.kv.active.size).toBe(0);
  });

  it('close refuses every waiter', () => {
    const { core, submit } = setup();
    submit('a');
    const b = submit('bb');
    core.close();
    expect(b.answer.error).toMatchObject({ reason: 'router_shutting_down' });
  });
});

describe('RouterCore: inhibition of failed workers', () => {
  const free = (core: RouterCore, ...ids: string[]) => ids.forEach((id) => core.free(id));

  it('leaves a worker a request failed on out of every decision for inhibitMs, then takes it back', () => {
    const { core, submit, events, advance } = setup({ pools: { decode: [worker('d0'), worker('d1')] } });
    const retry = submit('a#1', 8, { excludedWorkerIds: ['d0'], failedWorkerIds: ['d0'] });
    expect(retry.answer.decision?.decode.worker.instanceId).toBe('d1');
    free(core, 'a#1');
    // Another request, which never saw d0 fail, is kept off it too.
    for (const id of ['b', 'cc', 'ddd']) {
      expect(submit(id).answer.decision?.decode.worker.instanceId).toBe('d1');
      free(core, id);
    }
    expect(core.isInhibited('d0')).toBe(true);
    advance(5_000);
    core.tick();
    expect(core.isInhibited('d0')).toBe(false);
    expect(events.filter((e) => e.startsWith('inhibited'))).toEqual([
      'inhibited d0 request_failed 1',
      'inhibited d0 ended 0',
    ]);
    const placed = new Set<string>();
    for (const id of ['e', 'ff', 'ggg', 'hhhh']) {
      placed.add(submit(id).answer.decision!.decode.worker.instanceId);
      free(core, id);
    }
    expect(placed.has('d0')).toBe(true);
  });

  it('still uses an inhibited worker when it is the only one, and never an inhibited prefill worker', () => {
    const { core, submit } = setup({ pools: { decode: [worker('d0')], prefill: [worker('p0')] } });
    core.inhibit('d0', 'health');
    core.inhibit('p0', 'health');
    const long = submit('a', 64).answer.decision!;
    expect(long.decode.worker.instanceId).toBe('d0');
    expect(long.prefill).toBeUndefined(); // served aggregated rather than on the inhibited prefill worker
    core.uninhibit('p0');
    free(core, 'a');
    expect(submit('bb', 64).answer.decision!.prefill?.worker.instanceId).toBe('p0');
  });

  it('forgets the inhibition of a worker that left, and does nothing with inhibitMs 0', () => {
    const { core } = setup({ pools: { decode: [worker('d0'), worker('d1')] } });
    core.inhibit('d0', 'request_failed');
    core.removeWorker('d0');
    expect(core.inhibitedCount()).toBe(0);
    const off = new RouterCore({
      source: { candidates: () => [worker('d0')] },
      decode: new KvRouter({ policy: createPolicy('kv') }),
      inhibitMs: 0,
    });
    off.inhibit('d0', 'request_failed');
    expect(off.isInhibited('d0')).toBe(false);
    expect(() => new RouterCore({ source: { candidates: () => [] }, decode: off.kv, inhibitMs: -1 })).toThrow(
      /inhibitMs/,
    );
  });
});
