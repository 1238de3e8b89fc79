// The one typed boundary with the native addon (native/transfer, C++ N-API). Everything
// the library calls on the addon is declared here; errors it throws carry `code` (an
// errno name) and are read back through nativeErrorCode. Loading is optional: without
// the built addon the library runs pure TypeScript (TCP only, SharedArrayBuffer regions).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeTransfer {
  version(): string;
  shmCreate(name: string, bytes: number): ArrayBuffer; // POSIX shm, O_EXCL, mapped rw, zero-filled; errors have err.code = errno name
  shmOpen(name: string, bytes: number): ArrayBuffer; // another process's object; ENOENT / ERANGE
  shmUnlink(name: string): void; // idempotent
  shmClose(buffer: ArrayBuffer): void; // munmap + detach, idempotent
  copyBlocks(
    src: ArrayBuffer | SharedArrayBuffer,
    srcIds: Uint32Array,
    dst: ArrayBuffer | SharedArrayBuffer,
    dstIds: Uint32Array,
    blockBytes: number,
  ): void; // bounds-checked first
  checksumBlocks(
    buffer: ArrayBuffer | SharedArrayBuffer,
    ids: Uint32Array,
    blockBytes: number,
    out: BigUint64Array,
  ): void;
}

/** Whether the addon is loaded, and if not, why. */
export interface NativeStatus {
  loaded: boolean;
  /** The path tried. */
  path: string;
  version?: string;
  /** Why it is not loaded (missing file, disabled by env, load error). */
  reason?: string;
}

const FUNCTIONS = ['version', 'shmCreate', 'shmOpen', 'shmUnlink', 'shmClose', 'copyBlocks', 'checksumBlocks'] as const;

/** Where the built addon lives, from this file (src/ or dist/ of libs/transfer alike). */
export const NATIVE_ADDON_PATH = fileURLToPath(
  new URL('../../../native/transfer/build/Release/armature_transfer.node', import.meta.url),
);

/** Loads the addon at `path` unless `env.ARMATURE_TRANSFER_NATIVE` is 'off'; never throws. */
export function loadNativeAt(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): { native: NativeTransfer | undefined; status: NativeStatus } {
  if (env.ARMATURE_TRANSFER_NATIVE === 'off') {
    return { native: undefined, status: { loaded: false, path, reason: 'disabled by ARMATURE_TRANSFER_NATIVE=off' } };
  }
  let addon: Partial<NativeTransfer>;
  try {
    addon = createRequire(import.meta.url)(path) as Partial<NativeTransfer>;
  } catch (err) {
    const code = nativeErrorCode(err);
    const reason =
      code === 'MODULE_NOT_FOUND' ? `addon not built (${path} is missing)` : `addon failed to load: ${String(err)}`;
    return { native: undefined, status: { loaded: false, path, reason } };
  }
  const missing = FUNCTIONS.filter((name) => typeof addon[name] !== 'function');
  if (missing.length > 0) {
    return { native: undefined, status: { loaded: false, path, reason: `addon lacks ${missing.join(', ')}` } };
  }
  const native = addon as NativeTransfer;
  try {
    return { native, status: { loaded: true, path, version: native.version() } };
  } catch (err) {
    return { native: undefined, status: { loaded: false, path, reason: `addon version() failed: ${String(err)}` } };
  }
}

let cached: { native: NativeTransfer | undefined; status: NativeStatus } | undefined;

/** The addon, loaded once per process; undefined when it is not built or ARMATURE_TRANSFER_NATIVE=off. */
export function loadNative(): NativeTransfer | undefined {
  cached ??= loadNativeAt(NATIVE_ADDON_PATH);
  return cached.native;
}

/** Whether loadNative() found the addon, and why not. */
export function nativeStatus(): NativeStatus {
  loadNative();
  return { ...cached!.status };
}

/** The errno name (`ENOENT`, `EEXIST`, ...) or Node error code an addon call threw, if any. */
export function nativeErrorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
