import { describe, expect, it } from 'vitest';
import { ArmatureError } from '@armature/runtime';
import { compileGraph, serviceOfKind } from '../graph.js';
import { routerSettingsFromEnv } from './router.js';

describe('routerSettingsFromEnv', () => {
  it('takes the table defaults from an empty environment', () => {
    const s = routerSettingsFromEnv({});
    expect(s).toMatchObject({ policy: 'kv', params: {}, busy: {}, queue: {}, approximate: {}, readyTimeoutMs: 3000 });
    expect(s.disagg).toEqual({ options: {}, prefillPolicy: 'kv', prefillParams: {} });
  });

  it('reads back exactly what the graph wrote for the router', () => {
    const graph = compileGraph(
      {
        model: 'm',
        services: {
          router: {
            policy: 'cache-aware',
            params: { cacheThreshold: 0.5 },
            busy: { kvUsage: 0.9 },
            queue: { capacity: 8, order: 'shortest-prompt' },
            approximate: { ttlMs: 5000 },
            disagg: { minRemotePrefillTokens: 64, prefillPolicy: 'round-robin' },
            readyTimeoutMs: 100,
          },
        },
      },
      { name: 't' },
    );
    const router = serviceOfKind(graph, 'router')!;
    const s = routerSettingsFromEnv(router.env);
    expect(s).toMatchObject({ ...router.settings, disagg: expect.anything() });
    expect(s.disagg).toEqual({
      options: { minRemotePrefillTokens: 64 },
      prefillPolicy: 'round-robin',
      prefillParams: {},
    });
  });

  it('applies the checks the graph applies, as a bad_config error', () => {
    const bad = (env: Record<string, string>) => () => routerSettingsFromEnv(env);
    expect(bad({ ARMATURE_ROUTER_POLICY: 'fastest' })).toThrow(/unknown routing policy "fastest"/);
    expect(bad({ ARMATURE_ROUTER_BUSY: '{"kvUsage":2}' })).toThrow(/kvUsage/);
    expect(bad({ ARMATURE_ROUTER_QUEUE: '{"order":"random"}' })).toThrow(/order/);
    expect(bad({ ARMATURE_ROUTER_APPROX: '{"ttlMs":0}' })).toThrow(/ttlMs/);
    expect(bad({ ARMATURE_DISAGG: '{"minRemotePrefill":1}' })).toThrow(/unknown setting/);
    expect(bad({ ARMATURE_ROUTER_BUSY: '[1]' })).toThrow(/ARMATURE_ROUTER_BUSY.*a JSON object/);
    expect(bad({ ARMATURE_ROUTER_READY_TIMEOUT_MS: '-1' })).toThrow(/ARMATURE_ROUTER_READY_TIMEOUT_MS/);
    try {
      routerSettingsFromEnv({ ARMATURE_ROUTER_POLICY: 'fastest' });
    } catch (err) {
      expect(err).toBeInstanceOf(ArmatureError);
      expect((err as ArmatureError).reason).toBe('bad_config');
    }
  });
});
