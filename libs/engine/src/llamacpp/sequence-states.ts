// The llama.cpp engine's side of disaggregated serving. node-llama-cpp moves KV only as a
// whole sequence state (saved to and loaded from a file), so a prefill's state is copied
// into staging blocks of the worker's transfer region and pinned there until the decode
// worker has pulled it; a decode worker reserves staging blocks for a remote state, and
// once the bytes are in restores them into a context sequence. It owns the staging
// blocks, the pins and the reservations; it does not choose slots or evaluate tokens.
// The state files live in memory (/dev/shm) where the system has it, so a state crosses
// no disk on its way between the context and the transfer region.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LlamaContextSequence } from 'node-llama-cpp';
import { ArmatureError, isProcessAlive } from '@armature/runtime';
import type { ImportPlan } from '../types.js';

const STATE_DIR_PREFIX = 'armature-llamacpp-';
const OWNED_STATE_DIR = /^armature-llamacpp-(\d+)-/;

/**
 * A private directory for state files, named after this process: in /dev/shm (memory) when
 * it can be made there, else the temp dir. Directories there whose owner process is gone
 * (a worker killed before it could clean up) are removed first.
 */
function stateDirectory(): string {
  for (const base of ['/dev/shm', tmpdir()]) {
    sweepStateDirectories(base);
    try {
      return mkdtempSync(join(base, `${STATE_DIR_PREFIX}${process.pid}-`));
    } catch {
      // not there, or not writable: the next one
    }
  }
  return mkdtempSync(join(tmpdir(), `${STATE_DIR_PREFIX}${process.pid}-`)); // throws the real error
}

/** Best effort: what cannot be read or removed stays. */
function sweepStateDirectories(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(OWNED_STATE_DIR.exec(name)?.[1]);
    if (!pid || pid === process.pid || isProcessAlive(pid)) continue;
    try {
      rmSync(join(base, name), { recursive: true, force: true });
    } catch {
      // another process's, or removed meanwhile
    }
  }
}

/** Bytes per staging block of an exported sequence state. */
export const STATE_BLOCK_BYTES = 256 * 1024;

/** A state held in staging blocks: the blocks in order and the state's exact size. */
export interface StagedState {
  blocks: number[];
  bytes: number;
}

/** Staging blocks reserved for a remote prefill's state, and the prompt it must hold. */
export interface Reservation extends StagedState {
  tokens: number[];
  committed: boolean;
}

/** A free list of staging blocks over the transfer region's memory. */
class Staging {
  private readonly free: number[] = [];

  constructor(
    readonly memory: Uint8Array,
    totalBlocks: number,
  ) {
    for (let id = totalBlocks - 1; id >= 0; id--) this.free.push(id);
  }

  get freeBlocks(): number {
    return this.free.length;
  }

  alloc(bytes: number): number[] | undefined {
    const n = Math.max(1, Math.ceil(bytes / STATE_BLOCK_BYTES));
    if (n > this.free.length) return undefined;
    return this.free.splice(this.free.length - n, n).reverse();
  }

  release(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) this.free.push(blocks[i]!);
  }

  write(blocks: readonly number[], bytes: Uint8Array): void {
    blocks.forEach((id, i) => {
      this.memory.set(bytes.subarray(i * STATE_BLOCK_BYTES, (i + 1) * STATE_BLOCK_BYTES), id * STATE_BLOCK_BYTES);
    });
  }

  read(blocks: readonly number[], size: number): Uint8Array {
    const out = new Uint8Array(size);
    blocks.forEach((id, i) => {
      const n = Math.min(STATE_BLOCK_BYTES, size - i * STATE_BLOCK_BYTES);
      out.set(this.memory.subarray(id * STATE_BLOCK_BYTES, id * STATE_BLOCK_BYTES + n), i * STATE_BLOCK_BYTES);
    });
    return out;
  }
}

export class SequenceStates {
  private staging: Staging | undefined;
  private readonly pins = new Map<string, StagedState>();
  private readonly imports = new Map<string, Reservation>();
  private readonly dir = stateDirectory();
  private files = 0;

  constructor(readonly totalBlocks: number) {}

  /** Whether the transfer region's memory is attached. */
  get attached(): boolean {
    return this.staging !== undefined;
  }

  /** Free staging blocks (tests and diagnostics); 0 before memory is attached. */
  get freeBlocks(): number {
    return this.staging?.freeBlocks ?? 0;
  }

  attach(memory: Uint8Array): void {
    if (this.staging)
      throw new ArmatureError('failed_precondition', 'kv_memory_attached', 'KV memory is attached already');
    const needed = this.totalBlocks * STATE_BLOCK_BYTES;
    if (memory.byteLength < needed)
      throw new ArmatureError('invalid_argument', 'kv_memory_too_small', `need ${needed} bytes of staging memory`);
    this.staging = new Staging(memory, this.totalBlocks);
  }

  /** The staging area; throws `no_kv_memory` before attach(). */
  private area(): Staging {
    if (!this.staging)
      throw new ArmatureError('failed_precondition', 'no_kv_memory', 'no transfer region is attached to this engine');
    return this.staging;
  }

  /** Whether a pin or a reservation holds `requestId`. */
  holds(requestId: string): boolean {
    return this.pins.has(requestId) || this.imports.has(requestId);
  }

  /** Whether `requestId` has an import whose bytes are in place. */
  hasCommittedImport(requestId: string): boolean {
    return this.imports.get(requestId)?.committed === true;
  }

  /** Saves the sequence's state (exactly the prompt) into staging blocks pinned under `requestId`. */
  async export(seq: LlamaContextSequence, requestId: string): Promise<void> {
    const staging = this.area();
    const file = join(this.dir, `export-${++this.files}.state`);
    try {
      await seq.saveStateToFile(file);
      const bytes = await readFile(file);
      const blocks = staging.alloc(bytes.byteLength);
      if (!blocks) {
        throw new ArmatureError(
          'resource_exhausted',
          'transfer_staging_full',
          `no room to stage a ${bytes.byteLength}-byte sequence state (${staging.freeBlocks} free blocks)`,
        );
      }
      staging.write(blocks, bytes);
      this.pins.set(requestId, { blocks, bytes: bytes.byteLength });
    } finally {
      await unlink(file).catch(() => {});
    }
  }

  pin(requestId: string): StagedState | undefined {
    return this.pins.get(requestId);
  }

  release(requestId: string): boolean {
    const pin = this.pins.get(requestId);
    if (!pin) return false;
    this.pins.delete(requestId);
    this.area().release(pin.blocks);
    return true;
  }

  pinned(): { requests: number; blocks: number } {
    let blocks = 0;
    for (const pin of this.pins.values()) blocks += pin.blocks.length;
    return { requests: this.pins.size, blocks };
  }

  /** Staging blocks for a `bytes`-byte remote state; undefined when they do not suffice. */
  reserve(requestId: string, tokenIds: readonly number[], bytes: number): ImportPlan | undefined {
    const blocks = this.area().alloc(bytes);
    if (!blocks) return undefined;
    this.imports.set(requestId, { blocks, bytes, tokens: [...tokenIds], committed: false });
    return { blockIndices: blocks.map((_, i) => i), localBlockIds: blocks, cachedBlocks: 0 };
  }

  commit(requestId: string): void {
    const reservation = this.imports.get(requestId);
    if (!reservation) throw new ArmatureError('not_found', 'unknown_import', `no KV import reserved for ${requestId}`);
    reservation.committed = true;
  }

  cancel(requestId: string): void {
    const reservation = this.imports.get(requestId);
    if (!reservation) return;
    this.imports.delete(requestId);
    this.area().release(reservation.blocks);
  }

  /** Hands a committed reservation to a request; throws `import_mismatch` for another prompt (freeing it). */
  take(requestId: string, tokenIds: readonly number[]): Reservation {
    const reservation = this.imports.get(requestId)!;
    this.imports.delete(requestId);
    const same = reservation.tokens.length === tokenIds.length && reservation.tokens.every((t, i) => t === tokenIds[i]);
    if (!same) {
      this.drop(reservation);
      throw new ArmatureError(
        'invalid_argument',
        'import_mismatch',
        `request ${requestId} differs from the prompt whose KV was imported`,
        { param: 'prompt' },
      );
    }
    return reservation;
  }

  /** Frees a taken reservation that will not be restored. */
  drop(reservation: Reservation): void {
    this.area().release(reservation.blocks);
  }

  /**
   * Restores a taken reservation's state into `seq` and frees its blocks. Returns whether
   * the sequence now holds exactly the reservation's prompt; when not it is cleared.
   */
  async restore(seq: LlamaContextSequence, reservation: Reservation): Promise<boolean> {
    const file = join(this.dir, `import-${++this.files}.state`);
    try {
      await writeFile(file, this.area().read(reservation.blocks, reservation.bytes));
      this.drop(reservation);
      await seq.loadStateFromFile(file, { acceptRisk: true });
    } finally {
      await unlink(file).catch(() => {});
    }
    const held = seq.contextTokens;
    const prompt = reservation.tokens;
    if (held.length === prompt.length && held.every((t, i) => Number(t) === prompt[i])) return true;
    await seq.clearHistory();
    return false;
  }

  /** Removes the scratch directory of state files. */
  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
