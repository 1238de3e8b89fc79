// A replica that stops answering is killed and restarted: a real mocker decode worker and
// a real frontend, each SIGSTOPped, under a probe tightened for the test; and the same
// replicas left alone while they answer. Needs the services built (npm run build).
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { compileGraph } from './graph.js';
import { launch, livenessFromEnv } from './launch.js';
import { compileLiveness, probeHost } from './liveness.js';
import type { Supervisor } from './supervisor.js';

let running: Supervisor | undefined;
const stopped: number[] = [];
afterAll(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await running?.stop(3_000);
});

async function until(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('liveness options', () => {
  it('has long defaults, and armature up reads them from the environment (0 failures: off)', () => {
    expect(compileLiveness()).toEqual({ intervalMs: 5_000, timeoutMs: 2_000, failures: 6 });
    expect(() => compileLiveness({ failures: 0 })).toThrow(RangeError);
    expect(livenessFromEnv({})).toEqual({ intervalMs: 5_000, timeoutMs: 2_000, failures: 6 });
    expect(livenessFromEnv({ ARMATURE_LIVENESS_FAILURES: '0' })).toBe(false);
    expect(livenessFromEnv({ ARMATURE_LIVENESS_INTERVAL_MS: '100' })).toMatchObject({ intervalMs: 100 });
    expect(() => livenessFromEnv({ ARMATURE_LIVENESS_TIMEOUT_MS: 'soon' })).toThrow(/ARMATURE_LIVENESS_TIMEOUT_MS/);
    expect(probeHost('0.0.0.0')).toBe('127.0.0.1');
    expect(probeHost('::')).toBe('[::1]');
  });
});

describe('the supervisor with liveness probes', () => {
  it('restarts a worker and a frontend that stop answering, and only those', async () => {
    const graph = compileGraph(
      { model: 'armature/live-model', services: { frontend: { replicas: 1 }, decode: { replicas: 1 } } },
      { name: 'liveness' },
    );
    let log = '';
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        log += chunk.toString();
        done();
      },
    });
    running = await launch(graph, {
      tempDiscoveryDir: 'armature-live-',
      freePort: true,
      out,
      readiness: 'ready',
      maxBackoffMs: 500,
      graceMs: 3_000,
      liveness: { intervalMs: 100, timeoutMs: 200, failures: 3 },
      env: { ARMATURE_TRANSFER: 'off', ARMATURE_DISCOVERY_LEASE_MS: '2000' },
    });
    const first = running.pids();
    // Answering: several probes pass and nothing is restarted.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(running.pids()).toEqual(first);
    expect(log).not.toMatch(/did not answer/);

    for (const name of ['decode-0', 'frontend']) {
      const pid = first[name]!;
      process.kill(pid, 'SIGSTOP');
      stopped.push(pid);
      await until(
        () => running!.replica(name)?.state === 'ready' && running!.pids()[name] !== pid,
        `${name} to be replaced`,
        15_000,
      );
      const path = name === 'frontend' ? '/live' : '/metrics';
      expect(log).toMatch(new RegExp(`${name} did not answer http://127\\.0\\.0\\.1:\\d+${path} 3 times in a row`));
      expect(() => process.kill(pid, 0)).toThrow(); // the stopped one was killed
    }
    // The new frontend answers on the same port.
    expect((await fetch(`${running.url}/live`)).status).toBe(200);
  }, 45_000);
});
