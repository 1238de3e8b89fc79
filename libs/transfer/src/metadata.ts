// Agent metadata as it travels through discovery: one JSON string (it fits a record's
// labels, e.g. `labels['armature.transfer']`), parsed back with full validation, because
// a peer's record is input from another process and every field of it is used to open
// sockets and map memory.
import { TransferError } from './errors.js';
import { MAX_BLOCK_BYTES } from './layout.js';
import type { AgentMetadata, ChecksumAlgorithm, RegionMetadata } from './types.js';

/** The discovery label conventionally holding an agent's metadata. */
export const TRANSFER_METADATA_LABEL = 'armature.transfer';

const CHECKSUMS: readonly ChecksumAlgorithm[] = ['xxh3-64', 'armature-mx64', 'none'];

/** Metadata as a JSON string. */
export function encodeAgentMetadata(meta: AgentMetadata): string {
  return JSON.stringify(meta);
}

/** Parses and validates metadata from a peer; throws `bad_request` naming the bad field. */
export function parseAgentMetadata(text: string): AgentMetadata {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TransferError('bad_request', 'agent metadata is not JSON', { cause: err });
  }
  return validateAgentMetadata(value);
}

/** Checks that `value` is well-formed AgentMetadata and returns it (typed). */
export function validateAgentMetadata(value: unknown): AgentMetadata {
  const bad = (field: string): never => {
    throw new TransferError('bad_request', `agent metadata: bad or missing ${field}`);
  };
  if (!isObject(value)) return bad('object');
  const { agentId, host, incarnation, regions, tcp, shm } = value;
  if (typeof agentId !== 'string' || agentId.length === 0) bad('agentId');
  if (typeof host !== 'string') bad('host');
  if (incarnation !== undefined && typeof incarnation !== 'string') bad('incarnation');
  if (!Array.isArray(regions)) return bad('regions');
  const checkedRegions: RegionMetadata[] = regions.map((r, i) => {
    if (!isObject(r)) return bad(`regions[${i}]`);
    if (!isUint(r.id, 0xffffffff)) bad(`regions[${i}].id`);
    if (!isUint(r.blocks, 0xffffffff) || r.blocks === 0) bad(`regions[${i}].blocks`);
    if (!isUint(r.blockBytes, MAX_BLOCK_BYTES) || r.blockBytes === 0) bad(`regions[${i}].blockBytes`);
    if (r.shmName !== undefined && (typeof r.shmName !== 'string' || !/^\/[^/]{1,254}$/.test(r.shmName))) {
      bad(`regions[${i}].shmName`);
    }
    return r as unknown as RegionMetadata;
  });
  if (tcp !== undefined) {
    if (!isObject(tcp) || typeof tcp.address !== 'string') bad('tcp.address');
    const checksums: unknown = (tcp as Record<string, unknown>).checksums;
    if (checksums !== undefined) {
      if (!Array.isArray(checksums)) bad('tcp.checksums');
      // Algorithms a newer peer knows and this one does not are dropped, not fatal.
      (tcp as Record<string, unknown>).checksums = (checksums as unknown[]).filter((c) =>
        CHECKSUMS.includes(c as ChecksumAlgorithm),
      );
    }
  }
  if (shm !== undefined && (!isObject(shm) || typeof shm.hostKey !== 'string')) bad('shm.hostKey');
  return { ...(value as unknown as AgentMetadata), regions: checkedRegions };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown, max: number): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
