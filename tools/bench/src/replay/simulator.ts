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
}

interface SimWorker {
  id: string;
  role: 'prefill' | 'decode';
  core: MockerCore;
  card: ModelCard;
  busy: boolean;
  /** The load as of the worker's last pass: what a live worker would have published. */
  published: EngineLoad;
}

type SimEvent =
  | { kind: 'arrival'; request: SimRequest }
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
    pool.map((w) => ({
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
    queue.push(now + step.durationMs, { kind: 'pass-done', worker: w, outputs: step.outputs });
  };

  const finish = (record: RequestRecord): void => {
    core.free(record.id);
    done++;
    if (options.onProgress && done % progressEvery === 0) options.onProgress(done, requests.length, now);
  };

  for (let ev = queue.pop(); ev; ev = queue.pop()) {
    now = ev.at;
    const event = ev.value;
    core.expire();
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
  return {
    records: [...records.values()],
    virtualMs: now,
    steps,
    decisions,
    routerHitRate: promptBlocks > 0 ? overlapBlocks / promptBlocks : 0,
    queueRejected,
    ...(disagg ? { disagg: disaggStats } : {}),
  };
}
