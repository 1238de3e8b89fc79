// `armature up` runs a graph as supervised processes: it serves the OpenAI API, restarts
// a crashed worker, and stops everything on SIGTERM.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
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

  it('runs infra/graphs/mocker-disagg.yaml: long prompts prefill on the prefill worker, short ones on a decode worker', async () => {
    await cli?.stop(5_000);
    const tmp = await mkdtemp(join(tmpdir(), 'armature-up-disagg-'));
    try {
      // The shipped graph, with this host's port and directory and a faster mocker.
      const graph = parse(await readFile(join(ROOT, 'infra/graphs/mocker-disagg.yaml'), 'utf8')) as {
        discoveryDir?: string;
        services: Record<string, Record<string, unknown>>;
      };
      const port = await freePort();
      graph.discoveryDir = join(tmp, 'discovery');
      graph.services.frontend!.port = port;
      for (const kind of ['prefill', 'decode']) {
        const svc = graph.services[kind]!;
        svc.engineArgs = { ...(svc.engineArgs as object), speedup: 20 };
      }
      const graphPath = join(tmp, 'disagg.yaml');
      await writeFile(graphPath, stringify(graph));
      cli = spawnNode(join(ROOT, 'tools/cli/bin/armature.js'), ['up', graphPath], {});
      await cli.waitForOutput(/is up — OpenAI API at/, 45_000);
      // `up` says it is up once the frontend is; the prefill worker may still be starting.
      await cli.waitForOutput(/prefill-0\s+\|.*worker ready.*"role":"prefill"/, 30_000);
      await cli.waitForOutput(/router\s+\|.*KV state loaded.*"worker":"prefill-0"/, 30_000);

      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
      const ask = async (n: number) => {
        const prompt = Array.from({ length: n }, (_, i) => 2000 + ((i * 7919) % 30_000));
        const { data, response } = await client.completions
          .create({ model: 'armature/mock-model', prompt, max_tokens: 8, ignore_eos: true } as never)
          .withResponse();
        return {
          tokens: (data as unknown as OpenAI.Completion).usage!.completion_tokens,
          prefill: response.headers.get('x-armature-prefill-worker'),
          decode: response.headers.get('x-armature-decode-worker'),
        };
      };
      const long = await ask(3000); // over the graph's 2048-token threshold
      expect(long).toMatchObject({ tokens: 8, prefill: 'prefill-0' });
      expect(long.decode).toMatch(/^decode-[01]$/);
      const short = await ask(500);
      expect(short).toMatchObject({ tokens: 8, prefill: null });
      cli.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }, 90_000);

  it('runs the llama.cpp graphs: default.yaml and disagg.yaml serve chat on the generated model', async () => {
    await cli?.stop(5_000);
    for (const name of ['default.yaml', 'disagg.yaml']) {
      const tmp = await mkdtemp(join(tmpdir(), 'armature-up-llama-'));
      try {
        const graph = parse(await readFile(join(ROOT, 'infra/graphs', name), 'utf8')) as {
          model: string;
          discoveryDir?: string;
          services: Record<string, Record<string, unknown>>;
        };
        const port = await freePort();
        graph.discoveryDir = join(tmp, 'discovery');
        graph.services.frontend!.port = port;
        for (const kind of ['prefill', 'decode']) {
          const svc = graph.services[kind];
          // One thread and a short context keep the test light on this machine.
          if (svc) svc.engineArgs = { ...(svc.engineArgs as object), threads: 1, contextSize: 1024 };
        }
        const graphPath = join(tmp, name);
        await writeFile(graphPath, stringify(graph));
        cli = spawnNode(join(ROOT, 'tools/cli/bin/armature.js'), ['up', graphPath], {});
        await cli.waitForOutput(/is up — OpenAI API at/, 60_000);
        const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
        // Long enough (about 400 tokens) to be prefilled remotely in disagg.yaml.
        const { data: stream, response } = await client.chat.completions
          .create({
            model: graph.model,
            messages: [{ role: 'user', content: 'Where did the cat sit? '.repeat(60) }],
            max_tokens: 8,
            temperature: 0,
            stream: true,
          })
          .withResponse();
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
        expect(text.trim().split(/\s+/).length).toBeGreaterThan(1);
        expect(response.headers.get('x-armature-prefill-worker')).toBe(name === 'disagg.yaml' ? 'prefill-0' : null);
        cli.kill('SIGTERM');
        expect(await cli.exited).toBe(0);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    }
  }, 120_000);
});
