// The narrow interfaces the pipeline stages work against: what they ask of the router, of
// the workers and of the model list, and nothing more. `Upstream` implements them over
// gRPC and discovery; @armature/testing's FakeRouter and FakeWorkerPool implement them in
// memory for the stages' unit tests. The types are @armature/proto's wire types only.
import type { GenerateRequest, GenerateResponse, PrefillResponse, RouteRequest, RouteResponse } from '@armature/proto';
import type { ModelCard } from '@armature/runtime';

/** The router as the pipeline uses it: one placement, then notifications about it. */
export interface RouterPort {
  /** Places a request (it may wait in the router's queue); rejects with the router's error. */
  route(request: RouteRequest, signal: AbortSignal): Promise<RouteResponse>;
  /** The prompt is computed: its prefill share of the load ends. Best effort, never throws. */
  markPrefillComplete(requestId: string): void;
  /** The prompt routed to a prefill worker is prefilled on the decode worker instead. Best effort. */
  markPrefillLocal(requestId: string): void;
  /** The request is over: its load is released. Best effort; unknown ids are ignored. */
  free(requestId: string): void;
}

/** One Generate call's answers, in order; the iteration throws the worker's failure. */
export interface WorkerStream extends AsyncIterable<GenerateResponse> {
  /** Stops the worker's generation (a stop string matched). */
  cancel(): void;
  /**
   * Resolves when the worker took the call (its response headers, sent before it queues
   * or prefills): a worker that does not is stopped or stuck, however busy it may be.
   * Never rejects; the stream reports failures.
   */
  readonly accepted: Promise<void>;
}

/** The workers, addressed by gRPC address, as the pipeline uses them. */
export interface WorkerPort {
  /** Starts a Generate call; aborting `signal` cancels it on the worker. */
  generate(address: string, request: GenerateRequest, signal: AbortSignal): WorkerStream;
  /** Runs the prompt only: its first token and where its KV blocks wait. Fails past `deadline` (epoch ms). */
  prefill(address: string, request: GenerateRequest, signal: AbortSignal, deadline: number): Promise<PrefillResponse>;
  /** Unpins a prefill's KV blocks that no decode worker will pull. Best effort. */
  releaseKv(address: string, pinId: string): void;
  /** Drops whatever is cached for a worker that just failed (its connection). */
  forgetWorker(address: string): void;
}

/** A model some live worker serves. */
export interface ServedModel {
  card: ModelCard;
  workers: Set<string>;
  /** When the model was first seen (epoch seconds), for /v1/models. */
  created: number;
}

/** The models the frontend can serve now. */
export interface ModelCatalog {
  model(name: string): ServedModel | undefined;
}

/** Everything the stages call out to, injected together. */
export interface PipelinePorts {
  router: RouterPort;
  workers: WorkerPort;
}
