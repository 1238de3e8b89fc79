// The shared-memory backend: for a peer on the same host (equal host keys) whose region is
// a POSIX shm object, the region is mapped into this process once (shmOpen, cached per
// peer region) and blocks move with one native copyBlocks per batch: no socket, no
// serialisation. A read copies peer → local, a write local → peer. Nothing is verified
// by default (memory to memory); `verify` compares checksums of both sides afterwards.
// Large transfers are copied in batches that yield to the event loop between them.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { TransferError } from '../errors.js';
import { nativeErrorCode, type NativeTransfer } from '../native.js';
import { NO_FAULTS, type TransferFaultHooks } from '../fault-hooks.js';
import type { AgentMetadata, RegionMetadata } from '../types.js';
import type { BackendTransfer, TransferBackend } from './backend.js';

/** Bytes copied per synchronous copyBlocks call before yielding to the event loop. */
const BATCH_BYTES = 16 * 1024 * 1024;

interface Mapping {
  agentId: string;
  buffer: ArrayBuffer;
  /** Transfers using it now; it is unmapped only when none is. */
  users: number;
  dropped: boolean;
}

export class ShmBackend implements TransferBackend {
  readonly kind = 'shm' as const;
  private readonly mappings = new Map<string, Mapping>();

  constructor(
    private readonly native: NativeTransfer,
    private readonly hostKey: string,
    private readonly faults: TransferFaultHooks = NO_FAULTS,
  ) {}

  reachability(peer: AgentMetadata, region: RegionMetadata): TransferError | undefined {
    if (!peer.shm) return new TransferError('bad_request', `peer ${peer.agentId} does not offer shared memory`);
    if (peer.shm.hostKey !== this.hostKey) {
      return new TransferError('bad_request', `peer ${peer.agentId} is on another host (or IPC namespace)`);
    }
    if (!region.shmName) {
      return new TransferError('bad_request', `region ${region.id} of peer ${peer.agentId} is not shared memory`);
    }
    const mapped = this.map(peer, region);
    return mapped instanceof TransferError ? mapped : undefined;
  }

  read(t: BackendTransfer): Promise<void> {
    return this.run(t, 'read');
  }

  write(t: BackendTransfer): Promise<void> {
    return this.run(t, 'write');
  }

  async dropPeer(agentId: string): Promise<void> {
    for (const [key, mapping] of this.mappings) {
      if (mapping.agentId !== agentId) continue;
      this.mappings.delete(key);
      mapping.dropped = true;
      this.release(mapping, 0);
    }
  }

  async close(): Promise<void> {
    for (const mapping of this.mappings.values()) {
      mapping.dropped = true;
      this.release(mapping, 0);
    }
    this.mappings.clear();
  }

  private async run(t: BackendTransfer, direction: 'read' | 'write'): Promise<void> {
    const mapping = this.map(t.peer, t.region);
    if (mapping instanceof TransferError) throw mapping;
    mapping.users++;
    try {
      const deadline = performance.now() + t.timeoutMs;
      const { blockBytes } = t.region;
      const perBatch = Math.max(1, Math.floor(BATCH_BYTES / blockBytes));
      const count = t.remoteIds.length;
      for (let first = 0; first < count; first += perBatch) {
        if (first > 0) {
          await yieldToEventLoop();
          if (mapping.dropped)
            throw new TransferError('closed', `shared memory of peer ${t.peer.agentId} was released`);
          if (performance.now() > deadline) {
            throw new TransferError('timeout', `shm ${direction} of ${count} blocks timed out`, {
              detail: `after ${t.timeoutMs} ms`,
            });
          }
        }
        const end = Math.min(count, first + perBatch);
        const remote = t.remoteIds.subarray(first, end);
        const local = t.localIds.subarray(first, end);
        try {
          if (direction === 'read') {
            this.native.copyBlocks(mapping.buffer, remote, t.local.buffer, local, blockBytes);
          } else {
            this.native.copyBlocks(t.local.buffer, local, mapping.buffer, remote, blockBytes);
          }
        } catch (err) {
          throw new TransferError('bad_request', `shm copy failed: ${String(err)}`, { cause: err });
        }
      }
      if (direction === 'read') this.faults.copiedBlocks(t.local.buffer, t.localIds, blockBytes);
      else this.faults.copiedBlocks(mapping.buffer, t.remoteIds, blockBytes);
      if (t.verify) this.verify(t, mapping.buffer);
    } finally {
      this.release(mapping, -1);
    }
  }

  private verify(t: BackendTransfer, peerBuffer: ArrayBuffer): void {
    const count = t.remoteIds.length;
    const remoteSums = new BigUint64Array(count);
    const localSums = new BigUint64Array(count);
    this.native.checksumBlocks(peerBuffer, t.remoteIds, t.region.blockBytes, remoteSums);
    this.native.checksumBlocks(t.local.buffer, t.localIds, t.region.blockBytes, localSums);
    for (let i = 0; i < count; i++) {
      if (remoteSums[i] !== localSums[i]) {
        throw new TransferError(
          'checksum_mismatch',
          `block ${t.remoteIds[i]} of region ${t.region.id} differs from local block ${t.localIds[i]} after the shm copy`,
        );
      }
    }
  }

  // The peer region mapped into this process, opened on first use.
  private map(peer: AgentMetadata, region: RegionMetadata): Mapping | TransferError {
    const key = `${peer.agentId}|${peer.incarnation ?? ''}|${region.id}|${region.shmName}`;
    const cached = this.mappings.get(key);
    if (cached) return cached;
    let buffer: ArrayBuffer;
    try {
      buffer = this.native.shmOpen(region.shmName!, region.blocks * region.blockBytes);
    } catch (err) {
      const code = nativeErrorCode(err);
      const kind = code === 'ERANGE' || code === 'EINVAL' ? 'bad_request' : 'peer_unreachable';
      return new TransferError(kind, `cannot map region ${region.id} of peer ${peer.agentId}`, {
        detail: `shmOpen(${region.shmName}): ${code ?? String(err)}`,
        cause: err,
      });
    }
    const mapping: Mapping = { agentId: peer.agentId, buffer, users: 0, dropped: false };
    this.mappings.set(key, mapping);
    return mapping;
  }

  private release(mapping: Mapping, delta: number): void {
    mapping.users += delta;
    if (mapping.dropped && mapping.users === 0) this.native.shmClose(mapping.buffer);
  }
}
