// What routing policies see and return. Policies are plugins: a kebab-case id, a
// factory taking validated parameters, and a pure `choose` over candidate workers.
import type { ModelCard } from '@armature/runtime';

/** Load a worker last published on the event plane. */
export interface PublishedLoad {
  activeDecodeBlocks: number;
  activePrefillTokens: number;
  waitingRequests: number;
  runningRequests: number;
  kvUsage: number;
}

/** Load this router has sent a worker and not yet seen freed. */
export interface TrackedLoad {
  requests: number;
  prefillTokens: number;
  decodeBlocks: number;
}

export interface WorkerView {
  instanceId: string;
  grpcAddress: string;
  card: ModelCard;
  published: PublishedLoad | undefined;
  tracked: TrackedLoad;
}

export interface RouteInput {
  requestId: string;
  model: string;
  tokenIds: readonly number[];
}

export interface Decision {
  worker: WorkerView;
  /** Prompt blocks the worker is believed to hold (0 for cache-blind policies). */
  overlapBlocks: number;
}

export interface RoutingPolicy {
  readonly id: string;
  /** Picks one of `candidates` (never empty). */
  choose(candidates: readonly WorkerView[], input: RouteInput): Decision;
}

/** What a policy may use from its surroundings (injected, so simulations are reproducible). */
export interface PolicyEnv {
  /** Uniform in [0, 1); Math.random unless a simulation seeds its own. */
  random: () => number;
}

export interface PolicyFactory {
  readonly id: string;
  /** Builds the policy; throws on bad parameters. */
  create(params: Record<string, unknown>, env: PolicyEnv): RoutingPolicy;
}
