// The contract of build/Release/armature_transfer.node, as TypeScript. libs/transfer declares
// the same interface at its boundary; a change here is a change to that contract.

/** Exports of the armature-transfer N-API addon (zero-copy host shared memory, block ops). */
export interface NativeTransfer {
  /** Addon version string, e.g. "armature-transfer 0.1.0 (napi 8)". */
  version(): string;
  /**
   * Creates (O_CREAT|O_EXCL, mode 0600) a POSIX shared-memory object `name` ("/" then 1..253 bytes, no
   * other "/") of `bytes` bytes, reserves its pages, maps it read-write and returns an external
   * ArrayBuffer over the mapping (zero-filled). Throws Error with `code` = errno name: 'EEXIST',
   * 'EINVAL' (bad name or size, or larger than this Node.js can expose), 'ENOSPC' (/dev/shm full), ...
   */
  shmCreate(name: string, bytes: number): ArrayBuffer;
  /** Maps the first `bytes` bytes of an existing object read-write; throws 'ENOENT' if missing, 'ERANGE' if smaller. */
  shmOpen(name: string, bytes: number): ArrayBuffer;
  /** Removes the name (shm_unlink); mappings stay valid until unmapped. Idempotent: ENOENT is not an error. */
  shmUnlink(name: string): void;
  /** Detaches (byteLength becomes 0) and unmaps a buffer from shmCreate/shmOpen. Idempotent. GC unmaps unclosed ones. */
  shmClose(buffer: ArrayBuffer): void;
  /**
   * For each i copies blockBytes bytes from src at srcIds[i]*blockBytes to dst at dstIds[i]*blockBytes.
   * Every id is checked first (RangeError, nothing copied). Contiguous runs are merged into one memcpy;
   * when src and dst share memory, pairs are copied one by one in order with memmove.
   */
  copyBlocks(
    src: ArrayBuffer | SharedArrayBuffer,
    srcIds: Uint32Array,
    dst: ArrayBuffer | SharedArrayBuffer,
    dstIds: Uint32Array,
    blockBytes: number,
  ): void;
  /** out[i] = armature-mx64 checksum (README.md) of block ids[i]; every id is checked first (RangeError). */
  checksumBlocks(
    buffer: ArrayBuffer | SharedArrayBuffer,
    ids: Uint32Array,
    blockBytes: number,
    out: BigUint64Array,
  ): void;
}

/** Error thrown by the shm* calls: shaped like Node's own system errors. */
export interface NativeTransferSystemError extends Error {
  /** errno name, e.g. 'EEXIST'. */
  code: string;
  /** Negative errno, as in Node.js. */
  errno: number;
  /** The failing call, e.g. 'shm_open'. */
  syscall: string;
  /** The shared-memory name. */
  path?: string;
}
