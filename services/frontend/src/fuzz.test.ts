// Hostile input against a real FrontendHttp on 127.0.0.1: wrong types for every field,
// out-of-range numbers, unknown fields, invalid UTF-8, malformed, huge and deeply nested
// JSON, wrong methods, content types and encodings. Each is answered with a 4xx carrying
// OpenAI's error JSON, never a 5xx; random values in otherwise valid requests get a 200 or
// a 4xx; and the server keeps serving. The upstream fake passes every message through the
// proto encoder, so a value validation lets through that the wire cannot carry shows up
// here as a 5xx. Seeded and bounded: the same runs every time, in a few seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import OpenAI from 'openai';
import { TEST_MODEL } from '@armature/testing';
import { isOpenAiError, postJson, send, startFrontend, type Answer } from './http-fixtures.js';
import type { FrontendHttp } from './http-server.js';

const SEED = 1313;
/** Keys that some endpoint knows; anything else must be refused as unknown. */
const KNOWN = new Set([
  ...['model', 'messages', 'prompt', 'max_tokens', 'max_completion_tokens', 'stop', 'stream', 'stream_options'],
  ...['temperature', 'top_p', 'top_k', 'seed', 'ignore_eos', 'n', 'echo', 'user', 'metadata', 'store'],
  ...['service_tier', 'prompt_cache_key', 'safety_identifier', 'parallel_tool_calls', 'frequency_penalty'],
  ...['presence_penalty', 'logit_bias', 'logprobs', 'top_logprobs', 'best_of', 'suffix', 'tools', 'functions'],
  ...['tool_choice', 'function_call', 'response_format', 'modalities', 'audio', 'prediction'],
  ...['web_search_options', 'reasoning_effort', 'verbosity'],
]);

let http: FrontendHttp;
let port: number;
let url: string;
const statuses = new Map<number, number>();

beforeAll(async () => {
  ({ http, port, url } = await startFrontend());
});

afterAll(async () => {
  await http?.close();
});

type Kind = 'chat' | 'completion';
const PATHS: Record<Kind, string> = { chat: '/v1/chat/completions', completion: '/v1/completions' };
const base = (kind: Kind): Record<string, unknown> =>
  kind === 'chat'
    ? { model: TEST_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }
    : { model: TEST_MODEL, prompt: 'hi', max_tokens: 3 };

function record(a: Answer): Answer {
  statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  return a;
}

/** A 4xx with OpenAI's error JSON; `status` when one is expected. */
function expectRefusal(a: Answer, status?: number): void {
  if (status !== undefined) expect(a.status, a.text.slice(0, 300)).toBe(status);
  expect(a.status, a.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
  expect(a.status, a.text.slice(0, 300)).toBeLessThan(500);
  expect(isOpenAiError(JSON.parse(a.text)), a.text.slice(0, 300)).toBe(true);
}

const post = async (kind: Kind, body: unknown) => record(await postJson(port, PATHS[kind], JSON.stringify(body)));

const kinds = fc.constantFrom<Kind>('chat', 'completion');
const nonNullJson = fc.jsonValue({ maxDepth: 3 }).filter((v) => v !== null);
const shapeOf = (v: unknown): string => (Array.isArray(v) ? 'array' : typeof v);
/** Any JSON value but null (which reads as absent) whose shape is none of `accepted`. */
const wrongShape = (...accepted: string[]) => nonNullJson.filter((v) => !accepted.includes(shapeOf(v)));

// The shapes each field takes; a field of one endpoint sent to the other is unknown there.
const SHAPES: Record<string, string[]> = {
  model: ['string'],
  messages: ['array'],
  prompt: ['string', 'array'],
  stop: ['string', 'array'],
  stream_options: ['object'],
  metadata: ['object'],
  ...Object.fromEntries(
    ['temperature', 'top_p', 'top_k', 'seed', 'max_tokens', 'max_completion_tokens', 'n']
      .concat(['frequency_penalty', 'presence_penalty', 'best_of', 'top_logprobs'])
      .map((k) => [k, ['number']]),
  ),
  ...Object.fromEntries(
    ['stream', 'ignore_eos', 'echo', 'store', 'parallel_tool_calls', 'logprobs'].map((k) => [k, ['boolean']]),
  ),
  ...Object.fromEntries(
    ['user', 'service_tier', 'prompt_cache_key', 'safety_identifier', 'suffix'].map((k) => [k, ['string']]),
  ),
};

const anyNumber = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.maxSafeInteger(),
  fc.constantFrom(-1, -0, 0.5, 1, 2, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 64, 1e-300, -1e300),
);
const isInt = Number.isInteger;
// What each numeric field takes (max_tokens: up to the context, 4096, as the model's room is not known here).
const IN_RANGE: Record<string, (v: number) => boolean> = {
  temperature: (v) => v >= 0 && v <= 2,
  top_p: (v) => Math.fround(v) > 0 && v <= 1,
  top_k: (v) => isInt(v) && v >= -1 && v <= 2 ** 31 - 1,
  seed: (v) => isInt(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER,
  max_tokens: (v) => isInt(v) && v >= 1 && v <= 4096,
  max_completion_tokens: (v) => isInt(v) && v >= 1 && v <= 4096,
  n: (v) => v === 1,
  frequency_penalty: (v) => v === 0,
  presence_penalty: (v) => v === 0,
};

const INVALID_UTF8 = [[0xff], [0xfe], [0x80], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]
  .concat([
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0xe2, 0x82],
  ])
  .map((b) => Buffer.from(b));

/** `depth` nested arrays or objects around `inner`. */
const nested = (depth: number, object: boolean, inner = '1'): string =>
  object ? '{"a":'.repeat(depth) + inner + '}'.repeat(depth) : '['.repeat(depth) + inner + ']'.repeat(depth);

const check = <Ts extends unknown[]>(prop: fc.IAsyncPropertyWithHooks<Ts>, numRuns: number) =>
  fc.assert(prop, { seed: SEED, numRuns });

describe('fuzz: FrontendHttp refuses hostile input with 4xx OpenAI errors', () => {
  it('a wrong type for any field', async () => {
    const cases = fc
      .record({ kind: kinds, field: fc.constantFrom(...Object.keys(SHAPES)) })
      .chain(({ kind, field }) => wrongShape(...SHAPES[field]).map((value) => ({ kind, field, value })));
    await check(
      fc.asyncProperty(cases, async ({ kind, field, value }) => {
        const a = await post(kind, { ...base(kind), [field]: value });
        expectRefusal(a, 400);
      }),
      200,
    );
  }, 20_000);

  it('a number out of its range', async () => {
    const cases = fc
      .record({ kind: kinds, field: fc.constantFrom(...Object.keys(IN_RANGE)) })
      .chain(({ kind, field }) =>
        anyNumber.filter((v) => !IN_RANGE[field](v)).map((value) => ({ kind, field, value })),
      );
    await check(
      fc.asyncProperty(cases, async ({ kind, field, value }) => {
        const a = await post(kind, { ...base(kind), [field]: value });
        expectRefusal(a, 400);
        expect((JSON.parse(a.text) as { error: { param: string } }).error.param).toBe(field);
      }),
      200,
    );
  }, 20_000);

  it('an unknown field, whatever its value', async () => {
    const key = fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }).filter((k) => !KNOWN.has(k));
    await check(
      fc.asyncProperty(kinds, key, fc.jsonValue({ maxDepth: 2 }), async (kind, field, value) => {
        const a = await post(kind, { ...base(kind), [field]: value });
        expectRefusal(a, 400);
        expect((JSON.parse(a.text) as { error: { code: string } }).error.code).toBe('unknown_parameter');
      }),
      150,
    );
  }, 20_000);

  it('a body that is not UTF-8', async () => {
    await check(
      fc.asyncProperty(kinds, fc.constantFrom(...INVALID_UTF8), fc.nat(), async (kind, bad, at) => {
        const text = Buffer.from(JSON.stringify({ ...base(kind), user: 'abcdef' }));
        const i = text.indexOf('abcdef') + (at % 6); // inside a string, so only the bytes are wrong
        const bytes = Buffer.concat([text.subarray(0, i), bad, text.subarray(i)]);
        const a = record(await postJson(port, PATHS[kind], bytes));
        expectRefusal(a, 400);
        expect((JSON.parse(a.text) as { error: { code: string } }).error.code).toBe('invalid_utf8');
      }),
      100,
    );
  }, 20_000);

  it('malformed JSON, JSON that is not a request, and lone surrogates', async () => {
    const truncated = kinds.chain((kind) => {
      const text = JSON.stringify(base(kind));
      return fc.nat({ max: text.length - 1 }).map((n) => ({ kind, body: text.slice(0, n) }));
    });
    const random = fc.record({ kind: kinds, body: fc.string({ maxLength: 200, unit: 'grapheme' }) });
    const notARequest = fc.record({ kind: kinds, body: fc.jsonValue().map((v) => JSON.stringify(v)) });
    const surrogate = fc.record({
      kind: kinds,
      body: fc.constantFrom('\\ud800', '\\udfff', 'a\\ud83d', '\\ude00b'),
    });
    const bodies = fc.oneof(
      truncated,
      random,
      notARequest,
      surrogate.map(({ kind, body }) => ({
        kind,
        body:
          kind === 'chat'
            ? `{"model":"${TEST_MODEL}","messages":[{"role":"user","content":"${body}"}]}`
            : `{"model":"${TEST_MODEL}","prompt":"${body}"}`,
      })),
    );
    await check(
      fc.asyncProperty(bodies, async ({ kind, body }) => {
        expectRefusal(record(await postJson(port, PATHS[kind], body)));
      }),
      200,
    );
  }, 20_000);

  it('huge and deeply nested JSON', async () => {
    const where = fc.constantFrom(
      'body',
      'messages',
      'content',
      'stop',
      'prompt',
      'tools',
      'unknown',
      'response_format',
    );
    const cases = fc.record({
      kind: kinds,
      where,
      depth: fc.integer({ min: 500, max: 10_000 }),
      object: fc.boolean(),
    });
    await check(
      fc.asyncProperty(cases, async ({ kind, where, depth, object }) => {
        const deep = nested(depth, object);
        const text = JSON.stringify(base(kind));
        const body =
          where === 'body'
            ? deep
            : where === 'content'
              ? text.replace('"content":"hi"', `"content":${deep}`).replace('"prompt":"hi"', `"prompt":${deep}`)
              : `${text.slice(0, -1)},"${where}":${deep}}`;
        expectRefusal(record(await postJson(port, PATHS[kind], body)));
      }),
      40,
    );
    const wide = JSON.stringify({
      ...base('chat'),
      ...Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, i])),
    });
    expectRefusal(record(await postJson(port, PATHS.chat, wide)), 400);
    const huge = JSON.stringify({ ...base('chat'), messages: [{ role: 'user', content: 'x'.repeat(200_000) }] });
    expectRefusal(record(await postJson(port, PATHS.chat, huge)), 413);
  }, 20_000);

  it('a wrong method on any route', async () => {
    const wrongMethod = fc.oneof(
      fc.record({
        path: fc.constantFrom(PATHS.chat, PATHS.completion),
        method: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      }),
      fc.record({
        path: fc.constantFrom('/health', '/live', '/metrics', '/v1/models'),
        method: fc.constantFrom('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      }),
    );
    await check(
      fc.asyncProperty(wrongMethod, fc.jsonValue(), async ({ path, method }, body) => {
        const a = record(await send(port, method, path, JSON.stringify(body), { 'content-type': 'application/json' }));
        expectRefusal(a, 405);
        expect(a.headers.allow).toBeTruthy();
      }),
      80,
    );
  }, 20_000);

  it('a wrong content type or content encoding', async () => {
    const token = fc.stringMatching(/^[a-z0-9!#$&^_.+-]{1,20}$/);
    const contentType = fc
      .oneof(
        fc.tuple(token, token).map(([t, s]) => `${t}/${s}`),
        fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'),
        fc.constantFrom('application/json; charset=iso-8859-1', 'application/json;charset=utf-16le', 'json'),
      )
      .filter((t) => !/^\s*application\/json\s*(;|$)/i.test(t) || /charset=(?!"?utf-?8"?\s*(;|$))/i.test(t));
    const encoding = fc
      .oneof(token, fc.constantFrom('gzip', 'br', 'deflate', 'zstd', 'gzip, identity'))
      .filter((e) => e.trim().toLowerCase() !== 'identity');
    const headers = fc.oneof(
      contentType.map((t) => ({ 'content-type': t })),
      encoding.map((e) => ({ 'content-type': 'application/json', 'content-encoding': e })),
    );
    await check(
      fc.asyncProperty(kinds, headers, async (kind, h) => {
        const a = record(await send(port, 'POST', PATHS[kind], JSON.stringify(base(kind)), h));
        expectRefusal(a, 415);
      }),
      120,
    );
  }, 20_000);
});

describe('fuzz: random values in otherwise valid requests', () => {
  it('get a 200 or a 4xx with OpenAI error JSON, never a 5xx', async () => {
    const value = fc.oneof(anyNumber, fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, true, false, '', [], {}));
    const field = fc.constantFrom(...KNOWN);
    const overrides = fc.dictionary(field, value, { minKeys: 1, maxKeys: 4 });
    await check(
      fc.asyncProperty(kinds, overrides, async (kind, extra) => {
        const a = await post(kind, { ...base(kind), ...extra });
        if (a.status === 200) {
          if (String(a.headers['content-type']).startsWith('text/event-stream'))
            expect(a.text).toMatch(/data: \[DONE\]\n\n$/);
          else expect(JSON.parse(a.text)).toHaveProperty('choices');
        } else expectRefusal(a);
      }),
      300,
    );
  }, 20_000);
});

describe('fuzz: afterwards', () => {
  it('the server still serves, and a valid request through the openai client succeeds', async () => {
    expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
    expect((await send(port, 'GET', '/live')).status).toBe(200);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const chat = await client.chat.completions.create({
      model: TEST_MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
    });
    expect(chat.choices[0].finish_reason).toBeTruthy();
    const text = await client.completions.create({ model: TEST_MODEL, prompt: 'hi', max_tokens: 3, echo: true });
    expect(text.choices[0].text.startsWith('hi')).toBe(true);
  });
});
