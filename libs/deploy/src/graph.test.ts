import { describe, expect, it } from 'vitest';
import { compileGraph, GraphError, loadGraph } from './graph.js';

const base = (router: Record<string, unknown>) => ({
  model: 'm',
  services: { frontend: {}, router, decode: { replicas: 2 } },
});

describe('graph: router settings', () => {
  it('compiles the default graph with the kv policy', async () => {
    const graph = await loadGraph(new URL('../../../infra/graphs/default.yaml', import.meta.url).pathname);
    const router = graph.services.find((s) => s.kind === 'router')!;
    expect(router.env.ARMATURE_ROUTER_POLICY).toBe('kv');
    expect(JSON.parse(router.env.ARMATURE_ROUTER_PARAMS!)).toMatchObject({ prefillLoadScale: 1 });
  });

  it('passes policy, params, busy thresholds, queue and approximate mode to the router', () => {
    const graph = compileGraph(
      base({
        policy: 'cache-aware',
        params: { cacheThreshold: 0.5 },
        busy: { kvUsage: 0.9, prefillTokens: 10000 },
        queue: { capacity: 8, order: 'shortest-prompt', timeoutMs: 1000 },
        approximate: { ttlMs: 5000 },
      }),
      { name: 't' },
    );
    const env = graph.services.find((s) => s.kind === 'router')!.env;
    expect(env.ARMATURE_ROUTER_POLICY).toBe('cache-aware');
    expect(JSON.parse(env.ARMATURE_ROUTER_BUSY!)).toEqual({ kvUsage: 0.9, prefillTokens: 10000 });
    expect(JSON.parse(env.ARMATURE_ROUTER_QUEUE!)).toEqual({ capacity: 8, order: 'shortest-prompt', timeoutMs: 1000 });
    expect(JSON.parse(env.ARMATURE_ROUTER_APPROX!)).toEqual({ ttlMs: 5000 });
  });

  it('rejects unknown policies and bad settings when the graph is read, not when the router starts', () => {
    const bad = (router: Record<string, unknown>) => () => compileGraph(base(router), { name: 't' });
    expect(bad({ policy: 'fastest' })).toThrow(GraphError);
    expect(bad({ policy: 'fastest' })).toThrow(/unknown routing policy "fastest"/);
    expect(bad({ policy: 'kv', params: { temperature: -1 } })).toThrow(/temperature/);
    expect(bad({ busy: { kvUsage: 2 } })).toThrow(/kvUsage/);
    expect(bad({ queue: { order: 'random' } })).toThrow(/order/);
    expect(bad({ approximate: { ttlMs: 0 } })).toThrow(/ttlMs/);
  });
});

describe('graph: disaggregated serving', () => {
  it('compiles infra/graphs/mocker-disagg.yaml: one prefill and two decode workers, thresholds for the router', async () => {
    const graph = await loadGraph(new URL('../../../infra/graphs/mocker-disagg.yaml', import.meta.url).pathname);
    const kinds = graph.services.map((s) => [s.kind, s.replicas]);
    expect(kinds).toEqual([
      ['frontend', 1],
      ['router', 1],
      ['prefill', 1],
      ['decode', 2],
    ]);
    const router = graph.services.find((s) => s.kind === 'router')!;
    expect(JSON.parse(router.env.ARMATURE_DISAGG!)).toEqual({
      prefillPolicy: 'kv',
      minRemotePrefillTokens: 2048,
      maxPrefillQueueTokens: 131072,
    });
    const prefill = graph.services.find((s) => s.kind === 'prefill')!;
    const decode = graph.services.find((s) => s.kind === 'decode')!;
    // Both pools must agree on the KV layout, or no block could move between them.
    expect(prefill.env.ARMATURE_ENGINE_ARGS).toBe(decode.env.ARMATURE_ENGINE_ARGS);
    expect(JSON.parse(prefill.env.ARMATURE_ENGINE_ARGS!).kvLayout).toEqual({
      numLayers: 2,
      kvHeads: 2,
      headDim: 64,
      dtypeBytes: 2,
    });
  });

  it('compiles the llama.cpp graphs: default (2 decode workers) and disagg (1 prefill + 2 decode)', async () => {
    const load = (name: string) => loadGraph(new URL(`../../../infra/graphs/${name}`, import.meta.url).pathname);
    const def = await load('default.yaml');
    expect(def.services.find((s) => s.kind === 'decode')).toMatchObject({
      replicas: 2,
      env: { ARMATURE_ENGINE: 'llamacpp' },
    });
    const disagg = await load('disagg.yaml');
    const prefill = disagg.services.find((s) => s.kind === 'prefill')!;
    const decode = disagg.services.find((s) => s.kind === 'decode')!;
    expect([prefill.replicas, decode.replicas]).toEqual([1, 2]);
    expect(prefill.env.ARMATURE_ENGINE).toBe('llamacpp');
    expect(prefill.env.ARMATURE_ENGINE_ARGS).toBe(decode.env.ARMATURE_ENGINE_ARGS);
  });

  it('passes a model file to llama.cpp workers only', () => {
    const graph = compileGraph(
      { model: 'm', services: { decode: { engine: 'llamacpp', model: 'models/x.gguf' } } },
      { name: 't' },
    );
    expect(graph.services[0]!.env.ARMATURE_MODEL_PATH).toBe(`${process.cwd()}/models/x.gguf`);
    expect(() => compileGraph({ model: 'm', services: { decode: { model: 'x.gguf' } } }, { name: 't' })).toThrow(
      /only the llamacpp engine loads a model file/,
    );
    expect(() => compileGraph({ model: 'm', services: { decode: { engine: 'vllm' } } }, { name: 't' })).toThrow(
      /unknown engine "vllm"/,
    );
  });

  it('rejects bad disaggregation settings when the graph is read', () => {
    const bad = (disagg: Record<string, unknown>) => () => compileGraph(base({ disagg }), { name: 't' });
    expect(bad({ minRemotePrefillTokens: -5 })).toThrow(/minRemotePrefillTokens/);
    expect(bad({ maxPrefillQueueTokens: 0 })).toThrow(/maxPrefillQueueTokens/);
    expect(bad({ prefillPolicy: 'fastest' })).toThrow(/unknown routing policy/);
    expect(bad({ minRemotePrefill: 10 })).toThrow(/disagg.minRemotePrefill: unknown setting/);
  });
});
