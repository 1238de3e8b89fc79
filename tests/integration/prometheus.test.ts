// A real Prometheus beside a stack (@armature/deploy's startPrometheus, `armature up
// --prometheus`): it scrapes what discovery knows and follows records that come and go;
// a missing binary or a taken address is a clear start-up error.
import { createServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchError, startPrometheus, type PrometheusProcess } from '@armature/deploy';
import { MetricsRegistry, serveMetrics } from '@armature/metrics';
import { MemoryDiscovery } from '@armature/runtime';
import { freePort, spawnNode, waitFor, type ServiceProcess } from '@armature/testing';
import { ROOT } from './cluster.js';
import { promtool } from './promtool.js';

const CONFIG_DIR = join(ROOT, 'infra/prometheus');
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface ActiveTarget {
  labels: Record<string, string>;
  health: string;
}
async function activeTargets(p: { url: string }): Promise<ActiveTarget[]> {
  const body = (await (await fetch(`${p.url}/api/v1/targets?state=active`)).json()) as {
    data: { activeTargets: ActiveTarget[] };
  };
  return body.data.activeTargets;
}
async function query(
  url: string,
  expr: string,
): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; data: { result: [] } };
  expect(body.status, expr).toBe('success');
  return body.data.result;
}

// Debian's `prometheus` package (which .ci/run installs) brings both binaries.
describe.skipIf(!promtool)('Prometheus beside a stack', () => {
  it('scrapes every discovery record with a metrics address, and drops one that leaves', async () => {
    const discovery = new MemoryDiscovery();
    const metrics = new MetricsRegistry();
    metrics.get('armature_router_queue_depth').set(3);
    const { server, port } = await serveMetrics(metrics, '127.0.0.1', 0);
    cleanups.push(() => new Promise((r) => server.close(r)));
    const prometheus = await startPrometheus({
      discovery,
      configDir: CONFIG_DIR,
      workDir: await mkdtemp(join(tmpdir(), 'armature-prom-test-')),
      address: `127.0.0.1:${await freePort()}`,
      scrapeIntervalS: 1,
    });
    cleanups.push(() => prometheus.stop());

    const reg = await discovery.register({
      instanceId: 'router-7',
      role: 'router',
      metricsAddress: `127.0.0.1:${port}`,
    });
    await discovery.register({ instanceId: 'no-metrics', role: 'decode' }); // nothing to scrape
    expect(await prometheus.targets()).toEqual([
      { targets: [`127.0.0.1:${port}`], labels: { role: 'router', instance_id: 'router-7' } },
    ]);
    await waitFor(
      async () =>
        (await activeTargets(prometheus)).some((t) => t.labels.instance_id === 'router-7' && t.health === 'up'),
      20_000,
      200,
      'router-7 scraped',
    );
    await waitFor(
      async () => (await query(prometheus.url, 'armature_router_queue_depth{role="router"}'))[0]?.value[1] === '3',
      10_000,
      200,
      'the gauge in Prometheus',
    );

    await reg.unregister();
    await waitFor(
      async () => !(await activeTargets(prometheus)).some((t) => t.labels.instance_id === 'router-7'),
      20_000,
      200,
      'router-7 dropped from the targets',
    );
    expect(await prometheus.targets()).toEqual([]);
  }, 60_000);

  it('refuses a missing binary, naming the package, and a taken address', async () => {
    const discovery = new MemoryDiscovery();
    const workDir = await mkdtemp(join(tmpdir(), 'armature-prom-bad-'));
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));
    await expect(
      startPrometheus({ discovery, configDir: CONFIG_DIR, workDir, bin: join(workDir, 'nope') }),
    ).rejects.toThrow(/PROMETHEUS_BIN=.*nope is not an executable/);
    const saved = process.env.PATH;
    process.env.PATH = workDir;
    try {
      await expect(startPrometheus({ discovery, configDir: CONFIG_DIR, workDir })).rejects.toThrow(
        /no prometheus binary on PATH: install Debian's `prometheus` package/,
      );
    } finally {
      process.env.PATH = saved;
    }

    const taken = createServer((socket) => socket.destroy());
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => taken.close(r)));
    const address = `127.0.0.1:${(taken.address() as { port: number }).port}`;
    const err = await startPrometheus({ discovery, configDir: CONFIG_DIR, workDir, address }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LaunchError);
    expect(String(err)).toMatch(new RegExp(`prometheus exited at start \\(address ${address}\\)`));
  }, 30_000);

  it('armature up --prometheus scrapes frontend, router and workers, and stops with the stack', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'armature-up-prom-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const port = await freePort();
    const promAddress = `127.0.0.1:${await freePort()}`;
    const graphPath = join(dir, 'graph.yaml');
    await writeFile(
      graphPath,
      [
        'name: it',
        'model: armature/prom-model',
        `discoveryDir: ${join(dir, 'discovery')}`,
        'services:',
        '  frontend:',
        `    port: ${port}`,
        '  router:',
        '    policy: round-robin',
        '  decode:',
        '    replicas: 2',
        '    engineArgs: { speedup: 50 }',
        '',
      ].join('\n'),
    );
    const cli: ServiceProcess = spawnNode(
      join(ROOT, 'tools/cli/bin/armature.js'),
      ['up', graphPath, '--prometheus', '--prometheus-address', promAddress],
      {},
    );
    cleanups.push(() => cli.stop(5_000));
    await cli.waitForOutput(new RegExp(`Prometheus at http://${promAddress.replace(/\./g, '\\.')}`), 45_000);
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
    await client.chat.completions.create({
      model: 'armature/prom-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    const prometheus: Pick<PrometheusProcess, 'url'> = { url: `http://${promAddress}` };
    await waitFor(
      async () => {
        const up = await query(prometheus.url, 'up{job="armature"} == 1');
        return up.length === 4;
      },
      30_000,
      500,
      'frontend, router and both workers up in Prometheus',
    );
    const roles = (await query(prometheus.url, 'up{job="armature"}')).map((s) => s.metric.instance_id).sort();
    expect(roles).toEqual(['decode-0', 'decode-1', 'frontend', 'router']);
    await waitFor(
      async () => (await query(prometheus.url, 'sum(armature_frontend_requests_total) > 0')).length === 1,
      20_000,
      500,
      'the request counted in Prometheus',
    );
    cli.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    await expect(fetch(`${prometheus.url}/-/ready`)).rejects.toThrow();
  }, 120_000);
});
