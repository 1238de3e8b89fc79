// The offline cluster simulator behind `armature replay`: a router policy and n mocker
// workers in virtual time, in one process. It runs the same code as the live services —
// router-core's policies and active-load tracking, the mocker's MockerCore — and only
// replaces the clock, the sockets and the sleeps: a worker's forward pass that the live
// engine would sleep through is an event at now + duration here. No timers, no I/O.
import { compileMockerOptions, MockerCore, mockerCard, type EngineLoad, type MockerOptions } from '@armature/engine';
import { ActiveLoadTracker, createPolicy, type WorkerView } from '@armature/router-core';
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
}

export interface SimulationResult {
  records: RequestRecord[];
  /** Virtual time at the end, ms. */
  virtualMs: number;
  steps: number;
  decisions: Record<string, number>;
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
  const workers: SimWorker[] = Array.from({ length: options.workers }, (_, i) => ({
    id: `decode-${i}`,
    core: new MockerCore(config),
    card,
    busy: false,
    published: { activeDecodeBlocks: 0, activePrefillTokens: 0, waitingRequests: 0, runningRequests: 0, kvUsage: 0 },
  }));
  // Seeded, so a replay is reproducible run to run.
  const policy = createPolicy(options.policy, options.policyParams ?? {}, { random: mulberry32(options.seed ?? 1) });
  const active = new ActiveLoadTracker();
  const queue = new EventQueue<SimEvent>();
  const records = new Map<string, RequestRecord>();
  const decisions: Record<string, number> = {};
  let steps = 0;
  let done = 0;
  let now = 0;
  const progressEvery = options.progressEvery ?? 500;

  for (const request of requests) queue.push(request.arrivalMs, { kind: 'arrival', request });

  const startPass = (w: SimWorker): void => {
    const step = w.core.step(now);
    steps++;
    w.busy = true;
    queue.push(now + step.durationMs, { kind: 'pass-done', worker: w, outputs: step.outputs });
  };

  const finish = (record: RequestRecord): void => {
    active.free(record.id);
    done++;
    if (options.onProgress && done % progressEvery === 0) options.onProgress(done, requests.length, now);
  };

  for (let ev = queue.pop(); ev; ev = queue.pop()) {
    now = ev.at;
    const event = ev.value;
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
      const views: WorkerView[] = workers.map((w) => ({
        instanceId: w.id,
        grpcAddress: '',
        card: w.card,
        published: w.published,
        tracked: active.of(w.id),
      }));
      const decision = policy.choose(views, { requestId: r.id, model: card.model, tokenIds: r.promptTokenIds });
      const worker = workers.find((w) => w.id === decision.worker.instanceId)!;
      const blockSize = Math.max(1, card.blockSize);
      active.add(
        r.id,
        worker.id,
        Math.max(0, r.promptTokenIds.length - decision.overlapBlocks * blockSize),
        Math.ceil(r.promptTokenIds.length / blockSize),
        now,
      );
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
        continue;
      }
      if (!worker.busy) startPass(worker);
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
          active.prefillComplete(requestId);
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
  }
  return { records: [...records.values()], virtualMs: now, steps, decisions };
}
