// The translation of a wire request into an engine request and the checks made before any
// KV is pulled: fields copied as they are, the reasons and classes the gRPC boundary renders.
import { describe, expect, it } from 'vitest';
import type { GenerateRequest } from '@armature/proto';
import { compileMockerOptions, mockerCard } from '@armature/engine';
import { checkedEngineRequest, engineRequestFromProto } from './engine-request.js';

const card = mockerCard(compileMockerOptions({ model: 'm' }));
const wire = (extra: Partial<GenerateRequest> = {}): GenerateRequest => ({
  requestId: 'r1',
  model: 'm',
  tokenIds: [5, 6, 7],
  sampling: { temperature: 0.5, topP: 0.9, topK: 40, seed: 3 },
  stop: { maxTokens: 8, ignoreEos: true, stopTokenIds: [9] },
  remotePrefill: undefined,
  ...extra,
});

describe('engine request from the wire', () => {
  it('copies every field, the first token of a remote prefill included', () => {
    expect(engineRequestFromProto(wire({ remotePrefill: { firstToken: 11 } }))).toEqual({
      requestId: 'r1',
      tokenIds: [5, 6, 7],
      sampling: { temperature: 0.5, topP: 0.9, topK: 40, seed: 3 },
      stop: { maxTokens: 8, ignoreEos: true, stopTokenIds: [9] },
      firstToken: 11,
    });
    expect(engineRequestFromProto(wire({ sampling: undefined, stop: undefined }))).toMatchObject({
      sampling: { temperature: undefined, topP: undefined, topK: undefined, seed: undefined },
      stop: { maxTokens: 0, ignoreEos: false, stopTokenIds: [] },
    });
  });

  it('refuses another model, an empty prompt and a missing max_tokens before the engine sees them', () => {
    expect(() => checkedEngineRequest(wire({ model: 'other' }), card)).toThrow(
      expect.objectContaining({ cls: 'not_found', reason: 'model_not_found' }),
    );
    expect(() => checkedEngineRequest(wire({ tokenIds: [] }), card)).toThrow(
      expect.objectContaining({ cls: 'invalid_argument', reason: 'empty_prompt' }),
    );
    expect(() => checkedEngineRequest(wire({ stop: undefined }), card)).toThrow(
      expect.objectContaining({ cls: 'invalid_argument', reason: 'invalid_max_tokens' }),
    );
    // The context is the engine's to check, after any KV pull.
    expect(
      checkedEngineRequest(wire({ stop: { maxTokens: 1_000_000, ignoreEos: false, stopTokenIds: [] } }), card),
    ).toBeDefined();
  });
});
