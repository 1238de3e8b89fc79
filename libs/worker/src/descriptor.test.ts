import { describe, expect, it } from 'vitest';
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import type { KvTransferDescriptor } from '@armature/proto';
import { checkDescriptor, decodeHashes, DescriptorError, encodeHashes } from './descriptor.js';

const layout = { numLayers: 2, kvHeads: 2, headDim: 64, dtypeBytes: 2, blockSize: 16 };
const tokens = Array.from({ length: 40 }, (_, i) => 500 + i);
const hashes = computeSequenceHashes(computeBlockHashes(tokens, 16));
const peer = { agentId: 'prefill-0', host: '127.0.0.1', regions: [{ id: 0, blocks: 64, blockBytes: 32768 }] };

const descriptor = (over: Partial<KvTransferDescriptor> = {}): KvTransferDescriptor => ({
  prefillInstanceId: 'prefill-0',
  prefillGrpcAddress: '127.0.0.1:1',
  pinId: 'r1',
  transferMetadata: JSON.stringify(peer),
  regionId: 0,
  blockIds: [7, 8, 9],
  blockHashes: encodeHashes(hashes),
  layout,
  promptTokens: 40,
  expiresAtUnixMs: 0,
  stateBytes: 0,
  ...over,
});

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DescriptorError) return err.reason;
    throw err;
  }
  return 'accepted';
}

describe('transfer descriptors', () => {
  it('round-trips 64-bit block hashes exactly', () => {
    const big = [0n, 1n, 2n ** 64n - 1n, 0x9e3779b97f4a7c15n];
    expect(decodeHashes(encodeHashes(big))).toEqual(big);
    expect(() => decodeHashes(new Uint8Array(7))).toThrow(/multiple of 8/);
  });

  it('accepts a descriptor for this prompt and layout', () => {
    const checked = checkDescriptor(descriptor(), tokens, layout);
    expect(checked.blockIds).toEqual([7, 8, 9]);
    expect(checked.peer.agentId).toBe('prefill-0');
  });

  it('refuses another layout, another prompt, wrong block counts and bad metadata', () => {
    expect(reason(() => checkDescriptor(descriptor(), tokens, { ...layout, headDim: 128 }))).toBe('layout_mismatch');
    expect(reason(() => checkDescriptor(descriptor({ layout: undefined }), tokens, layout))).toBe('layout_mismatch');
    expect(reason(() => checkDescriptor(descriptor({ promptTokens: 41 }), tokens, layout))).toBe('bad_descriptor');
    expect(reason(() => checkDescriptor(descriptor({ blockIds: [7, 8] }), tokens, layout))).toBe('bad_descriptor');
    const other = tokens.map((t, i) => (i === 3 ? t + 1 : t));
    expect(reason(() => checkDescriptor(descriptor(), other, layout))).toBe('bad_descriptor');
    expect(reason(() => checkDescriptor(descriptor({ transferMetadata: '{' }), tokens, layout))).toBe('bad_descriptor');
    expect(reason(() => checkDescriptor(descriptor({ blockHashes: Buffer.alloc(7) }), tokens, layout))).toBe(
      'bad_descriptor',
    );
  });
});
