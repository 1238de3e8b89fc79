import { ArmatureError } from '@armature/runtime';
import { describe, expect, it } from 'vitest';
import { compileMockerOptions, mockerCard } from './options.js';

describe('mocker options', () => {
  it('fills in the documented defaults', () => {
    const config = compileMockerOptions();
    expect(config).toMatchObject({
      model: 'armature/mock-model',
      blockSize: 16,
      totalKvBlocks: 16384,
      maxNumSeqs: 256,
      maxNumBatchedTokens: 8192,
      contextLength: 8192,
      speedup: 1,
      eosProbability: 1 / 128,
      tokenizer: 'gpt-tokenizer:o200k_base',
      chatTemplate: 'chatml',
      eosTokenIds: [199999],
      vocabRange: [256, 100000],
      enablePrefixCaching: true,
      dpRank: null,
    });
    expect(config.perfModel.prefillMs(1000)).toBeCloseTo(32.1058589, 6);
    expect(Object.isFrozen(config)).toBe(true);
    // 1 KiB of KV per token.
    expect(config.kvLayout).toEqual({ numLayers: 2, kvHeads: 2, headDim: 64, dtypeBytes: 2, blockSize: 16 });
    expect(Object.isFrozen(config.kvLayout)).toBe(true);
  });

  it('fills a partial KV layout and takes its block size from blockSize', () => {
    expect(compileMockerOptions({ blockSize: 32, kvLayout: { numLayers: 32, dtypeBytes: 4 } }).kvLayout).toEqual({
      numLayers: 32,
      kvHeads: 2,
      headDim: 64,
      dtypeBytes: 4,
      blockSize: 32,
    });
    // A row of 1 head × 2 elements × 2 bytes is one 32-bit word: allowed.
    expect(compileMockerOptions({ kvLayout: { kvHeads: 1, headDim: 2, dtypeBytes: 2 } }).kvLayout.headDim).toBe(2);
  });

  it('makes the model card the worker advertises', () => {
    const card = mockerCard(
      compileMockerOptions({ model: 'm', blockSize: 32, totalKvBlocks: 100, eosTokenIds: [7, 8] }),
    );
    expect(card).toEqual({
      model: 'm',
      blockSize: 32,
      totalKvBlocks: 100,
      maxNumSeqs: 256,
      maxNumBatchedTokens: 8192,
      contextLength: 8192,
      tokenizer: 'gpt-tokenizer:o200k_base',
      chatTemplate: 'chatml',
      eosTokenIds: [7, 8],
      engine: 'mocker',
      kvEvents: 'armature',
    });
  });

  it('passes speedup into the perf model', () => {
    const config = compileMockerOptions({
      speedup: 100,
      perfModel: { kind: 'interpolated', prefill: [[0, 100]], decode: [[0, 50]] },
    });
    expect(config.perfModel.prefillMs(10)).toBe(1);
    expect(config.perfModel.decodeMs(0.5)).toBe(0.5);
    expect(compileMockerOptions({ perfModel: { speedup: 4 } }).speedup).toBe(4);
  });

  it.each([
    [{ blockSize: 0 }, 'blockSize'],
    [{ blockSize: 2.5 }, 'blockSize'],
    [{ totalKvBlocks: -1 }, 'totalKvBlocks'],
    [{ maxNumSeqs: '8' }, 'maxNumSeqs'],
    [{ contextLength: 0 }, 'contextLength'],
    [{ speedup: 0 }, 'speedup'],
    [{ eosProbability: 2 }, 'eosProbability'],
    [{ eosTokenIds: [] }, 'eosTokenIds'],
    [{ eosTokenIds: [-1] }, 'eosTokenIds'],
    [{ vocabRange: [10, 10] }, 'vocabRange'],
    [{ model: '' }, 'model'],
    [{ enablePrefixCaching: 'yes' }, 'enablePrefixCaching'],
    [{ dpRank: 1.5 }, 'dpRank'],
    [{ speedup: 2, perfModel: { speedup: 3 } }, 'perfModel.speedup'],
    [{ blocksize: 16 }, 'blocksize'],
    [{ kvLayout: 4 }, 'kvLayout'],
    [{ kvLayout: [] }, 'kvLayout'],
    [{ kvLayout: { numLayers: 0 } }, 'kvLayout.numLayers'],
    [{ kvLayout: { kvHeads: 1.5 } }, 'kvLayout.kvHeads'],
    [{ kvLayout: { headDim: -64 } }, 'kvLayout.headDim'],
    [{ kvLayout: { dtypeBytes: '2' } }, 'kvLayout.dtypeBytes'],
    [{ kvLayout: { layers: 2 } }, 'kvLayout.layers'],
    [{ kvLayout: { kvHeads: 1, headDim: 3, dtypeBytes: 2 } }, 'kvLayout'],
    [{ kvLayout: { kvHeads: 1, headDim: 1, dtypeBytes: 1 } }, 'kvLayout'],
  ])('rejects %j', (options, param) => {
    try {
      compileMockerOptions(options as never);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ArmatureError);
      expect((err as ArmatureError).cls).toBe('invalid_argument');
      expect((err as ArmatureError).param).toBe(param);
    }
  });
});
