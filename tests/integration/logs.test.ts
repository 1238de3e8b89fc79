// One request id joins the logs of every process it crossed: the client's x-request-id
// (or one the frontend makes) is echoed in the response and carried over gRPC, and with
// ARMATURE_LOG_FORMAT=json each line is one JSON object naming its service and instance.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@armature/testing';
import { MODEL, startCluster, type Cluster } from './cluster.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({
    workers: 1,
    extraEnv: { ARMATURE_LOG_FORMAT: 'json', ARMATURE_LOG_LEVEL: 'debug' },
  });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

const records = (output: string): Array<Record<string, unknown>> =>
  output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

describe('request ids in the logs', () => {
  it("carries the client's x-request-id into the frontend's, the router's and the worker's JSON logs", async () => {
    const client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const id = 'trace-me-42';
    const { response } = await client.chat.completions
      .create(
        { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 },
        { headers: { 'x-request-id': id } },
      )
      .withResponse();
    expect(response.headers.get('x-request-id')).toBe(id);
    const processes = {
      frontend: cluster.frontend,
      router: cluster.router,
      decode: cluster.workers.get('decode-0')!,
    };
    for (const [service, proc] of Object.entries(processes)) {
      await waitFor(
        () => records(proc.output()).some((r) => r.request_id === id),
        5_000,
        20,
        `${service} logging ${id}`,
      );
      const line = records(proc.output()).find((r) => r.request_id === id)!;
      expect(line).toMatchObject({
        service,
        level: 'debug',
        instance: expect.stringMatching(/^(frontend|router|decode)-0$/),
      });
      expect(typeof line.time).toBe('string');
    }
  });

  it('makes one when the client sends none or a malformed one', async () => {
    for (const headers of [{}, { 'x-request-id': 'bad id with spaces' }] as Array<Record<string, string>>) {
      const res = await fetch(`${cluster.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 1 }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
