// The aggregated serving path end to end, with real processes and the official openai
// client: chat and completions, streaming and not, usage, worker spread, cancellation.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@armature/testing';
import { MODEL, startCluster, type Cluster } from './cluster.js';

let cluster: Cluster;
let client: OpenAI;

beforeAll(async () => {
  cluster = await startCluster({ workers: 2, policy: 'round-robin' });
  client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

const messages = [{ role: 'user' as const, content: 'Tell me about paged attention.' }];

describe('OpenAI API over the aggregated path', () => {
  it('lists the served model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
  });

  it('answers a non-streaming chat completion with usage and the worker header', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: MODEL,
        messages,
        max_tokens: 12,
        ignore_eos: true,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.finish_reason).toBe('length');
    expect(data.choices[0]!.message.role).toBe('assistant');
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(data.usage!.completion_tokens).toBe(12);
    expect(data.usage!.prompt_tokens).toBeGreaterThan(5);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + 12);
    expect(response.headers.get('x-armature-decode-worker')).toMatch(/^decode-[01]$/);
  });

  it('streams a chat completion whose text equals the non-streamed one for the same seed', async () => {
    const params = { model: MODEL, messages, max_tokens: 20, seed: 7, ignore_eos: true };
    const whole = await client.chat.completions.create(params as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const { data: stream, response } = await client.chat.completions
      .create({
        ...params,
        stream: true,
        stream_options: { include_usage: true },
      } as OpenAI.ChatCompletionCreateParamsStreaming)
      .withResponse();
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (choice?.delta?.content) text += choice.delta.content;
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(finish).toBe('length');
    expect(usage?.completion_tokens).toBe(20);
    expect(text).toBe(whole.choices[0]!.message.content);
  });

  it('serves completions, streaming and not', async () => {
    const done = await client.completions.create({
      model: MODEL,
      prompt: 'Once upon a time',
      max_tokens: 8,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(done.object).toBe('text_completion');
    expect(done.usage!.completion_tokens).toBe(8);
    const stream = await client.completions.create({
      model: MODEL,
      prompt: 'Once upon a time',
      max_tokens: 8,
      ignore_eos: true,
      stream: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text.length).toBeGreaterThan(0);
  });

  it('honours stop strings and reports cached prompt tokens on a repeat', async () => {
    const long = [{ role: 'user' as const, content: 'cache me '.repeat(200) }];
    const first = await client.chat.completions.create({
      model: MODEL,
      messages: long,
      max_tokens: 30,
      seed: 3,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const text = first.choices[0]!.message.content!;
    const stop = text.slice(10, 14);
    const stopped = await client.chat.completions.create({
      model: MODEL,
      messages: long,
      max_tokens: 30,
      seed: 3,
      ignore_eos: true,
      stop: [stop],
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
    expect(stopped.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(stop)));
    // Pin to one worker so the second request must hit its prefix cache.
    const pinned = { headers: { 'x-armature-worker-id': 'decode-1' } };
    await client.chat.completions.create({ model: MODEL, messages: long, max_tokens: 2 }, pinned);
    const again = await client.chat.completions.create({ model: MODEL, messages: long, max_tokens: 2 }, pinned);
    const cached = (again.usage as OpenAI.CompletionUsage & { prompt_tokens_details: { cached_tokens: number } })
      .prompt_tokens_details.cached_tokens;
    expect(cached).toBeGreaterThanOrEqual(again.usage!.prompt_tokens - 16);
  });

  it('spreads requests over both workers', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const { response } = await client.chat.completions
        .create({ model: MODEL, messages, max_tokens: 2 })
        .withResponse();
      seen.add(response.headers.get('x-armature-decode-worker')!);
    }
    expect([...seen].sort()).toEqual(['decode-0', 'decode-1']);
  });

  it('cancels the request on the worker when the client disconnects', async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      {
        model: MODEL,
        messages,
        max_tokens: 3000,
        ignore_eos: true,
        stream: true,
      } as OpenAI.ChatCompletionCreateParamsStreaming,
      { signal: controller.signal, headers: { 'x-armature-worker-id': 'decode-0' } },
    );
    let n = 0;
    try {
      for await (const _ of stream) if (++n === 5) controller.abort();
    } catch {
      // some client versions throw an AbortError here, others end the stream
    }
    expect(n).toBeLessThan(100);
    // The worker reports the request cancelled and no request left running.
    const metrics = async (): Promise<string> => {
      const records = await cluster.discovery.list({ role: 'decode' });
      const addr = records.find((r) => r.instanceId === 'decode-0')!.metricsAddress!;
      return (await fetch(`http://${addr}/metrics`)).text();
    };
    await waitFor(
      async () => /armature_worker_requests_total\{[^}]*finish_reason="cancelled"[^}]*\} [1-9]/.test(await metrics()),
      5_000,
    );
    await waitFor(async () => /armature_worker_running_requests\{[^}]*\} 0\b/.test(await metrics()), 5_000);
  });

  it('exports frontend metrics in Prometheus format', async () => {
    const text = await (await fetch(`${cluster.url}/metrics`)).text();
    expect(text).toMatch(
      /armature_frontend_requests_total\{model="armature\/test-model",endpoint="chat_completions",status="200"\} \d+/,
    );
    expect(text).toMatch(/armature_frontend_time_to_first_token_seconds_count\{model="armature\/test-model"\} [1-9]/);
    expect(text).toMatch(/armature_frontend_inter_token_latency_seconds_count/);
    expect(text).toMatch(/armature_frontend_output_tokens_total\{model="armature\/test-model"\} [1-9]/);
  });
});
