// Measuring a running worker through its Worker gRPC service, with token-id prompts and no
// frontend or router in the way: TTFT of one prompt at a time (fresh random tokens each, so
// no prefix reuse; the median of a few), and the inter-token gaps of `concurrency` streams
// decoding together once every one of them is past its prefill. Times are the wall clock's,
// so a mocker's speedup is in them as configured. It does not start workers (worker-pool.ts).
import { Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import {
  HealthResponse_Status,
  modelCardFromProto,
  WorkerClient,
  type GenerateResponse,
  type HealthResponse,
} from '@armature/proto';
import type { DecodePoint, PrefillPoint } from '@armature/planner-core';
import { ArmatureError, CLIENT_CHANNEL_OPTIONS, insecureCredentials, type ModelCard } from '@armature/runtime';
import { decodeGrowth, type DecodeRow } from './grid.js';
import { randomPrompt } from './prompts.js';

/** A worker to measure: its client and the card it serves. */
export interface LiveWorker {
  address: string;
  client: WorkerClient;
  card: ModelCard;
  close(): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function health(client: WorkerClient, timeoutMs = 5_000): Promise<HealthResponse> {
  return new Promise((resolve, reject) =>
    client.health({}, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/** Connects to the worker at `address` and reads its card; retries until it serves (default 30 s). */
export async function connectWorker(address: string, timeoutMs = 30_000): Promise<LiveWorker> {
  const client = new WorkerClient(address, insecureCredentials(), CLIENT_CHANNEL_OPTIONS);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await health(client);
      if (res.status === HealthResponse_Status.STATUS_SERVING && res.card)
        return { address, client, card: modelCardFromProto(res.card), close: () => client.close() };
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  client.close();
  throw new ArmatureError(
    'unavailable',
    'profile_worker_unreachable',
    `worker ${address} did not serve within ${timeoutMs} ms`,
    {
      cause: last,
    },
  );
}

/** Waits until the worker runs and queues nothing (the previous point's streams are gone). */
async function waitIdle(worker: LiveWorker, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const load = (await health(worker.client)).load;
    if (!load || (load.runningRequests === 0 && load.waitingRequests === 0)) return;
    if (Date.now() > deadline)
      throw new ArmatureError('unavailable', 'profile_worker_busy', 'the worker never went idle');
    await sleep(20);
  }
}

let nextId = 0;
const requestId = (what: string): string => `profile-${what}-${process.pid}-${nextId++}`;

function generate(worker: LiveWorker, tokenIds: number[], maxTokens: number): ClientReadableStream<GenerateResponse> {
  return worker.client.generate({
    requestId: requestId(maxTokens === 1 ? 'prefill' : 'decode'),
    model: worker.card.model,
    tokenIds,
    sampling: { seed: 0 },
    stop: { maxTokens, ignoreEos: true, stopTokenIds: [] },
  });
}

/** Time from sending one prompt to its first token, ms (max_tokens 1: the stream ends there). */
export function timeToFirstToken(worker: LiveWorker, tokenIds: number[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let ttft: number | undefined;
    const call = generate(worker, tokenIds, 1);
    call.on('data', (msg: GenerateResponse) => {
      if (ttft === undefined && msg.tokenIds.length > 0) ttft = performance.now() - started;
    });
    call.on('error', reject);
    call.on('end', () =>
      ttft === undefined ? reject(new Error('the worker ended the stream without a token')) : resolve(ttft),
    );
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Batch-1 TTFT at each prompt length: the median of `repeats`, fresh random tokens each time. */
export async function livePrefillPoints(
  worker: LiveWorker,
  isls: readonly number[],
  repeats: number,
  onRun?: (isl: number) => void,
): Promise<PrefillPoint[]> {
  await waitIdle(worker);
  // The first call opens the connection and warms the worker's code paths: not a sample.
  await timeToFirstToken(worker, randomPrompt(Math.min(16, isls[0]!)));
  const points: PrefillPoint[] = [];
  for (const isl of isls) {
    const samples: number[] = [];
    for (let r = 0; r < repeats; r++) {
      samples.push(await timeToFirstToken(worker, randomPrompt(isl)));
      onRun?.(isl);
    }
    const ttftMs = median(samples);
    points.push({ isl, ttftMs, tokensPerSecond: (isl * 1000) / ttftMs });
  }
  return points;
}

/** One stream's arrivals: when each message came and the tokens received by then. */
interface StreamLog {
  times: number[];
  tokens: number[];
  ended: boolean;
}

/**
 * `concurrency` streams of `context`-token prompts. From the moment the last of them gets
 * its first token (every pass after it decodes them all), each stream's mean gap over
 * `steps` tokens; the point's ITL is the mean over streams, its KV usage the mean of the
 * worker's at the start and end of that window. The streams are cancelled at the end.
 */
export async function liveDecodePoint(
  worker: LiveWorker,
  context: number,
  concurrency: number,
  steps: number,
  timeoutMs = 300_000,
): Promise<DecodePoint> {
  await waitIdle(worker);
  const { card } = worker;
  const maxTokens = Math.min(card.contextLength - context, 4 * decodeGrowth(card, context, concurrency, steps));
  const logs: StreamLog[] = [];
  const calls: ClientReadableStream<GenerateResponse>[] = [];
  let cancelled = false;
  const cancelAll = (): void => {
    cancelled = true;
    for (const call of calls) call.cancel();
  };
  try {
    return await new Promise<DecodePoint>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`decode point ${context}×${concurrency} took over ${timeoutMs} ms`)),
        timeoutMs,
      );
      let windowStart: number | undefined;
      let usageAtStart: Promise<number> | undefined;
      const usage = (): Promise<number> => health(worker.client).then((h) => h.load?.kvUsage ?? 0);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      /** Each stream's mean gap over `steps` tokens from the window start; undefined while short. */
      const gaps = (): number[] | undefined => {
        const out: number[] = [];
        for (const log of logs) {
          const a = log.times.findIndex((t) => t >= windowStart!);
          if (a < 0) return undefined;
          const b = log.tokens.findIndex((n, i) => i > a && n >= log.tokens[a]! + steps);
          if (b < 0) return undefined;
          out.push((log.times[b]! - log.times[a]!) / (log.tokens[b]! - log.tokens[a]!));
        }
        return out;
      };
      const check = (): void => {
        if (windowStart === undefined) {
          if (logs.some((l) => l.tokens.length === 0)) return;
          windowStart = Math.max(...logs.map((l) => l.times[0]!));
          usageAtStart = usage();
        }
        const perStream = gaps();
        if (!perStream) return;
        clearTimeout(timer);
        const itlMs = perStream.reduce((s, g) => s + g, 0) / perStream.length;
        Promise.all([usageAtStart!, usage()])
          .then(([a, b]) =>
            resolve({
              context,
              concurrency,
              kvUsage: (a + b) / 2,
              itlMs,
              tokensPerSecond: (concurrency * 1000) / itlMs,
            }),
          )
          .catch(fail);
      };
      for (let i = 0; i < concurrency; i++) {
        const log: StreamLog = { times: [], tokens: [], ended: false };
        logs.push(log);
        const call = generate(worker, randomPrompt(context), maxTokens);
        calls.push(call);
        let received = 0;
        call.on('data', (msg: GenerateResponse) => {
          if (msg.tokenIds.length === 0) return;
          received += msg.tokenIds.length;
          log.times.push(performance.now());
          log.tokens.push(received);
          check();
        });
        call.on('error', (err: Error) => {
          if (!cancelled) fail(err);
        });
        call.on('end', () => {
          log.ended = true;
          if (!cancelled && !gaps())
            fail(new Error(`decode point ${context}×${concurrency}: a stream ended after ${received} tokens`));
        });
      }
    });
  } finally {
    cancelAll();
  }
}

/** The decode sweep: every row's concurrencies, one point each. */
export async function liveDecodePoints(
  worker: LiveWorker,
  rows: readonly DecodeRow[],
  steps: number,
  onPoint?: (point: DecodePoint) => void,
): Promise<DecodePoint[]> {
  const points: DecodePoint[] = [];
  for (const { context, concurrencies } of rows) {
    for (const concurrency of concurrencies) {
      const point = await liveDecodePoint(worker, context, concurrency, steps);
      points.push(point);
      onPoint?.(point);
    }
  }
  return points;
}
