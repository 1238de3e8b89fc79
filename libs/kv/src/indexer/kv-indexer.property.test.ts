// KvIndexer against a naive reference index of Maps and Sets of bigint: random scripts of
// stored (with parent chains, both hash schemes, several workers, ranks and tiers), removed,
// cleared and worker-removed operations, with findMatches compared after every operation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KvEvent, KvMedium } from '../events.js';
import { KV_MEDIUMS } from '../events.js';
import { computeBlockHashes, computeSequenceHashes, hashSalt, limbsFromHashes } from '../hashing.js';
import { MASK64, ours, range, removed, sorted, stored } from '../testing/indexer-fixtures.js';
import { KvIndexer } from './kv-indexer.js';
import type { IndexerCounters, KvHashScheme, WorkerOverlap } from './types.js';

interface RefWorker {
  instanceId: string;
  dpRank: number;
  tiers: Map<KvMedium, Set<bigint>>;
  map: Map<bigint, bigint>;
}

const chainStep = (parent: bigint, local: bigint): bigint => computeSequenceHashes([parent, local])[1]!;

/** The indexer's rules written as plainly as possible. */
class ReferenceIndex {
  readonly schemes = new Map<string, KvHashScheme>();
  readonly byKey = new Map<string, RefWorker>();
  readonly counters: IndexerCounters = {
    eventsApplied: 0,
    blocksStored: 0,
    blocksRemoved: 0,
    orphanEvents: 0,
    malformedEvents: 0,
    unknownRemovals: 0,
  };

  private worker(instanceId: string, dpRank: number): RefWorker {
    const key = `${instanceId}/${dpRank}`;
    let worker = this.byKey.get(key);
    if (!worker) {
      worker = { instanceId, dpRank, tiers: new Map(KV_MEDIUMS.map((m) => [m, new Set()])), map: new Map() };
      this.byKey.set(key, worker);
    }
    return worker;
  }

  private holds(worker: RefWorker, hash: bigint): boolean {
    return KV_MEDIUMS.some((medium) => worker.tiers.get(medium)!.has(hash));
  }

  applyEvent(instanceId: string, dpRank: number, event: KvEvent): boolean {
    const existing = this.byKey.get(`${instanceId}/${dpRank}`);
    const scheme = this.schemes.get(instanceId) ?? 'opaque';
    if (event.type === 'AllBlocksCleared') {
      if (existing) this.clear(existing);
    } else if (event.type === 'BlockRemoved') {
      if (!existing) {
        this.counters.unknownRemovals += event.blockHashes.length;
      } else {
        for (const hash of event.blockHashes) {
          if (!existing.map.has(hash)) {
            this.counters.unknownRemovals++;
            continue;
          }
          const our = scheme === 'armature' ? hash : existing.map.get(hash)!;
          existing.tiers.get(event.medium)!.delete(our);
          if (!this.holds(existing, our)) existing.map.delete(hash);
          this.counters.blocksRemoved++;
        }
      }
    } else if (scheme === 'armature') {
      const worker = this.worker(instanceId, dpRank);
      for (const hash of event.blockHashes) {
        worker.tiers.get(event.medium)!.add(hash);
        worker.map.set(hash, hash);
      }
      this.counters.blocksStored += event.blockHashes.length;
    } else {
      const { blockSize, tokenIds, blockHashes } = event;
      if (!(Number.isSafeInteger(blockSize) && blockSize >= 1) || tokenIds.length < blockHashes.length * blockSize) {
        this.counters.malformedEvents++;
        return false;
      }
      let parent: bigint | undefined;
      if (event.parentBlockHash !== null) {
        parent = existing?.map.get(event.parentBlockHash);
        if (parent === undefined) {
          this.counters.orphanEvents++;
          return false;
        }
      }
      const worker = this.worker(instanceId, dpRank);
      const salt = event.loraName ? hashSalt({ loraName: event.loraName }) : undefined;
      const locals = computeBlockHashes(tokenIds.slice(0, blockHashes.length * blockSize), blockSize, salt);
      blockHashes.forEach((hash, i) => {
        const our = parent === undefined ? locals[i]! : chainStep(parent, locals[i]!);
        worker.tiers.get(event.medium)!.add(our);
        worker.map.set(hash, our);
        parent = our;
      });
      this.counters.blocksStored += blockHashes.length;
    }
    this.counters.eventsApplied++;
    return true;
  }

  clear(worker: RefWorker): void {
    for (const set of worker.tiers.values()) set.clear();
    worker.map.clear();
  }

  clearWorker(instanceId: string, dpRank?: number): void {
    for (const worker of this.byKey.values()) {
      if (worker.instanceId === instanceId && (dpRank === undefined || worker.dpRank === dpRank)) this.clear(worker);
    }
  }

  removeWorker(instanceId: string): void {
    for (const [key, worker] of this.byKey) if (worker.instanceId === instanceId) this.byKey.delete(key);
    this.schemes.delete(instanceId);
  }

  blocksOf(instanceId: string, dpRank?: number): number {
    let held = 0;
    for (const worker of this.byKey.values()) {
      if (worker.instanceId !== instanceId || (dpRank !== undefined && worker.dpRank !== dpRank)) continue;
      held += new Set(KV_MEDIUMS.flatMap((m) => [...worker.tiers.get(m)!])).size;
    }
    return held;
  }

  get nodeCount(): number {
    const all = new Set<bigint>();
    for (const worker of this.byKey.values()) for (const set of worker.tiers.values()) for (const h of set) all.add(h);
    return all.size;
  }

  findMatches(query: bigint[]): WorkerOverlap[] {
    const matches: WorkerOverlap[] = [];
    for (const worker of this.byKey.values()) {
      const tiers = { device: 0, host: 0, disk: 0, remote: 0 };
      let depth = 0;
      for (const hash of query) {
        const medium = KV_MEDIUMS.find((m) => worker.tiers.get(m)!.has(hash));
        if (!medium) break;
        tiers[medium]++;
        depth++;
      }
      if (depth > 0) matches.push({ instanceId: worker.instanceId, dpRank: worker.dpRank, depth, tiers });
    }
    return matches.sort((a, b) => a.instanceId.localeCompare(b.instanceId) || a.dpRank - b.dpRank);
  }
}

// Engines: 'a' and 'd' publish our hashes; 'b' and 'c' publish their own, 'c' from a space of
// eight values, so its engine hashes collide and get re-pointed all the time.
const ENGINES = [
  { instanceId: 'a', ours: true, ranks: 2 },
  { instanceId: 'b', ours: false, ranks: 2 },
  { instanceId: 'c', ours: false, ranks: 1 },
  { instanceId: 'd', ours: true, ranks: 1 },
];
const WORKERS = ENGINES.flatMap((engine) => range(0, engine.ranks).map((dpRank) => ({ engine, dpRank })));
const BLOCK = 2;

function engineHash(instanceId: string, our: bigint, lora: boolean): bigint {
  let hash = (our ^ BigInt(instanceId.charCodeAt(0)) ^ (lora ? 0xabcdefn : 0n)) & MASK64;
  hash = (hash * 0x9e3779b97f4a7c15n) & MASK64;
  return instanceId === 'c' ? hash & 7n : hash;
}

const medium = fc.constantFrom<KvMedium>('device', 'device', 'host', 'disk', 'remote');
const query = fc.record({ path: fc.nat(), length: fc.nat(), tail: fc.boolean() });
const operation = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('store' as const),
      worker: fc.nat(),
      path: fc.nat(),
      cut: fc.nat(),
      fresh: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 * BLOCK }),
      start: fc.nat(),
      medium,
      lora: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      truncate: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
      batch: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      worker: fc.nat(),
      picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
      unknown: fc.boolean(),
      medium,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), worker: fc.nat(), api: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeWorker' as const), engine: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('scheme' as const),
      engine: fc.nat(),
      scheme: fc.constantFrom<KvHashScheme>('armature', 'opaque'),
    }),
  },
);
const step = fc.record({ operation, queries: fc.array(query, { minLength: 1, maxLength: 3 }) });
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

/** Runs one generated script on both indexes, comparing everything after each step. */
function runScript(steps: Step[]): void {
  const index = new KvIndexer();
  const reference = new ReferenceIndex();
  const setScheme = (instanceId: string, scheme: KvHashScheme): void => {
    index.setHashScheme(instanceId, scheme);
    reference.schemes.set(instanceId, scheme);
  };
  for (const engine of ENGINES) if (engine.ours) setScheme(engine.instanceId, 'armature');
  // Known token paths (whole blocks) and their plain sequence hashes; a few roots to start.
  const paths: number[][] = [range(0, 3 * BLOCK), range(50, 2 * BLOCK)];
  const sent = new Map<string, bigint[]>();

  for (const { operation: op, queries } of steps) {
    if (op.kind === 'store') {
      const { engine, dpRank } = WORKERS[op.worker % WORKERS.length]!;
      const base = paths[op.path % paths.length]!;
      const freshTokens = op.fresh.slice(0, op.fresh.length - (op.fresh.length % BLOCK));
      const path = [...base.slice(0, BLOCK * (op.cut % (base.length / BLOCK + 1))), ...freshTokens];
      if (freshTokens.length > 0) paths.push(path);
      const blocks = path.length / BLOCK;
      if (blocks === 0) continue;
      const start = op.start % blocks;
      const plain = ours(path, BLOCK);
      const hashed = op.lora && !engine.ours ? ours(path, BLOCK, hashSalt({ loraName: 'lora' })) : plain;
      const name = (i: number): bigint =>
        engine.ours ? hashed[i]! : engineHash(engine.instanceId, plain[i]!, op.lora && !engine.ours);
      const blockHashes = range(start, blocks - start).map(name);
      const tokenIds = path.slice(start * BLOCK, op.truncate ? -1 : undefined);
      const event = stored(blockHashes, {
        parentBlockHash: start > 0 ? name(start - 1) : null,
        tokenIds: [...tokenIds, ...(op.truncate ? [] : [9])],
        blockSize: BLOCK,
        loraName: op.lora && !engine.ours ? 'lora' : null,
        medium: op.medium,
      });
      const key = `${engine.instanceId}/${dpRank}`;
      sent.set(key, [...(sent.get(key) ?? []), ...blockHashes]);
      const expected = reference.applyEvent(engine.instanceId, dpRank, event);
      if (op.batch)
        index.applyBatch(engine.instanceId, { ts: 0, dpRank: dpRank === 0 ? null : dpRank, events: [event] });
      else expect(index.applyEvent(engine.instanceId, dpRank, event)).toBe(expected);
    } else if (op.kind === 'remove') {
      const { engine, dpRank } = WORKERS[op.worker % WORKERS.length]!;
      const known = sent.get(`${engine.instanceId}/${dpRank}`) ?? [];
      const hashes = op.picks.map((pick) =>
        op.unknown || known.length === 0 ? BigInt(pick) + 1000n : known[pick % known.length]!,
      );
      const event = removed(hashes, op.medium);
      expect(index.applyEvent(engine.instanceId, dpRank, event)).toBe(
        reference.applyEvent(engine.instanceId, dpRank, event),
      );
    } else if (op.kind === 'clear') {
      const { engine, dpRank } = WORKERS[op.worker % WORKERS.length]!;
      if (op.api) {
        const rank = op.worker % 2 === 0 ? undefined : dpRank;
        index.clearWorker(engine.instanceId, rank);
        reference.clearWorker(engine.instanceId, rank);
      } else {
        const event: KvEvent = { type: 'AllBlocksCleared' };
        expect(index.applyEvent(engine.instanceId, dpRank, event)).toBe(
          reference.applyEvent(engine.instanceId, dpRank, event),
        );
      }
    } else if (op.kind === 'removeWorker') {
      const { instanceId } = ENGINES[op.engine % ENGINES.length]!;
      index.removeWorker(instanceId);
      reference.removeWorker(instanceId);
    } else {
      setScheme(ENGINES[op.engine % ENGINES.length]!.instanceId, op.scheme);
    }

    expect(index.counters).toEqual(reference.counters);
    expect(index.nodeCount).toBe(reference.nodeCount);
    for (const { engine, dpRank } of WORKERS) {
      expect(index.blocksOf(engine.instanceId, dpRank)).toBe(reference.blocksOf(engine.instanceId, dpRank));
      expect(index.blocksOf(engine.instanceId)).toBe(reference.blocksOf(engine.instanceId));
    }
    const listed = (list: { instanceId: string; dpRank: number }[]): string[] =>
      list.map((w) => `${w.instanceId}/${w.dpRank}`).sort();
    expect(listed(index.workers())).toEqual(listed([...reference.byKey.values()]));
    for (const { path: pick, length, tail } of queries) {
      const path = paths[pick % paths.length]!;
      const hashes = ours(path, BLOCK).slice(0, length % (path.length / BLOCK + 1));
      if (tail) hashes.push(BigInt(length) * 0x1234567n + 1n);
      expect(sorted(index.findMatches(limbsFromHashes(hashes)))).toEqual(reference.findMatches(hashes));
    }
  }
}

describe('KvIndexer: against a naive reference', () => {
  it('agrees after every store, removal, clear, worker removal and scheme change', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => runScript(steps)),
      { numRuns: 300, seed: 2024 },
    );
  });

  it('agrees on long scripts', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 150, maxLength: 300 }), (steps) => runScript(steps)),
      { numRuns: 30, seed: 99 },
    );
  });
});
