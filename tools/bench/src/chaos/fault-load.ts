// Bounded load for fault tests: C clients (the official openai client, streaming) send N
// seeded requests between them, each recording its text, its time to first token, its
// inter-token gaps and how it ended. A fault schedule runs beside the load; the report
// says what was sent, completed and failed, and the latency during the fault window
// against before it. Shared by tests/chaos (CI-sized) and `npm run bench:chaos` (chaos/run.ts).
import OpenAI from 'openai';

export interface FaultLoadOptions {
  url: string;
  /**
   * Frontend replicas to spread requests over (default [url]), as a load balancer would:
   * request i goes to urls[i % n], and one that got nothing back because its frontend was
   * gone or draining (connection refused or reset, 503) is sent to the next.
   */
  urls?: string[];
  model: string;
  /** Requests in all (default 60). */
  requests?: number;
  /** Concurrent clients (default 8). */
  clients?: number;
  /** Tokens per request (ignore_eos, so every request generates exactly this many; default 40). */
  maxTokens?: number;
  /** Stream (default true) or not. */
  stream?: boolean;
  /** Sampling temperature (default 1; the seed makes the output reproducible on the mocker). */
  temperature?: number;
  /** Client-side deadline of one request, ms (default 60 000). */
  timeoutMs?: number;
}

export interface FaultRecord {
  index: number;
  seed: number;
  startedAt: number;
  endedAt: number;
  /** ms from start to the first text; undefined when none came. */
  ttftMs?: number;
  /** Gaps between content chunks, ms. */
  gapsMs: number[];
  text: string;
  completionTokens?: number;
  finishReason?: string | null;
  error?: string;
  /** Times the request was sent to another frontend before it was answered. */
  failovers?: number;
}

export interface Fault {
  /** ms after the load starts. */
  at: number;
  name: string;
  run(): Promise<void> | void;
}

export const promptOf = (index: number): string =>
  `chaos request ${index}: tell a long story about the number ${index * 7919}`;

/** One request, as the load sends it, with `seed` so that its output can be checked against a rerun. */
export async function sendSeeded(client: OpenAI, options: FaultLoadOptions, index: number): Promise<FaultRecord> {
  const seed = index + 1;
  const record: FaultRecord = { index, seed, startedAt: Date.now(), endedAt: 0, gapsMs: [], text: '' };
  const body = {
    model: options.model,
    messages: [{ role: 'user' as const, content: promptOf(index) }],
    max_tokens: options.maxTokens ?? 40,
    seed,
    temperature: options.temperature ?? 1,
    ignore_eos: true,
  };
  try {
    if (options.stream === false) {
      const res = await client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming);
      record.ttftMs = Date.now() - record.startedAt;
      record.text = res.choices[0]?.message.content ?? '';
      record.finishReason = res.choices[0]?.finish_reason;
      record.completionTokens = res.usage?.completion_tokens;
    } else {
      const stream = await client.chat.completions.create({
        ...body,
        stream: true,
        stream_options: { include_usage: true },
      } as OpenAI.ChatCompletionCreateParamsStreaming);
      let last = 0;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (choice?.delta?.content) {
          const now = Date.now();
          if (record.ttftMs === undefined) record.ttftMs = now - record.startedAt;
          else record.gapsMs.push(now - last);
          last = now;
          record.text += choice.delta.content;
        }
        if (choice?.finish_reason) record.finishReason = choice.finish_reason;
        if (chunk.usage) record.completionTokens = chunk.usage.completion_tokens;
      }
      if (!record.finishReason) record.error = 'stream ended without a finish reason';
    }
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err);
  }
  record.endedAt = Date.now();
  return record;
}

/** Whether a request that got nothing back may go to another frontend: its frontend was gone or leaving. */
const frontendGone = (r: FaultRecord): boolean =>
  r.ttftMs === undefined &&
  /Connection error|ECONNREFUSED|ECONNRESET|socket hang up|terminated|^503\b/.test(r.error ?? '');

/** One request through the frontends, as a load balancer with retries would send it. */
async function sendBalanced(clients: OpenAI[], options: FaultLoadOptions, index: number): Promise<FaultRecord> {
  const first = await sendSeeded(clients[index % clients.length]!, options, index);
  let record = first;
  for (let k = 1; k < clients.length * 2 && record.error && frontendGone(record); k++) {
    const again = await sendSeeded(clients[(index + k) % clients.length]!, options, index);
    // Times count from the first try, as the client saw them.
    const offset = again.startedAt - first.startedAt;
    record = {
      ...again,
      startedAt: first.startedAt,
      ttftMs: again.ttftMs === undefined ? undefined : again.ttftMs + offset,
      failovers: k,
    };
  }
  return record;
}

/** Runs the load with the faults on their schedule; resolves when every request ended and every fault ran. */
export async function runFaultLoad(
  options: FaultLoadOptions,
  faults: Fault[] = [],
  onProgress?: (done: number, total: number) => void,
): Promise<{ records: FaultRecord[]; startedAt: number; faultTimes: Map<string, number> }> {
  const total = options.requests ?? 60;
  const urls = options.urls ?? [options.url];
  const clients = urls.map(
    (url) =>
      new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: options.timeoutMs ?? 60_000 }),
  );
  const records: FaultRecord[] = [];
  const startedAt = Date.now();
  const faultTimes = new Map<string, number>();
  const faultRuns = faults.map(async (f) => {
    await new Promise((r) => setTimeout(r, f.at));
    faultTimes.set(f.name, Date.now());
    await f.run();
  });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const index = next++;
      records.push(await sendBalanced(clients, options, index));
      onProgress?.(records.length, total);
    }
  };
  await Promise.all(Array.from({ length: options.clients ?? 8 }, worker));
  await Promise.all(faultRuns);
  records.sort((a, b) => a.index - b.index);
  return { records, startedAt, faultTimes };
}

export interface WindowStats {
  requests: number;
  p99TtftMs: number;
  maxTtftMs: number;
  p99GapMs: number;
  /** The longest silence any request saw: a migrated request's pause. */
  maxGapMs: number;
}

const p99 = (xs: number[]): number => {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
};

/**
 * Latency of the requests that started in [from, to), or (`running`) that were running at
 * some point in it: a fault's window counts the requests it caught mid-stream.
 */
export function windowStats(records: FaultRecord[], from: number, to: number, running = false): WindowStats {
  const inside = records.filter((r) =>
    running ? r.startedAt < to && r.endedAt >= from : r.startedAt >= from && r.startedAt < to,
  );
  const ttfts = inside.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs]));
  const gaps = inside.flatMap((r) => r.gapsMs);
  return {
    requests: inside.length,
    p99TtftMs: p99(ttfts),
    maxTtftMs: ttfts.reduce((a, b) => Math.max(a, b), 0),
    p99GapMs: p99(gaps),
    maxGapMs: gaps.reduce((a, b) => Math.max(a, b), 0),
  };
}

/** A counter's total over its label sets, from a Prometheus text page. */
export function counterTotal(metricsText: string, name: string, labelFilter = ''): number {
  let sum = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labelFilter && !line.includes(labelFilter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Time from the fault to the first request that started after it and completed within
 * twice the median duration before the fault: how long the cluster took to serve
 * normally again.
 */
export function recoveryMs(records: FaultRecord[], faultAt: number): number | undefined {
  const before = records.filter((r) => r.endedAt < faultAt && !r.error).map((r) => r.endedAt - r.startedAt);
  if (before.length === 0) return undefined;
  const median = [...before].sort((a, b) => a - b)[Math.floor(before.length / 2)]!;
  const healthy = records
    .filter((r) => r.startedAt >= faultAt && !r.error && r.endedAt - r.startedAt <= 2 * median)
    .sort((a, b) => a.startedAt - b.startedAt)[0];
  return healthy ? healthy.startedAt - faultAt : undefined;
}
