// The approximate KV index: for workers that publish no KV events (Dynamo's approximate
// mode, SGLang-style cache-aware routing), the router predicts that a worker holds the
// blocks of every prompt it was sent, for a while. Predictions live in a KvIndexer (our
// hashes, device tier) and expire in FIFO order: the TTL is one constant, so insertion order
// is expiry order and expiring is popping a queue, never scanning.
import { KvIndexer } from './kv-indexer.js';
import type { OverlapScores } from './types.js';
import { U64Table } from './u64-table.js';

export interface ApproxIndexerOptions {
  /** How long a prediction lives, in the caller's clock units (ms); default 120_000. */
  ttlMs?: number;
  /** Most predicted (worker, block) pairs before the oldest are dropped; default 2^20. */
  maxBlocks?: number;
  /** Pruning drops the oldest predictions until size <= pruneFraction * maxBlocks; default 0.8. */
  pruneFraction?: number;
}

// An expiry (a float64) kept in a table's two value words.
const EXPIRY = new Float64Array(1);
const EXPIRY_WORDS = new Uint32Array(EXPIRY.buffer);

/** Predicted KV residency from routing decisions, with a TTL and a size bound. */
export class ApproxKvIndexer {
  private readonly ttlMs: number;
  private readonly maxBlocks: number;
  private readonly pruneTarget: number;
  private readonly index = new KvIndexer();
  /** Per worker slot: our hash -> latest expiry of its prediction. */
  private readonly expiries: (U64Table | undefined)[] = [];
  // The FIFO of predictions as recorded, a ring: worker slot, hash limbs, expiry. Entries
  // whose (worker, block) was refreshed since are stale and skipped when popped.
  private fifoSlot = new Int32Array(1024);
  private fifoLo = new Uint32Array(1024);
  private fifoHi = new Uint32Array(1024);
  private fifoExpiry = new Float64Array(1024);
  private fifoHead = 0;
  private fifoLength = 0;
  private predicted = 0;
  /** The latest `now` seen: time never goes backwards here, so FIFO order stays expiry order. */
  private clock = -Infinity;

  /** An empty index; see ApproxIndexerOptions for the defaults. */
  constructor(options: ApproxIndexerOptions = {}) {
    const ttlMs = options.ttlMs ?? 120_000;
    const maxBlocks = options.maxBlocks ?? 2 ** 20;
    const pruneFraction = options.pruneFraction ?? 0.8;
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be a positive number, got ${ttlMs}`);
    if (!Number.isSafeInteger(maxBlocks) || maxBlocks < 1) {
      throw new RangeError(`maxBlocks must be a positive integer, got ${maxBlocks}`);
    }
    if (!(pruneFraction >= 0 && pruneFraction < 1)) {
      throw new RangeError(`pruneFraction must be in [0, 1), got ${pruneFraction}`);
    }
    this.ttlMs = ttlMs;
    this.maxBlocks = maxBlocks;
    this.pruneTarget = Math.floor(pruneFraction * maxBlocks);
  }

  /** Predicted (worker, block) pairs. */
  get size(): number {
    return this.predicted;
  }

  /** The worker is predicted to hold these blocks (our sequence hashes, limb pairs) from `now` until now + ttlMs; re-recording refreshes. */
  record(instanceId: string, dpRank: number, hashes: Uint32Array, blockCount: number, now: number): void {
    if (!(blockCount >= 0 && 2 * blockCount <= hashes.length)) {
      throw new RangeError(`blockCount must be in [0, ${hashes.length >>> 1}], got ${blockCount}`);
    }
    this.expire(now);
    if (blockCount === 0) return;
    this.index.setHashScheme(instanceId, 'armature');
    const slot = this.index.slotFor(instanceId, dpRank);
    let table = this.expiries[slot];
    if (!table) {
      table = new U64Table(2);
      this.expiries[slot] = table;
    }
    EXPIRY[0] = this.clock + this.ttlMs;
    const expiry = EXPIRY[0];
    const expiryLo = EXPIRY_WORDS[0]!;
    const expiryHi = EXPIRY_WORDS[1]!;
    for (let i = 0; i < blockCount; i++) {
      const lo = hashes[2 * i]!;
      const hi = hashes[2 * i + 1]!;
      const at = table.insert(lo, hi);
      if (table.inserted) {
        this.index.storeOnDevice(slot, lo, hi);
        this.predicted++;
      } else if (table.data[at * 4 + 2] === expiryLo && table.data[at * 4 + 3] === expiryHi) {
        // Already queued with this very expiry: one live FIFO entry per prediction, always.
        continue;
      }
      table.data[at * 4 + 2] = expiryLo;
      table.data[at * 4 + 3] = expiryHi;
      this.push(slot, lo, hi, expiry);
    }
    if (this.predicted > this.maxBlocks) {
      while (this.predicted > this.pruneTarget && this.fifoLength > 0) this.popFront();
    }
  }

  /** Each worker's predicted prefix of a query; expires first, and credits every block to device. */
  findMatches(hashes: Uint32Array, blockCount: number, now: number): OverlapScores {
    this.expire(now);
    return this.index.findMatches(hashes, blockCount);
  }

  /** Drops predictions whose TTL has passed at `now`; returns how many. */
  expire(now: number): number {
    if (now > this.clock) this.clock = now;
    const before = this.predicted;
    while (this.fifoLength > 0 && this.fifoExpiry[this.fifoHead]! <= this.clock) this.popFront();
    return before - this.predicted;
  }

  /** Blocks predicted for a worker, summed over ranks when dpRank is undefined. */
  blocksOf(instanceId: string, dpRank?: number): number {
    return this.index.blocksOf(instanceId, dpRank);
  }

  /** Forgets every prediction for an instance's ranks. */
  removeWorker(instanceId: string): void {
    for (const slot of this.index.slotsOf(instanceId)) {
      this.predicted -= this.expiries[slot]?.size ?? 0;
      this.expiries[slot] = undefined;
    }
    this.index.removeWorker(instanceId);
  }

  /** Pops the oldest FIFO entry, dropping its prediction unless it was refreshed since. */
  private popFront(): void {
    const head = this.fifoHead;
    const slot = this.fifoSlot[head]!;
    const lo = this.fifoLo[head]!;
    const hi = this.fifoHi[head]!;
    const expiry = this.fifoExpiry[head]!;
    this.fifoHead = head + 1 === this.fifoSlot.length ? 0 : head + 1;
    this.fifoLength--;
    const table = this.expiries[slot];
    if (!table) return;
    const at = table.find(lo, hi);
    if (at < 0 || this.expiryAt(table, at) !== expiry) return;
    table.removeAt(at);
    this.index.removeFromDevice(slot, lo, hi);
    this.predicted--;
  }

  private expiryAt(table: U64Table, at: number): number {
    EXPIRY_WORDS[0] = table.data[at * 4 + 2]!;
    EXPIRY_WORDS[1] = table.data[at * 4 + 3]!;
    return EXPIRY[0]!;
  }

  private push(slot: number, lo: number, hi: number, expiry: number): void {
    if (this.fifoLength === this.fifoSlot.length) this.makeRoom();
    let tail = this.fifoHead + this.fifoLength;
    if (tail >= this.fifoSlot.length) tail -= this.fifoSlot.length;
    this.fifoSlot[tail] = slot;
    this.fifoLo[tail] = lo;
    this.fifoHi[tail] = hi;
    this.fifoExpiry[tail] = expiry;
    this.fifoLength++;
  }

  /**
   * A full FIFO is compacted (stale entries dropped) when most of it is stale, as under
   * constant refreshes of the same prompts; otherwise it doubles.
   */
  private makeRoom(): void {
    const capacity = this.fifoSlot.length;
    const compact = this.fifoLength > 2 * this.predicted;
    const size = compact ? capacity : capacity * 2;
    const slots = new Int32Array(size);
    const los = new Uint32Array(size);
    const his = new Uint32Array(size);
    const expiries = new Float64Array(size);
    let kept = 0;
    for (let i = 0, at = this.fifoHead; i < this.fifoLength; i++, at = at + 1 === capacity ? 0 : at + 1) {
      const slot = this.fifoSlot[at]!;
      const lo = this.fifoLo[at]!;
      const hi = this.fifoHi[at]!;
      const expiry = this.fifoExpiry[at]!;
      if (compact) {
        const table = this.expiries[slot];
        const found = table ? table.find(lo, hi) : -1;
        if (found < 0 || this.expiryAt(table!, found) !== expiry) continue;
      }
      slots[kept] = slot;
      los[kept] = lo;
      his[kept] = hi;
      expiries[kept] = expiry;
      kept++;
    }
    this.fifoSlot = slots;
    this.fifoLo = los;
    this.fifoHi = his;
    this.fifoExpiry = expiries;
    this.fifoHead = 0;
    this.fifoLength = kept;
  }
}
