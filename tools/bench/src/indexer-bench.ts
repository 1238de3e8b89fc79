// Micro-benchmark of the KV indexer, the router's per-request and per-engine-step hot path,
// against an anchor taken from Dynamo's Rust indexer (10M events + requests/s, find_matches
// p99 10 µs). One thread, one process, no I/O: everything the indexer is fed (events with
// their bigint hashes, queries as hash limbs) is built before any clock runs.
//
//   npm run bench:indexer -- [--workers 64] [--blocks-per-worker 100000] [--block-size 16]
//                            [--queries 100000] [--seed 1] [--quick]
//                            [--phases events,find,mixed,opaque] (the index is always built)
//
// The workload is a prefix tree shaped like chat traffic: ~1,000 shared system prompts of
// 4-64 blocks with Zipf popularity, extended by multi-turn conversations (each turn extends
// the last) that stick to one worker. Engines store prompts in prefill chunks of 1-32 blocks
// and responses one block per decode step, and evict whole old conversations leaf-first
// once they hold more than --blocks-per-worker. Progress goes to stderr; the last line of
// stdout is one JSON object.
//
// Events are materialised (bigint hashes, objects) in chunks between timed sections, with a
// full GC before each: millions of prebuilt event objects would otherwise make every major
// GC the index's own allocations trigger cost a second of marking the benchmark's input.
//
// One file past 450 lines on purpose: one benchmark command, its phases and its report
// read top to bottom, and nothing in them is used elsewhere.
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { KvIndexer, hashesFromLimbs, sequenceHashLimbs, type KvEvent, type KvEventBatch } from '@armature/kv';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string' },
    'blocks-per-worker': { type: 'string' },
    'block-size': { type: 'string', default: '16' },
    queries: { type: 'string' },
    seed: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    phases: { type: 'string', default: 'events,find,mixed,opaque' },
  },
});
const PHASES = new Set(args.phases.split(','));
const WORKERS = Number(args.workers ?? (args.quick ? 8 : 64));
const BLOCKS_PER_WORKER = Number(args['blocks-per-worker'] ?? (args.quick ? 10_000 : 100_000));
const BLOCK_SIZE = Number(args['block-size']);
const QUERIES = Number(args.queries ?? (args.quick ? 10_000 : 100_000));
const SEED = Number(args.seed);
for (const [name, value] of Object.entries({ WORKERS, BLOCKS_PER_WORKER, BLOCK_SIZE, QUERIES })) {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
}
for (const phase of PHASES) {
  if (!['events', 'find', 'mixed', 'opaque'].includes(phase)) throw new RangeError(`unknown phase: ${phase}`);
}

const ROOTS = 1000;
const ZIPF_EXPONENT = 1.0;
/** Stored blocks per worker, as a multiple of what it may hold: the excess is evicted. */
const STORE_FACTOR = 1.25;
const VOCABULARY = 128_000;
/** Blocks of stored work per worker replayed in the opaque-scheme run (per worker, at most 8 workers). */
const OPAQUE_BLOCKS_PER_WORKER = args.quick ? 5_000 : 25_000;
const DYNAMO_ANCHOR = { events_plus_requests_per_s: 10e6, p99_us: 10 };
const EMPTY_TOKENS: number[] = [];

const log = (line: string): void => void process.stderr.write(`[indexer-bench] ${line}\n`);

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;
/** Batches materialised at a time (about 2.5 events each). */
const CHUNK_BATCHES = 40_000;

/** mulberry32: small, fast, deterministic. */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  float(): number {
    return this.u32() / 4294967296;
  }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
}

// ---- Workload ------------------------------------------------------------------------------

interface Root {
  blocks: number;
  tokens: number[];
}

interface Conversation {
  worker: number;
  root: number;
  seed: number;
  /** Per turn: [prompt end, response end], in blocks from the start of the sequence. */
  turns: [number, number][];
  limbs: Uint32Array;
  evicted: boolean;
}

/** A growable list of int32, for plans too large to keep as objects. */
class IntList {
  data = new Int32Array(1024);
  length = 0;
  push(a: number, b: number, c: number, d: number): void {
    if (this.length + 4 > this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = a;
    this.data[this.length++] = b;
    this.data[this.length++] = c;
    this.data[this.length++] = d;
  }
}

/**
 * What one engine did, independent of how its events name blocks: per step four ints,
 * [conversation index, first block, end block, 1 to store or 0 to remove].
 */
type Plan = IntList;
const STEP = 4;

const rootRng = new Rng(SEED * 7919 + 1);
const roots: Root[] = Array.from({ length: ROOTS }, () => {
  const blocks = rootRng.int(4, 64);
  return { blocks, tokens: Array.from({ length: blocks * BLOCK_SIZE }, () => rootRng.int(0, VOCABULARY - 1)) };
});
const zipfCdf = (() => {
  const weights = Array.from({ length: ROOTS }, (_, rank) => 1 / (rank + 1) ** ZIPF_EXPONENT);
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0;
  return Float64Array.from(weights, (w) => (sum += w / total));
})();

function zipfRoot(rng: Rng): number {
  const x = rng.float();
  let lo = 0;
  let hi = ROOTS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (zipfCdf[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function conversationTokens(conversation: Conversation): number[] {
  const root = roots[conversation.root]!;
  const total = conversation.turns[conversation.turns.length - 1]![1];
  const tokens = root.tokens.slice();
  const rng = new Rng(conversation.seed);
  for (let i = root.tokens.length; i < total * BLOCK_SIZE; i++) tokens.push(rng.int(0, VOCABULARY - 1));
  return tokens;
}

/** Each worker's conversations and engine steps, in the order the engine performed them. */
function planWorkers(rng: Rng): { conversations: Conversation[]; plans: Plan[] } {
  const conversations: Conversation[] = [];
  const plans: Plan[] = [];
  for (let worker = 0; worker < WORKERS; worker++) {
    const plan = new IntList();
    const rootsHeld = new Set<number>();
    const live: number[] = [];
    let held = 0;
    let stored = 0;
    while (stored < BLOCKS_PER_WORKER * STORE_FACTOR) {
      const root = zipfRoot(rng);
      const turns: [number, number][] = [];
      let end = roots[root]!.blocks;
      for (let turn = rng.int(1, 6); turn > 0; turn--) {
        const promptEnd = end + rng.int(1, 24);
        end = promptEnd + rng.int(1, 16);
        turns.push([promptEnd, end]);
      }
      const conversation: Conversation = {
        worker,
        root,
        seed: rng.u32(),
        turns,
        limbs: new Uint32Array(0),
        evicted: false,
      };
      conversation.limbs = sequenceHashLimbs(conversationTokens(conversation), BLOCK_SIZE);
      const id = conversations.length;
      conversations.push(conversation);
      live.push(id);
      let cached = rootsHeld.has(root) ? roots[root]!.blocks : 0;
      if (cached === 0) held += roots[root]!.blocks;
      rootsHeld.add(root);
      held += end - roots[root]!.blocks;
      stored += end - cached;
      for (const [promptEnd, responseEnd] of turns) {
        // Chunked prefill, then one block per decode step.
        while (cached < promptEnd) {
          const to = Math.min(promptEnd, cached + rng.int(1, 32));
          plan.push(id, cached, to, 1);
          cached = to;
        }
        for (; cached < responseEnd; cached++) plan.push(id, cached, cached + 1, 1);
      }
      // Evict whole old conversations (not the shared system prompts), leaf first.
      while (held > BLOCKS_PER_WORKER && live.length > 1) {
        const victimId = live.shift()!;
        const victim = conversations[victimId]!;
        victim.evicted = true;
        const start = roots[victim.root]!.blocks;
        let to = victim.turns[victim.turns.length - 1]![1];
        held -= to - start;
        while (to > start) {
          const from = Math.max(start, to - rng.int(1, 32));
          plan.push(victimId, from, to, 0);
          to = from;
        }
      }
    }
    plans.push(plan);
  }
  return { conversations, plans };
}

/** Per conversation, its block names as an engine publishes them. */
type Naming = (conversation: Conversation) => bigint[];

/** The order engines publish in: workers round-robin, 1-4 plan steps per batch. */
interface Schedule {
  worker: Int32Array;
  /** First plan step of each batch. */
  first: Int32Array;
  count: Int32Array;
  events: number;
  blocks: number;
}

function schedule(plans: Plan[], rng: Rng): Schedule {
  const worker: number[] = [];
  const first: number[] = [];
  const count: number[] = [];
  const cursor = new Array<number>(plans.length).fill(0);
  let blocks = 0;
  for (let open = plans.length; open > 0;) {
    open = 0;
    for (let w = 0; w < plans.length; w++) {
      const steps = plans[w]!.length / STEP;
      if (cursor[w]! >= steps) continue;
      open++;
      const n = Math.min(rng.int(1, 4), steps - cursor[w]!);
      worker.push(w);
      first.push(cursor[w]!);
      count.push(n);
      for (let k = 0; k < n; k++) {
        const at = (cursor[w]! + k) * STEP;
        blocks += plans[w]!.data[at + 2]! - plans[w]!.data[at + 1]!;
      }
      cursor[w]! += n;
    }
  }
  const events = count.reduce((a, b) => a + b, 0);
  return {
    worker: Int32Array.from(worker),
    first: Int32Array.from(first),
    count: Int32Array.from(count),
    events,
    blocks,
  };
}

/** Batches [from, to) of a schedule as event objects; `tokens` says whether they carry token ids. */
function materialise(
  conversations: Conversation[],
  plans: Plan[],
  order: Schedule,
  from: number,
  to: number,
  naming: Naming,
  tokens: boolean,
): KvEventBatch[] {
  const names = new Map<number, bigint[]>();
  const tokenCache = new Map<number, number[]>();
  const batches: KvEventBatch[] = [];
  for (let b = from; b < to; b++) {
    const plan = plans[order.worker[b]!]!.data;
    const events: KvEvent[] = [];
    for (let k = 0; k < order.count[b]!; k++) {
      const at = (order.first[b]! + k) * STEP;
      const id = plan[at]!;
      const start = plan[at + 1]!;
      const end = plan[at + 2]!;
      let hashes = names.get(id);
      if (!hashes) names.set(id, (hashes = naming(conversations[id]!)));
      const blockHashes = hashes.slice(start, end);
      if (plan[at + 3] === 1) {
        let tokenIds = EMPTY_TOKENS;
        if (tokens) {
          let all = tokenCache.get(id);
          if (!all) tokenCache.set(id, (all = conversationTokens(conversations[id]!)));
          tokenIds = all.slice(start * BLOCK_SIZE, end * BLOCK_SIZE);
        }
        events.push({
          type: 'BlockStored',
          blockHashes,
          parentBlockHash: start > 0 ? hashes[start - 1]! : null,
          tokenIds,
          blockSize: BLOCK_SIZE,
          loraName: null,
          medium: 'device',
        });
      } else {
        events.push({ type: 'BlockRemoved', blockHashes, medium: 'device' });
      }
    }
    batches.push({ ts: 0, events, dpRank: null });
  }
  return batches;
}

/** Queries: next turns of live conversations, new conversations on shared prompts, misses. */
function buildQueries(conversations: Conversation[], rng: Rng): { queries: Uint32Array[]; kinds: Uint8Array } {
  const live = conversations.filter((c) => !c.evicted);
  const queries: Uint32Array[] = [];
  const kinds = new Uint8Array(QUERIES);
  const withTail = (prefix: Uint32Array, tailBlocks: number): Uint32Array => {
    // Hashes of unseen tokens: random u64s are what a chained XXH3 of new content looks like.
    const query = new Uint32Array(prefix.length + 2 * tailBlocks);
    query.set(prefix);
    for (let i = prefix.length; i < query.length; i++) query[i] = rng.u32();
    return query;
  };
  for (let i = 0; i < QUERIES; i++) {
    const dice = rng.float();
    if (dice < 0.65 && live.length > 0) {
      const conversation = live[rng.int(0, live.length - 1)]!;
      const turn = conversation.turns[rng.int(0, conversation.turns.length - 1)]!;
      queries.push(withTail(conversation.limbs.subarray(0, 2 * turn[1]), rng.int(1, 24)));
      kinds[i] = 0;
    } else if (dice < 0.9) {
      const root = zipfRoot(rng);
      const rootLimbs = sequenceHashLimbs(roots[root]!.tokens, BLOCK_SIZE);
      queries.push(withTail(rootLimbs, rng.int(1, 40)));
      kinds[i] = 1;
    } else {
      queries.push(withTail(new Uint32Array(0), rng.int(8, 64)));
      kinds[i] = 2;
    }
  }
  return { queries, kinds };
}

// ---- Measurement ---------------------------------------------------------------------------

const instanceIds = Array.from({ length: WORKERS }, (_, i) => `worker-${i}`);

function freshIndexer(scheme: 'armature' | 'opaque'): KvIndexer {
  const index = new KvIndexer();
  if (scheme === 'armature') for (const id of instanceIds) index.setHashScheme(id, 'armature');
  return index;
}

/**
 * Applies batches [from, to) of a schedule, materialised a chunk at a time between timed
 * sections; `between` runs untimed after each chunk's events are built. Returns seconds.
 */
function replay(
  index: KvIndexer,
  input: { conversations: Conversation[]; plans: Plan[]; order: Schedule; naming: Naming; tokens: boolean },
  from: number,
  to: number,
  during?: (index: KvIndexer, batch: number) => void,
): number {
  let seconds = 0;
  for (let start = from; start < to; start += CHUNK_BATCHES) {
    const end = Math.min(to, start + CHUNK_BATCHES);
    const batches = materialise(input.conversations, input.plans, input.order, start, end, input.naming, input.tokens);
    const owners = input.order.worker;
    collectGarbage();
    const t0 = process.hrtime.bigint();
    if (during) {
      for (let i = 0; i < batches.length; i++) {
        index.applyBatch(instanceIds[owners[start + i]!]!, batches[i]!);
        during(index, start + i);
      }
    } else {
      for (let i = 0; i < batches.length; i++) index.applyBatch(instanceIds[owners[start + i]!]!, batches[i]!);
    }
    seconds += Number(process.hrtime.bigint() - t0) / 1e9;
  }
  return seconds;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function memoryMb(): { heap_mb: number; array_buffers_mb: number; rss_mb: number } {
  const m = process.memoryUsage();
  const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);
  return { heap_mb: mb(m.heapUsed), array_buffers_mb: mb(m.arrayBuffers), rss_mb: mb(m.rss) };
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

type Input = Parameters<typeof replay>[1];

/** Every query once, timed one call at a time, after a warm-up pass. */
function measureFind(index: KvIndexer, queries: Uint32Array[], kinds: Uint8Array): Record<string, unknown> {
  for (let i = 0; i < Math.min(QUERIES, 20_000); i++) index.findMatches(queries[i]!);
  let timerOverhead = Infinity;
  for (let i = 0; i < 10_000; i++) {
    const t0 = process.hrtime.bigint();
    timerOverhead = Math.min(timerOverhead, Number(process.hrtime.bigint() - t0));
  }
  collectGarbage();
  const latencies = new Float64Array(QUERIES);
  const bestDepth = new Int32Array(QUERIES);
  for (let i = 0; i < QUERIES; i++) {
    const query = queries[i]!;
    const t0 = process.hrtime.bigint();
    const scores = index.findMatches(query);
    latencies[i] = Number(process.hrtime.bigint() - t0) / 1000;
    for (const w of scores.workers) if (w.depth > bestDepth[i]!) bestDepth[i] = w.depth;
  }
  const seconds = latencies.reduce((a, b) => a + b, 0) / 1e6;
  const hits = bestDepth.reduce((n, d) => n + (d > 0 ? 1 : 0), 0);
  const matchedDepth = bestDepth.reduce((a, b) => a + b, 0);
  const byKind = [0, 1, 2].map((kind) => {
    const own = Float64Array.from(latencies.filter((_, i) => kinds[i] === kind)).sort();
    return own.length > 0 ? round(quantile(own, 0.99)) : 0;
  });
  const sorted = Float64Array.from(latencies).sort();
  const p99 = quantile(sorted, 0.99);
  const queryBlocks = Float64Array.from(queries, (q) => q.length / 2).sort();
  log(
    `find_matches: p50 ${quantile(sorted, 0.5).toFixed(2)} µs, p99 ${p99.toFixed(2)} µs, max ${sorted[QUERIES - 1]!.toFixed(1)} µs`,
  );
  return {
    queries: QUERIES,
    query_blocks_mean: round(queryBlocks.reduce((a, b) => a + b, 0) / QUERIES, 1),
    query_blocks_p99: quantile(queryBlocks, 0.99),
    query_hit_ratio: round(hits / QUERIES, 3),
    matched_depth_mean: round(matchedDepth / QUERIES, 1),
    find_matches_per_s: Math.round(QUERIES / seconds),
    find_matches_mean_us: round((seconds * 1e6) / QUERIES),
    find_matches_p50_us: round(quantile(sorted, 0.5)),
    find_matches_p99_us: round(p99),
    find_matches_max_us: round(sorted[QUERIES - 1]!, 1),
    find_matches_p99_us_by_kind: { next_turn: byKind[0], shared_prompt: byKind[1], miss: byKind[2] },
    timer_overhead_ns: timerOverhead,
    ratio_p99_to_anchor: round(p99 / DYNAMO_ANCHOR.p99_us, 3),
  };
}

/** Half the events untimed into a fresh index, then the other half interleaved with every query. */
function measureMixed(input: Input, queries: Uint32Array[], expectedNodes: number): Record<string, unknown> {
  const order = input.order;
  const batchCount = order.worker.length;
  const mixed = freshIndexer('armature');
  const half = batchCount >>> 1;
  replay(mixed, input, 0, half);
  let events = 0;
  for (let b = half; b < batchCount; b++) events += order.count[b]!;
  const batchesPerQuery = (batchCount - half) / QUERIES;
  let asked = 0;
  const seconds = replay(mixed, input, half, batchCount, (target, batch) => {
    const due = Math.min(QUERIES, Math.floor((batch - half + 1) / batchesPerQuery));
    for (; asked < due; asked++) target.findMatches(queries[asked]!);
  });
  checkCounters('mixed', mixed);
  if (mixed.nodeCount !== expectedNodes) throw new Error('the mixed replay ended with a different index');
  const opsPerS = (events + asked) / seconds;
  log(`mixed: ${Math.round(opsPerS).toLocaleString()} events+requests/s (${asked} requests)`);
  return {
    mixed_ops_per_s: Math.round(opsPerS),
    mixed_events_per_request: round(events / asked, 1),
    ratio_mixed_to_anchor: round(opsPerS / DYNAMO_ANCHOR.events_plus_requests_per_s, 3),
  };
}

/** Engine-private hashes, our hashes recomputed from token ids, on a slice of the first workers' plans. */
function measureOpaque(conversations: Conversation[], plans: Plan[]): Record<string, unknown> {
  const slicePlans = plans.slice(0, Math.min(WORKERS, 8)).map((plan) => {
    const kept = new IntList();
    let blocks = 0;
    for (let at = 0; at < plan.length && blocks < OPAQUE_BLOCKS_PER_WORKER; at += STEP) {
      kept.push(plan.data[at]!, plan.data[at + 1]!, plan.data[at + 2]!, plan.data[at + 3]!);
      blocks += plan.data[at + 2]! - plan.data[at + 1]!;
    }
    return kept;
  });
  const order = schedule(slicePlans, new Rng(SEED + 3));
  // Engine hashes: anything but ours; here our hashes with the high limb scrambled.
  const naming: Naming = (c) => hashesFromLimbs(c.limbs.map((limb, i) => (i & 1 ? limb ^ 0x5bd1e995 : limb)));
  const index = freshIndexer('opaque');
  const seconds = replay(
    index,
    { conversations, plans: slicePlans, order, naming, tokens: true },
    0,
    order.worker.length,
  );
  checkCounters('opaque', index);
  log(`opaque: ${Math.round(order.events / seconds).toLocaleString()} events/s on ${order.events} events`);
  return {
    opaque_events_per_s: Math.round(order.events / seconds),
    opaque_blocks_per_s: Math.round(order.blocks / seconds),
    opaque_events: order.events,
  };
}

function checkCounters(name: string, index: KvIndexer): void {
  const c = index.counters;
  if (c.orphanEvents + c.malformedEvents + c.unknownRemovals > 0) {
    throw new Error(`${name} replay skipped events: ${JSON.stringify(c)}`);
  }
}

function main(): void {
  const started = performance.now();
  const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  log(`workers=${WORKERS} blocks-per-worker=${BLOCKS_PER_WORKER} block-size=${BLOCK_SIZE} queries=${QUERIES}`);

  const { conversations, plans } = planWorkers(new Rng(SEED));
  const order = schedule(plans, new Rng(SEED + 1));
  log(`planned ${conversations.length} conversations, ${order.events} events, ${order.blocks} blocks (${elapsed()})`);
  const { queries, kinds } = buildQueries(conversations, new Rng(SEED + 2));
  const input: Input = { conversations, plans, order, naming: (c) => hashesFromLimbs(c.limbs), tokens: false };

  // Events: every batch into an empty index, which the other phases then query.
  collectGarbage();
  const buffersBefore = process.memoryUsage().arrayBuffers;
  const index = freshIndexer('armature');
  const eventSeconds = replay(index, input, 0, order.worker.length);
  checkCounters('armature', index);
  const eventsPerS = order.events / eventSeconds;
  log(
    `events: ${Math.round(eventsPerS).toLocaleString()}/s, ${Math.round(order.blocks / eventSeconds).toLocaleString()} blocks/s; ${index.nodeCount} nodes (${elapsed()})`,
  );
  collectGarbage();
  const memory = memoryMb();
  const indexMb = Math.round((process.memoryUsage().arrayBuffers - buffersBefore) / 2 ** 20);

  const result = {
    bench: 'indexer',
    workers: WORKERS,
    blocks_per_worker: BLOCKS_PER_WORKER,
    block_size: BLOCK_SIZE,
    seed: SEED,
    conversations: conversations.length,
    events: order.events,
    event_blocks: order.blocks,
    events_per_s: Math.round(eventsPerS),
    blocks_per_s: Math.round(order.blocks / eventSeconds),
    nodes: index.nodeCount,
    held_blocks: instanceIds.reduce((sum, id) => sum + index.blocksOf(id), 0),
    index_mb: indexMb,
    ...memory,
    ...(PHASES.has('find') ? measureFind(index, queries, kinds) : {}),
    ...(PHASES.has('mixed') ? measureMixed(input, queries, index.nodeCount) : {}),
    ...(PHASES.has('opaque') ? measureOpaque(conversations, plans) : {}),
    dynamo_anchor: DYNAMO_ANCHOR,
    ratio_events_to_anchor: round(eventsPerS / DYNAMO_ANCHOR.events_plus_requests_per_s, 3),
    notes: 'armature-scheme events carry no token ids (that path never reads them); the opaque run carries them all',
    node: process.version,
    wall_s: 0,
  };
  result.wall_s = round((performance.now() - started) / 1000, 1);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main();
