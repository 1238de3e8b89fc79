// An in-memory router for unit tests of the frontend pipeline. It has the shape of the
// frontend's RouterPort (services/frontend/src/pipeline/ports.ts; the frontend's tests
// check it with `satisfies`) without depending on the frontend: it answers Route with the
// first decode worker not excluded (or the pinned one) plus the prefill worker when one is
// set, and records every call, so a test can assert what the pipeline told the router.
import type { RouteRequest, RouteResponse, WorkerTarget } from '@armature/proto';
import { ArmatureError } from '@armature/runtime';

export type RouterCall =
  | { op: 'route'; requestId: string; request: RouteRequest }
  | { op: 'markPrefillComplete' | 'markPrefillLocal' | 'free'; requestId: string };

export type RouterOp = RouterCall['op'];

export interface FakeRouterOptions {
  /** Decode workers, in the order the default choice tries them. */
  decode: WorkerTarget[];
  /** When set, every Route also names this prefill worker (remote prefill). */
  prefill?: WorkerTarget;
  /** Answers Route instead of the default choice (it may wait, or throw the router's error). */
  decide?: (request: RouteRequest, signal: AbortSignal) => RouteResponse | Promise<RouteResponse>;
}

export class FakeRouter {
  /** Every call, in order. */
  readonly calls: RouterCall[] = [];
  /** Ids whose Route was cancelled (its signal aborted) before the router answered. */
  readonly cancelledRoutes = new Set<string>();
  private readonly routed = new Set<string>();

  constructor(private readonly options: FakeRouterOptions) {}

  async route(request: RouteRequest, signal: AbortSignal): Promise<RouteResponse> {
    this.calls.push({
      op: 'route',
      requestId: request.requestId,
      request: { ...request, excludedWorkerIds: [...request.excludedWorkerIds] },
    });
    const cancelled = (): ArmatureError => {
      this.cancelledRoutes.add(request.requestId);
      return new ArmatureError('cancelled', 'grpc_cancelled', 'Cancelled on client');
    };
    if (signal.aborted) throw cancelled();
    let onAbort = (): void => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(cancelled());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      // A decision that waits (a queue) loses to the caller giving up, as a gRPC call would.
      const decided = Promise.resolve().then(() =>
        this.options.decide ? this.options.decide(request, signal) : this.choose(request),
      );
      const response = await Promise.race([decided, aborted]);
      this.routed.add(request.requestId);
      return response;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  markPrefillComplete(requestId: string): void {
    this.calls.push({ op: 'markPrefillComplete', requestId });
  }

  markPrefillLocal(requestId: string): void {
    this.calls.push({ op: 'markPrefillLocal', requestId });
  }

  free(requestId: string): void {
    this.calls.push({ op: 'free', requestId });
    this.routed.delete(requestId);
  }

  /** The request ids of the calls of one kind, in order (repeats included). */
  idsOf(op: RouterOp): string[] {
    return this.calls.filter((c) => c.op === op).map((c) => c.requestId);
  }

  /** The Route requests received, in order. */
  routeRequests(): RouteRequest[] {
    return this.calls.flatMap((c) => (c.op === 'route' ? [c.request] : []));
  }

  /** Ids routed and not yet freed: what would still count as load at a real router. */
  get active(): ReadonlySet<string> {
    return this.routed;
  }

  private choose(request: RouteRequest): RouteResponse {
    const pinned = request.pinnedWorkerId;
    const decode = pinned
      ? this.options.decode.find((w) => w.instanceId === pinned)
      : this.options.decode.find((w) => !request.excludedWorkerIds.includes(w.instanceId));
    if (!decode) {
      throw pinned
        ? new ArmatureError('unavailable', 'worker_not_found', `worker ${pinned} is not available`)
        : new ArmatureError('unavailable', 'no_workers', `no worker serves ${request.model}`);
    }
    const prefill = this.options.prefill;
    return {
      decode,
      prefill,
      overlapBlocks: 0,
      policy: 'fake',
      disaggMode: prefill ? 'remote-prefill' : 'aggregated',
      disaggReason: prefill ? 'remote' : '',
      blocksToPull: 0,
    };
  }
}
