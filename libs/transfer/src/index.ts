// Public surface of @armature/transfer: the transfer agent (register regions, publish
// metadata, read and write lists of KV blocks from peers over shared memory or TCP), its
// typed errors, the KV block layout, and the optional native addon's status. Backends and
// the wire protocol stay internal; fault injection lives in src/testing/ (only its seam,
// TransferFaultHooks with the no-op default NO_FAULTS, is here).
export { TransferAgent } from './agent.js';
export { compileAgentOptions } from './agent-options.js';
export type { CompiledAgentOptions, TransferAgentOptions } from './agent-options.js';
export { TRANSFER_ERROR_KINDS, TransferError, isTransferError } from './errors.js';
export type { TransferErrorKind } from './errors.js';
export { MAX_BLOCK_BYTES, blockBytes, validateLayout } from './layout.js';
export type { KvBlockLayout } from './layout.js';
export { MemoryRegion, createMemoryRegion } from './region.js';
export { NATIVE_ADDON_PATH, loadNative, nativeStatus } from './native.js';
export type { NativeStatus, NativeTransfer } from './native.js';
export { TRANSFER_METADATA_LABEL, encodeAgentMetadata, parseAgentMetadata, validateAgentMetadata } from './metadata.js';
export { localHostKey } from './host-key.js';
export { NO_FAULTS } from './fault-hooks.js';
export type { TransferFaultHooks } from './fault-hooks.js';
export type {
  AgentMetadata,
  BackendChoice,
  BlockTransferRequest,
  ChecksumAlgorithm,
  RegionMetadata,
  TransferBackendKind,
  TransferCounters,
  TransferStats,
} from './types.js';
