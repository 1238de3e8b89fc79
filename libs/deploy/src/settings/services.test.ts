import { describe, expect, it } from 'vitest';
import { compileGraph, serviceOfKind } from '../graph.js';
import { frontendSettingsFromEnv, processSettingsFromEnv, workerSettingsFromEnv } from './services.js';

describe('service settings from the environment', () => {
  it('takes the table defaults from an empty environment', () => {
    expect(frontendSettingsFromEnv({})).toEqual({
      port: 8000,
      maxBodyBytes: 4 * 1024 * 1024,
      requestTimeoutMs: 600_000,
      prefillTimeoutMs: 60_000,
      routerWaitMs: 10_000,
      workerKeepaliveMs: 2_000,
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
      tokenizeThreads: 2,
      tokenizeTimeoutMs: 10_000,
    });
    expect(workerSettingsFromEnv({})).toEqual({
      servedModel: 'armature/mock-model',
      engine: 'mocker',
      engineArgs: {},
      modelPath: '',
      transfer: 'on',
      transferBackends: '',
      transferPort: 0,
      transferTimeoutMs: 30_000,
      pinTimeoutMs: 480_000,
    });
    const p = processSettingsFromEnv('decode', {});
    expect(p).toMatchObject({ host: '127.0.0.1', grpcPort: 0, metricsPort: 0, drainTimeoutMs: 30_000 });
    expect(p.instanceId).toMatch(/^decode-[0-9a-f]{8}$/);
    expect(processSettingsFromEnv('decode', { ARMATURE_INSTANCE_ID: 'd-7' }).instanceId).toBe('d-7');
  });

  it('reads back exactly what the graph wrote for a worker', () => {
    const graph = compileGraph(
      {
        model: 'm',
        services: {
          decode: { engine: 'mocker', engineArgs: { speedup: 4 }, transfer: 'off', transferTimeoutMs: 1500 },
          prefill: { transferBackends: 'tcp', pinTimeoutMs: 2000 },
        },
      },
      { name: 't' },
    );
    expect(workerSettingsFromEnv(serviceOfKind(graph, 'decode')!.env)).toMatchObject({
      servedModel: 'm',
      engineArgs: { speedup: 4 },
      transfer: 'off',
      transferTimeoutMs: 1500,
      pinTimeoutMs: 480_000,
    });
    expect(workerSettingsFromEnv(serviceOfKind(graph, 'prefill')!.env)).toMatchObject({
      transfer: 'on',
      transferBackends: 'tcp',
      pinTimeoutMs: 2000,
    });
  });

  it('rejects a bad value with bad_config naming the variable, instead of a default', () => {
    expect(() => frontendSettingsFromEnv({ ARMATURE_MAX_BODY_BYTES: '12' })).toThrow(/ARMATURE_MAX_BODY_BYTES/);
    expect(() => workerSettingsFromEnv({ ARMATURE_TRANSFER: 'maybe' })).toThrow(
      expect.objectContaining({ reason: 'bad_config' }),
    );
    expect(() => processSettingsFromEnv('router', { ARMATURE_GRPC_PORT: '70000' })).toThrow(/ARMATURE_GRPC_PORT/);
  });

  it('refuses a bad worker setting in the graph with its path', () => {
    expect(() => compileGraph({ model: 'm', services: { decode: { transferTimeoutMs: 0 } } }, { name: 't' })).toThrow(
      /services\.decode\.transferTimeoutMs/,
    );
  });
});
