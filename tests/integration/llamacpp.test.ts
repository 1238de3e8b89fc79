// The llama.cpp stack on real processes and the project's generated model, on CPU: the
// official openai client streams chat completions from it; greedy output is the same
// streamed or not, on either worker; the router's view of each worker's cache (KV events)
// matches the prefix reuse the worker reports; a cancelled stream frees its sequence; and
// a request prefilled on a prefill worker (the sequence state moved through the transfer
// library) returns exactly the tokens of the aggregated one; and a model that produces EOS
// ends the request there (finish reason stop, no EOS text), or goes on with ignore_eos.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { WorkerClient, type HealthResponse } from '@armature/proto';
import { waitFor } from '@armature/testing';
import { createLlamaCppEngine, ensureTestModel } from '@armature/engine';
import { MODEL, startCluster, type Cluster } from './cluster.js';

const BLOCK = 16;

/** A prompt of word token ids after BOS (the generated model's words start past id 260). */
const prompt = (seed: number, n: number): number[] => [
  1,
  ...Array.from({ length: n - 1 }, (_, i) => 300 + ((seed * 7919 + i * 104_729) % 3_000)),
];

async function health(cluster: Cluster, id: string): Promise<HealthResponse> {
  const role = id.startsWith('prefill') ? 'prefill' : 'decode';
  const record = (await cluster.discovery.list({ role })).find((r) => r.instanceId === id)!;
  const client = new WorkerClient(record.grpcAddress!, credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => client.health({}, (err, res) => (err ? reject(err) : resolve(res))));
  } finally {
    client.close();
  }
}

/** A metric summed over the instances of `role` (and over label sets containing `labels`). */
async function metric(cluster: Cluster, role: 'router' | 'decode', name: string, labels = ''): Promise<number> {
  let sum = 0;
  for (const r of await cluster.discovery.list({ role })) {
    const text = await (await fetch(`http://${r.metricsAddress}/metrics`)).text();
    for (const l of text.split('\n')) {
      if ((l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels))
        sum += Number(l.split(' ').pop());
    }
  }
  return sum;
}
const routerMetric = (cluster: Cluster, name: string): Promise<number> => metric(cluster, 'router', name);

describe('llama.cpp workers behind the frontend', () => {
  let cluster: Cluster;
  let client: OpenAI;

  beforeAll(async () => {
    cluster = await startCluster({
      workers: 2,
      engine: 'llamacpp',
      policy: 'kv',
      engineArgs: { sequences: 2, contextSize: 2048, blockSize: BLOCK },
    });
    client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('streams chat completions to the official openai client, the same text as unstreamed', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are a helpful assistant.' },
      { role: 'user' as const, content: 'Tell me about the cat that sat on the mat.' },
    ];
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(finish).toBe('length');
    expect(usage?.completion_tokens).toBe(16);
    expect(text).toMatch(/^[a-zA-Z ]+$/); // the generated model's vocabulary: words
    const unary = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 16, temperature: 0 });
    expect(unary.choices[0]!.message.content).toBe(text);
    expect(unary.usage!.prompt_tokens).toBe(usage!.prompt_tokens);
  });

  it('reports the prefix reuse the router predicted, request by request', async () => {
    const system = prompt(1, 200).slice(1); // a shared system prompt, then distinct questions
    for (let i = 0; i < 6; i++) {
      const tokens = [1, ...system, ...prompt(100 + i, 40).slice(1)];
      const overlapBefore = await routerMetric(cluster, 'armature_router_kv_overlap_blocks_total');
      const res = await client.completions.create({ model: MODEL, prompt: tokens, max_tokens: 4, temperature: 0 });
      const cached = res.usage?.prompt_tokens_details?.cached_tokens ?? 0;
      const predicted = (await routerMetric(cluster, 'armature_router_kv_overlap_blocks_total')) - overlapBefore;
      // The worker reuses whole blocks the router saw, plus at most the partial block after them.
      expect(Math.floor(cached / BLOCK)).toBe(predicted);
      if (i > 0) expect(predicted).toBeGreaterThanOrEqual(Math.floor(system.length / BLOCK));
      await new Promise((r) => setTimeout(r, 100)); // KV events reach the router
    }
  });

  it('frees the sequence of a stream the client abandons', async () => {
    const abort = new AbortController();
    const stream = await client.completions.create(
      { model: MODEL, prompt: prompt(7, 30), max_tokens: 1500, temperature: 0, stream: true },
      { signal: abort.signal },
    );
    let chunks = 0;
    try {
      for await (const _ of stream) if (++chunks === 3) abort.abort();
    } catch {
      // the client's own abort
    }
    await waitFor(
      async () =>
        (await health(cluster, 'decode-0')).load!.runningRequests === 0 &&
        (await health(cluster, 'decode-1')).load!.runningRequests === 0,
      5_000,
      50,
      'both workers idle',
    );
  });
});

describe('llama.cpp disaggregated prefill and decode', () => {
  let cluster: Cluster;
  let client: OpenAI;

  beforeAll(async () => {
    cluster = await startCluster({
      workers: 2,
      prefillWorkers: 1,
      engine: 'llamacpp',
      policy: 'kv',
      engineArgs: { sequences: 2, contextSize: 2048, blockSize: BLOCK },
      routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: 64 }) },
    });
    client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('returns exactly the tokens of the aggregated run, the state moved through the transfer library', async () => {
    for (const [seed, length] of [
      [11, 150],
      [12, 301],
    ] as const) {
      const tokens = prompt(seed, length);
      const { data, response } = await client.completions
        .create({ model: MODEL, prompt: tokens, max_tokens: 20, temperature: 0 })
        .withResponse();
      expect(response.headers.get('x-armature-prefill-worker')).toBe('prefill-0');
      const decoded = response.headers.get('x-armature-decode-worker')!;
      const other = decoded === 'decode-0' ? 'decode-1' : 'decode-0';
      const agg = await client.completions.create(
        { model: MODEL, prompt: tokens, max_tokens: 20, temperature: 0 },
        { headers: { 'x-armature-worker-id': other } },
      );
      expect(data.usage!.completion_tokens).toBe(20);
      expect(data.choices[0]!.text).toBe(agg.choices[0]!.text);
    }
    expect(await metric(cluster, 'decode', 'armature_worker_remote_prefill_total', 'outcome="imported"')).toBe(2);
    // Imported means the bytes arrived; the restored state must also have held the prompt
    // (else the engine logs it and prefills locally, with the same text).
    for (const id of ['decode-0', 'decode-1'])
      expect(cluster.workers.get(id)!.output()).not.toMatch(/does not hold the prompt/);
    expect(await metric(cluster, 'decode', 'armature_transfer_bytes_total')).toBeGreaterThan(150 * 256);
    // A short prompt stays on the decode worker.
    const short = await client.completions
      .create({ model: MODEL, prompt: prompt(13, 30), max_tokens: 4, temperature: 0 })
      .withResponse();
    expect(short.response.headers.get('x-armature-prefill-worker')).toBeNull();
    await waitFor(
      async () => (await health(cluster, 'prefill-0')).load!.runningRequests === 0,
      5_000,
      50,
      'the prefill worker idle',
    );
  });
});

describe('llama.cpp: a model that ends its output', () => {
  let cluster: Cluster;
  let client: OpenAI;
  let expected: number[];
  let at: number;
  const tokens = prompt(70, 30);

  beforeAll(async () => {
    // The plain model's greedy continuation, in this process; the served model's EOS takes its 6th token's place.
    const plain = await createLlamaCppEngine({ sequences: 1, threads: 1, contextSize: 256 });
    try {
      const outputs = plain.generate(
        {
          requestId: 'plain',
          tokenIds: tokens,
          sampling: { temperature: 0 },
          stop: { maxTokens: 24, ignoreEos: true, stopTokenIds: [] },
        },
        new AbortController().signal,
      );
      expected = [];
      for await (const out of outputs) expected.push(...out.tokenIds);
    } finally {
      await plain.close();
    }
    at = expected.indexOf(expected[5]!);
    const modelPath = await ensureTestModel({ eosLike: expected[5]! });
    cluster = await startCluster({ workers: 1, engine: 'llamacpp', engineArgs: { modelPath, sequences: 2 } });
    client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('stops at EOS with finish reason stop, and streams no EOS text', async () => {
    const stream = await client.completions.create({
      model: MODEL,
      prompt: tokens,
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBe(at + 1); // the words before EOS, and EOS
    expect(text).toMatch(/^[a-zA-Z ]+$/);
    expect(text.trim().split(' ')).toHaveLength(at);
    const unary = await client.completions.create({ model: MODEL, prompt: tokens, max_tokens: 24, temperature: 0 });
    expect(unary.choices[0]!.text).toBe(text);
    expect(unary.choices[0]!.finish_reason).toBe('stop');
  });

  it('goes past EOS with ignore_eos', async () => {
    const res = await client.completions.create({
      model: MODEL,
      prompt: tokens,
      max_tokens: 24,
      temperature: 0,
      // @ts-expect-error Armature's (and vLLM's) extension
      ignore_eos: true,
    });
    expect(res.choices[0]!.finish_reason).toBe('length');
    expect(res.usage?.completion_tokens).toBe(24);
  });
});
