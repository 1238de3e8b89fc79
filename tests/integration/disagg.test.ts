// Disaggregated prefill and decode on real processes: a prefill worker runs the prompt and
// pins its KV blocks, a decode worker pulls the blocks it lacks through the transfer
// library (shared memory when the native addon is built, TCP otherwise) and decodes. The
// tokens must equal an aggregated run's; only missing blocks move; short remainders stay
// local; a prefill worker that hangs or dies mid-transfer leads to a local prefill and a
// completed request; and no block stays held when everything is done.
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import {
  WorkerClient,
  type GenerateRequest,
  type GenerateResponse,
  type HealthResponse,
  type PrefillResponse,
} from '@armature/proto';
import { waitFor } from '@armature/testing';
import { MODEL, startCluster, type Cluster } from './cluster.js';

const BLOCK = 16;
const MIN_REMOTE = 256;

/** A prompt of `n` token ids, distinct per `seed`. */
const prompt = (seed: number, n: number): number[] =>
  Array.from({ length: n }, (_, i) => 1000 + ((seed * 7919 + i * 104_729) % 40_000));

interface Completion {
  text: string;
  completionTokens: number;
  cachedTokens: number;
  prefillWorker: string | null;
  decodeWorker: string | null;
}

describe('disaggregated prefill and decode', () => {
  let cluster: Cluster;
  let client: OpenAI;
  const grpc = new Map<string, WorkerClient>();

  async function record(id: string) {
    const role = id.startsWith('prefill') ? 'prefill' : 'decode';
    const r = (await cluster.discovery.list({ role })).find((x) => x.instanceId === id);
    if (!r) throw new Error(`${id} is not in discovery`);
    return r;
  }
  async function worker(id: string): Promise<WorkerClient> {
    let c = grpc.get(id);
    if (!c) {
      c = new WorkerClient((await record(id)).grpcAddress!, credentials.createInsecure());
      grpc.set(id, c);
    }
    return c;
  }
  /** One metric's value on a worker (summed over label sets matching `labels`). */
  async function metric(id: string, name: string, labels = ''): Promise<number> {
    const text = await (await fetch(`http://${(await record(id)).metricsAddress}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || (labels && !line.includes(labels))) continue;
      const m = /^(\S+?)(\{[^}]*\})? (\S+)$/.exec(line);
      if (m && m[1] === name) sum += Number(m[3]);
    }
    return sum;
  }
  async function routerMetrics(): Promise<string> {
    const r = (await cluster.discovery.list({ role: 'router' }))[0]!;
    return (await fetch(`http://${r.metricsAddress}/metrics`)).text();
  }

  const remoteDecisions = (metrics: string): number =>
    Number(/armature_router_disagg_decisions_total\{[^}]*mode="remote-prefill"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
  const fallbacks = (metrics: string): number =>
    Number(/^armature_router_prefill_fallbacks_total (\d+)/m.exec(metrics)?.[1] ?? 0);

  async function complete(tokens: number[], options: { pin?: string; maxTokens?: number } = {}): Promise<Completion> {
    const { data, response } = await client.completions
      .create(
        { model: MODEL, prompt: tokens, max_tokens: options.maxTokens ?? 24, seed: 7, ignore_eos: true } as never,
        options.pin ? { headers: { 'x-armature-worker-id': options.pin } } : {},
      )
      .withResponse();
    const body = data as unknown as OpenAI.Completion;
    return {
      text: body.choices[0]!.text,
      completionTokens: body.usage!.completion_tokens,
      cachedTokens: body.usage?.prompt_tokens_details?.cached_tokens ?? 0,
      prefillWorker: response.headers.get('x-armature-prefill-worker'),
      decodeWorker: response.headers.get('x-armature-decode-worker'),
    };
  }

  const request = (id: string, tokens: number[], remote?: GenerateRequest['remotePrefill']): GenerateRequest => ({
    requestId: id,
    model: MODEL,
    tokenIds: tokens,
    sampling: { seed: 7 },
    stop: { maxTokens: 24, ignoreEos: true, stopTokenIds: [] },
    remotePrefill: remote,
  });
  async function generate(id: string, req: GenerateRequest): Promise<number[]> {
    const call = (await worker(id)).generate(req);
    const out: number[] = [];
    for await (const msg of call) out.push(...(msg as GenerateResponse).tokenIds);
    return out;
  }
  async function prefillOn(id: string, req: GenerateRequest): Promise<PrefillResponse> {
    const c = await worker(id);
    return new Promise((resolve, reject) => c.prefill(req, (err, res) => (err ? reject(err) : resolve(res))));
  }
  async function health(id: string): Promise<HealthResponse> {
    const c = await worker(id);
    return new Promise((resolve, reject) => c.health({}, (err, res) => (err ? reject(err) : resolve(res))));
  }
  /** Every listed worker holds no KV block: nothing running, nothing pinned. */
  async function expectNoBlocksHeld(ids: string[]): Promise<void> {
    await waitFor(
      async () => {
        for (const id of ids) if ((await health(id)).load!.activeDecodeBlocks !== 0) return false;
        return true;
      },
      5_000,
      50,
      `no KV blocks held on ${ids.join(', ')}`,
    );
    expect(await metric('prefill-0', 'armature_worker_pinned_blocks').catch(() => 0)).toBe(0);
  }

  beforeAll(async () => {
    cluster = await startCluster({
      workers: 2,
      prefillWorkers: 1,
      policy: 'kv',
      leaseMs: 1_500,
      engineArgs: { totalKvBlocks: 2048, blockSize: BLOCK },
      routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: MIN_REMOTE }) },
      decodeEnv: { ARMATURE_TRANSFER_TIMEOUT_MS: '1500' },
      frontendEnv: { ARMATURE_PREFILL_TIMEOUT_MS: '1000' },
    });
    client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    for (const c of grpc.values()) c.close();
    await cluster?.stop();
    // A SIGKILLed worker cannot unlink its shared memory; the next agent on the host sweeps
    // it (its owner pid is dead), and so does this test.
    if (existsSync('/dev/shm')) {
      for (const name of readdirSync('/dev/shm'))
        if (name.startsWith('armature-prefill-0-0@')) unlinkSync(`/dev/shm/${name}`);
    }
  });

  it('returns exactly the tokens of the aggregated run, naming both workers', async () => {
    for (const [seed, length] of [
      [1, 600], // a partial last block
      [2, 640], // whole blocks only
    ] as const) {
      const tokens = prompt(seed, length);
      const disagg = await complete(tokens);
      expect(disagg.prefillWorker).toBe('prefill-0');
      expect(disagg.decodeWorker).toMatch(/^decode-[01]$/);
      // The same request served aggregated (pinned) on the other decode worker, which has never seen it.
      const other = disagg.decodeWorker === 'decode-0' ? 'decode-1' : 'decode-0';
      const agg = await complete(tokens, { pin: other });
      expect(agg.prefillWorker).toBeNull();
      expect(agg.decodeWorker).toBe(other);
      expect(disagg.completionTokens).toBe(24);
      expect(disagg.text).toBe(agg.text);
    }
    // Streaming too: the first token comes from the prefill worker, the rest from the decode worker.
    const tokens = prompt(3, 700);
    const stream = await client.completions
      .create({ model: MODEL, prompt: tokens, max_tokens: 24, seed: 7, ignore_eos: true, stream: true } as never)
      .withResponse();
    expect(stream.response.headers.get('x-armature-prefill-worker')).toBe('prefill-0');
    let streamed = '';
    for await (const chunk of stream.data as unknown as AsyncIterable<OpenAI.Completion>)
      streamed += chunk.choices[0]?.text ?? '';
    const decoded = stream.response.headers.get('x-armature-decode-worker')!;
    const agg = await complete(tokens, { pin: decoded === 'decode-0' ? 'decode-1' : 'decode-0' });
    expect(streamed).toBe(agg.text);

    let imported = 0;
    for (const id of ['decode-0', 'decode-1'])
      imported += await metric(id, 'armature_worker_remote_prefill_total', 'outcome="imported"');
    expect(imported).toBe(3);
    const bytes =
      (await metric('decode-0', 'armature_transfer_bytes_total')) +
      (await metric('decode-1', 'armature_transfer_bytes_total'));
    // 1 KiB of KV per token (2 layers × K,V × 2 heads × 64 × 2 bytes): 38 + 40 + 44 blocks of 16 KiB.
    expect(bytes).toBe((38 + 40 + 44) * 16 * 1024);
  });

  it('pulls only the blocks the decode worker lacks', async () => {
    const base = prompt(10, 640); // 40 full blocks
    const first = await complete(base);
    const d = first.decodeWorker!;
    expect(first.prefillWorker).toBe('prefill-0');
    await new Promise((r) => setTimeout(r, 200)); // KV events reach the router
    const pulled = await metric(d, 'armature_worker_kv_blocks_pulled_total');
    const reused = await metric(d, 'armature_worker_kv_blocks_reused_total');

    // 40 shared blocks + 400 new tokens (25 blocks): still over the threshold, so prefilled remotely,
    // on the decode worker that caches the prefix.
    const extended = [...base, ...prompt(11, 400)];
    const second = await complete(extended);
    expect(second.prefillWorker).toBe('prefill-0');
    expect(second.decodeWorker).toBe(d);
    expect(second.cachedTokens).toBe(640); // the prefill worker's own prefix cache
    expect((await metric(d, 'armature_worker_kv_blocks_pulled_total')) - pulled).toBe(25);
    expect((await metric(d, 'armature_worker_kv_blocks_reused_total')) - reused).toBe(40);
    const other = d === 'decode-0' ? 'decode-1' : 'decode-0';
    expect(second.text).toBe((await complete(extended, { pin: other })).text);
  });

  it('prefills on the decode worker when the uncached part is under the threshold', async () => {
    const short = await complete(prompt(20, MIN_REMOTE - 56));
    expect(short.prefillWorker).toBeNull();
    // A long prompt whose prefix the decode worker caches: only 100 tokens are left to compute.
    const base = prompt(21, 800);
    const first = await complete(base);
    expect(first.prefillWorker).toBe('prefill-0');
    await new Promise((r) => setTimeout(r, 200));
    const again = await complete([...base, ...prompt(22, 100)]);
    expect(again.prefillWorker).toBeNull();
    expect(again.decodeWorker).toBe(first.decodeWorker);
    const metrics = await routerMetrics();
    expect(metrics).toMatch(
      /armature_router_disagg_decisions_total\{[^}]*mode="local-prefill",reason="short_prompt"\} [2-9]/,
    );
    expect(metrics).toMatch(/armature_router_disagg_decisions_total\{[^}]*mode="remote-prefill",reason="remote"\} \d/);
  });

  it('prefills locally when the prefill worker hangs mid-transfer, and the request completes', async () => {
    const tokens = prompt(30, 900);
    const expected = await generate('decode-1', request('hang-agg', tokens));
    const pre = await prefillOn('prefill-0', request('hang-1', tokens));
    expect(pre.firstToken).toBe(expected[0]);
    // Over TCP (without the shm section) the pull needs the prefill process to answer.
    const meta = JSON.parse(pre.descriptor!.transferMetadata) as Record<string, unknown>;
    delete meta.shm;
    const descriptor = { ...pre.descriptor!, transferMetadata: JSON.stringify(meta) };
    const proc = cluster.workers.get('prefill-0')!;
    proc.kill('SIGSTOP');
    let rest: number[];
    let viaFrontend: Completion;
    const remoteBefore = remoteDecisions(await routerMetrics());
    const fallbacksBefore = fallbacks(await routerMetrics());
    let waitedMs: number;
    try {
      // Through the frontend (routed while the worker is still in discovery), the hung
      // prefill worker's answer never comes: past the prefill deadline the decode worker
      // prefills the prompt itself.
      const sent = performance.now();
      viaFrontend = await complete(prompt(31, 900));
      waitedMs = performance.now() - sent;
      rest = await generate('decode-0', request('hang-1', tokens, { firstToken: pre.firstToken, descriptor }));
    } finally {
      proc.kill('SIGCONT');
    }
    expect([pre.firstToken, ...rest]).toEqual(expected);
    expect(viaFrontend.prefillWorker).toBeNull();
    expect(viaFrontend.completionTokens).toBe(24);
    expect(remoteDecisions(await routerMetrics())).toBe(remoteBefore + 1);
    // The frontend told the router: the prefill's load moved to the decode worker.
    await expect.poll(async () => fallbacks(await routerMetrics())).toBe(fallbacksBefore + 1);
    expect(waitedMs).toBeGreaterThanOrEqual(950);
    expect(await metric('decode-0', 'armature_worker_remote_prefill_total', 'outcome="transfer_failed"')).toBe(1);
    // A timeout, or 'closed' when the stopped worker's lease ran out first and the decode
    // worker dropped it as a peer mid-transfer: either way one failed pull.
    expect(await metric('decode-0', 'armature_transfer_failures_total')).toBe(1);
    expect(
      (await metric('decode-0', 'armature_transfer_failures_total', 'kind="timeout"')) +
        (await metric('decode-0', 'armature_transfer_failures_total', 'kind="closed"')) +
        (await metric('decode-0', 'armature_transfer_failures_total', 'kind="peer_unreachable"')),
    ).toBe(1);
  });

  it('holds no KV block anywhere once every request is done', async () => {
    await expectNoBlocksHeld(['prefill-0', 'decode-0', 'decode-1']);
    expect(await metric('prefill-0', 'armature_worker_pins_total', 'how="released"')).toBeGreaterThanOrEqual(7);
    expect(await metric('prefill-0', 'armature_worker_pins_total', 'how="expired"')).toBe(0);
  });

  it('prefills locally when the prefill worker dies mid-transfer, and serves aggregated once it is gone', async () => {
    const tokens = prompt(40, 900);
    const expected = await generate('decode-1', request('kill-agg', tokens));
    const pre = await prefillOn('prefill-0', request('kill-1', tokens));
    const meta = JSON.parse(pre.descriptor!.transferMetadata) as Record<string, unknown>;
    delete meta.shm;
    const proc = cluster.workers.get('prefill-0')!;
    proc.kill('SIGKILL');
    await proc.exited;
    const rest = await generate(
      'decode-0',
      request('kill-1', tokens, {
        firstToken: pre.firstToken,
        descriptor: { ...pre.descriptor!, transferMetadata: JSON.stringify(meta) },
      }),
    );
    expect([pre.firstToken, ...rest]).toEqual(expected);
    expect(await metric('decode-0', 'armature_transfer_failures_total')).toBe(2);

    // Through the frontend, while the dead worker is still in discovery: the prefill call
    // fails, the decode worker prefills, the client sees a normal answer.
    const late = await complete(prompt(41, 900));
    expect(late.completionTokens).toBe(24);
    expect(late.prefillWorker).toBeNull();
    // Once its lease runs out the router serves aggregated.
    await waitFor(
      async () => (await cluster.discovery.list({ role: 'prefill' })).length === 0,
      5_000,
      50,
      'the dead prefill worker leaving discovery',
    );
    await new Promise((r) => setTimeout(r, 200));
    const agg = await complete(prompt(42, 900));
    expect(agg.prefillWorker).toBeNull();
    expect(await routerMetrics()).toMatch(
      /armature_router_disagg_decisions_total\{[^}]*mode="aggregated",reason="no_prefill_workers"\} [1-9]/,
    );
    await waitFor(
      async () =>
        (await health('decode-0')).load!.activeDecodeBlocks === 0 &&
        (await health('decode-1')).load!.activeDecodeBlocks === 0,
      5_000,
      50,
      'decode workers holding no blocks',
    );
  });
});
