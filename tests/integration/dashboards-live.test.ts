// Every panel query of every bundled Grafana dashboard (grafana/dashboards) returns data
// from a real Prometheus that scraped a live stack under load. The stack runs every
// feature the dashboards show: two decode workers behind the KV router, and a prefill
// worker that long prompts go to (disaggregation and the KV transfer), short ones not, and
// a planner in advisory mode (it decides and exports, and changes nothing, so the stack
// stays the size the panels expect).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandVariables, loadDashboards, panelQueries, variableQueries } from '@armature/dashboards';
import { startPrometheus, type PrometheusProcess } from '@armature/deploy';
import { freePort, waitFor } from '@armature/testing';
import { MODEL, ROOT, startCluster, type Cluster } from './cluster.js';
import { promtool } from './promtool.js';

const LOAD_MS = 25_000;
let cluster: Cluster | undefined;
let prometheus: PrometheusProcess | undefined;

beforeAll(async () => {
  if (!promtool) return;
  cluster = await startCluster({
    workers: 2,
    prefillWorkers: 1,
    policy: 'kv',
    engineArgs: { totalKvBlocks: 2048, blockSize: 16, speedup: 5 },
    routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: 256 }) },
    planner: {
      mode: 'both',
      connector: 'advisory',
      intervalMs: 2_000,
      profile: join(ROOT, 'infra/profiles/mocker.json'),
      pools: { prefill: { min: 1, max: 4 }, decode: { min: 2, max: 4 } },
      limits: { allowProfileMismatch: true },
    },
  });
  prometheus = await startPrometheus({
    discovery: cluster.discovery,
    configDir: join(ROOT, 'infra/prometheus'),
    workDir: await mkdtemp(join(tmpdir(), 'armature-dash-')),
    address: `127.0.0.1:${await freePort()}`,
    scrapeIntervalS: 1,
  });
}, 90_000);
afterAll(async () => {
  await prometheus?.stop();
  await cluster?.stop();
});

/** Mixed traffic for `ms`: short chats over a shared prefix (KV hits), and long prompts that prefill remotely. */
async function load(url: string, ms: number): Promise<number> {
  const until = Date.now() + ms;
  let sent = 0;
  const longPrompt = (seed: number) => Array.from({ length: 400 }, (_, i) => 1000 + ((seed * 131 + i * 7919) % 20_000));
  const loop = async (lane: number): Promise<void> => {
    for (let i = 0; Date.now() < until; i++) {
      const long = i % 3 === 0;
      const body = long
        ? { model: MODEL, prompt: longPrompt(lane * 1000 + i), max_tokens: 8, ignore_eos: true }
        : {
            model: MODEL,
            messages: [{ role: 'user', content: `Tell me about KV-aware routing, question ${i % 5}` }],
            max_tokens: 12,
            stream: i % 2 === 0,
          };
      const res = await fetch(`${url}/v1/${long ? 'completions' : 'chat/completions'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      await res.text();
      expect(res.status).toBe(200);
      sent++;
    }
  };
  await Promise.all([0, 1, 2, 3].map(loop));
  return sent;
}

async function instant(base: string, expr: string): Promise<{ ok: boolean; detail: string }> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
  if (body.status !== 'success') return { ok: false, detail: `error: ${body.error}` };
  const result = body.data!.result;
  const n = Array.isArray(result) ? result.length : 1; // a scalar or string is data
  return { ok: n > 0, detail: `${n} series` };
}

/** Grafana's label_values(metric, label) as the PromQL query that has the same values. */
function asPromQl(expr: string): string {
  const m = /^\s*label_values\((.+),\s*(\w+)\s*\)\s*$/.exec(expr);
  return m ? `group by (${m[2]}) (${m[1]})` : expr;
}

// Debian's `prometheus` package (which .ci/run installs) brings the binary.
describe.skipIf(!promtool)('the bundled dashboards over a live stack', () => {
  it('answers every panel query (and every variable query) with data', async () => {
    const sent = await load(cluster!.url, LOAD_MS);
    expect(sent).toBeGreaterThan(40);
    // Every service scraped, the last scrape after the load.
    await waitFor(
      async () => (await instant(prometheus!.url, 'count(up{job="armature"} == 1) == 6')).ok,
      15_000,
      250,
      'all six services up in Prometheus',
    );
    await new Promise((r) => setTimeout(r, 2_500));

    const dashboards = loadDashboards();
    expect(dashboards.map((d) => d.name)).toEqual(['disaggregation', 'overview', 'planner', 'router-kv', 'workers']);
    const empty: string[] = [];
    let checked = 0;
    for (const { name, dashboard } of dashboards) {
      const exprs = [
        ...panelQueries(dashboard).map((q) => ({ where: `${name} / ${q.panel} / ${q.refId}`, expr: q.expr })),
        ...variableQueries(dashboard).map((expr) => ({ where: `${name} / variable`, expr })),
      ];
      for (const { where, expr } of exprs) {
        const { ok, detail } = await instant(prometheus!.url, asPromQl(expandVariables(expr, dashboard)));
        checked++;
        if (!ok) empty.push(`${where}: ${expr} -> ${detail}`);
      }
    }
    expect(checked).toBeGreaterThan(50);
    expect(empty, `panel queries with no data:\n${empty.join('\n')}`).toEqual([]);
  }, 120_000);
});
