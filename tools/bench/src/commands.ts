// The `armature bench`, `armature replay` and `armature report` commands.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadTokenizer } from '@armature/tokenizer';
import { createPolicy, POLICY_IDS } from '@armature/router-core';
import { loadWorkload, spreadBursts } from './datasets/index.js';
import { runLoad } from './load/generator.js';
import { parseRamp, type ScheduleSpec } from './load/schedule.js';
import { ProgressBar } from './progress.js';
import { plannerReplayCommand } from './replay/planner-command.js';
import { parseStaticSize } from './replay/planner-replay.js';
import { simulate } from './replay/simulator.js';
import { computeResults, renderHtmlReport, writePlots, type BenchResults, type Slo } from './results/index.js';

const num = (value: string | undefined, name: string, fallback?: number): number => {
  if (value === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
};

function sloFrom(v: Record<string, string | boolean | string[] | undefined>): Slo {
  const slo: Slo = {};
  if (v['slo-ttft-ms'] !== undefined) slo.ttftMs = num(v['slo-ttft-ms'] as string, 'slo-ttft-ms');
  if (v['slo-itl-ms'] !== undefined) slo.itlMs = num(v['slo-itl-ms'] as string, 'slo-itl-ms');
  if (v['slo-e2e-ms'] !== undefined) slo.e2eMs = num(v['slo-e2e-ms'] as string, 'slo-e2e-ms');
  return slo;
}

async function writeOutputs(
  results: BenchResults[],
  v: Record<string, string | boolean | string[] | undefined>,
): Promise<void> {
  const out = v.out as string | undefined;
  if (out) {
    await mkdir(dirname(resolve(out)), { recursive: true });
    await writeFile(out, JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + '\n');
    process.stderr.write(`results: ${out}\n`);
  }
  if (v.html) {
    await mkdir(dirname(resolve(v.html as string)), { recursive: true });
    await writeFile(
      v.html as string,
      renderHtmlReport(results, { title: (v.title as string) ?? 'Armature benchmark' }),
    );
    process.stderr.write(`report: ${v.html}\n`);
  }
  if (v.plots) {
    const files = await writePlots(results, v.plots as string);
    process.stderr.write(`plots: ${files.join(', ')}\n`);
  }
}

function printSummary(r: BenchResults): void {
  const f = (x: number): string => x.toFixed(1);
  process.stdout.write(
    `${r.label}: ${r.completed} ok, ${r.failed} failed in ${f(r.duration_s)} s | ` +
      `TTFT mean ${f(r.ttft_ms.mean)} p50 ${f(r.ttft_ms.p50)} p99 ${f(r.ttft_ms.p99)} ms | ` +
      `ITL mean ${f(r.itl_ms.mean)} p99 ${f(r.itl_ms.p99)} ms | ${f(r.output_tokens_per_s)} out tok/s | ` +
      `goodput ${r.goodput_rps.toFixed(2)} req/s` +
      (r.kv_hit_rate !== null ? ` | KV hit ${(100 * r.kv_hit_rate).toFixed(1)}%` : '') +
      (r.degraded ? ' | DEGRADED (schedule lag)' : '') +
      '\n',
  );
}

const COMMON = {
  dataset: { type: 'string' },
  trace: { type: 'string' },
  tokenizer: { type: 'string', default: 'gpt-tokenizer:o200k_base' },
  limit: { type: 'string' },
  out: { type: 'string' },
  html: { type: 'string' },
  plots: { type: 'string' },
  label: { type: 'string' },
  title: { type: 'string' },
  'slo-ttft-ms': { type: 'string' },
  'slo-itl-ms': { type: 'string' },
  'slo-e2e-ms': { type: 'string' },
  'time-scale': { type: 'string', default: '1' },
  'spread-bursts': { type: 'boolean', default: false },
} as const;

async function workloadFrom(v: Record<string, string | boolean | string[] | undefined>) {
  const spec = (v.dataset as string | undefined) ?? (v.trace ? `mooncake:${v.trace as string}` : undefined);
  if (!spec) throw new Error('--dataset <spec> (or --trace <mooncake.jsonl>) is required');
  const tokenizer = await loadTokenizer(v.tokenizer as string);
  const limit = v.limit === undefined ? undefined : num(v.limit as string, 'limit');
  const started = performance.now();
  const loaded = await loadWorkload(spec, { tokenizer, limit });
  const workload = v['spread-bursts'] ? { ...loaded, requests: spreadBursts(loaded.requests) } : loaded;
  const e = workload.promptLengthError;
  process.stderr.write(
    `dataset ${workload.name}: ${workload.requests.length} requests in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `prompt length error mean ${e.meanAbs.toFixed(2)} tokens (max ${e.maxAbs})\n`,
  );
  return workload;
}

/** `armature bench --url <base> --dataset <spec> ...` */
export async function benchCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      ...COMMON,
      url: { type: 'string' },
      model: { type: 'string' },
      mode: { type: 'string', default: 'trace' },
      rate: { type: 'string' },
      ramp: { type: 'string' },
      arrival: { type: 'string', default: 'poisson' },
      concurrency: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'max-requests': { type: 'string' },
      'max-duration-s': { type: 'string', default: '600' },
      'request-timeout-s': { type: 'string', default: '600' },
      'token-ids': { type: 'boolean', default: false },
    },
  });
  if (!v.url) throw new Error('--url <base URL of an OpenAI-compatible server> is required');
  const baseUrl = v.url.replace(/\/+$/, '').replace(/\/v1$/, '');
  const workload = await workloadFrom(v);
  let model = v.model;
  if (!model) {
    const models = (await (await fetch(`${baseUrl}/v1/models`)).json()) as { data: Array<{ id: string }> };
    model = models.data[0]?.id;
    if (!model) throw new Error(`${baseUrl}/v1/models lists no model; pass --model`);
  }
  let schedule: ScheduleSpec;
  if (v.mode === 'trace') schedule = { mode: 'trace', timeScale: num(v['time-scale'], 'time-scale') };
  else if (v.mode === 'rate') {
    if (v.arrival !== 'poisson' && v.arrival !== 'constant') throw new Error('--arrival must be poisson or constant');
    schedule = {
      mode: 'rate',
      rate: v.ramp ? 0 : num(v.rate, 'rate'),
      arrival: v.arrival,
      seed: num(v.seed, 'seed'),
      ...(v.ramp ? { ramp: parseRamp(v.ramp) } : {}),
    };
  } else if (v.mode === 'concurrency')
    schedule = { mode: 'concurrency', concurrency: num(v.concurrency, 'concurrency') };
  else throw new Error('--mode must be trace, rate or concurrency');
  const bar = new ProgressBar('bench');
  const startedAt = new Date();
  const records = await runLoad(workload.requests, {
    baseUrl,
    model,
    schedule,
    maxRequests: v['max-requests'] === undefined ? undefined : num(v['max-requests'], 'max-requests'),
    maxDurationMs: num(v['max-duration-s'], 'max-duration-s') * 1000,
    requestTimeoutMs: num(v['request-timeout-s'], 'request-timeout-s') * 1000,
    sendTokenIds: v['token-ids'] === true,
    onProgress: (p) => bar.update({ done: p.done, total: p.total, failed: p.failed, inflight: p.inflight }),
  });
  bar.finish();
  const results = computeResults(records, {
    label: v.label ?? `bench ${v.mode}`,
    mode: `live-${v.mode}`,
    slo: sloFrom(v),
    startedAt,
    config: {
      url: baseUrl,
      model,
      dataset: workload.name,
      schedule,
      tokenizer: v.tokenizer,
      promptLengthError: workload.promptLengthError,
    },
  });
  printSummary(results);
  await writeOutputs([results], v);
}

/**
 * `armature replay --dataset <spec> --workers <n> --policy <id>... [--params <json>] [--busy <json>]`:
 * `--policy` may repeat, or be `all` for every registered policy (default kv).
 */
export async function replayCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      ...COMMON,
      workers: { type: 'string', default: '8' },
      policy: { type: 'string', multiple: true },
      params: { type: 'string', default: '{}' },
      busy: { type: 'string', default: '{}' },
      'engine-args': { type: 'string', default: '{}' },
      speedup: { type: 'string', default: '1' },
      // Disaggregated serving: --mode disagg --prefill <n> --decode <n>.
      mode: { type: 'string', default: 'agg' },
      prefill: { type: 'string' },
      decode: { type: 'string' },
      'prefill-policy': { type: 'string', default: 'kv' },
      'min-remote-prefill-tokens': { type: 'string', default: '2048' },
      'kv-bytes-per-token': { type: 'string', default: '131072' },
      'bandwidth-gbps': { type: 'string', default: '64' },
      // The planner drives the pools: --planner <planner.yaml> [--static n | p:d]... [--no-oracle].
      planner: { type: 'string' },
      'startup-delay-ms': { type: 'string', default: '30000' },
      static: { type: 'string', multiple: true },
      'no-oracle': { type: 'boolean', default: false },
    },
  });
  if (v.mode !== 'agg' && v.mode !== 'disagg') throw new Error(`--mode must be agg or disagg, got ${v.mode}`);
  const disagg =
    v.mode === 'disagg' && !v.planner
      ? {
          prefillWorkers: num(v.prefill, 'prefill'),
          prefillPolicy: v['prefill-policy']!,
          options: { minRemotePrefillTokens: num(v['min-remote-prefill-tokens'], 'min-remote-prefill-tokens') },
          kvBytesPerToken: num(v['kv-bytes-per-token'], 'kv-bytes-per-token'),
          bandwidthGBps: num(v['bandwidth-gbps'], 'bandwidth-gbps'),
        }
      : undefined;
  const workerCount = v.planner ? 0 : disagg ? num(v.decode, 'decode') : num(v.workers, 'workers');
  const workload = await workloadFrom(v);
  const timeScale = num(v['time-scale'], 'time-scale');
  const requests = workload.requests.map((r) => ({
    id: r.id,
    arrivalMs: (r.arrivalMs ?? 0) * timeScale,
    promptTokenIds: r.promptTokenIds,
    outputTokens: r.outputTokens,
  }));
  const mocker = {
    ...replayMockerDefaults(),
    ...(JSON.parse(v['engine-args']) as Record<string, unknown>),
    speedup: num(v.speedup, 'speedup'),
  };
  if (v.planner) {
    const slo = sloFrom(v);
    if (slo.ttftMs === undefined || slo.itlMs === undefined)
      throw new Error('--planner needs --slo-ttft-ms and --slo-itl-ms (what SLO attainment counts)');
    await plannerReplayCommand(requests, {
      plannerFile: v.planner,
      mocker,
      policy: v.policy?.[0] ?? 'kv',
      policyParams: jsonObject(v.params!, 'params'),
      ...(v.mode === 'disagg'
        ? {
            disagg: {
              prefillPolicy: v['prefill-policy']!,
              options: { minRemotePrefillTokens: num(v['min-remote-prefill-tokens'], 'min-remote-prefill-tokens') },
              kvBytesPerToken: num(v['kv-bytes-per-token'], 'kv-bytes-per-token'),
              bandwidthGBps: num(v['bandwidth-gbps'], 'bandwidth-gbps'),
            },
          }
        : {}),
      slo: { ttftMs: slo.ttftMs, itlMs: slo.itlMs },
      startupDelayMs: num(v['startup-delay-ms'], 'startup-delay-ms'),
      statics: (v.static ?? []).map(parseStaticSize),
      oracle: !v['no-oracle'],
      out: v.out,
      html: v.html,
      title: v.title,
    });
    return;
  }
  const requested = v.policy && v.policy.length > 0 ? v.policy : ['kv'];
  const policies = requested.includes('all') ? [...POLICY_IDS] : requested;
  const policyParams = jsonObject(v.params!, 'params');
  const busy = jsonObject(v.busy!, 'busy');
  const all: BenchResults[] = [];
  for (const policy of policies) {
    const bar = new ProgressBar(`replay ${policy}`);
    const started = performance.now();
    const sim = simulate(requests, {
      workers: workerCount,
      disagg,
      policy,
      // Parameters apply to the policies that take them; the others run with defaults.
      policyParams: requested.includes('all') && policies.length > 1 ? paramsFor(policy, policyParams) : policyParams,
      busy,
      mocker,
      onProgress: (done, total, virtualMs) =>
        bar.update({ done, total, note: `virtual ${(virtualMs / 1000).toFixed(0)} s` }),
    });
    bar.update({ done: requests.length, total: requests.length });
    bar.finish();
    const results = computeResults(sim.records, {
      label: v.label
        ? `${v.label} ${policy}`
        : disagg
          ? `replay disagg ${disagg.prefillWorkers}P+${workerCount}D ${policy}`
          : `replay ${policy}`,
      mode: 'replay',
      slo: sloFrom(v),
      config: {
        dataset: workload.name,
        workers: workerCount,
        mode: v.mode,
        disagg: disagg && { ...disagg, stats: sim.disagg },
        policy,
        mocker,
        timeScale,
        policyParams,
        busy,
        wall_s: (performance.now() - started) / 1000,
        passes: sim.steps,
        router_hit_rate: sim.routerHitRate,
        queue_rejected: sim.queueRejected,
      },
    });
    printSummary(results);
    all.push(results);
  }
  await writeOutputs(all, v);
}

function jsonObject(text: string, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`--${name} must be a JSON object, got ${text}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`--${name} must be a JSON object, got ${text}`);
  }
  return value as Record<string, unknown>;
}

/** The given parameters if `policy` accepts them all, else none (for `--policy all`). */
function paramsFor(policy: string, params: Record<string, unknown>): Record<string, unknown> {
  try {
    createPolicy(policy, params);
    return params;
  } catch {
    return {};
  }
}

/** Mocker settings for replays of long-prompt traces (Dynamo's mocker defaults). */
export function replayMockerDefaults(): Record<string, unknown> {
  return { blockSize: 64, totalKvBlocks: 16384, maxNumSeqs: 256, maxNumBatchedTokens: 8192, contextLength: 262144 };
}

/** `armature report a.json b.json ... --html report.html [--plots dir]`: runs side by side. */
export async function reportCommand(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { html: { type: 'string' }, plots: { type: 'string' }, title: { type: 'string' } },
  });
  if (positionals.length === 0) throw new Error('name at least one results JSON file');
  const runs: BenchResults[] = [];
  for (const path of positionals) {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as BenchResults | BenchResults[];
    runs.push(...(Array.isArray(parsed) ? parsed : [parsed]));
  }
  if (!v.html && !v.plots) throw new Error('--html <file> and/or --plots <dir> is required');
  await writeOutputs(runs, v);
}
