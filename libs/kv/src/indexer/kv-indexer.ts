// The KV indexer: which workers hold which prefix blocks, in which storage tier, kept from
// the engines' KV events, and how deep each worker's cached prefix of a prompt goes. It is
// the heart of KV-cache-aware routing, asked once per request and fed every engine step,
// so it is built like Dynamo's radix tree but flatter:
//
// - Sequence hashes chain over the whole prefix, so a block's hash names its whole path and
//   the radix tree is implicit: one global table maps our hash -> node, and walking a prompt
//   is one probe per block, with no per-node child maps.
// - A node is a bitset of worker slots per tier (words per node = ceil(slots / 32)), so a
//   walk ANDs the still-matching workers with each node's holders; the host, disk and remote
//   tiers are allocated only once some event names them.
// - Each worker keeps its own table of engine hash -> our hash (a plain set of our hashes
//   while its events carry our hashes), to translate opaque engine hashes and to enumerate
//   the worker's blocks when it is cleared or removed.
import type { BlockRemoved, BlockStored, KvEvent, KvEventBatch, KvMedium } from '../events.js';
import { blockHashLimbs, blockSeedLimbs, chainHashLimbs, hashSalt } from '../hashing.js';
import { XXH3_RESULT } from '../xxh3.js';
import type { IndexerCounters, KvHashScheme, OverlapScores, WorkerOverlap } from './types.js';
import { U64Table } from './u64-table.js';

// Tier indices, fastest first (KV_MEDIUMS order).
const DEVICE = 0;
const HOST = 1;
const DISK = 2;
const REMOTE = 3;
const TIERS = 4;

/** Data-parallel ranks index a per-instance array; real deployments use a handful. */
const MAX_DP_RANK = 4095;
const INITIAL_NODES = 1024;

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

// bigint -> limbs through one typed-array cell: the store reduces modulo 2^64 and the two
// loads are the limbs, with no bigint arithmetic (measured ~3x faster than shifts and masks).
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const CELL = new BigUint64Array(1);
const CELL_WORDS = new Uint32Array(CELL.buffer);
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = 1 - LO;

const BASE_SEED = new Uint32Array(2);
blockSeedLimbs(undefined, BASE_SEED);

/** One (instance, data-parallel rank): a slot in every node's bitsets. */
class WorkerRecord {
  /** Distinct our-hashes held in any tier. */
  held = 0;
  /**
   * Our hashes still held after their engine hash was re-pointed to another block (a
   * collision or an engine reusing a hash): unreachable through `blocks`, kept so clearing
   * the worker still finds them. Limb pairs; empty in practice.
   */
  strays: number[] | null = null;

  constructor(
    readonly slot: number,
    readonly instanceId: string,
    readonly dpRank: number,
    /** Engine hash -> our hash (2 value words), or a set of our hashes while they are the same. */
    public blocks: U64Table,
  ) {}
}

class InstanceRecord {
  readonly ranks: (WorkerRecord | undefined)[] = [];
  constructor(public scheme: KvHashScheme) {}
}

/** A precise KV index fed by engine KV events; see the module header for the layout. */
export class KvIndexer {
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly slots: (WorkerRecord | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  /** u32 words per node per tier: ceil(slot count / 32). */
  private words = 1;
  /** Our hash -> node id (one value word). */
  private readonly nodes = new U64Table(1, INITIAL_NODES);
  private nodeCapacity = INITIAL_NODES;
  /** Node ids below this were handed out at least once. */
  private nodeHighWater = 0;
  private readonly freeNodes: number[] = [];
  /** Per tier, node id * words + word -> worker bits; null until the tier is first used. */
  private readonly tiers: (Uint32Array | null)[] = [new Uint32Array(INITIAL_NODES), null, null, null];
  private readonly saltSeeds = new Map<string, Uint32Array>();
  private readonly counts: IndexerCounters = {
    eventsApplied: 0,
    blocksStored: 0,
    blocksRemoved: 0,
    orphanEvents: 0,
    malformedEvents: 0,
    unknownRemovals: 0,
  };
  // findMatches scratch, sized to the slot count.
  private active = new Uint32Array(1);
  private matched = new Uint32Array(1);
  private depthOf = new Int32Array(32);
  /** Per slot: blocks credited to host, disk, remote in the current walk. */
  private lowerCredit = new Int32Array(32 * 3);

  /** Counters since creation. */
  get counters(): Readonly<IndexerCounters> {
    return this.counts;
  }

  /** Distinct our-hashes held by any worker in any tier. */
  get nodeCount(): number {
    return this.nodes.size;
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

  /** Applies one event from worker (instanceId, dpRank); false when it was skipped (see counters). */
  applyEvent(instanceId: string, dpRank: number, event: KvEvent): boolean {
    if (!validRank(dpRank)) {
      this.counts.malformedEvents++;
      return false;
    }
    let applied: boolean;
    switch (event.type) {
      case 'BlockStored':
        applied = this.applyStored(instanceId, dpRank, event);
        break;
      case 'BlockRemoved':
        applied = this.applyRemoved(instanceId, dpRank, event);
        break;
      case 'AllBlocksCleared': {
        const worker = this.instances.get(instanceId)?.ranks[dpRank];
        if (worker) this.clearRecord(worker);
        applied = true;
        break;
      }
      default:
        applied = false;
    }
    if (applied) this.counts.eventsApplied++;
    else if (event.type !== 'BlockStored') this.counts.malformedEvents++;
    return applied;
  }

  /** Empties a worker's cache in every tier: one rank, or all of the instance's ranks when dpRank is undefined. */
  clearWorker(instanceId: string, dpRank?: number): void {
    const instance = this.instances.get(instanceId);
    if (!instance) return;
    for (const worker of instance.ranks) {
      if (worker && (dpRank === undefined || worker.dpRank === dpRank)) this.clearRecord(worker);
    }
  }

  /** Forgets an instance: every rank's blocks, its hash scheme, and its worker slots (freed for reuse). */
  removeWorker(instanceId: string): void {
    const instance = this.instances.get(instanceId);
    if (!instance) return;
    for (const worker of instance.ranks) {
      if (!worker) continue;
      this.clearRecord(worker);
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
    if (blockCount === 0) return scores;
    let node = this.nodeOf(hashes[0]!, hashes[1]!);
    if (node < 0) return scores;

    const words = this.words;
    const device = this.tiers[DEVICE]!;
    const host = this.tiers[HOST];
    const disk = this.tiers[DISK];
    const remote = this.tiers[REMOTE];
    const lower = host !== null || disk !== null || remote !== null;
    const active = this.active;
    const matched = this.matched;
    const depthOf = this.depthOf;
    const credit = this.lowerCredit;

    let base = node * words;
    for (let w = 0; w < words; w++) {
      let holders = device[base + w]!;
      if (lower) holders |= this.lowerHolders(base + w);
      active[w] = holders;
      matched[w] = holders;
      if (lower) this.creditLower(base + w, holders & ~device[base + w]!, w);
    }

    let depth = 1;
    for (; depth < blockCount; depth++) {
      node = this.nodeOf(hashes[2 * depth]!, hashes[2 * depth + 1]!);
      if (node < 0) break;
      base = node * words;
      let still = 0;
      for (let w = 0; w < words; w++) {
        let holders = device[base + w]!;
        if (lower) holders |= this.lowerHolders(base + w);
        const before = active[w]!;
        const after = before & holders;
        // Workers whose bit drops here matched exactly `depth` blocks.
        let dropped = before & ~after;
        while (dropped !== 0) {
          const bit = dropped & -dropped;
          depthOf[(w << 5) + 31 - Math.clz32(bit)] = depth;
          dropped ^= bit;
        }
        active[w] = after;
        still |= after;
        if (lower) this.creditLower(base + w, after & ~device[base + w]!, w);
      }
      if (still === 0) break;
    }

    for (let w = 0; w < words; w++) {
      let survivors = active[w]!;
      while (survivors !== 0) {
        const bit = survivors & -survivors;
        depthOf[(w << 5) + 31 - Math.clz32(bit)] = depth;
        survivors ^= bit;
      }
      let holders = matched[w]!;
      while (holders !== 0) {
        const bit = holders & -holders;
        const slot = (w << 5) + 31 - Math.clz32(bit);
        holders ^= bit;
        const worker = this.slots[slot]!;
        const blocks = depthOf[slot]!;
        const onHost = credit[3 * slot]!;
        const onDisk = credit[3 * slot + 1]!;
        const onRemote = credit[3 * slot + 2]!;
        credit[3 * slot] = 0;
        credit[3 * slot + 1] = 0;
        credit[3 * slot + 2] = 0;
        workers.push({
          instanceId: worker.instanceId,
          dpRank: worker.dpRank,
          depth: blocks,
          tiers: { device: blocks - onHost - onDisk - onRemote, host: onHost, disk: onDisk, remote: onRemote },
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
    const worker = this.slots[slot]!;
    this.storeBlock(worker, lo, hi, DEVICE);
    this.recordMapping(worker, lo, hi, lo, hi);
  }

  /** @internal Worker `slot` no longer holds our hash (lo, hi) on device. */
  removeFromDevice(slot: number, lo: number, hi: number): void {
    const worker = this.slots[slot]!;
    if (this.removeBlock(worker, lo, hi, DEVICE)) return;
    const at = worker.blocks.find(lo, hi);
    if (at >= 0) worker.blocks.removeAt(at);
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
        const lo = CELL_WORDS[LO]!;
        const hi = CELL_WORDS[HI]!;
        this.storeBlock(worker, lo, hi, tier);
        this.recordMapping(worker, lo, hi, lo, hi);
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
      const at = worker === undefined ? -1 : this.engineSlot(worker, event.parentBlockHash);
      if (at < 0) {
        this.counts.orphanEvents++;
        return false;
      }
      const blocks = worker!.blocks;
      parentLo = blocks.data[at * blocks.stride + blocks.valueWords]!;
      parentHi = blocks.data[at * blocks.stride + blocks.valueWords + 1]!;
    }
    worker ??= this.workerFor(instanceId, dpRank);
    if (worker.blocks.valueWords === 0) worker.blocks = worker.blocks.withSelfValues();
    const seed = this.seedFor(event.loraName);
    const seedLo = seed[0]!;
    const seedHi = seed[1]!;
    for (let i = 0; i < count; i++) {
      blockHashLimbs(tokens, i * blockSize, blockSize, seedHi, seedLo);
      if (i > 0 || hasParent) chainHashLimbs(parentLo, parentHi, XXH3_RESULT[0]!, XXH3_RESULT[1]!);
      parentLo = XXH3_RESULT[0]!;
      parentHi = XXH3_RESULT[1]!;
      CELL[0] = engineHashes[i]!;
      this.storeBlock(worker, parentLo, parentHi, tier);
      this.recordMapping(worker, CELL_WORDS[LO]!, CELL_WORDS[HI]!, parentLo, parentHi);
    }
    this.counts.blocksStored += count;
    return true;
  }

  private applyRemoved(instanceId: string, dpRank: number, event: BlockRemoved): boolean {
    const tier = tierOf(event.medium);
    if (tier < 0) return false;
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
      const blocks = worker.blocks;
      const at = blocks.find(engineLo, engineHi);
      if (at < 0) continue;
      let lo = engineLo;
      let hi = engineHi;
      if (!armature && blocks.valueWords === 2) {
        lo = blocks.data[at * 4 + 2]!;
        hi = blocks.data[at * 4 + 3]!;
      }
      removed++;
      if (this.removeBlock(worker, lo, hi, tier)) continue;
      // Read as 'armature' after mapping as 'opaque', the entry may point at a block still held.
      if (armature && blocks.valueWords === 2) this.keepIfHeld(worker, blocks.data[at * 4 + 2]!, blocks.data[at * 4 + 3]!);
      blocks.removeAt(at);
    }
    this.counts.blocksRemoved += removed;
    this.counts.unknownRemovals += engineHashes.length - removed;
    return true;
  }

  // ---- Workers --------------------------------------------------------------------------

  private workerFor(instanceId: string, dpRank: number): WorkerRecord {
    let instance = this.instances.get(instanceId);
    if (!instance) {
      instance = new InstanceRecord('opaque');
      this.instances.set(instanceId, instance);
    }
    const existing = instance.ranks[dpRank];
    if (existing) return existing;
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.slots.length;
    if (slot >= this.words * 32) this.growWords(Math.ceil((slot + 1) / 32));
    if (slot >= this.depthOf.length) {
      const slotCapacity = this.words * 32;
      this.depthOf = new Int32Array(slotCapacity);
      this.lowerCredit = new Int32Array(slotCapacity * 3);
    }
    const blocks = new U64Table(instance.scheme === 'armature' ? 0 : 2);
    const worker = new WorkerRecord(slot, instanceId, dpRank, blocks);
    this.slots[slot] = worker;
    while (instance.ranks.length < dpRank) instance.ranks.push(undefined);
    instance.ranks[dpRank] = worker;
    return worker;
  }

  /** Drops every block of a worker, in every tier, and its engine-hash table. */
  private clearRecord(worker: WorkerRecord): void {
    const blocks = worker.blocks;
    const data = blocks.data;
    const stride = blocks.stride;
    const valueAt = blocks.valueWords === 2 ? 2 : 0;
    for (let slot = 0; slot <= blocks.capacity; slot++) {
      if (!blocks.occupied(slot)) continue;
      this.dropEverywhere(worker, data[slot * stride + valueAt]!, data[slot * stride + valueAt + 1]!);
    }
    const strays = worker.strays;
    if (strays) for (let i = 0; i < strays.length; i += 2) this.dropEverywhere(worker, strays[i]!, strays[i + 1]!);
    blocks.clear();
    worker.strays = null;
    worker.held = 0;
  }

  // ---- Nodes ----------------------------------------------------------------------------

  private nodeOf(lo: number, hi: number): number {
    const nodes = this.nodes;
    const slot = nodes.find(lo, hi);
    return slot < 0 ? -1 : nodes.data[slot * 3 + 2]!;
  }

  /** Marks our hash (lo, hi) held by `worker` in `tier`. */
  private storeBlock(worker: WorkerRecord, lo: number, hi: number, tier: number): void {
    const nodes = this.nodes;
    const at = nodes.insert(lo, hi);
    let node: number;
    if (nodes.inserted) {
      node = this.allocNode();
      nodes.data[at * 3 + 2] = node;
    } else {
      node = nodes.data[at * 3 + 2]!;
    }
    const index = node * this.words + (worker.slot >>> 5);
    const bit = 1 << (worker.slot & 31);
    const bits = this.tiers[tier] ?? this.allocTier(tier);
    if ((bits[index]! & bit) !== 0) return;
    if (!this.holdsAt(index, bit)) worker.held++;
    bits[index] = bits[index]! | bit;
  }

  /** Unmarks our hash (lo, hi) in `tier` for `worker`; returns whether it still holds it in another tier. */
  private removeBlock(worker: WorkerRecord, lo: number, hi: number, tier: number): boolean {
    const nodes = this.nodes;
    const at = nodes.find(lo, hi);
    if (at < 0) return false;
    const node = nodes.data[at * 3 + 2]!;
    const index = node * this.words + (worker.slot >>> 5);
    const bit = 1 << (worker.slot & 31);
    const bits = this.tiers[tier];
    if (bits !== null && (bits[index]! & bit) !== 0) {
      bits[index] = bits[index]! & ~bit;
      if (this.holdsAt(index, bit)) return true;
      worker.held--;
      if (this.nodeEmpty(node)) this.freeNode(at, node);
      return false;
    }
    return this.holdsAt(index, bit);
  }

  /** Unmarks our hash (lo, hi) in every tier for `worker`. */
  private dropEverywhere(worker: WorkerRecord, lo: number, hi: number): void {
    const at = this.nodes.find(lo, hi);
    if (at < 0) return;
    const node = this.nodes.data[at * 3 + 2]!;
    const index = node * this.words + (worker.slot >>> 5);
    const keep = ~(1 << (worker.slot & 31));
    for (let tier = 0; tier < TIERS; tier++) {
      const bits = this.tiers[tier];
      if (bits !== null) bits[index] = bits[index]! & keep;
    }
    if (this.nodeEmpty(node)) this.freeNode(at, node);
  }

  /** Whether any tier has `bit` at `index`. */
  private holdsAt(index: number, bit: number): boolean {
    const tiers = this.tiers;
    let holders = tiers[DEVICE]![index]!;
    const host = tiers[HOST];
    if (host !== null) holders |= host[index]!;
    const disk = tiers[DISK];
    if (disk !== null) holders |= disk[index]!;
    const remote = tiers[REMOTE];
    if (remote !== null) holders |= remote[index]!;
    return (holders & bit) !== 0;
  }

  /** Holders at `index` in the host, disk and remote tiers. */
  private lowerHolders(index: number): number {
    const tiers = this.tiers;
    let holders = 0;
    const host = tiers[HOST];
    if (host !== null) holders |= host[index]!;
    const disk = tiers[DISK];
    if (disk !== null) holders |= disk[index]!;
    const remote = tiers[REMOTE];
    if (remote !== null) holders |= remote[index]!;
    return holders;
  }

  /** Credits one block to the fastest lower tier of each worker in `offDevice` (bits of word `w`). */
  private creditLower(index: number, offDevice: number, w: number): void {
    const host = this.tiers[HOST];
    const disk = this.tiers[DISK];
    const credit = this.lowerCredit;
    while (offDevice !== 0) {
      const bit = offDevice & -offDevice;
      const slot = (w << 5) + 31 - Math.clz32(bit);
      if (host !== null && (host[index]! & bit) !== 0) credit[3 * slot]++;
      else if (disk !== null && (disk[index]! & bit) !== 0) credit[3 * slot + 1]++;
      else credit[3 * slot + 2]++;
      offDevice ^= bit;
    }
  }

  private nodeEmpty(node: number): boolean {
    const words = this.words;
    const base = node * words;
    for (let tier = 0; tier < TIERS; tier++) {
      const bits = this.tiers[tier];
      if (bits === null) continue;
      for (let w = 0; w < words; w++) if (bits[base + w] !== 0) return false;
    }
    return true;
  }

  private allocNode(): number {
    if (this.freeNodes.length > 0) return this.freeNodes.pop()!;
    if (this.nodeHighWater === this.nodeCapacity) this.growNodes(this.nodeCapacity * 2);
    return this.nodeHighWater++;
  }

  /** Frees `node`, held in node-table slot `at`; its bits are all zero. */
  private freeNode(at: number, node: number): void {
    this.nodes.removeAt(at);
    this.freeNodes.push(node);
  }

  private allocTier(tier: number): Uint32Array {
    const bits = new Uint32Array(this.nodeCapacity * this.words);
    this.tiers[tier] = bits;
    return bits;
  }

  private growNodes(capacity: number): void {
    for (let tier = 0; tier < TIERS; tier++) {
      const old = this.tiers[tier];
      if (old === null) continue;
      const bits = new Uint32Array(capacity * this.words);
      bits.set(old);
      this.tiers[tier] = bits;
    }
    this.nodeCapacity = capacity;
  }

  /** Re-lays every node's bitsets for `words` words per node (a slot past 32 * words). */
  private growWords(words: number): void {
    const oldWords = this.words;
    for (let tier = 0; tier < TIERS; tier++) {
      const old = this.tiers[tier];
      if (old === null) continue;
      const bits = new Uint32Array(this.nodeCapacity * words);
      for (let node = 0; node < this.nodeHighWater; node++) {
        for (let w = 0; w < oldWords; w++) bits[node * words + w] = old[node * oldWords + w]!;
      }
      this.tiers[tier] = bits;
    }
    this.words = words;
    this.active = new Uint32Array(words);
    this.matched = new Uint32Array(words);
  }

  // ---- Engine-hash tables -----------------------------------------------------------------

  /** Slot of an engine hash in the worker's table, or -1. */
  private engineSlot(worker: WorkerRecord, engineHash: bigint | null): number {
    CELL[0] = engineHash!;
    return worker.blocks.find(CELL_WORDS[LO]!, CELL_WORDS[HI]!);
  }

  /** Records engine hash -> our hash for `worker`, keeping a displaced our-hash it still holds. */
  private recordMapping(worker: WorkerRecord, engineLo: number, engineHi: number, lo: number, hi: number): void {
    const blocks = worker.blocks;
    const at = blocks.insert(engineLo, engineHi);
    if (blocks.valueWords === 0) return;
    const data = blocks.data;
    const value = at * 4 + 2;
    if (!blocks.inserted && (data[value] !== lo || data[value + 1] !== hi)) {
      this.keepIfHeld(worker, data[value]!, data[value + 1]!);
    }
    data[value] = lo;
    data[value + 1] = hi;
  }

  /** Remembers our hash (lo, hi) as a stray when `worker` holds it and its table entry is going away. */
  private keepIfHeld(worker: WorkerRecord, lo: number, hi: number): void {
    const node = this.nodeOf(lo, hi);
    if (node < 0 || !this.holdsAt(node * this.words + (worker.slot >>> 5), 1 << (worker.slot & 31))) return;
    const strays = (worker.strays ??= []);
    strays.push(lo, hi);
    // Engines that keep re-pointing hashes would grow this without bound: drop what is gone.
    if (strays.length > 4 * worker.held + 128) {
      const kept: number[] = [];
      for (let i = 0; i < strays.length; i += 2) {
        const at = this.nodeOf(strays[i]!, strays[i + 1]!);
        if (at >= 0 && this.holdsAt(at * this.words + (worker.slot >>> 5), 1 << (worker.slot & 31))) {
          kept.push(strays[i]!, strays[i + 1]!);
        }
      }
      worker.strays = kept;
    }
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

function validRank(dpRank: number): boolean {
  return Number.isInteger(dpRank) && dpRank >= 0 && dpRank <= MAX_DP_RANK;
}
