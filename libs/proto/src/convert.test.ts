// The proto card and load carry exactly the domain fields: a field added on one side only
// fails here.
import { describe, expect, it } from 'vitest';
import type { ModelCard } from '@armature/runtime';
import { ModelDeploymentCard, WorkerLoad } from './gen/armature/v1/common.js';
import { modelCardFromProto, modelCardToProto, workerLoadFromProto, workerLoadToProto } from './convert.js';

const card: Required<ModelCard> = {
  model: 'm',
  blockSize: 16,
  totalKvBlocks: 4096,
  maxNumSeqs: 8,
  maxNumBatchedTokens: 2048,
  contextLength: 8192,
  tokenizer: 'gguf:/models/x.gguf',
  chatTemplate: 'chatml',
  eosTokenIds: [2, 7],
  engine: 'llamacpp',
  kvEvents: 'armature',
};

describe('proto converters', () => {
  it('round-trip a model card through its wire encoding, with the same fields on both sides', () => {
    const proto = modelCardToProto(card);
    expect(Object.keys(proto).sort()).toEqual(Object.keys(ModelDeploymentCard.fromPartial({})).sort());
    expect(Object.keys(proto).sort()).toEqual(Object.keys(card).sort());
    const wire = ModelDeploymentCard.decode(ModelDeploymentCard.encode(proto).finish());
    expect(modelCardFromProto(wire)).toEqual(card);
    const { kvEvents: _unset, ...withoutKvEvents } = card;
    expect(modelCardFromProto(modelCardToProto(withoutKvEvents))).toEqual(withoutKvEvents);
  });

  it('round-trip a worker load', () => {
    const load = {
      activeDecodeBlocks: 12,
      activePrefillTokens: 300,
      waitingRequests: 2,
      runningRequests: 3,
      kvUsage: 0.25,
    };
    const proto = workerLoadToProto(load);
    expect(Object.keys(proto).sort()).toEqual(Object.keys(WorkerLoad.fromPartial({})).sort());
    expect(workerLoadFromProto(WorkerLoad.decode(WorkerLoad.encode(proto).finish()))).toEqual(load);
  });
});
