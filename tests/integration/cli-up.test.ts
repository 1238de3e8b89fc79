// `armature up` runs a graph as supervised processes: it serves the OpenAI API, restarts
// a crashed worker, and stops everything on SIGTERM.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { FileDiscovery } from '@armature/runtime';
import { freePort, spawnNode, waitFor, type ServiceProcess } from '@armature/testing';
import { ROOT } from './cluster.js';

let cli: ServiceProcess | undefined;
let dir: string | undefined;

afterAll(async () => {
  await cli?.stop(5_000);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('armature up', () => {
  it('runs frontend, router and two workers; restarts a crashed worker; stops all on SIGTERM', async () => {
    dir = await mkdtemp(join(tmpdir(), 'armature-up-'));
    const port = await freePort();
    const graphPath = join(dir, 'graph.yaml');
    await writeFile(
      graphPath,
      [
        'name: it',
        'model: armature/up-model',
        `discoveryDir: ${join(dir, 'discovery')}`,
        'services:',
        '  frontend:',
        `    port: ${port}`,
        '  router:',
        '    policy: round-robin',
        '  decode:',
        '    replicas: 2',
        '    engineArgs: { speedup: 50 }',
        '    env: { ARMATURE_DISCOVERY_LEASE_MS: "1500" }',
        '',
      ].join('\n'),
    );
    cli = spawnNode(join(ROOT, 'tools/cli/bin/armature.js'), ['up', graphPath], {});
    await cli.waitForOutput(/is up — OpenAI API at http:\/\/127\.0\.0\.1:\d+\/v1/, 45_000);

    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { response } = await client.chat.completions
        .create({ model: 'armature/up-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
        .withResponse();
      seen.add(response.headers.get('x-armature-decode-worker')!);
    }
    expect([...seen].sort()).toEqual(['decode-0', 'decode-1']);
    expect(cli.output()).toMatch(/decode-0\s+\|.*worker ready/);

    const discovery = new FileDiscovery({ dir: join(dir, 'discovery'), pollMs: 50 });
    const pidOf = async (id: string): Promise<number | undefined> => {
      const r = (await discovery.list()).find((x) => x.instanceId === id);
      return r?.labels?.pid ? Number(r.labels.pid) : undefined;
    };
    const pids = await Promise.all(['frontend', 'router', 'decode-0', 'decode-1'].map(pidOf));
    expect(pids.every((p) => p !== undefined)).toBe(true);

    const oldPid = (await pidOf('decode-0'))!;
    process.kill(oldPid, 'SIGKILL');
    await cli.waitForOutput(/decode-0\s+\|.*exited \(SIGKILL\); restarting/, 10_000);
    await waitFor(
      async () => {
        const p = await pidOf('decode-0');
        return p !== undefined && p !== oldPid;
      },
      15_000,
      100,
      'decode-0 to come back with a new pid',
    );
    const everyone = [...pids, await pidOf('decode-0')] as number[];
    await discovery.close();

    cli.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    for (const pid of everyone) expect(alive(pid)).toBe(false);
  }, 90_000);
});
