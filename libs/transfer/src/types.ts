// The data types a transfer agent shares with its peers (metadata published through
// discovery) and reports to its caller (stats, counters). No behaviour lives here.
import type { TransferErrorKind } from './errors.js';
import type { MemoryRegion } from './region.js';

/**
 * How blocks move between two agents. 'shm': the peer's region is mapped into this
 * process (same host, native addon loaded) and blocks are copied memory to memory.
 * 'tcp': blocks stream over one multiplexed connection per peer.
 *
 * The seam for more: 'ucx' | 'cuda-ipc' | 'rdma' would each be a TransferBackend
 * (backends/backend.ts) that says whether it can reach a peer region from the peer's
 * metadata (a section of its own next to `tcp` and `shm`: a UCX worker address, a CUDA
 * IPC memory handle per region, RDMA rkeys) and moves lists of blocks; the agent picks
 * the first backend in its preference order that can reach the peer.
 */
export type TransferBackendKind = 'shm' | 'tcp';

/** Block checksum algorithms. 'xxh3-64' (seed 0) is always available; 'armature-mx64' is the native addon's. */
export type ChecksumAlgorithm = 'xxh3-64' | 'armature-mx64' | 'none';

/** One region as peers see it. */
export interface RegionMetadata {
  id: number;
  blocks: number;
  blockBytes: number;
  /** POSIX shm object name; set when the region is shared memory. */
  shmName?: string;
}

/** What an agent publishes through discovery so peers can reach its regions. */
export interface AgentMetadata {
  agentId: string;
  /** Host the agent advertises (its TCP address is on it). */
  host: string;
  /** Random per agent instance: a restarted agent with the same id is a different peer. */
  incarnation?: string;
  regions: RegionMetadata[];
  /** Present when the agent serves TCP. `checksums`: algorithms it can verify, preferred first (default ['xxh3-64']). */
  tcp?: { address: string; checksums?: ChecksumAlgorithm[] };
  /** Present when the agent's regions are shared memory; `hostKey` names the machine and IPC namespace. */
  shm?: { hostKey: string };
}

/** The outcome of one successful transfer. */
export interface TransferStats {
  bytes: number;
  blocks: number;
  durationMs: number;
  backend: TransferBackendKind;
}

/** Which backend moves a request: 'auto' (default) picks shm when the peer is reachable over it, else tcp. */
export type BackendChoice = 'auto' | TransferBackendKind;

/** One read or write of a list of blocks between a local region and a peer's region. */
export interface BlockTransferRequest {
  /** The peer's region. */
  regionId: number;
  /** Block ids in the peer's region. */
  remoteBlockIds: ArrayLike<number>;
  /** The local side: any region (registered with the agent or not). */
  local: MemoryRegion;
  /** Block ids in `local`, pairwise with `remoteBlockIds`. */
  localBlockIds: ArrayLike<number>;
  /** Deadline for this request (default: the agent's timeoutMs). */
  timeoutMs?: number;
  backend?: BackendChoice;
  /** Over shm, compare checksums of both sides after the copy (default false; tcp always verifies). */
  verify?: boolean;
}

/** Running totals of one agent, for metrics. */
export interface TransferCounters {
  /** Bytes moved by this agent's own reads and writes that succeeded. */
  bytes: number;
  /** Reads and writes that succeeded. */
  transfers: number;
  /** Reads and writes that failed, by kind. */
  failures: Record<TransferErrorKind, number>;
  byBackend: Record<TransferBackendKind, { bytes: number; transfers: number }>;
  /** Bytes the agent's TCP server sent to or received from peers. */
  servedBytes: number;
  /** Requests the TCP server answered with an error frame or dropped as malformed. */
  servedErrors: number;
}
