// Aggregated against disaggregated serving at the same worker count, live and offline, in
// one run:
//
//   npm run bench:disagg -- --trace <mooncake.jsonl> --limit 1000 --workers 8 \
//     --splits 2,4 --time-scale 0.25 --out-dir docs/benchmarks/disagg/live
//
// Live: for each configuration a fresh local cluster (n mocker workers aggregated, or p
// prefill + n-p decode workers whose KV moves through the transfer library) replays the
// slice through the frontend. Offline: the simulator replays it in virtual time with the
// same mocker settings, modelling each transfer as bytes / bandwidth. Writes
// results.json, report.html and plots/, and prints each run against aggregated serving.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FileDiscovery } from '@armature/runtime';
import { loadTokenizer } from '@armature/tokenizer';
import { replayMockerDefaults } from './commands.js';
import { findTrace, loadWorkload, spreadBursts } from './datasets/index.js';
import { runLoad } from './load/generator.js';
import { startLocalCluster } from './local-cluster.js';
import { ProgressBar } from './progress.js';
import { simulate } from './replay/simulator.js';
import { computeResults, renderHtmlReport, writePlots, type BenchResults } from './results/index.js';

const MODEL = 'armature/mock-model';

const { values: v } = parseArgs({
  options: {
    trace: { type: 'string' },
    limit: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '8' },
    // Prefill workers of each disaggregated configuration (the rest decode).
    splits: { type: 'string', default: '2,4' },
    policy: { type: 'string', default: 'kv' },
    'min-remote-prefill-tokens': { type: 'string', default: '2048' },
    'time-scale': { type: 'string', default: '1' },
    speedup: { type: 'string', default: '1' },
    // Offline transfer model: bytes per token of the modelled model, and link bandwidth.
    'kv-bytes-per-token': { type: 'string', default: '131072' },
    'bandwidth-gbps': { type: 'string', default: '64' },
    'slo-ttft-ms': { type: 'string', default: '2000' },
    'slo-itl-ms': { type: 'string', default: '50' },
    'out-dir': { type: 'string', default: 'bench-results/disagg' },
    'skip-live': { type: 'boolean', default: false },
  },
});

interface Config {
  name: string;
  /** 0: aggregated. */
  prefill: number;
  workers: number;
}

async function main(): Promise<void> {
  const tracePath = v.trace ?? findTrace('mooncake_conversation.jsonl').path;
  const total = Number(v.workers);
  const timeScale = Number(v['time-scale']);
  const policy = v.policy!;
  const minRemote = Number(v['min-remote-prefill-tokens']);
  const mocker = { ...replayMockerDefaults(), speedup: Number(v.speedup) };
  const slo = { ttftMs: Number(v['slo-ttft-ms']), itlMs: Number(v['slo-itl-ms']) };
  const configs: Config[] = [
    { name: `aggregated ${total}`, prefill: 0, workers: total },
    ...v.splits!.split(',').map((s) => {
      const p = Number(s);
      if (!Number.isInteger(p) || p < 1 || p >= total) throw new Error(`--splits: ${s} is not in [1, ${total})`);
      return { name: `disagg ${p}P+${total - p}D`, prefill: p, workers: total - p };
    }),
  ];
  const tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
  const workload = await loadWorkload(`mooncake:${tracePath}`, { tokenizer, limit: Number(v.limit) });
  const requests = spreadBursts(workload.requests);
  const base = {
    trace: tracePath,
    timeScale,
    mocker,
    policy,
    minRemotePrefillTokens: minRemote,
    requests: requests.length,
  };
  const runs: BenchResults[] = [];

  for (const c of v['skip-live'] ? [] : configs) {
    const cluster = await startLocalCluster({
      model: MODEL,
      workers: c.workers,
      prefillWorkers: c.prefill,
      policy,
      engineArgs: mocker,
      routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: minRemote }) },
    });
    try {
      const bar = new ProgressBar(`live ${c.name}`);
      const startedAt = new Date();
      const records = await runLoad(requests, {
        baseUrl: cluster.url,
        model: MODEL,
        schedule: { mode: 'trace', timeScale },
        maxDurationMs: 3_600_000,
        requestTimeoutMs: 600_000,
        sendTokenIds: true,
        onProgress: (p) => bar.update({ done: p.done, total: p.total, failed: p.failed, inflight: p.inflight }),
      });
      bar.finish();
      const served = await scrapeDisaggStats(cluster.discoveryDir);
      runs.push(
        computeResults(records, {
          label: `live ${c.name}`,
          mode: 'live-trace',
          slo,
          startedAt,
          config: { ...base, prefillWorkers: c.prefill, decodeWorkers: c.workers, disagg: served },
        }),
      );
    } finally {
      await cluster.stop();
    }
  }

  const sims = requests.map((r) => ({
    id: r.id,
    arrivalMs: (r.arrivalMs ?? 0) * timeScale,
    promptTokenIds: r.promptTokenIds,
    outputTokens: r.outputTokens,
  }));
  for (const c of configs) {
    const bar = new ProgressBar(`offline ${c.name}`);
    const disagg =
      c.prefill > 0
        ? {
            prefillWorkers: c.prefill,
            options: { minRemotePrefillTokens: minRemote },
            kvBytesPerToken: Number(v['kv-bytes-per-token']),
            bandwidthGBps: Number(v['bandwidth-gbps']),
          }
        : undefined;
    const sim = simulate(sims, {
      workers: c.workers,
      policy,
      mocker,
      disagg,
      onProgress: (done, n) => bar.update({ done, total: n }),
    });
    bar.finish();
    runs.push(
      computeResults(sim.records, {
        label: `offline ${c.name}`,
        mode: 'replay',
        slo,
        config: { ...base, prefillWorkers: c.prefill, decodeWorkers: c.workers, disagg: sim.disagg },
      }),
    );
  }

  const outDir = v['out-dir']!;
  await mkdir(outDir, { recursive: true });
  await writeFile(
    join(outDir, 'report.html'),
    renderHtmlReport(runs, { title: 'Aggregated against disaggregated serving on the Mooncake conversation trace' }),
  );
  await writePlots(runs, join(outDir, 'plots'));
  for (const r of runs) delete r.samples; // keep the committed JSON small; the report and plots have them
  await writeFile(join(outDir, 'results.json'), `[\n${runs.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
  for (const r of runs) {
    process.stdout.write(
      `${r.label.padEnd(30)} TTFT mean ${r.ttft_ms.mean.toFixed(0).padStart(6)} p99 ${r.ttft_ms.p99.toFixed(0).padStart(6)} ms | ITL mean ${r.itl_ms.mean.toFixed(1)} p99 ${r.itl_ms.p99.toFixed(1)} ms | ${r.output_tokens_per_s.toFixed(0)} tok/s | goodput ${r.goodput_rps.toFixed(2)} req/s | failed ${r.failed}\n`,
    );
  }
  for (const group of ['live', 'offline']) {
    const agg = runs.find((r) => r.label === `${group} ${configs[0]!.name}`);
    if (!agg) continue;
    process.stdout.write(`\nagainst aggregated, ${group}:\n`);
    const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
    for (const r of runs.filter((x) => x.label.startsWith(`${group} `))) {
      process.stdout.write(
        `  ${r.label.padEnd(30)} goodput ${ratio(r.goodput_rps, agg.goodput_rps)}  mean TTFT ${ratio(r.ttft_ms.mean, agg.ttft_ms.mean)}  p99 ITL ${ratio(r.itl_ms.p99, agg.itl_ms.p99)}  tok/s ${ratio(r.output_tokens_per_s, agg.output_tokens_per_s)}\n`,
      );
    }
  }
}

/** What the live cluster's router and workers counted: decisions, transfers, fallbacks. */
async function scrapeDisaggStats(discoveryDir: string): Promise<Record<string, number>> {
  const discovery = new FileDiscovery({ dir: discoveryDir });
  const stats: Record<string, number> = {};
  const add = (key: string, value: number): void => {
    stats[key] = (stats[key] ?? 0) + value;
  };
  try {
    for (const record of await discovery.list()) {
      if (!record.metricsAddress) continue;
      const text = await (await fetch(`http://${record.metricsAddress}/metrics`)).text();
      for (const line of text.split('\n')) {
        const m =
          /^(armature_(?:(?:router_disagg_decisions|worker_remote_prefill|transfer_bytes|transfer_blocks|transfer_failures|worker_kv_blocks_pulled|worker_kv_blocks_reused|worker_pins)_total|transfer_duration_seconds_(?:sum|count)))(\{[^}]*\})? (\S+)$/.exec(
            line,
          );
        if (!m) continue;
        const labels = (m[2] ?? '')
          .replace(/model="[^"]*",?/, '')
          .replace(/,?\}$/, '}')
          .replace('{}', '');
        add(`${m[1]}${labels}`, Number(m[3]));
        if (m[1] === 'armature_transfer_bytes_total') add('transfer_bytes', Number(m[3]));
      }
    }
  } finally {
    await discovery.close();
  }
  const seconds = Object.entries(stats)
    .filter(([k]) => k.startsWith('armature_transfer_duration_seconds_sum'))
    .reduce((sum, [, x]) => sum + x, 0);
  if (seconds > 0) stats.transfer_mean_gbps = (stats.transfer_bytes ?? 0) / seconds / 1e9;
  return stats;
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
