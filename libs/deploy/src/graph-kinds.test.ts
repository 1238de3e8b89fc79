// The graph's newer kinds (planner, encoder) and the typed settings every service carries.
import { describe, expect, it } from 'vitest';
import { compileGraph, serviceOfKind, withSettings } from './graph.js';
import { LaunchError } from './errors.js';
import { launch } from './launch.js';
import { Supervisor } from './supervisor.js';

describe('graph: every service kind, with typed settings', () => {
  it('accepts a planner and an encoder with typed settings and replicas', () => {
    const graph = compileGraph(
      {
        model: 'm',
        services: {
          planner: { replicas: 0, sloTtftMs: 300, connector: 'kubernetes' },
          encoder: { replicas: 0, engineArgs: { speedup: 2 } },
          decode: {},
        },
      },
      { name: 't' },
    );
    expect(graph.services.map((s) => [s.kind, s.replicas])).toEqual([
      ['planner', 0],
      ['encoder', 0],
      ['decode', 1],
    ]);
    expect(serviceOfKind(graph, 'planner')!.settings).toEqual({
      sloTtftMs: 300,
      sloItlMs: 50,
      intervalMs: 60_000,
      connector: 'kubernetes',
    });
    expect(serviceOfKind(graph, 'planner')!.env).toMatchObject({ ARMATURE_PLANNER_CONNECTOR: 'kubernetes' });
    expect(serviceOfKind(graph, 'encoder')!.settings).toMatchObject({ servedModel: 'm', engine: 'mocker' });
    expect(() => compileGraph({ model: 'm', services: { planner: { connector: 'swarm' } } }, { name: 't' })).toThrow(
      /services\.planner\.connector: unknown connector "swarm"/,
    );
  });

  it('fills every default, writes the env from the settings, then the graph env over them', () => {
    const graph = compileGraph(
      { model: 'm', services: { frontend: { port: 9001, env: { ARMATURE_LOG_LEVEL: 'debug' } }, decode: {} } },
      { name: 't' },
    );
    const frontend = serviceOfKind(graph, 'frontend')!;
    expect(frontend.settings).toEqual({
      port: 9001,
      maxBodyBytes: 4 * 1024 * 1024,
      requestTimeoutMs: 600_000,
      prefillTimeoutMs: 60_000,
      routerWaitMs: 10_000,
      migrationLimit: 3,
      migrationMaxSeqLen: 0,
      stallTimeoutMs: 10_000,
      acceptTimeoutMs: 3_000,
      maxInflight: 512,
      admissionQueue: 1024,
      admissionTimeoutMs: 10_000,
      maxInflightPerClient: 0,
      bodyTimeoutMs: 30_000,
      slowClientTimeoutMs: 30_000,
    });
    expect(frontend.env).toMatchObject({ ARMATURE_HTTP_PORT: '9001', ARMATURE_LOG_LEVEL: 'debug' });
    expect(graph.httpPort).toBe(9001);
    expect(serviceOfKind(graph, 'decode')!.env).toEqual({
      ARMATURE_MODEL: 'm',
      ARMATURE_ENGINE: 'mocker',
      ARMATURE_ENGINE_ARGS: '{}',
    });
    const moved = withSettings(graph, 'frontend', { port: 9002 });
    expect([moved.httpPort, serviceOfKind(moved, 'frontend')!.env.ARMATURE_HTTP_PORT]).toEqual([9002, '9002']);
    expect(serviceOfKind(moved, 'frontend')!.env.ARMATURE_LOG_LEVEL).toBe('debug');
    expect(graph.httpPort).toBe(9001);
    expect(() => compileGraph({ model: 'm', services: { frontend: { maxBodyBytes: 10 } } }, { name: 't' })).toThrow(
      /services\.frontend\.maxBodyBytes must be an integer in \[1024, inf\], got 10/,
    );
  });

  it('refuses to launch a planner or an encoder before their services exist, naming them', async () => {
    const graph = compileGraph({ model: 'm', services: { planner: {}, decode: { replicas: 0 } } }, { name: 't' });
    expect(() => new Supervisor(graph)).toThrow(LaunchError);
    expect(() => new Supervisor(graph)).toThrow(/no planner service to run yet \(services\/planner\)/);
    await expect(launch(graph, { tempDiscoveryDir: 'armature-deploy-t-', out: null })).rejects.toThrow(
      /set its replicas to 0/,
    );
    const encoder = compileGraph({ model: 'm', services: { encoder: { replicas: 2 } } }, { name: 't' });
    expect(() => new Supervisor(encoder)).toThrow(/no encoder service to run yet \(services\/encoder\)/);
  });
});
