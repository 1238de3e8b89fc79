// The HTTP face against a real server on 127.0.0.1: each route answers only its methods,
// a body must be identity-encoded UTF-8 JSON that arrives in time and fits, Node's own
// refusals get OpenAI's error JSON, and draining turns /health and new requests away.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { TEST_MODEL } from '@armature/testing';
import {
  chatBody,
  isOpenAiError,
  parseRaw,
  postJson,
  send,
  sendRaw,
  startFrontend,
  type Answer,
} from './http-fixtures.js';
import type { FrontendHttp } from './http-server.js';

let http: FrontendHttp;
let port: number;
let url: string;

beforeAll(async () => {
  ({ http, port, url } = await startFrontend());
});

afterAll(async () => {
  await http?.close();
});

const errorOf = (a: Answer) => (JSON.parse(a.text) as { error: { code: string; param: string | null } }).error;

function expectError(a: Answer, status: number, code: string): void {
  expect(a.status, a.text).toBe(status);
  expect(a.headers['content-type']).toBe('application/json');
  expect(isOpenAiError(JSON.parse(a.text))).toBe(true);
  expect(errorOf(a).code).toBe(code);
}

describe('FrontendHttp: what it serves', () => {
  it('answers a chat completion, also through the openai client', async () => {
    const a = await postJson(port, '/v1/chat/completions', JSON.stringify(chatBody()));
    expect(a.status, a.text).toBe(200);
    expect(JSON.parse(a.text)).toMatchObject({ object: 'chat.completion', model: TEST_MODEL });
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: TEST_MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      seed: 7,
      temperature: 0,
    });
    expect(completion.choices[0].message.content?.length).toBeGreaterThan(0);
  });

  it('answers HEAD where it answers GET, with no body', async () => {
    for (const path of ['/health', '/live', '/v1/models', '/metrics']) {
      const a = await send(port, 'HEAD', path);
      expect(a.status).toBe(200);
      expect(a.text).toBe('');
    }
  });

  it('carries a top_k of -1 and a seed of 0 to the worker as the wire has them', async () => {
    const a = await postJson(port, '/v1/chat/completions', JSON.stringify(chatBody({ top_k: -1, seed: 0 })));
    expect(a.status, a.text).toBe(200);
  });

  it('refuses what the wire cannot carry with a 400 naming the field, not a 5xx from the encoder', async () => {
    for (const [field, value] of [
      ['seed', -1],
      ['top_k', -2],
      ['top_k', 2 ** 32],
      ['max_tokens', 2 ** 32],
    ] as const) {
      const a = await postJson(port, '/v1/chat/completions', JSON.stringify(chatBody({ [field]: value })));
      expectError(a, 400, 'invalid_value');
      expect(errorOf(a).param).toBe(field);
    }
  });
});

describe('FrontendHttp: methods', () => {
  it.each([
    ['GET', '/v1/chat/completions', 'POST'],
    ['PUT', '/v1/completions', 'POST'],
    ['DELETE', '/v1/chat/completions', 'POST'],
    ['POST', '/health', 'GET, HEAD'],
    ['POST', '/live', 'GET, HEAD'],
    ['PUT', '/metrics', 'GET, HEAD'],
    ['DELETE', '/v1/models', 'GET, HEAD'],
    ['OPTIONS', '/v1/models', 'GET, HEAD'],
  ])('%s %s is a 405 allowing %s', async (method, path, allow) => {
    const a = await send(port, method, path);
    expectError(a, 405, 'method_not_allowed');
    expect(a.headers.allow).toBe(allow);
  });

  it('an unknown URL is a 404', async () => {
    expectError(await send(port, 'GET', '/v1/nope'), 404, 'unknown_url');
  });
});

describe('FrontendHttp: bodies', () => {
  const body = JSON.stringify(chatBody());
  const post = (headers: Record<string, string>, bytes: string | Buffer = body) =>
    send(port, 'POST', '/v1/chat/completions', bytes, headers);

  it.each([
    [{}],
    [{ 'content-type': 'text/plain' }],
    [{ 'content-type': 'application/x-www-form-urlencoded' }],
    [{ 'content-type': 'application/jsonx' }],
    [{ 'content-type': 'application/json; charset=latin1' }],
    [{ 'content-type': 'application/json; charset=utf-16' }],
  ])('refuses the content type of %j with 415', async (headers) => {
    expectError(await post(headers), 415, 'unsupported_media_type');
  });

  it.each([
    ['application/json'],
    ['Application/JSON'],
    ['application/json; charset=utf-8'],
    ['application/json;charset="UTF-8"'],
  ])('takes %s', async (contentType) => {
    expect((await post({ 'content-type': contentType })).status).toBe(200);
  });

  it('refuses a compressed body with 415, and takes an identity one', async () => {
    for (const coding of ['gzip', 'br', 'deflate, gzip']) {
      const a = await post({ 'content-type': 'application/json', 'content-encoding': coding });
      expectError(a, 415, 'unsupported_content_encoding');
      expect(a.headers['accept-encoding']).toBe('identity');
    }
    expect((await post({ 'content-type': 'application/json', 'content-encoding': 'identity' })).status).toBe(200);
  });

  it('refuses a body that is not UTF-8 with 400', async () => {
    for (const bad of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      const bytes = Buffer.concat([Buffer.from('{"model": "'), Buffer.from(bad), Buffer.from('"}')]);
      expectError(await post({ 'content-type': 'application/json' }, bytes), 400, 'invalid_utf8');
    }
  });

  it('refuses an empty body, malformed JSON and a non-object with 400', async () => {
    const json = { 'content-type': 'application/json' };
    expectError(await post(json, ''), 400, 'invalid_json');
    expectError(await post(json, '{"model": '), 400, 'invalid_json');
    expectError(await post(json, '[1, 2]'), 400, 'invalid_body');
  });

  it('refuses a body over the limit with 413, declared or not', async () => {
    const big = JSON.stringify(chatBody({ messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] }));
    expectError(await post({ 'content-type': 'application/json' }, big), 413, 'request_too_large');
    const chunked = await post({ 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, big);
    expectError(chunked, 413, 'request_too_large');
  });

  it('answers a body that does not arrive in time with 408 and closes the connection', async () => {
    const head =
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"mod';
    const started = Date.now();
    const answer = parseRaw(await sendRaw(port, head, 5_000));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(answer.status).toBe(408);
    expect(answer.head.toLowerCase()).toContain('connection: close');
    expect(isOpenAiError(answer.body)).toBe(true);
    expect((answer.body as { error: { code: string } }).error.code).toBe('body_timeout');
  });

  it("gives Node's own refusals (malformed HTTP, oversized headers) a JSON body", async () => {
    const garbage = parseRaw(await sendRaw(port, 'NOT HTTP AT ALL\r\n\r\n'));
    expect(garbage.status).toBe(400);
    expect(isOpenAiError(garbage.body)).toBe(true);
    const huge = parseRaw(await sendRaw(port, `GET /live HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(huge.status).toBe(431);
    expect(isOpenAiError(huge.body)).toBe(true);
  });

  it('still serves after all of the above', async () => {
    expect((await post({ 'content-type': 'application/json' })).status).toBe(200);
  });
});

describe('FrontendHttp: draining', () => {
  it('turns /health to 503 and new requests away with Retry-After; /live stays 200', async () => {
    const own = await startFrontend();
    try {
      const health = await send(own.port, 'GET', '/health');
      expect(health.status).toBe(200);
      expect(JSON.parse(health.text)).toMatchObject({ status: 'healthy', routers: 1 });
      own.http.startDraining();
      const draining = await send(own.port, 'GET', '/health');
      expect(draining.status).toBe(503);
      expect(JSON.parse(draining.text)).toMatchObject({ status: 'draining' });
      expect((await send(own.port, 'GET', '/live')).status).toBe(200);
      const refused = await postJson(own.port, '/v1/chat/completions', JSON.stringify(chatBody()));
      expectError(refused, 503, 'draining');
      expect(refused.headers['retry-after']).toBe('5');
      expect((await send(own.port, 'GET', '/v1/models')).status).toBe(200);
    } finally {
      await own.http.close();
    }
  });
});
