// The scale port on real child processes: a mocker decode pool scaled 1 -> 3 -> 1 through
// the supervisor, checked against the file discovery records the workers write and the
// process ids behind them. Needs the services built (npm run build), like tests/integration.
import { afterAll, describe, expect, it } from 'vitest';
import { FileDiscovery } from '@armature/runtime';
import { LaunchError } from './errors.js';
import { compileGraph } from './graph.js';
import { launch } from './launch.js';
import type { Supervisor } from './supervisor.js';

let running: Supervisor | undefined;
let discovery: FileDiscovery | undefined;

afterAll(async () => {
  await discovery?.close();
  await running?.stop(3_000);
});

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the supervisor as a scale port', () => {
  it('scales a mocker decode pool 1 -> 3 -> 1: new numbered replicas register, the highest-numbered leave', async () => {
    const graph = compileGraph(
      { model: 'armature/scale-model', services: { decode: { replicas: 1, engineArgs: { speedup: 50 } } } },
      { name: 'scale' },
    );
    running = await launch(graph, {
      tempDiscoveryDir: 'armature-scale-',
      out: null,
      readiness: 'ready',
      graceMs: 5_000,
      env: { ARMATURE_DISCOVERY_LEASE_MS: '2000', ARMATURE_TRANSFER: 'off', ARMATURE_LOG_LEVEL: 'info' },
    });
    discovery = new FileDiscovery({ dir: running.discoveryDir, pollMs: 50 });
    const records = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await discovery!.list({ role: 'decode' })).map((r) => [r.instanceId, Number(r.labels?.pid)]));
    await until(async () => Object.keys(await records()).length === 1, 'decode-0 in discovery');
    const first = running.pids()['decode-0']!;
    expect(await records()).toEqual({ 'decode-0': first });

    await running.scale('decode', 3);
    expect(running.replicas('decode')).toBe(3);
    expect(running.list('decode').map((r) => r.name)).toEqual(['decode-0', 'decode-1', 'decode-2']);
    await until(async () => Object.keys(await records()).length === 3, 'three decode workers in discovery');
    const three = running.pids();
    expect(await records()).toEqual(three);
    expect(three['decode-0']).toBe(first);

    await running.scale('decode', 1);
    expect(running.replicas('decode')).toBe(1);
    // Stopped with SIGTERM: each unregistered itself on the way out, and stays down.
    expect(alive(three['decode-1']!) || alive(three['decode-2']!)).toBe(false);
    await until(async () => Object.keys(await records()).length === 1, 'the scaled-down workers leaving discovery');
    await new Promise((r) => setTimeout(r, 700)); // past the first restart backoff (500 ms)
    expect(running.pids()).toEqual({ 'decode-0': first });
    expect(await records()).toEqual({ 'decode-0': first });
  }, 60_000);

  it('refuses what it cannot run: a kind with no service yet, a kind the graph lacks, a bad count', async () => {
    await expect(running!.scale('encoder', 1)).rejects.toThrow(/no encoder service to run yet/);
    await expect(running!.scale('frontend', 1)).rejects.toThrow(LaunchError);
    await expect(running!.scale('decode', -1)).rejects.toThrow(/an integer in \[0, 256\]/);
    expect(running!.replicas('decode')).toBe(1);
  });
});
