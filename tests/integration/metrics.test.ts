// Every live service's /metrics against the catalog: no family the catalog lacks, and the
// process metrics (build info, memory, CPU, event-loop lag) on each, labelled with its service.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS } from '@armature/metrics';
import { startCluster, type Cluster } from './cluster.js';
import { promtool } from './promtool.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ workers: 1, prefillWorkers: 1 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function expositions(): Promise<Array<[string, string]>> {
  const pages: Array<[string, string]> = [['frontend', await (await fetch(`${cluster.url}/metrics`)).text()]];
  for (const role of ['router', 'decode', 'prefill'] as const) {
    for (const r of await cluster.discovery.list({ role })) {
      pages.push([role, await (await fetch(`http://${r.metricsAddress}/metrics`)).text()]);
    }
  }
  return pages;
}

describe('metrics of every live service', () => {
  it('exports only catalog families, and its process metrics under its own service name', async () => {
    const pages = await expositions();
    expect(pages.map(([role]) => role)).toEqual(['frontend', 'router', 'decode', 'prefill']);
    for (const [role, text] of pages) {
      const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
      for (const [name, type] of families) {
        expect(Object.keys(METRICS), `${role} exports ${name}`).toContain(name);
        expect(METRICS[name as keyof typeof METRICS].type, `${role}: ${name}`).toBe(type);
      }
      expect(text).toMatch(new RegExp(`^armature_build_info\\{service="${role}",version="[^"]+",node="v\\d+`, 'm'));
      for (const name of [
        'armature_process_resident_memory_bytes',
        'armature_process_heap_used_bytes',
        'armature_process_cpu_seconds_total',
        'armature_process_event_loop_lag_seconds{stat="max"}',
      ])
        expect(text, `${role}: ${name}`).toMatch(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} [0-9.e+-]+$`, 'm'));
    }
  });

  // promtool comes with Debian's `prometheus` package, which .ci/run installs.
  it.skipIf(!promtool)("passes promtool check metrics on every service's exposition", async () => {
    for (const [role, text] of await expositions()) {
      const out = execFileSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(out.trim(), role).toBe('');
    }
  });
});
