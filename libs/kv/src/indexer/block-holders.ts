// The KV indexer's implicit radix tree: which worker slots hold each block, per storage
// tier, and how far each worker's holdings run along a prompt. Sequence hashes chain over
// the whole prefix, so a block's hash names its whole path: one table keyed by our hash is
// the tree, a child lookup is one probe, and no node keeps a map of its children.
//
// A node is a bitset of worker slots per tier, words = ceil(slots / 32). The device bitset
// sits in the node's own table slot, so a step of a walk costs one cache miss, not two; the
// host, disk and remote bitsets live in side arrays, allocated once a lower tier is first
// used, and a node gets an index into them the first time a lower tier holds it. Knows
// nothing of instances, events or engine hashes: slots and our hashes only.
import { U64Table } from './u64-table.js';

/** Tier numbers, fastest first (KV_MEDIUMS order); lower tier t lives in lower[t - 1]. */
export const DEVICE = 0;
export const HOST = 1;
export const DISK = 2;
export const REMOTE = 3;

/** remove(): the slot held the block in no tier. */
export const NOT_HELD = 0;
/** remove(): the slot held it in that tier only, and now holds it nowhere. */
export const GONE = 1;
/** remove(): the slot still holds it in some tier. */
export const STILL_HELD = 2;

// A node's table slot: [hash lo, hash hi, lower-tier id (0: none), device words...].
const NODE_LOWER = 2;
const NODE_DEVICE = 3;
const INITIAL_NODES = 1024;
const INITIAL_LOWER = 64;

/** Our hash -> per-tier bitsets of worker slots, with the prefix walk over them. */
export class BlockHolders {
  private nodes = new U64Table(1 + 1, INITIAL_NODES);
  /** Host, disk, remote: lower-tier id * words + word -> slot bits; null until first used. */
  private readonly lower: (Uint32Array | null)[] = [null, null, null];
  private lowerCapacity = INITIAL_LOWER;
  /** Lower-tier ids below this were handed out at least once; 0 is never handed out. */
  private lowerHighWater = 1;
  private readonly freeLower: number[] = [];
  /** u32 words per bitset. */
  private words = 1;

  // match() results, read by the caller until the next match().
  /** Slots that matched at least one block, as bitset words. */
  matched = new Uint32Array(1);
  /** Per matched slot: blocks matched. */
  depthOf = new Int32Array(32);
  /** Per matched slot: blocks credited to host, disk, remote (3 per slot); all zero unless `lowerCredited`. */
  credit = new Int32Array(32 * 3);
  /** Whether the last match() credited any block to a lower tier. */
  lowerCredited = false;
  private active = new Uint32Array(1);
  /** Node slots of the query's leading blocks. */
  private walk = new Int32Array(256);

  /** Blocks held by any slot in any tier. */
  get size(): number {
    return this.nodes.size;
  }

  /** Makes room for slots 0..slotCount-1, re-laying every node when a bitset word is added. */
  reserveSlots(slotCount: number): void {
    const words = Math.max(1, Math.ceil(slotCount / 32));
    if (words > this.words) this.growWords(words);
    if (this.depthOf.length < words * 32) {
      this.depthOf = new Int32Array(words * 32);
      this.credit = new Int32Array(words * 32 * 3);
      this.lowerCredited = false;
    }
  }

  /** Slot `slot` holds our hash (lo, hi) in `tier`; returns whether it held it in no tier before. */
  add(slot: number, lo: number, hi: number, tier: number): boolean {
    const nodes = this.nodes;
    const base = nodes.insert(lo, hi) * nodes.stride;
    const data = nodes.data;
    const word = slot >>> 5;
    const bit = 1 << (slot & 31);
    const deviceAt = base + NODE_DEVICE + word;
    let lowerId = data[base + NODE_LOWER]!;
    if (tier === DEVICE) {
      if ((data[deviceAt]! & bit) !== 0) return false;
      data[deviceAt] = data[deviceAt]! | bit;
      return lowerId === 0 || (this.lowerHolders(lowerId * this.words + word) & bit) === 0;
    }
    if (lowerId === 0) {
      lowerId = this.allocLower();
      data[base + NODE_LOWER] = lowerId;
    }
    const index = lowerId * this.words + word;
    const bits = this.lower[tier - 1] ?? this.allocLowerTier(tier - 1);
    if ((bits[index]! & bit) !== 0) return false;
    const before = (data[deviceAt]! | this.lowerHolders(index)) & bit;
    bits[index] = bits[index]! | bit;
    return before === 0;
  }

  /** Slot `slot` no longer holds our hash (lo, hi) in `tier`: NOT_HELD, GONE or STILL_HELD. */
  remove(slot: number, lo: number, hi: number, tier: number): number {
    const nodes = this.nodes;
    const at = nodes.find(lo, hi);
    if (at < 0) return NOT_HELD;
    const data = nodes.data;
    const base = at * nodes.stride;
    const word = slot >>> 5;
    const bit = 1 << (slot & 31);
    const deviceAt = base + NODE_DEVICE + word;
    const lowerId = data[base + NODE_LOWER]!;
    const index = lowerId * this.words + word;
    if (tier === DEVICE) {
      if ((data[deviceAt]! & bit) === 0) {
        return lowerId !== 0 && (this.lowerHolders(index) & bit) !== 0 ? STILL_HELD : NOT_HELD;
      }
      data[deviceAt] = data[deviceAt]! & ~bit;
    } else {
      const bits = this.lower[tier - 1];
      if (lowerId === 0 || bits === null || (bits[index]! & bit) === 0) {
        const holders = data[deviceAt]! | (lowerId === 0 ? 0 : this.lowerHolders(index));
        return (holders & bit) !== 0 ? STILL_HELD : NOT_HELD;
      }
      bits[index] = bits[index]! & ~bit;
    }
    if (((data[deviceAt]! | (lowerId === 0 ? 0 : this.lowerHolders(index))) & bit) !== 0) return STILL_HELD;
    if (this.nodeEmpty(base)) this.freeNode(at);
    return GONE;
  }

  /** Slot `slot` holds our hash (lo, hi) in no tier any more; returns whether it held it. */
  drop(slot: number, lo: number, hi: number): boolean {
    const nodes = this.nodes;
    const at = nodes.find(lo, hi);
    if (at < 0) return false;
    const data = nodes.data;
    const base = at * nodes.stride;
    const word = slot >>> 5;
    const bit = 1 << (slot & 31);
    const lowerId = data[base + NODE_LOWER]!;
    const index = lowerId * this.words + word;
    let held = data[base + NODE_DEVICE + word]! & bit;
    data[base + NODE_DEVICE + word] = data[base + NODE_DEVICE + word]! & ~bit;
    if (lowerId !== 0) {
      for (const bits of this.lower) {
        if (bits === null) continue;
        held |= bits[index]! & bit;
        bits[index] = bits[index]! & ~bit;
      }
    }
    if (held !== 0 && this.nodeEmpty(base)) this.freeNode(at);
    return held !== 0;
  }

  /** Whether slot `slot` holds our hash (lo, hi) in any tier. */
  holds(slot: number, lo: number, hi: number): boolean {
    const nodes = this.nodes;
    const at = nodes.find(lo, hi);
    if (at < 0) return false;
    const base = at * nodes.stride;
    const word = slot >>> 5;
    const lowerId = nodes.data[base + NODE_LOWER]!;
    const holders =
      nodes.data[base + NODE_DEVICE + word]! | (lowerId === 0 ? 0 : this.lowerHolders(lowerId * this.words + word));
    return (holders & (1 << (slot & 31))) !== 0;
  }

  /**
   * Walks a query (our hashes as limb pairs): for every slot holding its first block, how
   * many leading blocks it holds in some tier, each credited to the fastest tier holding it.
   * Fills matched, depthOf and credit; returns whether any slot matched.
   */
  match(hashes: Uint32Array, blockCount: number): boolean {
    const words = this.words;
    const matched = this.matched;
    if (this.lowerCredited) this.resetCredit();
    matched.fill(0);
    if (blockCount === 0) return false;
    const nodes = this.nodes;
    const data = nodes.data;
    const stride = nodes.stride;

    // Pass 1: the node slot of each leading block the table holds. The probes do not depend
    // on one another, so the CPU overlaps their cache misses; pass 2 then finds them cached.
    if (this.walk.length < blockCount) this.walk = new Int32Array(Math.max(blockCount, 2 * this.walk.length));
    const walk = this.walk;
    const mask = nodes.mask;
    const shift = nodes.shift;
    let found = 0;
    for (; found < blockCount; found++) {
      const lo = hashes[2 * found]!;
      const hi = hashes[2 * found + 1]!;
      if ((lo | hi) === 0) {
        if (!nodes.hasZero) break;
        walk[found] = nodes.capacity;
        continue;
      }
      let slot = U64Table.home(lo, hi, shift);
      for (;;) {
        const keyAt = slot * stride;
        const keyLo = data[keyAt]!;
        const keyHi = data[keyAt + 1]!;
        if (keyLo === lo && keyHi === hi) break;
        if ((keyLo | keyHi) === 0) {
          slot = -1;
          break;
        }
        slot = (slot + 1) & mask;
      }
      if (slot < 0) break;
      walk[found] = slot;
    }
    if (found === 0) return false;

    // Pass 2: AND the still-matching slots with each node's holders; a slot whose bit drops
    // at block d matched exactly d blocks.
    const lower = this.lower[0] !== null || this.lower[1] !== null || this.lower[2] !== null;
    const active = this.active;
    const depthOf = this.depthOf;
    let base = walk[0]! * stride;
    let lowerBase = lower ? data[base + NODE_LOWER]! * words : 0;
    for (let w = 0; w < words; w++) {
      const device = data[base + NODE_DEVICE + w]!;
      let holders = device;
      if (lowerBase !== 0) {
        const offDevice = this.lowerHolders(lowerBase + w) & ~device;
        holders |= offDevice;
        if (offDevice !== 0) this.creditLower(lowerBase + w, offDevice, w);
      }
      active[w] = holders;
      matched[w] = holders;
    }
    let depth = 1;
    for (; depth < found; depth++) {
      base = walk[depth]! * stride;
      lowerBase = lower ? data[base + NODE_LOWER]! * words : 0;
      let still = 0;
      for (let w = 0; w < words; w++) {
        const before = active[w]!;
        if (before === 0) continue;
        const device = data[base + NODE_DEVICE + w]!;
        let after = before & device;
        if (lowerBase !== 0) {
          const offDevice = before & this.lowerHolders(lowerBase + w) & ~device;
          after |= offDevice;
          if (offDevice !== 0) this.creditLower(lowerBase + w, offDevice, w);
        }
        let dropped = before & ~after;
        while (dropped !== 0) {
          const bit = dropped & -dropped;
          depthOf[(w << 5) + 31 - Math.clz32(bit)] = depth;
          dropped ^= bit;
        }
        active[w] = after;
        still |= after;
      }
      if (still === 0) break;
    }
    let any = 0;
    for (let w = 0; w < words; w++) {
      let survivors = active[w]!;
      while (survivors !== 0) {
        const bit = survivors & -survivors;
        depthOf[(w << 5) + 31 - Math.clz32(bit)] = depth;
        survivors ^= bit;
      }
      any |= matched[w]!;
    }
    return any !== 0;
  }

  /** Holders at `index` in the host, disk and remote tiers. */
  private lowerHolders(index: number): number {
    const lower = this.lower;
    let holders = 0;
    const host = lower[0];
    if (host !== null) holders |= host[index]!;
    const disk = lower[1];
    if (disk !== null) holders |= disk[index]!;
    const remote = lower[2];
    if (remote !== null) holders |= remote[index]!;
    return holders;
  }

  /** Credits one block to the fastest lower tier of each slot in `offDevice` (bits of word `w`). */
  private creditLower(index: number, offDevice: number, w: number): void {
    const host = this.lower[0];
    const disk = this.lower[1];
    const credit = this.credit;
    this.lowerCredited = true;
    while (offDevice !== 0) {
      const bit = offDevice & -offDevice;
      const slot = (w << 5) + 31 - Math.clz32(bit);
      if (host !== null && (host[index]! & bit) !== 0) credit[3 * slot]++;
      else if (disk !== null && (disk[index]! & bit) !== 0) credit[3 * slot + 1]++;
      else credit[3 * slot + 2]++;
      offDevice ^= bit;
    }
  }

  /** Zeroes the credits of the slots the last match() found. */
  private resetCredit(): void {
    const credit = this.credit;
    for (let w = 0; w < this.matched.length; w++) {
      let holders = this.matched[w]!;
      while (holders !== 0) {
        const bit = holders & -holders;
        const slot = (w << 5) + 31 - Math.clz32(bit);
        credit[3 * slot] = 0;
        credit[3 * slot + 1] = 0;
        credit[3 * slot + 2] = 0;
        holders ^= bit;
      }
    }
    this.lowerCredited = false;
  }

  /** Whether no slot holds the node at `base` (a word offset in the node table) in any tier. */
  private nodeEmpty(base: number): boolean {
    const data = this.nodes.data;
    const words = this.words;
    for (let w = 0; w < words; w++) if (data[base + NODE_DEVICE + w] !== 0) return false;
    const lowerId = data[base + NODE_LOWER]!;
    if (lowerId === 0) return true;
    for (const bits of this.lower) {
      if (bits === null) continue;
      for (let w = 0; w < words; w++) if (bits[lowerId * words + w] !== 0) return false;
    }
    return true;
  }

  /** Frees the node in table slot `at`; its bits are all zero. */
  private freeNode(at: number): void {
    const lowerId = this.nodes.data[at * this.nodes.stride + NODE_LOWER]!;
    if (lowerId !== 0) this.freeLower.push(lowerId);
    this.nodes.removeAt(at);
  }

  private allocLower(): number {
    if (this.freeLower.length > 0) return this.freeLower.pop()!;
    if (this.lowerHighWater === this.lowerCapacity) {
      const capacity = this.lowerCapacity * 2;
      for (let t = 0; t < this.lower.length; t++) {
        const old = this.lower[t];
        if (old === null) continue;
        const bits = new Uint32Array(capacity * this.words);
        bits.set(old);
        this.lower[t] = bits;
      }
      this.lowerCapacity = capacity;
    }
    return this.lowerHighWater++;
  }

  private allocLowerTier(t: number): Uint32Array {
    const bits = new Uint32Array(this.lowerCapacity * this.words);
    this.lower[t] = bits;
    return bits;
  }

  private growWords(words: number): void {
    const oldWords = this.words;
    const old = this.nodes;
    const nodes = new U64Table(1 + words, old.size);
    for (let slot = 0; slot <= old.capacity; slot++) {
      if (!old.occupied(slot)) continue;
      const from = slot * old.stride;
      const to = nodes.insert(old.data[from]!, old.data[from + 1]!) * nodes.stride;
      nodes.data[to + NODE_LOWER] = old.data[from + NODE_LOWER]!;
      for (let w = 0; w < oldWords; w++) nodes.data[to + NODE_DEVICE + w] = old.data[from + NODE_DEVICE + w]!;
    }
    this.nodes = nodes;
    for (let t = 0; t < this.lower.length; t++) {
      const oldBits = this.lower[t];
      if (oldBits === null) continue;
      const bits = new Uint32Array(this.lowerCapacity * words);
      for (let id = 1; id < this.lowerHighWater; id++) {
        for (let w = 0; w < oldWords; w++) bits[id * words + w] = oldBits[id * oldWords + w]!;
      }
      this.lower[t] = bits;
    }
    this.words = words;
    this.active = new Uint32Array(words);
    this.matched = new Uint32Array(words);
  }
}
