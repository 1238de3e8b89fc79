// Every kind of bad input gets OpenAI's error JSON with the right status, and the server
// keeps serving afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL, startCluster, type Cluster } from './cluster.js';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

async function post(path: string, body: string | object, headers: Record<string, string> = {}) {
  const res = await fetch(`${cluster.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as { error: { message: string; type: string; param: string | null; code: string } },
  };
}

const chat = (extra: object) => ({
  model: MODEL,
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 4,
  ...extra,
});

const cases: Array<[string, string, string | object, number, string | null]> = [
  ['malformed JSON', '/v1/chat/completions', '{"model": ', 400, null],
  ['a JSON array body', '/v1/chat/completions', '[1,2]', 400, null],
  ['missing messages', '/v1/chat/completions', { model: MODEL }, 400, 'messages'],
  ['messages of the wrong type', '/v1/chat/completions', { model: MODEL, messages: 'hi' }, 400, 'messages'],
  ['an empty messages list', '/v1/chat/completions', { model: MODEL, messages: [] }, 400, 'messages'],
  [
    'a bad role',
    '/v1/chat/completions',
    { model: MODEL, messages: [{ role: 'robot', content: 'x' }] },
    400,
    'messages[0].role',
  ],
  ['an empty prompt', '/v1/completions', { model: MODEL, prompt: '' }, 400, 'prompt'],
  ['max_tokens 0', '/v1/chat/completions', chat({ max_tokens: 0 }), 400, 'max_tokens'],
  ['max_tokens not an integer', '/v1/chat/completions', chat({ max_tokens: 'ten' }), 400, 'max_tokens'],
  ['max_tokens beyond the context', '/v1/chat/completions', chat({ max_tokens: 100_000 }), 400, 'max_tokens'],
  ['a prompt beyond the context', '/v1/completions', { model: MODEL, prompt: 'word '.repeat(5000) }, 400, 'prompt'],
  ['temperature above 2', '/v1/chat/completions', chat({ temperature: 2.5 }), 400, 'temperature'],
  ['negative temperature', '/v1/chat/completions', chat({ temperature: -1 }), 400, 'temperature'],
  ['top_p 0', '/v1/chat/completions', chat({ top_p: 0 }), 400, 'top_p'],
  ['top_p above 1', '/v1/chat/completions', chat({ top_p: 1.5 }), 400, 'top_p'],
  ['n = 2', '/v1/chat/completions', chat({ n: 2 }), 400, 'n'],
  ['an unknown model', '/v1/chat/completions', chat({ model: 'no-such-model' }), 404, 'model'],
  [
    'a body over the size limit',
    '/v1/chat/completions',
    chat({ messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] }),
    413,
    null,
  ],
];

describe('bad input', () => {
  it.each(cases)('%s gets an OpenAI error', async (_name, path, body, status, param) => {
    const res = await post(path, body);
    expect(res.status).toBe(status);
    expect(res.body.error.message.length).toBeGreaterThan(5);
    expect(typeof res.body.error.type).toBe('string');
    expect(typeof res.body.error.code).toBe('string');
    expect(res.body.error.param).toBe(param);
  });

  it('pinning a worker that does not exist gets 503 with a clear message', async () => {
    const res = await post('/v1/chat/completions', chat({}), { 'x-armature-worker-id': 'decode-9' });
    expect(res.status).toBe(503);
    expect(res.body.error.message).toMatch(/decode-9/);
  });

  it('unknown URLs get 404 and the server is still serving after all of the above', async () => {
    const missing = await fetch(`${cluster.url}/v1/nope`);
    expect(missing.status).toBe(404);
    const ok = await post('/v1/chat/completions', chat({}));
    expect(ok.status).toBe(200);
    expect(cluster.frontend.child.exitCode).toBeNull();
  });
});
