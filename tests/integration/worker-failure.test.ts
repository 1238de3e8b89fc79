// A worker that dies: it leaves discovery within its lease, requests go to the survivor
// (also in the window before the lease runs out), and nothing hangs.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@armature/testing';
import { MODEL, startCluster, type Cluster } from './cluster.js';

const LEASE_MS = 1_500;
let cluster: Cluster;
let client: OpenAI;

beforeAll(async () => {
  cluster = await startCluster({ workers: 2, leaseMs: LEASE_MS, policy: 'round-robin' });
  client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

const ask = (headers: Record<string, string> = {}) =>
  client.chat.completions
    .create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 3 }, { headers })
    .withResponse();

describe('a killed worker', () => {
  it('is routed around at once, leaves discovery within its lease, and pinning it gets 503', async () => {
    const victim = cluster.workers.get('decode-0')!;
    victim.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();

    // Before the lease runs out the router may still pick it; the frontend re-routes.
    for (let i = 0; i < 4; i++) {
      const { response } = await ask();
      expect(response.headers.get('x-armature-decode-worker')).toBe('decode-1');
    }

    // Pinned to the dead worker: a clear 503, not a hang.
    const pinned = await fetch(`${cluster.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-armature-worker-id': 'decode-0' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }),
    });
    expect(pinned.status).toBe(503);
    expect(((await pinned.json()) as { error: { message: string } }).error.message).toMatch(/decode-0/);

    await waitFor(
      async () => !(await cluster.discovery.list({ role: 'decode' })).some((r) => r.instanceId === 'decode-0'),
      LEASE_MS + 2_000,
    );
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS + 1_000);

    for (let i = 0; i < 4; i++) {
      const { response } = await ask();
      expect(response.headers.get('x-armature-decode-worker')).toBe('decode-1');
    }
  });

  it('with every worker gone, requests fail fast with 503 or 404, never hang', async () => {
    const last = cluster.workers.get('decode-1')!;
    last.kill('SIGKILL');
    await last.exited;
    const started = Date.now();
    const res = await fetch(`${cluster.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }),
    });
    expect([503, 404]).toContain(res.status);
    expect(Date.now() - started).toBeLessThan(5_000);
    await waitFor(async () => (await fetch(`${cluster.url}/health`)).status === 503, LEASE_MS + 2_000);
  });
});
