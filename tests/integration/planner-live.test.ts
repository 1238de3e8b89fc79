// The planner live: infra/graphs/planner.yaml (and its disaggregated twin) run as real
// processes with the planner service scaling the pools through the supervisor's control
// API. A heavy phase of long prompts from many clients must grow the pool; a light phase
// after it must shrink it again, draining the removed workers so that every request,
// including those in flight on a worker being removed, completes. Intervals and cooldowns
// are shortened so that the whole run takes about a minute.
import { credentials } from '@grpc/grpc-js';
import { resolve } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { launch, loadGraph, withSettings, type LaunchedSupervisor } from '@armature/deploy';
import { PlannerClient, type ListPlansResponse, type PlannerState } from '@armature/proto';
import { FileDiscovery } from '@armature/runtime';
import { ROOT } from './cluster.js';

let supervisor: LaunchedSupervisor | undefined;
afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
});

/** A prompt of about `tokens` tokens that no other prompt shares a KV block with (it starts with its seed). */
const prompt = (tokens: number, seed: number): string => `${seed}` + ' hello'.repeat(tokens);

interface PhaseResult {
  ok: number;
  failed: string[];
}

/** `clients` closed-loop clients sending until `untilMs` (Date.now()); each request's errors are kept. */
async function phase(
  client: OpenAI,
  clients: number,
  untilMs: number,
  request: (seed: number) => { prompt: string; max_tokens: number },
): Promise<PhaseResult> {
  const result: PhaseResult = { ok: 0, failed: [] };
  let seed = Math.floor(Math.random() * 1e6);
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < untilMs) {
        const body = request(seed++);
        try {
          const res = await client.completions.create({ model: 'armature/mock-model', ...body });
          // The mocker may end a generation early (EOS): stop and length are both complete.
          const reason = res.choices[0]?.finish_reason;
          if (reason === 'length' || reason === 'stop') result.ok++;
          else result.failed.push(`finish_reason ${res.choices[0]?.finish_reason}`);
        } catch (err) {
          if (result.failed.length < 20) result.failed.push((err as Error).message);
          else result.failed.push('…');
        }
      }
    }),
  );
  return result;
}

async function askPlanner(discoveryDir: string): Promise<{ state: PlannerState; plans: ListPlansResponse }> {
  const discovery = new FileDiscovery({ dir: discoveryDir });
  try {
    const record = (await discovery.list()).find((r) => r.role === 'planner');
    if (!record?.grpcAddress) throw new Error('no planner in discovery');
    const client = new PlannerClient(record.grpcAddress, credentials.createInsecure());
    try {
      const state = await new Promise<PlannerState>((done, fail) =>
        client.getState({}, (err, res) => (err ? fail(err) : done(res))),
      );
      const plans = await new Promise<ListPlansResponse>((done, fail) =>
        client.listPlans({ limit: 500 }, (err, res) => (err ? fail(err) : done(res))),
      );
      return { state, plans };
    } finally {
      client.close();
    }
  } finally {
    await discovery.close();
  }
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return check();
}

// Long prompts and short outputs: the pool that prefills is the one that must grow (in the
// disaggregated graph the decode pool has little to do and rightly stays small).
describe.each([
  { graph: 'planner.yaml', pools: ['decode'] as const, stressed: ['decode'] as const },
  { graph: 'planner-disagg.yaml', pools: ['prefill', 'decode'] as const, stressed: ['prefill'] as const },
])('the planner live on $graph', ({ graph: file, pools, stressed }) => {
  it('grows the pool under load, shrinks it after, and loses no request while draining', async () => {
    let graph = await loadGraph(resolve(ROOT, 'infra/graphs', file));
    graph = withSettings(graph, 'planner', {
      intervalMs: 2_000,
      pools: Object.fromEntries(pools.map((p) => [p, { min: 1, max: 3 }])),
      limits: { scaleDownCooldownMs: 4_000, maxStep: 2 },
    });
    supervisor = await launch(graph, {
      tempDiscoveryDir: 'armature-planner-live-',
      freePort: true,
      readiness: 'staged',
      restart: false,
      out: null,
      keepAllOutput: true,
    });
    const client = new OpenAI({ baseURL: `${supervisor.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
    const sup = supervisor;
    const peak: Record<string, number> = {};
    const watch = setInterval(() => {
      for (const pool of pools) peak[pool] = Math.max(peak[pool] ?? 0, sup.replicas(pool));
    }, 200);
    try {
      // Heavy: 24 clients of ~3000-token prompts; one worker prefills ~15 of them a second.
      const heavy = await phase(client, 24, Date.now() + 25_000, (s) => ({ prompt: prompt(3000, s), max_tokens: 8 }));
      expect(heavy.failed).toEqual([]);
      for (const pool of stressed) expect(peak[pool], `${pool} grew`).toBeGreaterThanOrEqual(2);
      // Light: two clients of long generations, so the workers being drained hold requests.
      const light = phase(client, 2, Date.now() + 30_000, (s) => ({ prompt: prompt(200, s), max_tokens: 150 }));
      const shrank = await until(() => stressed.every((pool) => sup.replicas(pool) < peak[pool]!), 30_000);
      const lightResult = await light;
      expect(shrank, `pools shrank: ${stressed.map((p) => `${p} ${sup.replicas(p)}/${peak[p]}`).join(', ')}`).toBe(
        true,
      );
      expect(lightResult.ok).toBeGreaterThan(0);
      expect(lightResult.failed).toEqual([]);
    } finally {
      clearInterval(watch);
    }
    // The planner says why: each change in its plans carries the reason.
    const { state, plans } = await askPlanner(sup.discoveryDir);
    expect(state.connector).toBe('local');
    expect(state.pools.map((p) => p.pool)).toEqual([...pools]);
    expect(state.connectorErrors).toBe(0);
    const changes = plans.plans.flatMap((p) => p.decisions.filter((d) => d.to !== d.from));
    expect(changes.some((d) => d.to > d.from && /^(throughput|load)/.test(d.reason) && d.applied)).toBe(true);
    expect(changes.some((d) => d.to < d.from && d.reason.length > 0 && d.applied)).toBe(true);
  }, 150_000);
});
