// The request's way after prepare: route -> prefill (when the router chose a prefill
// worker) -> decode stream -> output text, as events for the HTTP layer to render. It owns
// the order of the stages and the attempt loop (a re-route when the decode worker fails
// before answering), and guarantees the end: the router's load is freed exactly once per
// attempt, and a prefill no decode worker finished with is unpinned. The stages do the work.
import { createLogger, type RequestContext } from '@armature/runtime';
import { decodeStream, onDecodeFailure } from './decode.js';
import { OutputText } from './output-text.js';
import type { PipelinePorts } from './ports.js';
import { firstTokenEvents, prefillRemotely, releasePrefill, type Prefilled } from './prefill.js';
import { route, type RouteAttempt } from './route.js';
import type { PipelineEvent, PipelineOptions, PreparedRequest } from './types.js';

const log = createLogger('frontend/pipeline');

/** Streams the request's output; the caller owns `ctx` and cancels it on disconnect. */
export async function* run(
  ports: PipelinePorts,
  options: PipelineOptions,
  ctx: RequestContext,
  p: PreparedRequest,
  pinnedWorkerId?: string,
): AsyncGenerator<PipelineEvent> {
  const excluded: string[] = [];
  const out = new OutputText(p);
  let attempt: RouteAttempt | undefined;
  let prefilled: Prefilled | undefined;
  let started = false;
  let decoded = false;
  try {
    for (let n = 0; ; n++) {
      ctx.throwIfCancelled();
      attempt = await route(ports.router, ctx, p, { attempt: n, pinnedWorkerId, excludedWorkerIds: excluded });
      // An encoder stage (multimodal: images to embeddings handed to the prefill worker)
      // goes here, between the placement and the prefill that consumes its output.
      if (attempt.prefill && !prefilled) {
        prefilled = await prefillRemotely(ports.workers, ctx, p, attempt, options);
        if (prefilled) {
          started = true;
          const finish = yield* firstTokenEvents(p, attempt, prefilled, out);
          if (finish) {
            // The first token ends the request: no decode worker is needed.
            releasePrefill(ports.workers, prefilled);
            prefilled = undefined;
            yield* out.finish(finish);
            return;
          }
        }
      }
      let sentAnything = false;
      try {
        for await (const ev of decodeStream(ports.workers, ctx, p, attempt, out, prefilled)) {
          sentAnything = true;
          if (ev.type === 'start') {
            if (started) continue; // the prefill's start event went out already
            started = true;
          }
          yield ev;
        }
        decoded = true;
        return;
      } catch (err) {
        const target = attempt.decode;
        const next = onDecodeFailure(err, target.instanceId, {
          sentAnything,
          pinned: !!pinnedWorkerId,
          attempt: n,
          cancelled: ctx.cancelled,
        });
        if (next !== 'reroute') throw next;
        // Before the decode worker answered nothing is lost: the first token is kept, and the
        // next decode worker prefills the prompt itself (the pin may be gone with the pull).
        log.warn('worker failed before answering; re-routing', { requestId: p.requestId, worker: target.instanceId });
        if (prefilled) prefilled.pullable = false;
        ports.workers.forgetWorker(target.grpcAddress);
        attempt.free();
        excluded.push(target.instanceId);
      }
    }
  } finally {
    attempt?.free();
    // A decode worker that pulled the prefill released it already; a second release is a no-op.
    if (prefilled && !decoded) releasePrefill(ports.workers, prefilled);
  }
}
