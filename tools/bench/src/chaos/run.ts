// npm run bench:chaos: the long version of tests/chaos. For each fault, a fresh local
// cluster (mocker, or llama.cpp on the generated test model) serves bounded streaming load
// from the openai client while the fault is injected on schedule; the report gives, per
// fault, requests sent / completed / failed / migrated, how many match an undisturbed rerun
// of the same request, the time to recover, and p99 TTFT and inter-token gap before the
// fault and during it. Writes faults.json, faults.md and faults-ttft.svg to --out.
//
//   npm run bench:chaos -- [--engine mocker|llamacpp] [--requests 200] [--clients 8]
//                          [--max-tokens 120] [--stop-ms 15000] [--out docs/benchmarks/faults]
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import type { Supervisor } from '@armature/deploy';
import { FileDiscovery } from '@armature/runtime';
import { ensureTestModel } from '@armature/engine';
import { startLocalCluster } from '../local-cluster.js';
import { ProgressBar } from '../progress.js';
import { lineChart } from '../results/line-chart.js';
import {
  counterTotal,
  recoveryMs,
  runFaultLoad,
  sendSeeded,
  windowStats,
  type Fault,
  type FaultLoadOptions,
  type FaultRecord,
  type WindowStats,
} from './fault-load.js';

const MODEL = 'armature/chaos-model';

interface Scenario {
  name: string;
  prefill?: number;
  routers?: number;
  frontends?: number;
  decodeEnv?: Record<string, string>;
  routerEnv?: Record<string, string>;
  /** How long the fault lasts (the window its latency is measured in), ms. */
  durationMs: number;
  fault(cluster: Supervisor): Fault;
}

export interface ScenarioResult {
  name: string;
  engine: string;
  sent: number;
  completed: number;
  failed: number;
  migrated: number;
  rerouted: number;
  /** Requests a load balancer sent to the other frontend, their first one being gone or draining. */
  failedOver: number;
  matching: number;
  recoveryMs: number | null;
  before: WindowStats;
  during: WindowStats;
  errors: string[];
}

const proc = (c: Supervisor, name: string) => {
  const p = c.replica(name)?.process;
  if (!p) throw new Error(`no replica ${name}`);
  return p;
};

function scenarios(stopMs: number, at: number): Scenario[] {
  return [
    {
      name: 'SIGKILL decode worker',
      durationMs: 2_000,
      fault: (c) => ({ at, name: 'kill', run: () => proc(c, 'decode-1').kill('SIGKILL') }),
    },
    {
      name: `SIGSTOP decode worker ${stopMs / 1000} s, SIGCONT`,
      durationMs: stopMs,
      fault: (c) => ({
        at,
        name: 'stop',
        run: async () => {
          proc(c, 'decode-1').kill('SIGSTOP');
          await new Promise((r) => setTimeout(r, stopMs));
          proc(c, 'decode-1').kill('SIGCONT');
        },
      }),
    },
    {
      name: 'SIGTERM decode worker (drain 0.3 s)',
      decodeEnv: { ARMATURE_DRAIN_TIMEOUT_MS: '300' },
      durationMs: 2_000,
      fault: (c) => ({ at, name: 'term', run: () => proc(c, 'decode-1').kill('SIGTERM') }),
    },
    {
      name: 'SIGKILL one of two routers',
      routers: 2,
      durationMs: 2_000,
      fault: (c) => ({ at, name: 'kill router', run: () => proc(c, 'router-0').kill('SIGKILL') }),
    },
    {
      name: 'SIGTERM one of two frontends (load balanced)',
      frontends: 2,
      routers: 2,
      durationMs: 2_000,
      fault: (c) => ({ at, name: 'term frontend', run: () => proc(c, 'frontend-1').kill('SIGTERM') }),
    },
    {
      name: 'SIGKILL one of two frontends (load balanced)',
      frontends: 2,
      routers: 2,
      durationMs: 2_000,
      fault: (c) => ({ at, name: 'kill frontend', run: () => proc(c, 'frontend-1').kill('SIGKILL') }),
    },
    {
      name: 'SIGKILL prefill worker during KV pulls',
      prefill: 1,
      routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: 8 }) },
      durationMs: 2_000,
      fault: (c) => ({ at, name: 'kill prefill', run: () => proc(c, 'prefill-0').kill('SIGKILL') }),
    },
  ];
}

async function runScenario(
  s: Scenario,
  engine: 'mocker' | 'llamacpp',
  load: Omit<FaultLoadOptions, 'url' | 'model'>,
  modelPath: string | undefined,
): Promise<{ result: ScenarioResult; records: FaultRecord[]; faultAt: number }> {
  const decode = engine === 'llamacpp' ? 2 : 3;
  const local = await startLocalCluster({
    model: MODEL,
    workers: decode,
    prefillWorkers: s.prefill ?? 0,
    routers: s.routers ?? 1,
    frontends: s.frontends ?? 1,
    policy: 'kv',
    engine,
    engineArgs: engine === 'mocker' ? { speedup: 1 } : { threads: 1, sequences: 4 },
    modelPath,
    decodeEnv: s.decodeEnv,
    routerEnv: s.routerEnv,
    env: { ARMATURE_DISCOVERY_LEASE_MS: '3000' },
  });
  const cluster = local.supervisor;
  try {
    const options = { ...load, url: cluster.url, urls: local.urls, model: MODEL };
    const scheduled = s.fault(cluster);
    // The fault strikes once streams run on decode-1 (at `at` or later), so that it lands mid-stream.
    const fault: Fault = {
      ...scheduled,
      run: async () => {
        await untilBusy(local.discoveryDir, 'decode-1');
        await scheduled.run();
      },
    };
    const bar = new ProgressBar(`${engine}: ${s.name}`);
    const { records, faultTimes } = await runFaultLoad(options, [fault], (done, total) =>
      bar.update({ done, total, failed: 0 }),
    );
    bar.finish();
    const metrics = await (await fetch(`${cluster.url}/metrics`)).text();
    const client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    let matching = 0;
    for (let i = 0; i < records.length; i += load.clients ?? 8) {
      const batch = records.slice(i, i + (load.clients ?? 8));
      const again = await Promise.all(batch.map((r) => sendSeeded(client, { ...options, stream: false }, r.index)));
      batch.forEach((r, k) => {
        if (!r.error && !again[k]!.error && again[k]!.text === r.text) matching++;
      });
    }
    const faultAt = faultTimes.get(fault.name)!;
    const first = Math.min(...records.map((r) => r.startedAt));
    const failed = records.filter((r) => r.error);
    return {
      faultAt,
      records,
      result: {
        name: s.name,
        engine,
        sent: records.length,
        completed: records.length - failed.length,
        failed: failed.length,
        migrated: counterTotal(metrics, 'armature_frontend_retries_total', 'kind="migrate"'),
        rerouted: counterTotal(metrics, 'armature_frontend_retries_total', 'kind="reroute"'),
        failedOver: records.filter((r) => (r.failovers ?? 0) > 0).length,
        matching,
        recoveryMs: recoveryMs(records, faultAt) ?? null,
        before: windowStats(records, first + 1_000, faultAt), // past the cold start
        during: windowStats(records, faultAt, faultAt + s.durationMs, true),
        errors: [...new Set(failed.map((r) => r.error!))].slice(0, 5),
      },
    };
  } finally {
    await local.stop();
  }
}

/** Resolves once the worker runs requests and has streamed tokens already (or after 10 s). */
async function untilBusy(discoveryDir: string, worker: string): Promise<void> {
  const discovery = new FileDiscovery({ dir: discoveryDir, pollMs: 50 });
  try {
    for (const end = Date.now() + 10_000; Date.now() < end;) {
      const record = (await discovery.list({ role: 'decode' })).find((r) => r.instanceId === worker);
      if (record?.metricsAddress) {
        const text = await (await fetch(`http://${record.metricsAddress}/metrics`)).text();
        const streaming =
          counterTotal(text, 'armature_worker_running_requests') > 0 &&
          counterTotal(text, 'armature_worker_generated_tokens_total') > 40;
        if (streaming) return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await discovery.close();
  }
}

function markdown(results: ScenarioResult[], command: string): string {
  const ms = (v: number | null): string => (v === null ? 'n/a' : `${Math.round(v)}`);
  const rows = results.map(
    (r) =>
      `| ${r.engine} | ${r.name} | ${r.sent} | ${r.completed} | **${r.failed}** | ${r.migrated} | ${r.rerouted} | ${r.failedOver} | ` +
      `${r.matching}/${r.sent} | ${ms(r.recoveryMs)} | ${ms(r.before.p99TtftMs)} → ${ms(r.during.p99TtftMs)} | ` +
      `${ms(r.before.p99GapMs)} → ${ms(r.during.p99GapMs)} | ${ms(r.before.maxGapMs)} → ${ms(r.during.maxGapMs)} |`,
  );
  return [
    `Command: \`${command}\``,
    '',
    '| engine | fault | sent | completed | failed | migrated | re-routed | failed over | text = undisturbed rerun | recovery ms | p99 TTFT ms before → during | p99 token gap ms before → during | longest token gap ms before → during |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      engine: { type: 'string', default: 'mocker' },
      requests: { type: 'string', default: '200' },
      clients: { type: 'string', default: '8' },
      'max-tokens': { type: 'string', default: '120' },
      'stop-ms': { type: 'string', default: '15000' },
      'fault-at': { type: 'string', default: '3000' },
      out: { type: 'string', default: 'docs/benchmarks/faults' },
      only: { type: 'string' },
    },
  });
  const engine = values.engine === 'llamacpp' ? 'llamacpp' : 'mocker';
  const load = {
    requests: Number(values.requests),
    clients: Number(values.clients),
    maxTokens: Number(values['max-tokens']),
    // Greedy on llama.cpp, so that a migrated request's text can match its rerun.
    temperature: engine === 'llamacpp' ? 0 : 1,
  };
  const modelPath = engine === 'llamacpp' ? await ensureTestModel() : undefined;
  const all = scenarios(Number(values['stop-ms']), Number(values['fault-at']));
  const chosen = values.only ? all.filter((s) => s.name.toLowerCase().includes(values.only!.toLowerCase())) : all;
  const results: ScenarioResult[] = [];
  const series = [];
  for (const s of chosen) {
    const { result, records, faultAt } = await runScenario(s, engine, load, modelPath);
    results.push(result);
    process.stderr.write(
      `${engine}: ${s.name}: ${result.completed}/${result.sent} completed, ${result.failed} failed, ${result.migrated} migrated\n`,
    );
    series.push({
      name: s.name,
      points: records.map((r) => [(r.startedAt - faultAt) / 1000, (r.ttftMs ?? Number.NaN) / 1000] as const),
    });
  }
  await mkdir(values.out!, { recursive: true });
  // A subset (--only) is written beside the full run, not over it.
  const stem = values.only ? `faults-${engine}-${values.only.replace(/[^a-z0-9]+/gi, '-')}` : `faults-${engine}`;
  const command = `npm run bench:chaos -- ${process.argv.slice(2).join(' ')}`.trim();
  await writeFile(join(values.out!, `${stem}.json`), JSON.stringify({ command, results }, null, 2));
  await writeFile(join(values.out!, `${stem}.md`), markdown(results, command));
  await writeFile(
    join(values.out!, `${stem}-ttft.svg`),
    lineChart({
      title: `TTFT of each request by its start, relative to the fault (${engine})`,
      xLabel: 'request start - fault time (s)',
      yLabel: 'TTFT (s)',
      series,
    }),
  );
  process.stdout.write(markdown(results, command));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
