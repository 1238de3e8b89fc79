// Admission control: limits per model, arrival order, bounded waiting with a deadline,
// a client's own limit, and the HTTP answers (503 / 429 with Retry-After) and slow-client
// drop on a real FrontendHttp.
import { connect } from 'node:net';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_MODEL, waitFor } from '@armature/testing';
import { asArmatureError } from '@armature/runtime';
import { Admission } from './admission.js';
import { fakeUpstream, send, startFrontend } from './http-fixtures.js';

const never = (): AbortSignal => new AbortController().signal;

describe('Admission', () => {
  it('runs maxInflight at once per model, queues the next in order, and hands each freed slot to the longest waiter', async () => {
    const gate = new Admission({ maxInflight: 2, queueSize: 2, queueTimeoutMs: 5_000 });
    const a = await gate.admit('m', 'c1', never());
    const b = await gate.admit('m', 'c2', never());
    const other = await gate.admit('n', 'c3', never()); // another model has its own limit
    const order: string[] = [];
    const c = gate.admit('m', 'c4', never()).then((r) => (order.push('c'), r));
    const d = gate.admit('m', 'c5', never()).then((r) => (order.push('d'), r));
    expect(gate.load('m')).toEqual({ running: 2, waiting: 2 });
    const full = await gate.admit('m', 'c6', never()).catch(asArmatureError);
    expect(full).toMatchObject({ cls: 'unavailable', reason: 'overloaded', retryAfterS: 1 });
    a();
    a(); // a second release is a no-op
    const releaseC = await c;
    // A newcomer cannot take the slot c was handed: it queues behind d.
    const e = gate.admit('m', 'c7', never()).then((r) => (order.push('e'), r));
    expect(gate.load('m')).toEqual({ running: 2, waiting: 2 });
    b();
    const releaseD = await d;
    releaseC();
    const releaseE = await e;
    expect(order).toEqual(['c', 'd', 'e']);
    releaseD();
    releaseE();
    other();
    expect(gate.load('m')).toEqual({ running: 0, waiting: 0 });
  });

  it('refuses a wait past queueTimeoutMs, and frees the queue place of a waiter whose client left', async () => {
    const gate = new Admission({ maxInflight: 1, queueSize: 1, queueTimeoutMs: 50 });
    const held = await gate.admit('m', 'c', never());
    expect(await gate.admit('m', 'c', never()).catch(asArmatureError)).toMatchObject({
      reason: 'overloaded',
      message: expect.stringContaining('50 ms'),
    });
    const abort = new AbortController();
    const leaving = gate.admit('m', 'c', abort.signal).catch(asArmatureError);
    abort.abort();
    expect(await leaving).toMatchObject({ cls: 'cancelled' });
    expect(gate.load('m')).toEqual({ running: 1, waiting: 0 });
    held();
    (await gate.admit('m', 'c', never()))();
  });

  it("refuses a client past its own limit with 429's class, waiting requests included", async () => {
    const gate = new Admission({ maxInflight: 1, maxInflightPerClient: 2 });
    const one = await gate.admit('m', 'key:a', never());
    const two = gate.admit('m', 'key:a', never()); // waits, and counts
    expect(await gate.admit('m', 'key:a', never()).catch(asArmatureError)).toMatchObject({
      cls: 'resource_exhausted',
      reason: 'client_concurrency_limit',
    });
    const b = gate.admit('m', 'key:b', never()); // another client is not held to a's limit
    one();
    (await two)();
    (await b)();
  });

  it('rejects bad limits', () => {
    expect(() => new Admission({ maxInflight: -1 })).toThrow(/maxInflight/);
  });
});

describe('admission over HTTP', () => {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (stops.length) await stops.pop()!();
  });

  it('answers 503 with Retry-After and OpenAI error JSON at capacity, 429 past a client limit, then serves again', async () => {
    const upstream = fakeUpstream();
    upstream.worker.script = { tokens: [[13225]], hangAfter: 0 }; // holds its slot until cancelled
    const { http, port, url } = await startFrontend({
      upstream,
      admission: new Admission({ maxInflight: 1, queueSize: 0, maxInflightPerClient: 1 }),
    });
    stops.push(() => (http.server.closeAllConnections(), http.close()));
    const body = JSON.stringify({ model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    const holder = new AbortController();
    const held = fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: holder.signal,
    }).catch(() => undefined);
    await waitFor(() => http.admission.load(TEST_MODEL).running === 1, 2_000);
    const json = { 'content-type': 'application/json' };
    const own = await send(port, 'POST', '/v1/chat/completions', body, json); // the same (anonymous) client
    expect(own.status).toBe(429);
    expect(own.headers['retry-after']).toBe('1');
    expect(JSON.parse(own.text).error).toMatchObject({ code: 'client_concurrency_limit' });
    const busy = await send(port, 'POST', '/v1/chat/completions', body, { ...json, authorization: 'Bearer other' });
    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('1');
    expect(JSON.parse(busy.text).error).toMatchObject({ code: 'overloaded', type: expect.any(String) });
    holder.abort();
    await held;
    await waitFor(() => http.admission.load(TEST_MODEL).running === 0, 2_000);

    upstream.worker.script = { tokens: [[13225], [11]] };
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'k', maxRetries: 0 });
    const ok = await client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: 'user', content: 'x' }] });
    expect(ok.choices[0]?.finish_reason).toBe('stop');
  });

  it('drops a streaming client that reads nothing, and cancels its request upstream', async () => {
    const upstream = fakeUpstream();
    // Far more output than socket buffers hold: a client that never reads must block it.
    const long = Array.from({ length: 20_000 }, () => Array.from({ length: 100 }, () => 13225));
    upstream.worker.script = { tokens: long };
    const { http, port } = await startFrontend({ upstream, slowClientTimeoutMs: 300, requestTimeoutMs: 30_000 });
    stops.push(() => (http.server.closeAllConnections(), http.close()));
    const socket = connect(port, '127.0.0.1');
    socket.pause(); // reads nothing
    const body = JSON.stringify({ model: TEST_MODEL, prompt: 'x', max_tokens: 1_000, stream: true });
    socket.write(
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    // Back-pressure held the worker's stream while the buffers were full; the drop closed it.
    const call = (): (typeof upstream.worker.generateCalls)[0] | undefined => upstream.worker.generateCalls[0];
    await waitFor(() => call()?.outcome === 'closed' || call()?.cancelled === true, 10_000, 20, 'the call closed');
    expect(call()!.sent).toBeLessThan(long.length / 2);
    await waitFor(() => http.inFlight.size === 0, 2_000, 20, 'the request to end');
    socket.destroy();
  });
});

describe('shutdown past the drain deadline', () => {
  it('ends a running stream with an error event and a request not yet answered with a 503, never a reset', async () => {
    const upstream = fakeUpstream();
    upstream.worker.script = { tokens: [[13225], [11], [2375]], hangAfter: 1 };
    const { http, url } = await startFrontend({ upstream });
    try {
      const post = (stream: boolean) =>
        fetch(`${url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${stream}` },
          body: JSON.stringify({ model: TEST_MODEL, prompt: 'x', max_tokens: 5, stream }),
        });
      const streaming = await post(true);
      expect(streaming.status).toBe(200);
      const reader = streaming.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain('data: ');
      upstream.worker.script = { tokens: [[13225]], hangAfter: 0 };
      const waiting = post(false);
      await waitFor(() => http.inFlight.size === 2, 2_000, 10, 'both requests in flight');
      expect(http.abandon()).toBe(2);
      let rest = '';
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
      expect(rest).toMatch(/data: \{"error":\{[^\n]*"code":"shutting_down"/);
      expect(rest).not.toContain('[DONE]');
      const refused = await waiting;
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('shutting_down');
    } finally {
      http.server.closeAllConnections();
      await http.close();
    }
  });
});
