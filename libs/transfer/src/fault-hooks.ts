// The points where a transfer agent's backends let an injected party make them misbehave,
// as a real failure would: a TCP peer that stalls or is slow, a link that corrupts bytes
// either way, a shared-memory copy that comes out wrong. Production agents get NO_FAULTS,
// whose hooks do nothing; the tests' implementation (testing/faults.ts) is the only other.
// Each hook is consulted once per request, frame or copy, never per byte.
import type { MemoryRegion } from './region.js';

/** What the backends ask before or after moving bytes (see TransferAgentOptions.faults). */
export interface TransferFaultHooks {
  /** TCP server, on each READ or WRITE request: true leaves it unanswered. */
  dropsRequest(): boolean;
  /** TCP server, before each DATA frame of a read: a promise to wait for first, or undefined. */
  beforeReadFrame(): Promise<void> | undefined;
  /**
   * TCP server, the blocks of a read's DATA frame once their checksums are computed: the
   * bytes to send instead (one buffer per block), or undefined to send the region's own.
   */
  replaceSentBlocks(region: MemoryRegion, ids: Uint32Array): Uint8Array[] | undefined;
  /** TCP server, the blocks of a write's DATA frame as they landed, before their checksums are verified. */
  receivedBlocks(region: MemoryRegion, ids: Uint32Array): void;
  /** Shm backend, after a copy: the destination buffer and the blocks written in it. */
  copiedBlocks(destination: ArrayBufferLike, ids: Uint32Array, blockBytes: number): void;
}

/** Hooks that change nothing: the default of every agent. */
export const NO_FAULTS: TransferFaultHooks = Object.freeze({
  dropsRequest: () => false,
  beforeReadFrame: () => undefined,
  replaceSentBlocks: () => undefined,
  receivedBlocks: () => {},
  copiedBlocks: () => {},
});
