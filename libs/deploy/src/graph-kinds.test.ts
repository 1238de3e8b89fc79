// The graph's newer kinds (planner, encoder) and the typed settings every service carries.
import { describe, expect, it } from 'vitest';
import { compileGraph, serviceOfKind, withSettings } from './graph.js';
import { LaunchError } from './errors.js';
import { launch } from './launch.js';
import { Supervisor } from './supervisor.js';
import { defaultSettings } from './settings/setting.js';
import { FRONTEND_SETTINGS } from './settings/tables.js';

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
    expect(frontend.settings).toEqual({ ...defaultSettings(FRONTEND_SETTINGS), port: 9001 });
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

  it('gives frontend replica i the port + i, and refuses replicas that need port 0 or past 65535', () => {
    const graph = compileGraph({ model: 'm', services: { frontend: { port: 9100, replicas: 2 } } }, { name: 't' });
    const sup = new Supervisor(graph);
    expect(sup.urls).toEqual(['http://127.0.0.1:9100', 'http://127.0.0.1:9101']);
    expect(() => compileGraph({ model: 'm', services: { frontend: { port: 0, replicas: 2 } } }, { name: 't' })).toThrow(
      /2 frontends need ports 0\.\.1/,
    );
    expect(() =>
      compileGraph({ model: 'm', services: { frontend: { port: 65535, replicas: 2 } } }, { name: 't' }),
    ).toThrow(/replicas/);
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
