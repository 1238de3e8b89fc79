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
          planner: { replicas: 0, sloTtftMs: 300, connector: 'kubernetes', mode: 'load' },
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
    expect(serviceOfKind(graph, 'planner')!.settings).toMatchObject({
      servedModel: 'm',
      engine: 'mocker',
      mode: 'load',
      sloTtftMs: 300,
      sloItlMs: 50,
      intervalMs: 10_000,
      connector: 'kubernetes',
      pools: { decode: {} },
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

  it("checks the planner's scaling options against planner-core and the graph's pools, naming the field", () => {
    const graph = (planner: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      compileGraph({ model: 'm', services: { planner, decode: {}, ...extra } }, { name: 't' });
    expect(() => graph({ mode: 'load', predictor: 'tea-leaves' })).toThrow(
      /services\.planner: planner\.predictor\.id: unknown predictor "tea-leaves"/,
    );
    expect(() => graph({ mode: 'load', pools: { decode: { min: 3, max: 2 } } })).toThrow(
      /services\.planner: planner\.pools\.decode\.min: min 3 is above max 2/,
    );
    expect(() => graph({ mode: 'load', pools: { prefill: {}, decode: {} } })).toThrow(
      /services\.planner\.pools\.prefill: the graph has no prefill service to scale/,
    );
    expect(() => graph({ mode: 'both' })).toThrow(/planner\.profile: mode both needs a profile/);
    expect(() => graph({ mode: 'load', intervalMs: 0 })).toThrow(/services\.planner\.intervalMs must be an integer/);
    const disagg = graph({ mode: 'load' }, { prefill: {} });
    expect(serviceOfKind(disagg, 'planner')!.settings.pools).toEqual({ prefill: {}, decode: {} });
  });

  it('refuses to launch an encoder before its service exists, naming it', async () => {
    const encoder = compileGraph({ model: 'm', services: { encoder: { replicas: 2 } } }, { name: 't' });
    expect(() => new Supervisor(encoder)).toThrow(LaunchError);
    expect(() => new Supervisor(encoder)).toThrow(/no encoder service to run yet \(services\/encoder\)/);
    await expect(launch(encoder, { tempDiscoveryDir: 'armature-deploy-t-', out: null })).rejects.toThrow(
      /set its replicas to 0/,
    );
  });
});
