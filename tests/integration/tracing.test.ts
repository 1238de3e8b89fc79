// OpenTelemetry traces across processes, into a real OTLP/HTTP receiver: one request of a
// disaggregated graph is one trace over the frontend, the router, the prefill worker and
// the decode worker, each span under the right parent (W3C traceparent over gRPC), with the
// routing choice and the KV pull's bytes as attributes; JSON logs inside it carry its
// trace_id. http/json works as well as http/protobuf, a client's traceparent is joined, and
// an exporter that fails or a malformed OTEL_* value is counted while serving goes on.
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver, waitFor, type OtlpReceiver, type ReceivedSpan } from '@armature/testing';
import { MODEL, startCluster, type Cluster } from './cluster.js';

const BLOCK = 16;
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function otelEnv(receiver: OtlpReceiver, protocol: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    ...extra,
  };
}

const one = (spans: ReceivedSpan[], name: string, service?: string): ReceivedSpan => {
  const found = spans.filter((s) => s.name === name && (service === undefined || s.service === service));
  expect(
    found.map((s) => `${s.service}:${s.name}`),
    `one ${service ?? ''} ${name} span`,
  ).toHaveLength(1);
  return found[0]!;
};

async function metricValue(url: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(line.exec(text)?.[1] ?? NaN);
}

describe('traces across every process', () => {
  it('one disaggregated request is one trace over frontend, router, prefill and decode (http/protobuf)', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const cluster: Cluster = await startCluster({
      workers: 1,
      prefillWorkers: 1,
      engineArgs: { totalKvBlocks: 1024, blockSize: BLOCK },
      routerEnv: { ARMATURE_DISAGG: JSON.stringify({ minRemotePrefillTokens: 128 }) },
      extraEnv: { ...otelEnv(receiver, 'http/protobuf'), ARMATURE_LOG_FORMAT: 'json', ARMATURE_LOG_LEVEL: 'debug' },
    });
    cleanups.push(() => cluster.stop());
    const client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const prompt = Array.from({ length: 400 }, (_, i) => 1000 + ((i * 7919) % 20_000));
    const { data, response } = await client.completions
      .create({ model: MODEL, prompt, max_tokens: 6, ignore_eos: true } as never, {
        headers: { 'x-request-id': 'traced-1' },
      })
      .withResponse();
    expect((data as unknown as OpenAI.Completion).usage!.completion_tokens).toBe(6);
    expect(response.headers.get('x-armature-prefill-worker')).toBe('prefill-0');

    // Batches leave every process within about a second.
    const root = (): ReceivedSpan | undefined =>
      receiver.spans.find(
        (s) => s.name === 'POST /v1/completions' && s.attributes['armature.request_id'] === 'traced-1',
      );
    await waitFor(() => root() !== undefined, 10_000, 100, 'the frontend span');
    const traceId = root()!.traceId;
    const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
    const expected = [
      'frontend:POST /v1/completions',
      'frontend:tokenize',
      'frontend:route',
      'frontend:prefill',
      'frontend:decode',
      'frontend:response',
      'router:armature.v1.Router/Route',
      'prefill:armature.v1.Worker/Prefill',
      'decode:armature.v1.Worker/Generate',
      'decode:kv_pull',
    ];
    await waitFor(
      () => expected.every((e) => inTrace().some((s) => `${s.service}:${s.name}` === e)),
      15_000,
      100,
      'every span of the trace',
    );
    const spans = inTrace();
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['frontend', 'router', 'prefill', 'decode']));
    expect(spans.every((s) => s.encoding === 'protobuf')).toBe(true);
    expect(one(spans, 'armature.v1.Router/Route').instance).toBe('router-0');

    // Parents: the gRPC server spans hang under the frontend stage that called them.
    const http = one(spans, 'POST /v1/completions');
    expect(http.parentSpanId).toBe('');
    const route = one(spans, 'route', 'frontend');
    const prefill = one(spans, 'prefill', 'frontend');
    const decode = one(spans, 'decode', 'frontend');
    for (const child of [one(spans, 'tokenize'), route, prefill, decode]) expect(child.parentSpanId).toBe(http.spanId);
    const routed = one(spans, 'armature.v1.Router/Route');
    expect(routed.parentSpanId).toBe(route.spanId);
    expect(routed.attributes).toMatchObject({
      'armature.route.decode_worker': 'decode-0',
      'armature.route.prefill_worker': 'prefill-0',
      'armature.route.disagg_mode': 'remote-prefill',
      'armature.route.prompt_tokens': 400,
    });
    expect(typeof routed.attributes['armature.route.overlap_blocks']).toBe('number');
    expect(one(spans, 'armature.v1.Worker/Prefill').parentSpanId).toBe(prefill.spanId);
    const generate = one(spans, 'armature.v1.Worker/Generate');
    expect(generate.parentSpanId).toBe(decode.spanId);
    const pull = one(spans, 'kv_pull');
    expect(pull.parentSpanId).toBe(generate.spanId);
    expect(pull.attributes).toMatchObject({ 'armature.kv.outcome': 'imported', 'armature.kv.peer': 'prefill-0' });
    expect(pull.attributes['armature.kv.bytes']).toBeGreaterThan(0);
    expect(String(pull.attributes['armature.kv.backend'])).toMatch(/^(shm|tcp)$/);

    // The decode worker's JSON log lines of the request name the trace.
    const decodeLog = cluster.workers
      .get('decode-0')!
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((r) => r.request_id === 'traced-1');
    expect(decodeLog).toMatchObject({ trace_id: traceId, span_id: expect.stringMatching(/^[0-9a-f]{16}$/) });

    // Counted on every service's metrics page.
    await waitFor(
      async () => (await metricValue(cluster.url, /^armature_tracing_spans_exported_total (\d+)/m)) >= 6,
      10_000,
      200,
      'the frontend counting its exported spans',
    );
  }, 90_000);

  it('http/json, a client traceparent joined; a failing endpoint and a bad value are counted, serving goes on', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const cluster = await startCluster({
      workers: 1,
      // A sampler name the SDK does not know: logged, counted, and the default sampler used.
      extraEnv: otelEnv(receiver, 'http/json', { OTEL_TRACES_SAMPLER: 'no_such_sampler' }),
    });
    cleanups.push(() => cluster.stop());
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const ask = (headers: Record<string, string> = {}) =>
      fetch(`${cluster.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: MODEL, prompt: 'hello there', max_tokens: 3 }),
      });
    expect((await ask({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` })).status).toBe(200);
    await waitFor(
      () =>
        ['frontend', 'router', 'decode'].every((svc) =>
          receiver.spans.some((s) => s.traceId === traceId && s.service === svc),
        ),
      15_000,
      100,
      'spans of frontend, router and decode in the client trace',
    );
    const http = one(
      receiver.spans.filter((s) => s.traceId === traceId),
      'POST /v1/completions',
    );
    expect(http.parentSpanId).toBe('00f067aa0ba902b7');
    expect(receiver.spans.every((s) => s.encoding === 'json')).toBe(true);
    expect(await metricValue(cluster.url, /^armature_tracing_errors_total\{kind="config"\} (\d+)/m)).toBeGreaterThan(0);

    receiver.failWith(503);
    for (let i = 0; i < 3; i++) expect((await ask()).status).toBe(200);
    await waitFor(
      async () => (await metricValue(cluster.url, /^armature_tracing_errors_total\{kind="export"\} (\d+)/m)) > 0,
      20_000,
      200,
      'the frontend counting its failed exports',
    );
    expect(cluster.frontend.output().match(/span export failed/g)?.length ?? 0).toBe(1); // logged once
    expect((await ask()).status).toBe(200);
  }, 90_000);
});
