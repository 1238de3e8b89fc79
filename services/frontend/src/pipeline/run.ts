// The request's way after prepare: route -> prefill (when the router chose a prefill
// worker) -> decode stream -> output text, as events for the HTTP layer to render. It owns
// the order of the stages and the attempt loop: a re-route when the decode worker fails
// before answering, a migration when its stream breaks mid-generation (the next worker
// gets the prompt plus every token generated so far and the budget left, and the client
// sees one stream), and guarantees the end: the router's load is freed exactly once per
// attempt, and a prefill no decode worker finished with is unpinned. The stages do the work;
// with tracing on each of route, prefill and decode is a span whose gRPC calls are its children.
import { createLogger, failSpan, inSpan, iterateInSpan, startSpan, type RequestContext } from '@armature/runtime';
import {
  DEFAULT_ACCEPT_TIMEOUT_MS,
  DEFAULT_MIGRATION_LIMIT,
  DEFAULT_STALL_TIMEOUT_MS,
  decodeStream,
  onDecodeFailure,
} from './decode.js';
import { OutputText } from './output-text.js';
import type { PipelinePorts } from './ports.js';
import { firstTokenEvents, prefillRemotely, releasePrefill, type Prefilled } from './prefill.js';
import { route, type RouteAttempt } from './route.js';
import type { PipelineEvent, PipelineOptions, PreparedRequest } from './types.js';

const log = createLogger('frontend/pipeline');

/** The request as a worker continues it: the prompt plus what was generated, and the budget left. */
export function continuation(p: PreparedRequest, generated: readonly number[]): PreparedRequest {
  if (generated.length === 0) return p;
  return { ...p, promptIds: [...p.promptIds, ...generated], maxTokens: p.maxTokens - generated.length };
}

/** Streams the request's output; the caller owns `ctx` and cancels it on disconnect. */
export async function* run(
  ports: PipelinePorts,
  options: PipelineOptions,
  ctx: RequestContext,
  p: PreparedRequest,
  pinnedWorkerId?: string,
): AsyncGenerator<PipelineEvent> {
  const excluded: string[] = [];
  const failed: string[] = [];
  const out = new OutputText(p);
  const migrationLimit = options.migrationLimit ?? DEFAULT_MIGRATION_LIMIT;
  const timeouts = {
    stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    acceptTimeoutMs: options.acceptTimeoutMs ?? DEFAULT_ACCEPT_TIMEOUT_MS,
  };
  let attempt: RouteAttempt | undefined;
  let prefilled: Prefilled | undefined;
  let started = false;
  let decoded = false;
  let reroutes = 0;
  let migrations = 0;
  try {
    for (let n = 0; ; n++) {
      ctx.throwIfCancelled();
      // A migrated request carries its output so far; its first attempt is the request itself.
      const current = migrations > 0 ? continuation(p, out.generated) : p;
      if (current.maxTokens <= 0) {
        yield* out.finish('length'); // the budget ran out with the last token before the break
        decoded = true;
        return;
      }
      const routeStarted = performance.now();
      const routeOptions = {
        attempt: n,
        pinnedWorkerId,
        excludedWorkerIds: excluded,
        failedWorkerIds: failed.splice(0),
      };
      attempt = await inSpan('route', { 'armature.attempt': n }, async (span) => {
        const a = await route(ports.router, ctx, current, routeOptions);
        span?.setAttributes({
          'armature.route.decode_worker': a.decode.instanceId,
          'armature.route.prefill_worker': a.prefill?.instanceId ?? '',
        });
        return a;
      });
      options.onStage?.('route', (performance.now() - routeStarted) / 1000, p.request.model);
      // An encoder stage (multimodal: images to embeddings handed to the prefill worker)
      // goes here, between the placement and the prefill that consumes its output.
      if (attempt.prefill && migrations > 0) {
        attempt.markPrefillLocal(); // the continuation is prefilled where it decodes
      } else if (attempt.prefill && !prefilled) {
        const prefillStarted = performance.now();
        const remote = attempt;
        prefilled = await inSpan('prefill', { 'armature.prefill_worker': remote.prefill!.instanceId }, () =>
          prefillRemotely(ports.workers, ctx, p, remote, options),
        );
        options.onStage?.('prefill', (performance.now() - prefillStarted) / 1000, p.request.model);
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
      // The decode worker's Generate call (and its server span) runs under this span.
      const decodeSpan = startSpan('decode', { 'armature.decode_worker': attempt.decode.instanceId });
      try {
        const stream = decodeStream(ports.workers, ctx, current, attempt, out, prefilled, timeouts);
        for await (const ev of iterateInSpan(decodeSpan, stream)) {
          sentAnything = true;
          if (ev.type === 'start') {
            if (started) continue; // the prefill's (or the first worker's) start event went out already
            started = true;
          }
          yield ev;
        }
        decoded = true;
        return;
      } catch (err) {
        failSpan(decodeSpan, err);
        const target = attempt.decode;
        const next = onDecodeFailure(
          err,
          target.instanceId,
          {
            sentAnything,
            pinned: !!pinnedWorkerId,
            reroutes,
            migrations,
            migrationLimit,
            sequenceTokens: p.promptIds.length + out.generated.length,
            maxSequenceTokens: options.migrationMaxSeqLen ?? 0,
            cancelled: ctx.cancelled,
          },
          options.onRetriesExhausted,
        );
        if (typeof next !== 'string') throw next;
        const reason = (err as { reason?: string }).reason ?? 'unknown';
        options.onRetry?.(next, reason, target.instanceId);
        if (next === 'reroute') {
          // Before the decode worker answered nothing is lost: the first token is kept, and the
          // next decode worker prefills the prompt itself (the pin may be gone with the pull).
          log.warn('worker failed before answering; re-routing', {
            requestId: p.requestId,
            worker: target.instanceId,
            reason,
          });
          reroutes++;
          if (prefilled) prefilled.pullable = false;
        } else {
          log.warn('worker failed mid-stream; migrating', {
            requestId: p.requestId,
            worker: target.instanceId,
            reason,
            generated: out.generated.length,
          });
          migrations++;
          // The continuation resends every token, the prefill's first one included.
          if (prefilled) releasePrefill(ports.workers, prefilled);
          prefilled = undefined;
        }
        ports.workers.forgetWorker(target.grpcAddress);
        attempt.free();
        excluded.push(target.instanceId);
        failed.push(target.instanceId);
      } finally {
        decodeSpan?.end();
      }
    }
  } finally {
    attempt?.free();
    // A decode worker that pulled the prefill released it already; a second release is a no-op.
    if (prefilled && !decoded) releasePrefill(ports.workers, prefilled);
  }
}
