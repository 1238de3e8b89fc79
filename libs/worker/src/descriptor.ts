// The KV transfer descriptor a prefill worker answers with, and the checks a decode worker
// runs on one before it moves a byte: same block layout, same prompt, block lists of the
// right length, and block hashes equal to the ones it computes itself from the prompt (so
// a descriptor for another prompt, or from an engine hashing differently, is refused
// rather than imported as the wrong KV).
import type { KvBlockLayout, KvTransferDescriptor } from '@armature/proto';
import type { KvCacheLayout } from '@armature/engine';
import { computeBlockHashes, computeSequenceHashes } from '@armature/kv';
import { parseAgentMetadata, type AgentMetadata } from '@armature/transfer';

/** Sequence hashes as bytes: 8 bytes little-endian each. */
export function encodeHashes(hashes: readonly bigint[]): Buffer {
  const out = Buffer.allocUnsafe(hashes.length * 8);
  hashes.forEach((h, i) => out.writeBigUInt64LE(BigInt.asUintN(64, h), i * 8));
  return out;
}

export function decodeHashes(bytes: Uint8Array): bigint[] {
  if (bytes.byteLength % 8 !== 0) throw new Error(`block hashes: ${bytes.byteLength} bytes is not a multiple of 8`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: bigint[] = [];
  for (let at = 0; at < bytes.byteLength; at += 8) out.push(view.getBigUint64(at, true));
  return out;
}

export function layoutToProto(layout: KvCacheLayout): KvBlockLayout {
  return {
    numLayers: layout.numLayers,
    kvHeads: layout.kvHeads,
    headDim: layout.headDim,
    dtypeBytes: layout.dtypeBytes,
    blockSize: layout.blockSize,
  };
}

function sameLayout(a: KvBlockLayout, b: KvCacheLayout): boolean {
  return (
    a.numLayers === b.numLayers &&
    a.kvHeads === b.kvHeads &&
    a.headDim === b.headDim &&
    a.dtypeBytes === b.dtypeBytes &&
    a.blockSize === b.blockSize
  );
}

export interface CheckedDescriptor {
  peer: AgentMetadata;
  blockIds: number[];
}

/** Why a descriptor cannot be imported (a metric label), with the details. */
export class DescriptorError extends Error {
  constructor(
    readonly reason: 'layout_mismatch' | 'bad_descriptor',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks a descriptor against the prompt and the local KV layout (and, for engines that
 * move a sequence state, the local staging block size); throws DescriptorError.
 */
export function checkDescriptor(
  d: KvTransferDescriptor,
  tokenIds: readonly number[],
  layout: KvCacheLayout,
  format: 'blocks' | 'state' = 'blocks',
  blockBytes = 0,
): CheckedDescriptor {
  if (!d.layout || !sameLayout(d.layout, layout)) {
    throw new DescriptorError(
      'layout_mismatch',
      `the prefill worker's KV layout ${JSON.stringify(d.layout)} differs from this worker's ${JSON.stringify(layoutToProto(layout))}`,
    );
  }
  const bad = (message: string): DescriptorError => new DescriptorError('bad_descriptor', message);
  if (d.promptTokens !== tokenIds.length)
    throw bad(`descriptor covers ${d.promptTokens} prompt tokens, the request has ${tokenIds.length}`);
  if (format === 'state') {
    if (!(d.stateBytes > 0)) throw bad('descriptor carries no sequence state size');
    const chunks = Math.ceil(d.stateBytes / blockBytes);
    if (d.blockIds.length !== chunks)
      throw bad(`descriptor names ${d.blockIds.length} blocks for a ${d.stateBytes}-byte state (${chunks} blocks)`);
  } else {
    if (d.stateBytes > 0) throw bad('descriptor carries a sequence state; this engine imports KV blocks');
    const blocks = Math.ceil(tokenIds.length / layout.blockSize);
    if (d.blockIds.length !== blocks)
      throw bad(`descriptor names ${d.blockIds.length} blocks, the prompt fills ${blocks}`);
  }
  let theirs: bigint[];
  try {
    theirs = decodeHashes(d.blockHashes);
  } catch (err) {
    throw bad((err as Error).message);
  }
  const ours = computeSequenceHashes(computeBlockHashes(tokenIds, layout.blockSize));
  if (theirs.length !== ours.length || theirs.some((h, i) => h !== ours[i]))
    throw bad('descriptor block hashes do not match the prompt');
  let peer: AgentMetadata;
  try {
    peer = parseAgentMetadata(d.transferMetadata);
  } catch (err) {
    throw bad(`descriptor transfer metadata: ${(err as Error).message}`);
  }
  return { peer, blockIds: d.blockIds };
}
