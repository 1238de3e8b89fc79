// KV-aware routing on real processes: prompts stick to the worker that caches them; a
// restarted router rebuilds its index from the workers (DumpKvState) and routes as before;
// two router replicas share active load and approximate predictions over the event plane;
// when every worker is busy, requests wait in the router queue and overflow gets a 503.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, Metadata } from '@grpc/grpc-js';
import { RouterClient, type RouteRequest, type RouteResponse } from '@armature/proto';
import { waitFor } from '@armature/testing';
import { MODEL, startCluster, type Cluster } from './cluster.js';

/** A distinct prompt of a few hundred tokens. */
const documentPrompt = (i: number): string =>
  `Document ${i}. ` +
  Array.from({ length: 60 }, (_, k) => `section ${i}-${k} covers topic ${(i * 31 + k * 7) % 97}`).join('; ');

async function complete(
  client: OpenAI,
  prompt: string,
): Promise<{ worker: string | null; cached: number; promptTokens: number }> {
  const { data, response } = await client.completions.create({ model: MODEL, prompt, max_tokens: 2 }).withResponse();
  return {
    worker: response.headers.get('x-armature-decode-worker'),
    cached: data.usage?.prompt_tokens_details?.cached_tokens ?? 0,
    promptTokens: data.usage?.prompt_tokens ?? 0,
  };
}

async function metricsOf(cluster: Cluster, routerId: string): Promise<string> {
  const records = await cluster.discovery.list({ role: 'router' });
  const record = records.find((r) => r.instanceId === routerId)!;
  return (await fetch(`http://${record.metricsAddress}/metrics`)).text();
}

describe('KV-aware routing through the frontend', () => {
  let cluster: Cluster;
  let client: OpenAI;

  beforeAll(async () => {
    cluster = await startCluster({ workers: 2, policy: 'kv', leaseMs: 1_500 });
    client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('sends a repeated prompt to the worker that caches it and reports the cached tokens', async () => {
    const prompts = [0, 1, 2, 3].map(documentPrompt);
    const first = [];
    for (const p of prompts) first.push(await complete(client, p));
    expect(new Set(first.map((r) => r.worker)).size).toBe(2); // cold prompts spread over both workers
    // KV events reach the router within milliseconds; repeat each prompt.
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < prompts.length; i++) {
      const again = await complete(client, prompts[i]!);
      expect(again.worker).toBe(first[i]!.worker);
      expect(again.cached).toBeGreaterThanOrEqual(again.promptTokens - 16);
    }
    const metrics = await metricsOf(cluster, 'router-0');
    expect(metrics).toMatch(/armature_router_kv_events_applied_total\{type="BlockStored"\} [1-9]/);
    const overlap = Number(/armature_router_kv_overlap_blocks_total\{policy="kv"\} (\d+)/.exec(metrics)?.[1]);
    const blocks = Number(/armature_router_prompt_blocks_total\{policy="kv"\} (\d+)/.exec(metrics)?.[1]);
    expect(overlap / blocks).toBeGreaterThan(0.4); // half the requests were full hits
    expect(metrics).toMatch(/armature_router_overhead_seconds_count\{stage="find_matches"\} 8/);
  });

  it('rebuilds its index from the workers after a restart and routes as before', async () => {
    const prompts = [10, 11, 12, 13].map(documentPrompt);
    const before = [];
    for (const p of prompts) before.push(await complete(client, p));

    const router = cluster.routers.get('router-0')!;
    router.kill('SIGKILL');
    await router.exited;
    const started = Date.now();
    const restarted = await cluster.startRouter('router-0');
    await restarted.waitForOutput(/KV state loaded.*decode-0/);
    await restarted.waitForOutput(/KV state loaded.*decode-1/);
    const recoveredMs = Date.now() - started;
    expect(recoveredMs).toBeLessThan(5_000);

    // The frontend follows the new router's address; then every prompt finds its worker.
    await waitFor(
      async () => {
        try {
          await complete(client, documentPrompt(99));
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      100,
      'the frontend reaching the restarted router',
    );
    for (let i = 0; i < prompts.length; i++) {
      const again = await complete(client, prompts[i]!);
      expect(again.worker).toBe(before[i]!.worker);
      expect(again.cached).toBeGreaterThanOrEqual(again.promptTokens - 16);
    }
  }, 30_000);
});

describe('router replicas', () => {
  let cluster: Cluster;
  const clients = new Map<string, RouterClient>();

  beforeAll(async () => {
    // Workers without KV events: what the replicas know of their caches is what they share.
    cluster = await startCluster({ workers: 2, routers: 2, policy: 'kv', engineArgs: { kvEvents: 'none' } });
    for (const r of await cluster.discovery.list({ role: 'router' })) {
      clients.set(r.instanceId, new RouterClient(r.grpcAddress!, credentials.createInsecure()));
    }
  }, 60_000);
  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await cluster?.stop();
  });

  const route = (routerId: string, req: Partial<RouteRequest>): Promise<RouteResponse> =>
    new Promise((resolve, reject) =>
      clients.get(routerId)!.route(
        {
          requestId: '',
          model: MODEL,
          tokenIds: [],
          excludedWorkerIds: [],
          failedWorkerIds: [],
          ...req,
        } as RouteRequest,
        new Metadata(),
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
  const free = (routerId: string, requestId: string): Promise<void> =>
    new Promise((resolve, reject) =>
      clients.get(routerId)!.free({ requestId }, (err) => (err ? reject(err) : resolve())),
    );
  const tokens = (start: number, n: number): number[] => Array.from({ length: n }, (_, i) => start + i);
  const opsHeard = async (routerId: string, op: string): Promise<number> =>
    Number(
      new RegExp(`armature_router_replica_ops_total\\{op="${op}"\\} (\\d+)`).exec(
        await metricsOf(cluster, routerId),
      )?.[1] ?? 0,
    );

  it('share active load and cache predictions, so their decisions agree', async () => {
    // ZeroMQ connects late, and a replica may still be discovering the workers: warm both
    // directions up until each replica hears the other.
    let warm = 0;
    for (const [from, to] of [
      ['router-0', 'router-1'],
      ['router-1', 'router-0'],
    ] as const) {
      await waitFor(
        async () => {
          const id = `warm-${warm++}`;
          try {
            await route(from, { requestId: id, tokenIds: tokens(1_000_000 + warm * 100, 8) });
          } catch {
            return false; // a replica may not have discovered the workers yet
          }
          await free(from, id);
          return (await opsHeard(to, 'free')) > 0;
        },
        10_000,
        50,
        `${to} hearing ${from}`,
      );
    }

    // A prompt routed by one replica is predicted cached by the other.
    const prompt = tokens(5_000, 256); // 16 blocks of 16
    const freesBefore = await opsHeard('router-1', 'free');
    const a = await route('router-0', { requestId: 'p1', tokenIds: prompt });
    await free('router-0', 'p1');
    await waitFor(async () => (await opsHeard('router-1', 'free')) > freesBefore, 5_000, 20, 'router-1 hearing p1');
    const b = await route('router-1', { requestId: 'p2', tokenIds: prompt });
    expect(b.decode!.instanceId).toBe(a.decode!.instanceId);
    expect(b.overlapBlocks).toBe(16);
    await free('router-1', 'p2');

    // Load placed through either replica counts in both: alternating replicas, distinct
    // prompts, nothing freed, the two workers are even after every pair of requests
    // (a replica blind to the other's load would pile a pair onto one worker half the time).
    const chosen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const routerId = i % 2 === 0 ? 'router-0' : 'router-1';
      const heard = await opsHeard(i % 2 === 0 ? 'router-1' : 'router-0', 'add');
      const res = await route(routerId, { requestId: `load-${i}`, tokenIds: tokens(10_000 * (i + 1), 128) });
      chosen.push(res.decode!.instanceId);
      const other = i % 2 === 0 ? 'router-1' : 'router-0';
      await waitFor(async () => (await opsHeard(other, 'add')) > heard, 5_000, 20, `${other} hearing load-${i}`);
    }
    for (let i = 1; i < chosen.length; i += 2) expect(chosen[i]).not.toBe(chosen[i - 1]);
  }, 40_000);
});

describe('busy workers', () => {
  let cluster: Cluster;
  let client: OpenAI;

  beforeAll(async () => {
    cluster = await startCluster({
      workers: 1,
      policy: 'kv',
      // Slow prefill, and a worker with any prefill in flight counts as busy.
      engineArgs: { speedup: 0.5 },
      routerEnv: {
        ARMATURE_ROUTER_BUSY: JSON.stringify({ prefillTokens: 1 }),
        ARMATURE_ROUTER_QUEUE: JSON.stringify({ capacity: 1, timeoutMs: 10_000 }),
      },
    });
    client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('queue requests while every worker is busy and refuse the overflow with a 503', async () => {
    const results = await Promise.allSettled(
      [0, 1, 2, 3].map((i) =>
        client.completions.create({ model: MODEL, prompt: documentPrompt(100 + i), max_tokens: 1 }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) =>
      r.status === 'rejected' ? [r.reason as InstanceType<typeof OpenAI.APIError>] : [],
    );
    expect(ok.length).toBeGreaterThanOrEqual(2); // the first, and the one that waited
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const err of refused) {
      expect(err.status).toBe(503);
      expect(err.message).toMatch(/busy and the router queue is full/);
    }
    const metrics = await metricsOf(cluster, 'router-0');
    expect(metrics).toMatch(/armature_router_queue_rejected_total\{reason="full"\} [1-9]/);
    expect(metrics).toMatch(/armature_router_queue_wait_seconds_count [1-9]/);
    // Nothing leaked: the server still serves.
    const after = await client.completions.create({ model: MODEL, prompt: 'still there?', max_tokens: 1 });
    expect(after.choices).toHaveLength(1);
  }, 30_000);
});
