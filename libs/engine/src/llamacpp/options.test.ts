// llama.cpp engine options: documented defaults, and a clear error for every bad value.
import { describe, expect, it } from 'vitest';
import { compileLlamaCppOptions, LLAMACPP_DEFAULTS } from './options.js';

describe('compileLlamaCppOptions', () => {
  it('fills the documented defaults', () => {
    const c = compileLlamaCppOptions();
    expect(c).toMatchObject({ ...LLAMACPP_DEFAULTS, modelPath: undefined });
    expect(c.minPrefillChunk).toBe(64);
    expect(c.lockstep).toBe(true);
    expect(c.threads).toBeGreaterThanOrEqual(1);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('keeps what is given', () => {
    expect(
      compileLlamaCppOptions({ sequences: 8, minPrefillChunk: 1, gpu: 'cuda', gpuLayers: 'max', dpRank: 2 }),
    ).toMatchObject({ sequences: 8, minPrefillChunk: 1, gpu: 'cuda', gpuLayers: 'max', dpRank: 2 });
  });

  it.each([
    [{ sequencez: 4 }, /sequencez: unknown option/],
    [{ minPrefillChunk: 0 }, /minPrefillChunk: expected a positive integer/],
    [{ batchSize: 1.5 }, /batchSize: expected a positive integer/],
    [{ gpu: 'metal' }, /gpu: expected auto, cuda, vulkan or false/],
    [{ gpuLayers: -1 }, /gpuLayers/],
    [{ modelPath: '' }, /modelPath/],
    [{ kvEvents: 'vllm' }, /kvEvents/],
    [{ dpRank: -1 }, /dpRank/],
    [{ lockstep: 'yes' }, /lockstep: expected true or false/],
  ])('rejects %j', (options, message) => {
    expect(() => compileLlamaCppOptions(options as never)).toThrow(message);
  });
});
