// The offline cluster simulator behind `armature replay`: a router policy and n mocker
// workers in virtual time, in one process. It runs the same code as the live services —
// router-core's RouterCore (the request lifecycle and waiting room the router service
// runs), its policies and active-load tracking, the mocker's MockerCore — and only
// replaces the clock, the sockets and the sleeps: a worker's forward pass that the live
// engine would sleep through is an event at now + duration here. No timers, no I/O.
//
// Disaggregated mode adds a prefill pool: the DisaggRouter picks a (prefill, decode) pair
// or prefills locally; a remote prefill runs the prompt on the prefill worker (its first
// token is the client's first token), the KV blocks the decode worker lacks travel for
// bytes / bandwidth, then the decode worker imports them and generates the rest.
//
// A control (the planner: planner-loop.ts) may change the pools while it runs: a worker
// asked for serves after its start-up delay, a drained one takes no new request and leaves
// once its requests are done, and each one's time is counted. One file past 450 lines
// because it is one event loop: arrivals, passes, transfers and the pools share its state.
import { compileMockerOptions, MockerCore, mockerCard, type EngineLoad, type MockerOptions } from '@armature/engine';
import {
  createPolicy,
  KvRouter,
  RouterCore,
  type BusyThresholds,
  type DisaggOptions,
  type DisaggOutcome,
  type RouterCandidate,
  type RouterQueueOptions,
} from '@armature/router-core';
import { IDLE_LOAD, type ArmatureError, type ModelCard } from '@armature/runtime';
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
  /** Disaggregated serving: a prefill pool besides the `workers` (then the decode pool). */
  disagg?: DisaggSimOptions;
  /** Changes the pools while the replay runs (the planner: replay/planner-loop.ts). */
  control?: SimControl;
}

/** What drives the pools of a replay in virtual time; `start` is called before the first event. */
export interface SimControl {
  start(cluster: SimCluster): void;
}

export type SimRole = 'prefill' | 'decode';

/** One pass of a worker, as the control sees it (a live worker's metrics carry the same). */
export interface SimStep {
  worker: string;
  role: SimRole;
  durationMs: number;
  prefillTokens: number;
  /** KV tokens held during the pass. */
  kvTokens: number;
}

/** The replay's cluster as a control drives it. */
export interface SimCluster {
  now(): number;
  /** Runs `run` at virtual time `atMs` (not before now). */
  at(atMs: number, run: () => void): void;
  /**
   * Asks for a worker of `role`: it counts from now and serves from `readyAtMs` (default
   * now); returns its id.
   */
  addWorker(role: SimRole, readyAtMs?: number): string;
  /** Stops routing to worker `id`; it leaves once its requests are done (a starting one at once). */
  drainWorker(id: string): void;
  /** The pool's workers that have not left, in the order they were asked for. */
  workers(
    role: SimRole,
  ): readonly { id: string; state: 'starting' | 'ready' | 'draining'; load: EngineLoad; kvTokens: number }[];
  /** Every request record so far, by id (arrived requests only). */
  readonly records: ReadonlyMap<string, RequestRecord>;
  /** Whether every request has finished. */
  finished(): boolean;
  /** Called after every forward pass. */
  onStep(listener: (step: SimStep) => void): void;
  /** Called when a request arrives. */
  onArrival(listener: (request: SimRequest, record: RequestRecord) => void): void;
}

export interface DisaggSimOptions {
  prefillWorkers: number;
  /** Policy of the prefill pool (default kv); `policy` is the decode pool's. */
  prefillPolicy?: string;
  prefillPolicyParams?: Record<string, unknown>;
  /** Thresholds of conditional disaggregation. */
  options?: DisaggOptions;
  /** KV bytes per token: layers × 2 × KV heads × head dim × dtype bytes (default 131072, an 8B-class model in bf16). */
  kvBytesPerToken?: number;
  /** Prefill-to-decode link bandwidth in GB/s (default 64, Dynamo's mocker). */
  bandwidthGBps?: number;
}

/** What disaggregated serving did, over the whole replay. */
export interface DisaggStats {
  remote: number;
  local: number;
  aggregated: number;
  transferredBytes: number;
  transferMs: number;
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
  /** Set in disaggregated mode. */
  disagg?: DisaggStats;
  /** Worker time per pool, ms: from when each worker was asked for until it left (or the end). */
  workerMs: Record<SimRole, number>;
}

interface SimWorker {
  id: string;
  role: SimRole;
  state: 'starting' | 'ready' | 'draining' | 'stopped';
  askedAtMs: number;
  stoppedAtMs?: number;
  /** Remote prefills whose KV this (decode) worker still waits for. */
  expecting: number;
  core: MockerCore;
  card: ModelCard;
  busy: boolean;
  /** The load as of the worker's last pass: what a live worker would have published. */
  published: EngineLoad;
}

type SimEvent =
  | { kind: 'arrival'; request: SimRequest }
  | { kind: 'timer'; run: () => void }
  | { kind: 'transfer-done'; request: SimRequest; worker: SimWorker; firstToken: number }
  | { kind: 'pass-done'; worker: SimWorker; outputs: ReturnType<MockerCore['step']>['outputs'] };

/** Replays `requests` through the simulated cluster; returns one record per request. */
export function simulate(requests: readonly SimRequest[], options: SimulationOptions): SimulationResult {
  const config = compileMockerOptions(options.mocker);
  const card = mockerCard(config);
  let now = 0;
  const clock = (): number => now;
  // Seeded, so a replay is reproducible run to run.
  const policy = createPolicy(options.policy, options.policyParams ?? {}, {
    random: mulberry32(options.seed ?? 1),
    now: clock,
  });
  const router = new KvRouter({ policy, busy: options.busy, now: clock });
  const approximate = config.kvEvents === 'none';
  const makeWorker = (id: string, role: SimWorker['role'], owner: KvRouter): SimWorker => {
    owner.index.setHashScheme(id, config.kvEvents === 'armature' ? 'armature' : 'opaque');
    return {
      id,
      role,
      state: 'ready',
      askedAtMs: now,
      expecting: 0,
      // A live worker's events reach the router within a millisecond or so: applied at once here.
      core: new MockerCore(config, approximate ? {} : { onKvEvents: (batch) => owner.index.applyBatch(id, batch) }),
      card,
      busy: false,
      published: { ...IDLE_LOAD },
    };
  };
  const workers: SimWorker[] = Array.from({ length: options.workers }, (_, i) =>
    makeWorker(`decode-${i}`, 'decode', router),
  );
  const disagg = options.disagg;
  let prefillRouter: KvRouter | undefined;
  let prefillWorkers: SimWorker[] = [];
  if (disagg) {
    const prefillPolicy = createPolicy(disagg.prefillPolicy ?? 'kv', disagg.prefillPolicyParams ?? {}, {
      random: mulberry32((options.seed ?? 1) + 1),
      now: clock,
    });
    prefillRouter = new KvRouter({ policy: prefillPolicy, now: clock });
    const owner = prefillRouter;
    prefillWorkers = Array.from({ length: disagg.prefillWorkers }, (_, i) =>
      makeWorker(`prefill-${i}`, 'prefill', owner),
    );
  }
  const candidatesOf = (pool: SimWorker[]): RouterCandidate[] =>
    pool
      .filter((w) => w.state === 'ready')
      .map((w) => ({
        instanceId: w.id,
        grpcAddress: '',
        card: w.card,
        published: w.published,
        approximate,
        ready: true,
      }));
  // The same lifecycle as the live router (waiting room, placement, release), in virtual time.
  const core = new RouterCore({
    source: { candidates: (_model, role) => candidatesOf(role === 'prefill' ? prefillWorkers : workers) },
    decode: router,
    prefill: prefillRouter,
    disagg: disagg?.options,
    queue: options.queue,
    now: clock,
  });
  const disaggStats: DisaggStats = { remote: 0, local: 0, aggregated: 0, transferredBytes: 0, transferMs: 0 };
  /** Requests prefilling remotely: the decode worker waiting for their KV, and the bytes it pulls. */
  const remote = new Map<string, { request: SimRequest; decode: SimWorker; transferBytes: number }>();
  const kvBytesPerToken = disagg?.kvBytesPerToken ?? 131_072;
  const bytesPerMs = (disagg?.bandwidthGBps ?? 64) * 1e6;
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

  const byId = new Map([...workers, ...prefillWorkers].map((w) => [w.id, w]));
  const nextNumber: Record<SimRole, number> = { decode: workers.length, prefill: prefillWorkers.length };
  const stepListeners: ((step: SimStep) => void)[] = [];
  const arrivalListeners: ((request: SimRequest, record: RequestRecord) => void)[] = [];
  const poolOf = (role: SimRole): SimWorker[] => (role === 'prefill' ? prefillWorkers : workers);
  const departed: SimWorker[] = [];

  /** A draining worker leaves once it holds no request and expects no KV. */
  const leaveIfIdle = (w: SimWorker): void => {
    if (w.state !== 'draining' || w.busy || w.core.hasWork() || w.expecting > 0) return;
    w.state = 'stopped';
    w.stoppedAtMs = now;
    const pool = poolOf(w.role);
    pool.splice(pool.indexOf(w), 1);
    core.removeWorker(w.id);
    (w.role === 'prefill' ? prefillRouter! : router).index.removeWorker(w.id);
    departed.push(w);
  };

  const cluster: SimCluster = {
    now: clock,
    at: (atMs, run) => queue.push(Math.max(now, atMs), { kind: 'timer', run }),
    addWorker(role, readyAtMs = now) {
      if (role === 'prefill' && !prefillRouter) throw new Error('a prefill worker needs a disaggregated replay');
      const w = makeWorker(`${role}-${nextNumber[role]++}`, role, role === 'prefill' ? prefillRouter! : router);
      byId.set(w.id, w);
      poolOf(role).push(w);
      const ready = (): void => {
        if (w.state !== 'starting') return;
        w.state = 'ready';
        core.pump(); // waiting requests may fit now
      };
      w.state = 'starting';
      if (readyAtMs <= now) ready();
      else cluster.at(readyAtMs, ready);
      return w.id;
    },
    drainWorker(id) {
      const w = byId.get(id);
      if (!w || w.state === 'stopped' || w.state === 'draining') return;
      w.state = 'draining';
      leaveIfIdle(w);
    },
    workers: (role) =>
      poolOf(role).map((w) => {
        const load = w.core.load();
        return {
          id: w.id,
          state: w.state as 'starting' | 'ready' | 'draining',
          load,
          kvTokens: load.activeDecodeBlocks * card.blockSize,
        };
      }),
    records,
    finished: () => done === requests.length,
    onStep: (listener) => stepListeners.push(listener),
    onArrival: (listener) => arrivalListeners.push(listener),
  };

  const addTo = (worker: SimWorker, id: string, tokenIds: number[], maxTokens: number): boolean => {
    const record = records.get(id)!;
    try {
      worker.core.add(
        {
          requestId: id,
          tokenIds,
          sampling: { seed: 0 },
          stop: { maxTokens: Math.max(1, maxTokens), ignoreEos: true, stopTokenIds: [] },
        },
        now,
      );
    } catch (err) {
      record.error = { type: 'rejected', message: (err as Error).message };
      record.endMs = now;
      finish(record);
      return false;
    }
    if (!worker.busy) startPass(worker);
    return true;
  };

  /** Hands a routed request to its worker: the decode worker, or a prefill worker first. */
  const dispatch = (r: SimRequest, out: DisaggOutcome): void => {
    const record = records.get(r.id)!;
    const decode = byId.get(out.decode.worker.instanceId)!;
    decisions[decode.id] = (decisions[decode.id] ?? 0) + 1;
    record.worker = decode.id;
    if (!out.prefill) {
      if (disagg) disaggStats[out.mode === 'aggregated' ? 'aggregated' : 'local']++;
      overlapBlocks += out.decode.overlapBlocks;
      promptBlocks += out.decode.fullBlocks;
      addTo(decode, r.id, r.promptTokenIds, r.outputTokens);
      return;
    }
    disaggStats.remote++;
    overlapBlocks += out.prefill.overlapBlocks;
    promptBlocks += out.prefill.fullBlocks;
    const prefill = byId.get(out.prefill.worker.instanceId)!;
    decisions[prefill.id] = (decisions[prefill.id] ?? 0) + 1;
    remote.set(r.id, { request: r, decode, transferBytes: out.blocksToPull * card.blockSize * kvBytesPerToken });
    decode.expecting++;
    // The prefill worker computes the prompt and its first token (max_tokens 1).
    addTo(prefill, r.id, r.promptTokenIds, 1);
  };

  /** Requests the router refuses get the live router's 503. */
  const refuse = (record: RequestRecord, err: ArmatureError): void => {
    queueRejected++;
    record.error = {
      type: 'rejected',
      message:
        err.reason === 'router_queue_timeout'
          ? 'every worker stayed busy past the router queue timeout'
          : err.reason === 'router_queue_full'
            ? 'every worker is busy and the router queue is full'
            : err.message,
    };
    record.endMs = now;
    finish(record);
  };

  const startPass = (w: SimWorker): void => {
    const step = w.core.step(now);
    steps++;
    w.busy = true;
    if (stepListeners.length > 0 && step.sequences > 0) {
      const { activeDecodeBlocks } = w.core.load();
      const info: SimStep = {
        worker: w.id,
        role: w.role,
        durationMs: step.durationMs,
        prefillTokens: step.prefillTokens,
        kvTokens: activeDecodeBlocks * card.blockSize,
      };
      for (const listener of stepListeners) listener(info);
    }
    queue.push(now + step.durationMs, { kind: 'pass-done', worker: w, outputs: step.outputs });
  };

  const finish = (record: RequestRecord): void => {
    core.free(record.id);
    done++;
    if (options.onProgress && done % progressEvery === 0) options.onProgress(done, requests.length, now);
  };

  options.control?.start(cluster);
  for (let ev = queue.pop(); ev; ev = queue.pop()) {
    now = ev.at;
    const event = ev.value;
    core.expire();
    if (event.kind === 'timer') {
      event.run();
      continue;
    }
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
      for (const listener of arrivalListeners) listener(r, record);
      try {
        core.submit(
          { requestId: r.id, model: card.model, tokenIds: r.promptTokenIds },
          { placed: (out) => dispatch(r, out), refused: (err) => refuse(record, err) },
        );
      } catch (err) {
        refuse(record, err as ArmatureError);
      }
      continue;
    }
    if (event.kind === 'transfer-done') {
      // The decode worker holds the prompt's KV now; it continues after the first token.
      const { request: r, worker: decode, firstToken } = event;
      decode.expecting--;
      decode.core.importPrefix(r.promptTokenIds, now);
      addTo(decode, r.id, [...r.promptTokenIds, firstToken], r.outputTokens - 1);
      continue;
    }
    // A forward pass ended: the worker publishes its load and starts its next pass; its
    // outputs reach the clients now.
    const w = event.worker;
    w.busy = false;
    w.published = w.core.load();
    if (w.core.hasWork()) startPass(w);
    else w.core.flush(now);
    leaveIfIdle(w);
    for (const { requestId, output } of event.outputs) {
      const record = records.get(requestId);
      if (!record) continue;
      if (w.role === 'prefill') {
        // A remote prefill: the first token goes to the client, the KV to the decode worker.
        if (output.cachedTokens !== undefined && record.cachedTokens === undefined)
          record.cachedTokens = output.cachedTokens;
        if (output.tokenIds.length > 0 && record.firstTokenMs === undefined) {
          record.firstTokenMs = now;
          record.chunkMs.push(now);
          record.outputTokens += output.tokenIds.length;
        }
        if (!output.finishReason) continue;
        core.markPrefillComplete(requestId);
        const plan = remote.get(requestId)!;
        remote.delete(requestId);
        if (output.finishReason === 'error' || output.finishReason === 'cancelled' || plan.request.outputTokens <= 1) {
          plan.decode.expecting--;
          leaveIfIdle(plan.decode);
        }
        if (output.finishReason === 'error' || output.finishReason === 'cancelled') {
          record.error = { type: output.finishReason, message: `prefill finished with ${output.finishReason}` };
          record.endMs = now;
          finish(record);
          continue;
        }
        if (plan.request.outputTokens <= 1) {
          record.endMs = now;
          finish(record);
          continue;
        }
        const transferMs = plan.transferBytes / bytesPerMs;
        disaggStats.transferredBytes += plan.transferBytes;
        disaggStats.transferMs += transferMs;
        queue.push(now + transferMs, {
          kind: 'transfer-done',
          request: plan.request,
          worker: plan.decode,
          firstToken: output.tokenIds[0] ?? 0,
        });
        continue;
      }
      if (output.cachedTokens !== undefined && record.cachedTokens === undefined)
        record.cachedTokens = output.cachedTokens;
      if (output.tokenIds.length > 0) {
        if (record.firstTokenMs === undefined) {
          record.firstTokenMs = now;
          core.markPrefillComplete(requestId);
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
    // Its new load may give a waiting request room.
    core.pump();
  }
  const workerMs: Record<SimRole, number> = { prefill: 0, decode: 0 };
  for (const w of [...workers, ...prefillWorkers, ...departed])
    workerMs[w.role] += (w.stoppedAtMs ?? now) - w.askedAtMs;
  return {
    records: [...records.values()],
    virtualMs: now,
    workerMs,
    steps,
    decisions,
    routerHitRate: promptBlocks > 0 ? overlapBlocks / promptBlocks : 0,
    queueRejected,
    ...(disagg ? { disagg: disaggStats } : {}),
  };
}
