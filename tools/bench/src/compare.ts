// Routing policies side by side on one trace, live and offline, in one run:
//
//   npm run bench:policies -- --trace <mooncake.jsonl> --limit 1000 --workers 8 \
//     --policies round-robin,kv --time-scale 0.25 --out-dir docs/benchmarks/x
//
// (--policies defaults to every registered policy.)
//
// For each policy: a fresh local cluster (n mocker workers, a router, a frontend) replays
// the slice live through the frontend; then the offline simulator replays it in virtual
// time with the same mocker settings. Writes results.json, report.html and plots/.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { POLICY_IDS } from '@armature/router-core';
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
    'offline-limit': { type: 'string' },
    workers: { type: 'string', default: '8' },
    policies: { type: 'string', default: POLICY_IDS.join(',') },
    'time-scale': { type: 'string', default: '1' },
    speedup: { type: 'string', default: '1' },
    'slo-ttft-ms': { type: 'string', default: '2000' },
    'slo-itl-ms': { type: 'string', default: '50' },
    'out-dir': { type: 'string', default: 'bench-results/policies' },
    'skip-live': { type: 'boolean', default: false },
  },
});

async function main(): Promise<void> {
  const tracePath = v.trace ?? findTrace('mooncake_conversation.jsonl').path;
  const workers = Number(v.workers);
  const timeScale = Number(v['time-scale']);
  const policies = v.policies!.split(',').map((p) => p.trim());
  const mocker = { ...replayMockerDefaults(), speedup: Number(v.speedup) };
  const slo = { ttftMs: Number(v['slo-ttft-ms']), itlMs: Number(v['slo-itl-ms']) };
  const tokenizer = await loadTokenizer('gpt-tokenizer:o200k_base');
  const load = async (limit: number | undefined) => {
    const w = await loadWorkload(`mooncake:${tracePath}`, { tokenizer, limit });
    return spreadBursts(w.requests);
  };
  const liveSlice = await load(Number(v.limit));
  const runs: BenchResults[] = [];
  const config = { trace: tracePath, workers, timeScale, mocker, spreadBursts: true };

  for (const policy of policies) {
    if (v['skip-live']) break;
    const cluster = await startLocalCluster({ model: MODEL, workers, policy, engineArgs: mocker });
    try {
      const bar = new ProgressBar(`live ${policy}`);
      const startedAt = new Date();
      const records = await runLoad(liveSlice, {
        baseUrl: cluster.url,
        model: MODEL,
        schedule: { mode: 'trace', timeScale },
        maxDurationMs: 3_600_000,
        requestTimeoutMs: 600_000,
        sendTokenIds: true,
        onProgress: (p) => bar.update({ done: p.done, total: p.total, failed: p.failed, inflight: p.inflight }),
      });
      bar.finish();
      runs.push(
        computeResults(records, {
          label: `live ${policy} (${liveSlice.length} req)`,
          mode: 'live-trace',
          slo,
          startedAt,
          config: { ...config, policy, requests: liveSlice.length },
        }),
      );
    } finally {
      await cluster.stop();
    }
  }

  const offlineSets: Array<[string, typeof liveSlice]> = [[`${liveSlice.length} req`, liveSlice]];
  const offlineLimit = v['offline-limit'] === undefined ? undefined : Number(v['offline-limit']);
  if (offlineLimit === undefined || offlineLimit !== liveSlice.length) {
    const all = await load(offlineLimit);
    offlineSets.push([offlineLimit === undefined ? `full trace, ${all.length} req` : `${all.length} req`, all]);
  }
  for (const [name, requests] of offlineSets) {
    const sims = requests.map((r) => ({
      id: r.id,
      arrivalMs: (r.arrivalMs ?? 0) * timeScale,
      promptTokenIds: r.promptTokenIds,
      outputTokens: r.outputTokens,
    }));
    for (const policy of policies) {
      const bar = new ProgressBar(`offline ${policy} (${name})`);
      const started = performance.now();
      const sim = simulate(sims, {
        workers,
        policy,
        mocker,
        onProgress: (done, total) => bar.update({ done, total }),
      });
      bar.finish();
      runs.push(
        computeResults(sim.records, {
          label: `offline ${policy} (${name})`,
          mode: 'replay',
          slo,
          config: {
            ...config,
            policy,
            requests: requests.length,
            wall_s: (performance.now() - started) / 1000,
            router_hit_rate: sim.routerHitRate,
          },
        }),
      );
    }
  }

  const outDir = v['out-dir']!;
  await mkdir(outDir, { recursive: true });
  await writeFile(
    join(outDir, 'report.html'),
    renderHtmlReport(runs, { title: 'Routing policies on the Mooncake conversation trace' }),
  );
  await writePlots(runs, join(outDir, 'plots'));
  for (const r of runs) delete r.samples; // keep the committed JSON small; the report and plots have them
  // One run per line: diffable, and small enough to commit.
  await writeFile(join(outDir, 'results.json'), `[\n${runs.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
  for (const r of runs) {
    process.stdout.write(
      `${r.label.padEnd(48)} TTFT mean ${r.ttft_ms.mean.toFixed(0).padStart(6)} p50 ${r.ttft_ms.p50.toFixed(0).padStart(6)} p99 ${r.ttft_ms.p99.toFixed(0).padStart(6)} ms | ITL mean ${r.itl_ms.mean.toFixed(1)} ms | ${r.output_tokens_per_s.toFixed(0)} tok/s | goodput ${r.goodput_rps.toFixed(2)} req/s | KV hit ${((r.kv_hit_rate ?? 0) * 100).toFixed(1)}%\n`,
    );
  }
  printRatios(runs);
}

/** Each run against round-robin of the same group (live, or one offline set), printed as ratios. */
function printRatios(runs: BenchResults[]): void {
  const groupOf = (r: BenchResults): string => r.label.replace(/^(live|offline) \S+ /, '$1 ');
  for (const base of runs.filter((r) => r.label.split(' ')[1] === 'round-robin')) {
    const group = groupOf(base);
    process.stdout.write(`\nagainst round-robin, ${group}:\n`);
    for (const r of runs.filter((x) => groupOf(x) === group)) {
      const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
      process.stdout.write(
        `  ${r.label.split(' ')[1]!.padEnd(18)} mean TTFT ${ratio(r.ttft_ms.mean, base.ttft_ms.mean)}  p99 TTFT ${ratio(r.ttft_ms.p99, base.ttft_ms.p99)}  KV hit ${ratio(r.kv_hit_rate ?? 0, base.kv_hit_rate ?? 0)}  goodput ${ratio(r.goodput_rps, base.goodput_rps)}\n`,
      );
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
