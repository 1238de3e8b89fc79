// The precise KV indexer: which workers hold which prefix blocks, in which storage tier,
// kept from the engines' KV events, and how deep each worker's cached prefix of a prompt
// goes. It is the heart of KV-cache-aware routing, asked once per request and fed every
// engine step, so the hot paths touch typed arrays only: the shared tree of holders
// (block-holders.ts) and each worker's own record (worker-blocks.ts). This file owns the
// event semantics: hash schemes, recomputing our hashes for opaque engines, orphans,
// malformed events and the counters, and turning walks into OverlapScores.
import type { BlockRemoved, BlockStored, KvEvent, KvEventBatch, KvMedium } from '../events.js';
import { blockHashLimbs, blockSeedLimbs, chainHashLimbs, hashSalt } from '../hashing.js';
import { XXH3_RESULT } from '../xxh3.js';
import { BlockHolders, DEVICE, DISK, GONE, HOST, NOT_HELD, REMOTE, STILL_HELD } from './block-holders.js';
import type { IndexerCounters, KvHashScheme, OverlapScores, WorkerOverlap } from './types.js';
import { WorkerBlocks } from './worker-blocks.js';

/** Data-parallel ranks index a per-instance array; real deployments use a handful. */
const MAX_DP_RANK = 4095;

function tierOf(medium: KvMedium): number {
  switch (medium) {
    case 'device':
      return DEVICE;
    case 'host':
      return HOST;
    case 'disk':
      return DISK;
    case 'remote':
      return REMOTE;
    default:
      return -1;
  }
}

function validRank(dpRank: number): boolean {
  return Number.isInteger(dpRank) && dpRank >= 0 && dpRank <= MAX_DP_RANK;
}

// bigint -> limbs through one typed-array cell: the store reduces modulo 2^64 and two loads
// give the limbs, with no bigint arithmetic (measured ~10x faster than shifts and masks).
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const CELL = new BigUint64Array(1);
const CELL_WORDS = new Uint32Array(CELL.buffer);
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;

const BASE_SEED = new Uint32Array(2);
blockSeedLimbs(undefined, BASE_SEED);

class InstanceRecord {
  readonly ranks: (WorkerBlocks | undefined)[] = [];
  constructor(public scheme: KvHashScheme) {}
}

/** A precise KV index fed by engine KV events; see block-holders.ts for the layout. */
export class KvIndexer {
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly slots: (WorkerBlocks | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly holders = new BlockHolders();
  private readonly saltSeeds = new Map<string, Uint32Array>();
  private readonly counts: IndexerCounters = {
    eventsApplied: 0,
    blocksStored: 0,
    blocksRemoved: 0,
    orphanEvents: 0,
    malformedEvents: 0,
    unknownRemovals: 0,
  };

  /** Counters since creation. */
  get counters(): Readonly<IndexerCounters> {
    return this.counts;
  }

  /** Distinct our-hashes held by any worker in any tier. */
  get nodeCount(): number {
    return this.holders.size;
  }

  /** Declares how an instance's events name blocks; instances not declared are 'opaque'. */
  setHashScheme(instanceId: string, scheme: KvHashScheme): void {
    if (scheme !== 'armature' && scheme !== 'opaque') throw new RangeError(`unknown KV hash scheme: ${String(scheme)}`);
    const instance = this.instances.get(instanceId);
    if (instance) instance.scheme = scheme;
    else this.instances.set(instanceId, new InstanceRecord(scheme));
  }

  /** The scheme an instance's events are read with. */
  hashScheme(instanceId: string): KvHashScheme {
    return this.instances.get(instanceId)?.scheme ?? 'opaque';
  }

  /** Applies one published batch; its dpRank (default 0) names the worker. */
  applyBatch(instanceId: string, batch: KvEventBatch): void {
    const dpRank = batch.dpRank ?? 0;
    const events = batch.events;
    for (let i = 0; i < events.length; i++) this.applyEvent(instanceId, dpRank, events[i]!);
  }

  /**
   * Applies one event from worker (instanceId, dpRank); false when it was skipped (see
   * counters). Never throws: an event of the wrong shape counts as malformed, possibly after
   * some of its blocks were applied.
   */
  applyEvent(instanceId: string, dpRank: number, event: KvEvent): boolean {
    let applied = false;
    try {
      if (!validRank(dpRank)) {
        this.counts.malformedEvents++;
      } else if (event.type === 'BlockStored') {
        applied = this.applyStored(instanceId, dpRank, event);
      } else if (event.type === 'BlockRemoved') {
        applied = this.applyRemoved(instanceId, dpRank, event);
      } else if (event.type === 'AllBlocksCleared') {
        const worker = this.instances.get(instanceId)?.ranks[dpRank];
        if (worker) worker.clear(this.holders);
        applied = true;
      } else {
        this.counts.malformedEvents++;
      }
    } catch {
      // A hash that is not a bigint, token ids that are not an array: a decoder's bug, not ours.
      this.counts.malformedEvents++;
      return false;
    }
    if (applied) this.counts.eventsApplied++;
    return applied;
  }

  /** Empties a worker's cache in every tier: one rank, or all of the instance's ranks when dpRank is undefined. */
  clearWorker(instanceId: string, dpRank?: number): void {
    const instance = this.instances.get(instanceId);
    if (!instance) return;
    for (const worker of instance.ranks) {
      if (worker && (dpRank === undefined || worker.dpRank === dpRank)) worker.clear(this.holders);
    }
  }

  /** Forgets an instance: every rank's blocks, its hash scheme, and its worker slots (freed for reuse). */
  removeWorker(instanceId: string): void {
    const instance = this.instances.get(instanceId);
    if (!instance) return;
    for (const worker of instance.ranks) {
      if (!worker) continue;
      worker.clear(this.holders);
      this.slots[worker.slot] = undefined;
      this.freeSlots.push(worker.slot);
    }
    this.instances.delete(instanceId);
  }

  /** Distinct our-hashes a worker holds in any tier, summed over ranks when dpRank is undefined. */
  blocksOf(instanceId: string, dpRank?: number): number {
    const instance = this.instances.get(instanceId);
    if (!instance) return 0;
    if (dpRank !== undefined) return instance.ranks[dpRank]?.held ?? 0;
    let held = 0;
    for (const worker of instance.ranks) held += worker?.held ?? 0;
    return held;
  }

  /** Every worker that has stored blocks since it was last removed, cleared ones included. */
  workers(): { instanceId: string; dpRank: number }[] {
    const list: { instanceId: string; dpRank: number }[] = [];
    for (const worker of this.slots) if (worker) list.push({ instanceId: worker.instanceId, dpRank: worker.dpRank });
    return list;
  }

  /**
   * Each worker's cached prefix of a query given as sequence-hash limb pairs (blockCount
   * defaults to all of them): depth and the fastest tier of each matched block.
   */
  findMatches(hashes: Uint32Array, blockCount: number = hashes.length >>> 1): OverlapScores {
    if (!(blockCount >= 0 && 2 * blockCount <= hashes.length)) {
      throw new RangeError(`blockCount must be in [0, ${hashes.length >>> 1}], got ${blockCount}`);
    }
    const workers: WorkerOverlap[] = [];
    const scores: OverlapScores = { queryBlocks: blockCount, workers };
    const holders = this.holders;
    if (!holders.match(hashes, blockCount)) return scores;
    const matched = holders.matched;
    const depthOf = holders.depthOf;
    const credit = holders.credit;
    for (let w = 0; w < matched.length; w++) {
      let bits = matched[w]!;
      while (bits !== 0) {
        const bit = bits & -bits;
        const slot = (w << 5) + 31 - Math.clz32(bit);
        bits ^= bit;
        const worker = this.slots[slot]!;
        const depth = depthOf[slot]!;
        const host = credit[3 * slot]!;
        const disk = credit[3 * slot + 1]!;
        const remote = credit[3 * slot + 2]!;
        workers.push({
          instanceId: worker.instanceId,
          dpRank: worker.dpRank,
          depth,
          tiers: { device: depth - host - disk - remote, host, disk, remote },
        });
      }
    }
    return scores;
  }

  // ---- Limb-level access for the approximate indexer (internal to libs/kv) -------------

  /** @internal The worker slot of (instanceId, dpRank), created when absent. */
  slotFor(instanceId: string, dpRank: number): number {
    if (!validRank(dpRank)) throw new RangeError(`dpRank must be an integer in [0, ${MAX_DP_RANK}], got ${dpRank}`);
    return this.workerFor(instanceId, dpRank).slot;
  }

  /** @internal The slots of an instance's ranks. */
  slotsOf(instanceId: string): number[] {
    const instance = this.instances.get(instanceId);
    const slots: number[] = [];
    if (instance) for (const worker of instance.ranks) if (worker) slots.push(worker.slot);
    return slots;
  }

  /** @internal Worker `slot` holds our hash (lo, hi) on device. */
  storeOnDevice(slot: number, lo: number, hi: number): void {
    this.hold(this.slots[slot]!, lo, hi, DEVICE);
  }

  /** @internal Worker `slot` no longer holds our hash (lo, hi) on device. */
  removeFromDevice(slot: number, lo: number, hi: number): void {
    const worker = this.slots[slot]!;
    if (worker.map) {
      const at = worker.map.find(lo, hi);
      if (at >= 0) this.release(worker, at, lo, hi, DEVICE, true);
    } else if (this.holders.remove(slot, lo, hi, DEVICE) === GONE) {
      worker.held--;
    }
  }

  // ---- Events ---------------------------------------------------------------------------

  private applyStored(instanceId: string, dpRank: number, event: BlockStored): boolean {
    const tier = tierOf(event.medium);
    if (tier < 0) {
      this.counts.malformedEvents++;
      return false;
    }
    const instance = this.instances.get(instanceId);
    const engineHashes = event.blockHashes;
    const count = engineHashes.length;
    if (instance !== undefined && instance.scheme === 'armature') {
      const worker = instance.ranks[dpRank] ?? this.workerFor(instanceId, dpRank);
      for (let i = 0; i < count; i++) {
        CELL[0] = engineHashes[i]!;
        this.hold(worker, CELL_WORDS[LO]!, CELL_WORDS[HI]!, tier);
      }
      this.counts.blocksStored += count;
      return true;
    }

    const blockSize = event.blockSize;
    const tokens = event.tokenIds;
    if (!Number.isSafeInteger(blockSize) || blockSize < 1 || tokens.length < count * blockSize) {
      this.counts.malformedEvents++;
      return false;
    }
    let worker = instance?.ranks[dpRank];
    let parentLo = 0;
    let parentHi = 0;
    const hasParent = event.parentBlockHash !== null;
    if (hasParent) {
      CELL[0] = event.parentBlockHash!;
      const engineLo = CELL_WORDS[LO]!;
      const engineHi = CELL_WORDS[HI]!;
      const map = worker?.map;
      if (map) {
        const at = map.find(engineLo, engineHi);
        if (at >= 0) {
          parentLo = map.data[at * 4 + 2]!;
          parentHi = map.data[at * 4 + 3]!;
        } else {
          worker = undefined;
        }
      } else if (worker === undefined || !this.holders.holds(worker.slot, engineLo, engineHi)) {
        // A log-keeping worker maps exactly the blocks it holds, each to itself.
        worker = undefined;
      } else {
        parentLo = engineLo;
        parentHi = engineHi;
      }
      if (worker === undefined) {
        this.counts.orphanEvents++;
        return false;
      }
    }
    worker ??= this.workerFor(instanceId, dpRank);
    worker.useMap(this.holders);
    const seed = this.seedFor(event.loraName);
    const seedLo = seed[0]!;
    const seedHi = seed[1]!;
    for (let i = 0; i < count; i++) {
      blockHashLimbs(tokens, i * blockSize, blockSize, seedHi, seedLo);
      if (i > 0 || hasParent) chainHashLimbs(parentLo, parentHi, XXH3_RESULT[0]!, XXH3_RESULT[1]!);
      parentLo = XXH3_RESULT[0]!;
      parentHi = XXH3_RESULT[1]!;
      if (this.holders.add(worker.slot, parentLo, parentHi, tier)) worker.held++;
      CELL[0] = engineHashes[i]!;
      worker.mapEngine(CELL_WORDS[LO]!, CELL_WORDS[HI]!, parentLo, parentHi, this.holders);
    }
    this.counts.blocksStored += count;
    return true;
  }

  private applyRemoved(instanceId: string, dpRank: number, event: BlockRemoved): boolean {
    const tier = tierOf(event.medium);
    if (tier < 0) {
      this.counts.malformedEvents++;
      return false;
    }
    const engineHashes = event.blockHashes;
    const instance = this.instances.get(instanceId);
    const worker = instance?.ranks[dpRank];
    if (worker === undefined) {
      this.counts.unknownRemovals += engineHashes.length;
      return true;
    }
    const armature = instance!.scheme === 'armature';
    let removed = 0;
    for (let i = 0; i < engineHashes.length; i++) {
      CELL[0] = engineHashes[i]!;
      const engineLo = CELL_WORDS[LO]!;
      const engineHi = CELL_WORDS[HI]!;
      const map = worker.map;
      if (map === null) {
        // A log-keeping worker maps exactly the blocks it holds, each to itself.
        const outcome = this.holders.remove(worker.slot, engineLo, engineHi, tier);
        if (outcome === NOT_HELD) continue;
        if (outcome === GONE) worker.held--;
        removed++;
        continue;
      }
      const at = map.find(engineLo, engineHi);
      if (at < 0) continue;
      const lo = armature ? engineLo : map.data[at * 4 + 2]!;
      const hi = armature ? engineHi : map.data[at * 4 + 3]!;
      this.release(worker, at, lo, hi, tier, armature);
      removed++;
    }
    this.counts.blocksRemoved += removed;
    this.counts.unknownRemovals += engineHashes.length - removed;
    return true;
  }

  // ---- Workers --------------------------------------------------------------------------

  /** Marks our hash (lo, hi) held by `worker` in `tier`, as an 'armature' event would. */
  private hold(worker: WorkerBlocks, lo: number, hi: number, tier: number): void {
    const holders = this.holders;
    const fresh = holders.add(worker.slot, lo, hi, tier);
    if (fresh) worker.held++;
    if (worker.map) worker.mapEngine(lo, hi, lo, hi, holders);
    else if (fresh) worker.logHeld(lo, hi, holders);
  }

  /**
   * Removes our hash (lo, hi) from `tier` for a map-keeping worker, whose entry for it is in
   * map slot `at`; the entry goes once the worker holds the block in no tier.
   */
  private release(worker: WorkerBlocks, at: number, lo: number, hi: number, tier: number, armature: boolean): void {
    const holders = this.holders;
    const outcome = holders.remove(worker.slot, lo, hi, tier);
    if (outcome === GONE) worker.held--;
    if (outcome === STILL_HELD) return;
    const map = worker.map!;
    // Read as 'armature' after mapping as 'opaque', the entry may point at a block still held.
    if (armature) worker.keepIfHeld(map.data[at * 4 + 2]!, map.data[at * 4 + 3]!, holders);
    map.removeAt(at);
  }

  private workerFor(instanceId: string, dpRank: number): WorkerBlocks {
    let instance = this.instances.get(instanceId);
    if (!instance) {
      instance = new InstanceRecord('opaque');
      this.instances.set(instanceId, instance);
    }
    const existing = instance.ranks[dpRank];
    if (existing) return existing;
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.slots.length;
    this.holders.reserveSlots(slot + 1);
    const worker = new WorkerBlocks(slot, instanceId, dpRank, instance.scheme !== 'armature');
    this.slots[slot] = worker;
    while (instance.ranks.length < dpRank) instance.ranks.push(undefined);
    instance.ranks[dpRank] = worker;
    return worker;
  }

  /** Seed limbs [lo, hi] of blockHash for a LoRA name (null or empty: the base model). */
  private seedFor(loraName: string | null): Uint32Array {
    if (!loraName) return BASE_SEED;
    let seed = this.saltSeeds.get(loraName);
    if (!seed) {
      seed = new Uint32Array(2);
      blockSeedLimbs(hashSalt({ loraName }), seed);
      this.saltSeeds.set(loraName, seed);
    }
    return seed;
  }
}
