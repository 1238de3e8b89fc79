// The seam between the agent and the ways blocks move. A backend says whether it can
// reach a region of a peer (from the peer's published metadata) and moves lists of blocks
// between that region and a local one. The agent validates requests, picks a backend and
// keeps the counters; backends do neither. UCX, CUDA IPC and RDMA would plug in here.
import type { TransferError } from '../errors.js';
import type { MemoryRegion } from '../region.js';
import type { AgentMetadata, RegionMetadata, TransferBackendKind } from '../types.js';

/** A validated transfer: ids are in range on both sides and block sizes agree. */
export interface BackendTransfer {
  peer: AgentMetadata;
  region: RegionMetadata;
  remoteIds: Uint32Array;
  local: MemoryRegion;
  localIds: Uint32Array;
  timeoutMs: number;
  /** Verify checksums even where the medium is trusted (shm). */
  verify: boolean;
}

export interface TransferBackend {
  readonly kind: TransferBackendKind;
  /** Undefined when this backend can move blocks of the peer's region; else the error using it would give. */
  reachability(peer: AgentMetadata, region: RegionMetadata): TransferError | undefined;
  /** Peer region → local region. */
  read(transfer: BackendTransfer): Promise<void>;
  /** Local region → peer region. */
  write(transfer: BackendTransfer): Promise<void>;
  /** Releases what is held for a peer that left (connections, mappings). */
  dropPeer(agentId: string): Promise<void>;
  close(): Promise<void>;
}
