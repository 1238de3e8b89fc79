// One worker's side of the KV index: its identity, how many blocks it holds, and what it
// takes to translate its engine's hashes and to find all its blocks again when it is
// cleared or removed. The shared tree (block-holders.ts) answers "who holds this block";
// this answers "which blocks does this worker hold", which the tree cannot do without a
// full scan.
//
// A worker whose events carry our hashes ('armature') keeps an append-only log of the
// blocks it came to hold: a sequential write per new block, where a hash set would cost a
// random memory access. The log may list blocks dropped since; it is compacted when it
// outgrows twice what the worker holds. A worker whose events carry engine hashes
// ('opaque') keeps a table engine hash -> our hash instead, and a log turns into that
// table the first time such an event arrives.
import type { BlockHolders } from './block-holders.js';
import { U64Table } from './u64-table.js';

const INITIAL_LOG = 64;

/** A worker (instance, data-parallel rank) and the blocks it holds. */
export class WorkerBlocks {
  /** Distinct our-hashes held in any tier. */
  held = 0;
  /** Engine hash -> our hash (two value words); null while the worker keeps a log. */
  map: U64Table | null;
  /** Our hashes the worker came to hold, as limb pairs; null once it keeps a map. */
  private log: Uint32Array | null;
  /** Words of `log` in use. */
  private logLength = 0;
  /**
   * Our hashes still held after their map entry went (an engine re-pointing a hash, or a
   * scheme change), kept so clearing the worker still finds them. Limb pairs; empty in practice.
   */
  private strays: number[] | null = null;

  constructor(
    /** Bit index in every node's bitsets. */
    readonly slot: number,
    readonly instanceId: string,
    readonly dpRank: number,
    mapped: boolean,
  ) {
    this.map = mapped ? new U64Table(2) : null;
    this.log = mapped ? null : new Uint32Array(INITIAL_LOG);
  }

  /** Notes that the worker came to hold our hash (lo, hi); for log-keeping workers. */
  logHeld(lo: number, hi: number, holders: BlockHolders): void {
    let log = this.log!;
    if (this.logLength === log.length) log = this.makeRoom(holders);
    log[this.logLength] = lo;
    log[this.logLength + 1] = hi;
    this.logLength += 2;
  }

  /** Records engine hash -> our hash; a displaced our-hash the worker still holds becomes a stray. */
  mapEngine(engineLo: number, engineHi: number, lo: number, hi: number, holders: BlockHolders): void {
    const map = this.map!;
    const at = map.insert(engineLo, engineHi) * 4;
    const data = map.data;
    if (!map.inserted && (data[at + 2] !== lo || data[at + 3] !== hi))
      this.keepIfHeld(data[at + 2]!, data[at + 3]!, holders);
    data[at + 2] = lo;
    data[at + 3] = hi;
  }

  /** Remembers our hash (lo, hi) as a stray if the worker holds it; its map entry is going away. */
  keepIfHeld(lo: number, hi: number, holders: BlockHolders): void {
    if (!holders.holds(this.slot, lo, hi)) return;
    const strays = (this.strays ??= []);
    strays.push(lo, hi);
    // Engines that keep re-pointing hashes would grow this without bound: drop what is gone.
    if (strays.length > 4 * this.held + 128) {
      const kept: number[] = [];
      for (let i = 0; i < strays.length; i += 2) {
        if (holders.holds(this.slot, strays[i]!, strays[i + 1]!)) kept.push(strays[i]!, strays[i + 1]!);
      }
      this.strays = kept;
    }
  }

  /** Switches a log-keeping worker to an engine-hash map, each held block mapped to itself. */
  useMap(holders: BlockHolders): void {
    if (this.map) return;
    const map = new U64Table(2, this.held);
    const log = this.log!;
    for (let i = 0; i < this.logLength; i += 2) {
      const lo = log[i]!;
      const hi = log[i + 1]!;
      if (!holders.holds(this.slot, lo, hi)) continue;
      const at = map.insert(lo, hi) * 4;
      map.data[at + 2] = lo;
      map.data[at + 3] = hi;
    }
    this.map = map;
    this.log = null;
    this.logLength = 0;
  }

  /** Drops every block of the worker from `holders` and forgets them all. */
  clear(holders: BlockHolders): void {
    const slot = this.slot;
    if (this.map) {
      const map = this.map;
      const data = map.data;
      for (let at = 0; at <= map.capacity; at++) {
        if (map.occupied(at)) holders.drop(slot, data[at * 4 + 2]!, data[at * 4 + 3]!);
      }
      map.clear();
    } else {
      const log = this.log!;
      for (let i = 0; i < this.logLength; i += 2) holders.drop(slot, log[i]!, log[i + 1]!);
      this.logLength = 0;
      if (log.length > INITIAL_LOG) this.log = new Uint32Array(INITIAL_LOG);
    }
    const strays = this.strays;
    if (strays) for (let i = 0; i < strays.length; i += 2) holders.drop(slot, strays[i]!, strays[i + 1]!);
    this.strays = null;
    this.held = 0;
  }

  /** A full log is compacted to the blocks still held when at most half of it is; otherwise it doubles. */
  private makeRoom(holders: BlockHolders): Uint32Array {
    const log = this.log!;
    const entries = this.logLength >>> 1;
    if (entries < 2 * this.held + 32) {
      const grown = new Uint32Array(log.length * 2);
      grown.set(log);
      this.log = grown;
      return grown;
    }
    // A block dropped and stored again is logged twice: the set keeps one entry per block.
    const seen = new U64Table(0, this.held);
    let kept = 0;
    for (let i = 0; i < this.logLength; i += 2) {
      const lo = log[i]!;
      const hi = log[i + 1]!;
      if (!holders.holds(this.slot, lo, hi)) continue;
      seen.insert(lo, hi);
      if (!seen.inserted) continue;
      log[kept] = lo;
      log[kept + 1] = hi;
      kept += 2;
    }
    this.logLength = kept;
    return log;
  }
}
