// stop() lets every replica drain: each gets its drain timeout (ARMATURE_DRAIN_TIMEOUT_MS,
// default 30 s) plus a margin before SIGKILL, and kinds stop frontend first, workers last.
// Stand-in scripts print each kind's ready line and take their time to exit on SIGTERM, so
// the test sees who was signalled when and who was killed.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGraph } from './graph.js';
import { launch } from './launch.js';
import { DRAIN_MARGIN_MS, Supervisor } from './supervisor.js';

const STAND_IN = `
import { appendFileSync } from 'node:fs';
const name = process.env.ARMATURE_INSTANCE_ID;
const note = (what) => appendFileSync(process.env.STAND_IN_LOG, name + ' ' + what + '\\n');
process.on('SIGTERM', () => {
  note('term');
  setTimeout(() => { note('exit'); process.exit(0); }, Number(process.env.STAND_IN_DRAIN_MS));
});
console.log(process.env.STAND_IN_READY);
setInterval(() => {}, 1000);
`;

let dir: string;
let script: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'armature-stop-'));
  script = join(dir, 'stand-in.mjs');
  await writeFile(script, STAND_IN);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const graph = compileGraph(
  {
    model: 'armature/stop-model',
    services: { frontend: { replicas: 1 }, router: { replicas: 1 }, decode: { replicas: 2 } },
  },
  { name: 'stop' },
);

describe('the supervisor stopping', () => {
  it('gives each replica its drain timeout plus a margin, unless graceMs says otherwise', () => {
    const defaults = new Supervisor(graph, { out: null });
    expect(defaults.list().map((r) => [r.name, r.graceMs, r.state])).toEqual([
      ['frontend', 30_000 + DRAIN_MARGIN_MS, 'pending'],
      ['router', 30_000 + DRAIN_MARGIN_MS, 'pending'],
      ['decode-0', 30_000 + DRAIN_MARGIN_MS, 'pending'],
      ['decode-1', 30_000 + DRAIN_MARGIN_MS, 'pending'],
    ]);
    const drain = new Supervisor(graph, {
      out: null,
      env: { ARMATURE_DRAIN_TIMEOUT_MS: '60000' },
      envByKind: { decode: { ARMATURE_DRAIN_TIMEOUT_MS: '120000' } },
    });
    expect(drain.replica('frontend')!.graceMs).toBe(60_000 + DRAIN_MARGIN_MS);
    expect(drain.replica('decode-1')!.graceMs).toBe(120_000 + DRAIN_MARGIN_MS);
    const explicit = new Supervisor(graph, { out: null, graceMs: 2_000 });
    expect(explicit.list().map((r) => r.graceMs)).toEqual([2_000, 2_000, 2_000, 2_000]);
  });

  it('stops the frontend first and workers last, and waits out a worker draining for longer than 10 s', async () => {
    const log = join(dir, 'stop.log');
    const running = await launch(graph, {
      tempDiscoveryDir: 'armature-stop-disc-',
      freePort: true,
      out: null,
      readiness: 'ready',
      entries: { frontend: script, router: script, decode: script },
      env: { STAND_IN_LOG: log, STAND_IN_DRAIN_MS: '200' },
      envByKind: {
        frontend: { STAND_IN_READY: 'frontend listening on http://127.0.0.1:1' },
        router: { STAND_IN_READY: 'router ready' },
        decode: { STAND_IN_READY: 'worker ready', STAND_IN_DRAIN_MS: '10500' },
      },
    });
    const decodes = running.list('decode').map((r) => r.process!);
    const started = Date.now();
    await running.stop();
    expect(Date.now() - started).toBeGreaterThan(10_500);
    expect(await Promise.all(decodes.map((p) => p.exited))).toEqual([0, 0]); // drained, not SIGKILLed
    const events = (await readFile(log, 'utf8')).trim().split('\n');
    const at = (event: string): number => events.indexOf(event);
    expect(at('frontend exit')).toBeLessThan(at('router term'));
    expect(at('router exit')).toBeLessThan(at('decode-0 term'));
    expect(at('router exit')).toBeLessThan(at('decode-1 term'));
    expect(events.filter((e) => e.endsWith('exit'))).toHaveLength(4);
    expect(running.list().map((r) => r.state)).toEqual(['exited', 'exited', 'exited', 'exited']);
  }, 30_000);
});
