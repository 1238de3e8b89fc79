// The offline cluster simulator behind `armature replay`: a router policy and n mocker
// workers in virtual time, in one process. It runs the same code as the live services —
// router-core's policies and active-load tracking, the mocker's MockerCore — and only
// replaces the clock, the sockets and the sleeps: a worker's forward pass that the live
// engine would sleep through is an event at now + duration here. No timers, no I/O.
import { compileMockerOptions, MockerCore, mockerCard, type EngineLoad, type MockerOptions } from '@armature/engine';
import {
  createPolicy,
  KvRouter,
  RouterQueue,
  type BusyThresholds,
  type CandidateWorker,
  type RouterQueueOptions,
} from '@armature/router-core';
import type { ModelCard } from '@armature/runtime';
import type { RequestRecord } from '../results/types.js';
import { mulberry32 } from '../load/schedule.js';
import { EventQueue } from './event-queue.js';

export interface SimRequest {
  id: string;
  /** Arrival, ms from the start of the simulation. */
  arrivalMs: number;
  promptTokenIds: number[];
  outputTokens: number;
}

export interface SimulationOptions {
  workers: number;
  policy: string;
  policyParams?: Record<string, unknown>;
  mocker: MockerOptions;
  /** Called every `progressEvery` finished requests. */
  onProgress?: (done: number, total: number, virtualMs: number) => void;
  progressEvery?: number;
  /** Seed for the policy's random choices (default 1). */
  seed?: number;
  /** Busy thresholds; requests wait in the router queue while every worker is busy. */
  busy?: BusyThresholds;
  /** The router queue, as the live router's (default capacity 1024, fcfs, 30 s timeout). */
  queue?: RouterQueueOptions;
}

export interface SimulationResult {
  records: RequestRecord[];
  /** Virtual time at the end, ms. */
  virtualMs: number;
  steps: number;
  decisions: Record<string, number>;
  /** Router-side KV hit rate: overlap blocks / full prompt blocks over all decisions. */
  routerHitRate: number;
  /** Requests refused by the router queue (full, or waited past its timeout). */
  queueRejected: number;
}

interface SimWorker {
  id: string;
  core: MockerCore;
  card: ModelCard;
  busy: boolean;
  /** The load as of the worker's last pass: what a live worker would have published. */
  published: EngineLoad;
}

type SimEvent =
  | { kind: 'arrival'; request: SimRequest }
  | { kind: 'pass-done'; worker: SimWorker; outputs: ReturnType<MockerCore['step']>['outputs'] };

/** Replays `requests` through the simulated cluster; returns one record per request. */
export function simulate(requests: readonly SimRequest[], options: SimulationOptions): SimulationResult {
  const config = compileMockerOptions(options.mocker);
  const card = mockerCard(config);
  let now = 0;
  // Seeded, so a replay is reproducible run to run.
  const policy = createPolicy(options.policy, options.policyParams ?? {}, {
    random: mulberry32(options.seed ?? 1),
    now: () => now,
  });
  const router = new KvRouter({ policy, busy: options.busy, now: () => now });
  const approximate = config.kvEvents === 'none';
  const workers: SimWorker[] = Array.from({ length: options.workers }, (_, i) => {
    const id = `decode-${i}`;
    router.index.setHashScheme(id, config.kvEvents === 'armature' ? 'armature' : 'opaque');
    return {
      id,
      // A live worker's events reach the router within a millisecond or so: applied at once here.
      core: new MockerCore(config, approximate ? {} : { onKvEvents: (batch) => router.index.applyBatch(id, batch) }),
      card,
      busy: false,
      published: { activeDecodeBlocks: 0, activePrefillTokens: 0, waitingRequests: 0, runningRequests: 0, kvUsage: 0 },
    };
  });
  const waiting = new RouterQueue<{ request: SimRequest; promptTokens: number; enqueuedAt: number }>(options.queue);
  const queue = new EventQueue<SimEvent>();
  const records = new Map<string, RequestRecord>();
  const decisions: Record<string, number> = {};
  let steps = 0;
  let done = 0;
  let overlapBlocks = 0;
  let promptBlocks = 0;
  let queueRejected = 0;
  const progressEvery = options.progressEvery ?? 500;

  for (const request of requests) queue.push(request.arrivalMs, { kind: 'arrival', request });

  const candidates = (): CandidateWorker[] =>
    workers.map((w) => ({ instanceId: w.id, grpcAddress: '', card: w.card, published: w.published, approximate }));

  /** Routes a request and hands it to its worker; false when every worker is busy. */
  const place = (r: SimRequest): boolean => {
    const record = records.get(r.id)!;
    const outcome = router.route(candidates(), { requestId: r.id, model: card.model, tokenIds: r.promptTokenIds });
    if (!outcome) return false;
    overlapBlocks += outcome.overlapBlocks;
    promptBlocks += outcome.fullBlocks;
    const worker = workers.find((w) => w.id === outcome.worker.instanceId)!;
    decisions[worker.id] = (decisions[worker.id] ?? 0) + 1;
    record.worker = worker.id;
    try {
      worker.core.add(
        {
          requestId: r.id,
          tokenIds: r.promptTokenIds,
          sampling: { seed: 0 },
          stop: { maxTokens: Math.max(1, r.outputTokens), ignoreEos: true, stopTokenIds: [] },
        },
        now,
      );
    } catch (err) {
      record.error = { type: 'rejected', message: (err as Error).message };
      record.endMs = now;
      finish(record);
      return true;
    }
    if (!worker.busy) startPass(worker);
    return true;
  };

  const startPass = (w: SimWorker): void => {
    const step = w.core.step(now);
    steps++;
    w.busy = true;
    queue.push(now + step.durationMs, { kind: 'pass-done', worker: w, outputs: step.outputs });
  };

  const finish = (record: RequestRecord): void => {
    router.free(record.id);
    done++;
    if (options.onProgress && done % progressEvery === 0) options.onProgress(done, requests.length, now);
  };

  /** Requests that waited past the queue timeout get the live router's 503. */
  const expireWaiting = (): void => {
    for (const item of waiting.expire(now)) {
      const record = records.get(item.request.id)!;
      queueRejected++;
      record.error = { type: 'rejected', message: 'every worker stayed busy past the router queue timeout' };
      record.endMs = now;
      finish(record);
    }
  };

  for (let ev = queue.pop(); ev; ev = queue.pop()) {
    now = ev.at;
    const event = ev.value;
    if (waiting.length > 0) expireWaiting();
    if (event.kind === 'arrival') {
      const r = event.request;
      const record: RequestRecord = {
        id: r.id,
        scheduledMs: r.arrivalMs,
        startMs: r.arrivalMs,
        chunkMs: [],
        inputTokens: r.promptTokenIds.length,
        outputTokens: 0,
      };
      records.set(r.id, record);
      if (waiting.length > 0 || !place(r)) {
        if (!waiting.push({ request: r, promptTokens: r.promptTokenIds.length, enqueuedAt: now })) {
          queueRejected++;
          record.error = { type: 'rejected', message: 'every worker is busy and the router queue is full' };
          record.endMs = now;
          finish(record);
        }
      }
      continue;
    }
    // A forward pass ended: its outputs reach the clients now.
    const w = event.worker;
    for (const { requestId, output } of event.outputs) {
      const record = records.get(requestId);
      if (!record) continue;
      if (output.cachedTokens !== undefined && record.cachedTokens === undefined)
        record.cachedTokens = output.cachedTokens;
      if (output.tokenIds.length > 0) {
        if (record.firstTokenMs === undefined) {
          record.firstTokenMs = now;
          router.prefillComplete(requestId);
        }
        record.chunkMs.push(now);
        record.outputTokens += output.tokenIds.length;
      }
      if (output.finishReason) {
        record.endMs = now;
        if (output.finishReason === 'error' || output.finishReason === 'cancelled') {
          record.error = { type: output.finishReason, message: `finished with ${output.finishReason}` };
        }
        finish(record);
      }
    }
    w.busy = false;
    w.published = w.core.load();
    if (w.core.hasWork()) startPass(w);
    else w.core.flush(now);
    if (waiting.length > 0) waiting.drain((item) => place(item.request));
  }
  return {
    records: [...records.values()],
    virtualMs: now,
    steps,
    decisions,
    routerHitRate: promptBlocks > 0 ? overlapBlocks / promptBlocks : 0,
    queueRejected,
  };
}
