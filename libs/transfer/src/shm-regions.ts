// Registered regions in POSIX shared memory: allocation (reclaiming a stale object a
// crashed predecessor left), release, and unlinking at process exit for agents that were
// never closed. Names carry the owner's pid (`/armature-<agentId>-<id>@<pid>`), so the
// first allocation in a process also sweeps objects whose owner died without unlinking
// them (a SIGKILL). Peers map these objects by name; this file only creates and removes them.
import { readdirSync } from 'node:fs';
import { ArmatureError, isProcessAlive } from '@armature/runtime';
import { nativeErrorCode, type NativeTransfer } from './native.js';
import { MemoryRegion } from './region.js';

/**
 * A region in a new POSIX shm object `name` (zero-filled). An object of that name left by a
 * crashed agent with the same id is unlinked and replaced.
 */
export function allocateShmRegion(
  native: NativeTransfer,
  baseName: string,
  id: number,
  blocks: number,
  blockBytes: number,
): MemoryRegion {
  sweepStaleShm(native);
  const name = `${baseName}@${process.pid}`;
  const bytes = blocks * blockBytes;
  let buffer: ArrayBuffer;
  try {
    buffer = native.shmCreate(name, bytes);
  } catch (err) {
    if (nativeErrorCode(err) !== 'EEXIST') throw allocationError(name, err);
    // Left behind by a crashed agent with this id (a live one would be a configuration error).
    native.shmUnlink(name);
    try {
      buffer = native.shmCreate(name, bytes);
    } catch (retryErr) {
      throw allocationError(name, retryErr);
    }
  }
  trackShm(name, native);
  return new MemoryRegion(id, blocks, blockBytes, buffer, name);
}

function allocationError(name: string, err: unknown): ArmatureError {
  const code = nativeErrorCode(err);
  const exhausted = code === 'ENOMEM' || code === 'ENOSPC' || code === 'EMFILE' || code === 'ENFILE';
  return new ArmatureError(
    exhausted ? 'resource_exhausted' : 'internal',
    'transfer_region_allocation_failed',
    `cannot allocate shared memory ${name}`,
    { detail: code ?? String(err), cause: err },
  );
}

/** Unlinks and unmaps a region allocateShmRegion made (best effort; other buffers are left alone). */
export function releaseShmRegion(region: MemoryRegion, native: NativeTransfer | undefined): void {
  if (!region.shmName || !native) return;
  liveShm.delete(region.shmName);
  try {
    native.shmUnlink(region.shmName);
    native.shmClose(region.buffer as ArrayBuffer);
  } catch {
    // Best effort: the object is gone or already unmapped.
  }
}

// Shared-memory objects of agents not closed yet. When the process exits they are unlinked
// (best effort; a SIGKILL leaves them for the next agent with the same id to reclaim).
const liveShm = new Map<string, NativeTransfer>();
let exitHookInstalled = false;

function trackShm(name: string, native: NativeTransfer): void {
  liveShm.set(name, native);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [shmName, addon] of liveShm) {
      try {
        addon.shmUnlink(shmName);
      } catch {
        // already gone
      }
    }
  });
}

const SHM_DIR = '/dev/shm';
const OWNED = /^armature-.+@(\d+)$/;
let swept = false;

/** Unlinks shared memory whose owner process is gone (once per process; Linux only). */
function sweepStaleShm(native: NativeTransfer): void {
  if (swept) return;
  swept = true;
  let names: string[];
  try {
    names = readdirSync(SHM_DIR);
  } catch {
    return; // no /dev/shm here
  }
  for (const name of names) {
    const pid = Number(OWNED.exec(name)?.[1]);
    if (!pid || pid === process.pid || isProcessAlive(pid)) continue;
    try {
      native.shmUnlink(`/${name}`);
    } catch {
      // another process swept it first
    }
  }
}
