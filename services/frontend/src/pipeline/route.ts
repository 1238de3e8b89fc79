// Stage 2, route: asks the router where one attempt of the request runs, and owns that
// attempt's bookkeeping at the router. Each attempt has its own id there (`<id>`, then
// `<id>#1`, ...), so a Free of a failed attempt can never release (or race with) the load
// of the attempt that replaced it. A RouteAttempt sends MarkPrefillComplete at most once
// and Free exactly once, however many stages ask. It does not talk to workers.
import type { RouteResponse, WorkerTarget } from '@armature/proto';
import type { RequestContext } from '@armature/runtime';
import type { RouterPort } from './ports.js';
import type { PreparedRequest } from './types.js';

/** One placement of the request by the router, and the notifications that settle it. */
export class RouteAttempt {
  /** The worker that streams the output. */
  readonly decode: WorkerTarget;
  /** Set when a separate prefill worker should run the prompt. */
  readonly prefill: WorkerTarget | undefined;
  private prefillCompleted = false;
  private freed = false;

  constructor(
    private readonly router: RouterPort,
    /** The request's id at the router for this attempt. */
    readonly routeId: string,
    response: RouteResponse,
  ) {
    this.decode = response.decode!;
    this.prefill = response.prefill;
  }

  /**
   * The prompt is computed (on the prefill worker, or by the decode worker's first
   * answer): its prefill share of the load ends. Sent once per attempt; later calls are no-ops.
   */
  markPrefillComplete(): void {
    if (this.prefillCompleted || this.freed) return;
    this.prefillCompleted = true;
    this.router.markPrefillComplete(this.routeId);
  }

  /** The prefill worker failed: the decode worker prefills, and the router moves the prefill's load there. */
  markPrefillLocal(): void {
    if (this.freed) return;
    this.router.markPrefillLocal(this.routeId);
  }

  /** Releases the attempt's load at the router; exactly once, later calls are no-ops. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.router.free(this.routeId);
  }
}

export interface RouteOptions {
  /** Routing attempt: 0 first, then one more per re-route. */
  attempt: number;
  /** Send to this worker (the x-armature-worker-id header). */
  pinnedWorkerId?: string;
  /** Workers that already failed this request. */
  excludedWorkerIds: readonly string[];
  /** The worker(s) that just failed it, which the router inhibits for everyone for a while. */
  failedWorkerIds?: readonly string[];
}

/** Asks the router for a worker (and maybe a prefill worker) for one attempt of the request. */
export async function route(
  router: RouterPort,
  ctx: RequestContext,
  p: PreparedRequest,
  options: RouteOptions,
): Promise<RouteAttempt> {
  const routeId = options.attempt === 0 ? p.requestId : `${p.requestId}#${options.attempt}`;
  const response = await router.route(
    {
      requestId: routeId,
      model: p.request.model,
      tokenIds: p.promptIds,
      pinnedWorkerId: options.pinnedWorkerId,
      excludedWorkerIds: [...options.excludedWorkerIds],
      failedWorkerIds: [...(options.failedWorkerIds ?? [])],
    },
    ctx.signal,
  );
  return new RouteAttempt(router, routeId, response);
}
