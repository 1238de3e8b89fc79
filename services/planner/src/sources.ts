// Where the planner reads the cluster's metrics: one interface, two backends. `scrape`
// fetches every frontend's and worker's /metrics found through discovery and sums them;
// `prometheus` asks a Prometheus server's HTTP API the same questions (sum() over the
// frontends, by instance_id over the workers). Both return cumulative totals; observe.ts
// turns two of them into an interval. A failed read is reported in `errors`, never thrown:
// the planner holds its counts and says why.
import type { Discovery, InstanceRecord } from '@armature/runtime';

/** A histogram's (or counter pair's) running totals. */
export interface Totals {
  count: number;
  sum: number;
}

export interface FrontendTotals {
  /** Prompt tokens per request: count is requests started. */
  input: Totals;
  /** Output tokens per finished request. */
  output: Totals;
  ttftSeconds: Totals;
  itlSeconds: Totals;
  inputTokens: number;
  cachedTokens: number;
}

export interface WorkerTotals {
  id: string;
  pool: 'prefill' | 'decode';
  activePrefillTokens: number;
  activeDecodeBlocks: number;
  blockSize: number;
  /** Forward passes and their seconds. */
  steps: Totals;
  /** Prompt tokens over those passes (sum) — count is the passes the histogram saw. */
  batchPrefillTokens: Totals;
}

export interface ClusterSnapshot {
  atMs: number;
  /** Summed over every frontend; undefined when none could be read. */
  frontend: FrontendTotals | undefined;
  workers: WorkerTotals[];
  /** Reads that failed (a scrape, a query): counted in armature_planner_observe_errors_total. */
  errors: string[];
  /** What is absent without anything failing (no frontend yet). */
  missing?: string[];
}

export interface MetricsSource {
  readonly name: 'scrape' | 'prometheus';
  snapshot(): Promise<ClusterSnapshot>;
}

/** One sample of the text exposition format: name, labels and value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (what prom-client serves); comments and bad lines are skipped. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = Number(m[4]);
    if (Number.isFinite(value)) out.push({ name: m[1]!, labels, value });
  }
  return out;
}

const sumOf = (samples: readonly Sample[], name: string): number =>
  samples.filter((s) => s.name === name).reduce((t, s) => t + s.value, 0);
const totalsOf = (samples: readonly Sample[], name: string): Totals => ({
  count: sumOf(samples, `${name}_count`),
  sum: sumOf(samples, `${name}_sum`),
});

function frontendFrom(samples: readonly Sample[]): FrontendTotals {
  return {
    input: totalsOf(samples, 'armature_frontend_input_sequence_tokens'),
    output: totalsOf(samples, 'armature_frontend_output_sequence_tokens'),
    ttftSeconds: totalsOf(samples, 'armature_frontend_time_to_first_token_seconds'),
    itlSeconds: totalsOf(samples, 'armature_frontend_inter_token_latency_seconds'),
    inputTokens: sumOf(samples, 'armature_frontend_input_tokens_total'),
    cachedTokens: sumOf(samples, 'armature_frontend_cached_tokens_total'),
  };
}

function addFrontend(a: FrontendTotals, b: FrontendTotals): FrontendTotals {
  const add = (x: Totals, y: Totals): Totals => ({ count: x.count + y.count, sum: x.sum + y.sum });
  return {
    input: add(a.input, b.input),
    output: add(a.output, b.output),
    ttftSeconds: add(a.ttftSeconds, b.ttftSeconds),
    itlSeconds: add(a.itlSeconds, b.itlSeconds),
    inputTokens: a.inputTokens + b.inputTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
  };
}

function workerFrom(record: InstanceRecord, samples: readonly Sample[]): WorkerTotals {
  return {
    id: record.instanceId,
    pool: record.role === 'prefill' ? 'prefill' : 'decode',
    activePrefillTokens: sumOf(samples, 'armature_worker_active_prefill_tokens'),
    activeDecodeBlocks: sumOf(samples, 'armature_worker_active_decode_blocks'),
    blockSize: record.card?.blockSize ?? 16,
    steps: totalsOf(samples, 'armature_worker_step_seconds'),
    batchPrefillTokens: totalsOf(samples, 'armature_worker_batch_prefill_tokens'),
  };
}

const WORKER_ROLES = new Set(['prefill', 'decode']);

async function fetchText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

/** Scrapes the services discovery lists (frontends and workers), each with `timeoutMs` (default 2 s). */
export class ScrapeSource implements MetricsSource {
  readonly name = 'scrape' as const;

  constructor(
    private readonly discovery: Pick<Discovery, 'list'>,
    private readonly timeoutMs = 2_000,
  ) {}

  async snapshot(): Promise<ClusterSnapshot> {
    const records = await this.discovery.list();
    const errors: string[] = [];
    let frontend: FrontendTotals | undefined;
    let frontendsSeen = 0;
    let frontendFailed = false;
    const workers: WorkerTotals[] = [];
    await Promise.all(
      records.map(async (r) => {
        const isFrontend = r.role === 'frontend';
        if (!r.metricsAddress || (!isFrontend && !WORKER_ROLES.has(r.role))) return;
        if (isFrontend) frontendsSeen++;
        let samples: Sample[];
        try {
          samples = parseExposition(await fetchText(`http://${r.metricsAddress}/metrics`, this.timeoutMs));
        } catch (err) {
          errors.push(`scrape ${r.instanceId} (${r.metricsAddress}): ${(err as Error).message}`);
          if (isFrontend) frontendFailed = true;
          return;
        }
        if (isFrontend) {
          const f = frontendFrom(samples);
          frontend = frontend ? addFrontend(frontend, f) : f;
        } else workers.push(workerFrom(r, samples));
      }),
    );
    if (frontendsSeen === 0) errors.push('no frontend in discovery');
    // A frontend that could not be read makes the total wrong: report none rather than part.
    if (frontendFailed) frontend = undefined;
    workers.sort((a, b) => a.id.localeCompare(b.id));
    return { atMs: Date.now(), frontend, workers, errors };
  }
}

interface PromVector {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

/** Reads the same totals from a Prometheus server's HTTP API (`/api/v1/query`). */
export class PrometheusSource implements MetricsSource {
  readonly name = 'prometheus' as const;
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly discovery?: Pick<Discovery, 'list'>,
    private readonly timeoutMs = 2_000,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  private async query(expr: string): Promise<PromVector['data'] & object> {
    const res = await fetch(`${this.base}/api/v1/query?query=${encodeURIComponent(expr)}`, {
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const body = (await res.json()) as PromVector;
    if (body.status !== 'success' || !body.data) throw new Error(body.error ?? `HTTP ${res.status}`);
    return body.data;
  }

  private async scalar(expr: string): Promise<number> {
    const data = await this.query(`sum(${expr})`);
    return Number(data.result[0]?.value[1] ?? 0);
  }

  async snapshot(): Promise<ClusterSnapshot> {
    const errors: string[] = [];
    const atMs = Date.now();
    const missing: string[] = [];
    let frontend: FrontendTotals | undefined;
    const totals = async (name: string): Promise<Totals> => ({
      count: await this.scalar(`${name}_count`),
      sum: await this.scalar(`${name}_sum`),
    });
    try {
      const up = await this.query('up{role="frontend"} == 1');
      if (up.result.length === 0) missing.push(`prometheus ${this.base}: no frontend is up`);
      else
        frontend = {
          input: await totals('armature_frontend_input_sequence_tokens'),
          output: await totals('armature_frontend_output_sequence_tokens'),
          ttftSeconds: await totals('armature_frontend_time_to_first_token_seconds'),
          itlSeconds: await totals('armature_frontend_inter_token_latency_seconds'),
          inputTokens: await this.scalar('armature_frontend_input_tokens_total'),
          cachedTokens: await this.scalar('armature_frontend_cached_tokens_total'),
        };
    } catch (err) {
      errors.push(`prometheus ${this.base}: ${(err as Error).message}`);
    }
    const workers: WorkerTotals[] = [];
    try {
      const by = async (expr: string): Promise<Map<string, number>> => {
        const data = await this.query(`sum by (instance_id, role) (${expr})`);
        return new Map(data.result.map((r) => [`${r.metric.role}/${r.metric.instance_id}`, Number(r.value[1])]));
      };
      const up = await this.query('up{role=~"prefill|decode"} == 1');
      const blockSizes = new Map(
        (await this.discovery?.list())?.map((r) => [r.instanceId, r.card?.blockSize ?? 16]) ?? [],
      );
      const [prefill, blocks, stepsCount, stepsSum, batchCount, batchSum] = await Promise.all([
        by('armature_worker_active_prefill_tokens'),
        by('armature_worker_active_decode_blocks'),
        by('armature_worker_step_seconds_count'),
        by('armature_worker_step_seconds_sum'),
        by('armature_worker_batch_prefill_tokens_count'),
        by('armature_worker_batch_prefill_tokens_sum'),
      ]);
      for (const r of up.result) {
        const id = r.metric.instance_id!;
        const key = `${r.metric.role}/${id}`;
        workers.push({
          id,
          pool: r.metric.role === 'prefill' ? 'prefill' : 'decode',
          activePrefillTokens: prefill.get(key) ?? 0,
          activeDecodeBlocks: blocks.get(key) ?? 0,
          blockSize: blockSizes.get(id) ?? 16,
          steps: { count: stepsCount.get(key) ?? 0, sum: stepsSum.get(key) ?? 0 },
          batchPrefillTokens: { count: batchCount.get(key) ?? 0, sum: batchSum.get(key) ?? 0 },
        });
      }
    } catch (err) {
      errors.push(`prometheus ${this.base}: ${(err as Error).message}`);
    }
    workers.sort((a, b) => a.id.localeCompare(b.id));
    return { atMs, frontend, workers, errors, ...(missing.length > 0 ? { missing } : {}) };
  }
}
