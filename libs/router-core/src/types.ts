// What routing policies see and return. Policies are plugins: a kebab-case id, a
// factory taking validated parameters, and a pure `choose` over candidate workers.
import type { TierOverlap } from '@armature/kv';
import type { ModelCard, WorkerLoad } from '@armature/runtime';

/** Load a worker last published on the event plane. */
export type PublishedLoad = WorkerLoad;

/** Load the routers (this one and its replicas) have sent a worker and not yet seen freed. */
export interface TrackedLoad {
  requests: number;
  /** Prompt tokens not found in the cache, counted until the first token. */
  prefillTokens: number;
  /** KV blocks of the in-flight prompts, a prefix shared by several requests counted once. */
  decodeBlocks: number;
}

/** A worker's cached prefix of the prompt being routed, as far as the router knows. */
export interface KvOverlap extends TierOverlap {
  /** Leading prompt blocks held in any tier (device + host + disk + remote). */
  blocks: number;
}

export interface WorkerView {
  instanceId: string;
  grpcAddress: string;
  /** Data-parallel rank the overlap refers to (0 for single-rank workers). */
  dpRank: number;
  card: ModelCard;
  published: PublishedLoad | undefined;
  tracked: TrackedLoad;
  /** This prompt's cached prefix on the worker (precise index, or predicted in approximate mode). */
  overlap: KvOverlap;
  /** Leading prompt blocks already in use by the worker's in-flight requests (not new decode load). */
  activePrefixBlocks: number;
  /** Blocks the router's index holds for the worker (its tree size); smaller breaks cost ties. */
  indexedBlocks: number;
}

export interface RouteInput {
  requestId: string;
  model: string;
  tokenIds: readonly number[];
  /** Prompt blocks, the partial last one included: ceil(tokens / block size). */
  promptBlocks: number;
  /** Sequence hashes of the full prompt blocks as u32 limb pairs [lo0, hi0, lo1, hi1, ...]. */
  blockHashes: Uint32Array;
}

export interface Decision {
  worker: WorkerView;
}

export interface RoutingPolicy {
  readonly id: string;
  /** Picks one of `candidates` (never empty). */
  choose(candidates: readonly WorkerView[], input: RouteInput): Decision;
  /** Told about every request the router committed to a worker (pinned ones included). */
  observe?(input: RouteInput, worker: WorkerView): void;
  /** A worker left; forget what is kept about it. */
  forgetWorker?(instanceId: string): void;
}

/** What a policy may use from its surroundings (injected, so simulations are reproducible). */
export interface PolicyEnv {
  /** Uniform in [0, 1); Math.random unless a simulation seeds its own. */
  random: () => number;
  /** Milliseconds, Date.now unless a simulation runs its own clock. */
  now: () => number;
}

export interface PolicyFactory {
  readonly id: string;
  /** Builds the policy; throws on bad parameters. */
  create(params: Record<string, unknown>, env: PolicyEnv): RoutingPolicy;
}
