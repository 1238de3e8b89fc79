// The OpenAI-compatible HTTP face: /v1/models, /v1/chat/completions, /v1/completions,
// /health, /live and /metrics. It reads and validates the body, runs the pipeline under a
// request context it cancels on disconnect, and renders errors; pipeline/ does the work
// and render.ts writes the answer. Whatever a client sends, the answer is OpenAI's error
// JSON with a 4xx rather than Node's bare defaults or a 5xx: each route answers only its
// methods (405 with Allow), a body must be identity-encoded UTF-8 application/json (415
// otherwise), arrive within a deadline (408) and fit the size limit (413), and even the
// requests Node's parser refuses itself (400, 431) get a JSON body (http-body.ts checks
// and reads bodies). It also holds admission (admission.ts) and the request id.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { validateRequest } from '@armature/openai';
import type { MetricsRegistry } from '@armature/metrics';
import {
  ArmatureError,
  InFlight,
  RequestContext,
  asArmatureError,
  createLogger,
  failSpan,
  httpStatusOf,
  inSpan,
  serveInSpan,
  startSpan,
  withLogContext,
  openAiErrorBody,
  type Span,
} from '@armature/runtime';
import { Admission, AdmissionError } from './admission.js';
import { answerClientError, HttpError, readJsonBody } from './http-body.js';
import { observeEvents } from './event-metrics.js';
import { ENDPOINT_LABELS, type FrontendStage } from './metric-series.js';
import {
  prepare,
  run,
  type ModelCatalog,
  type PipelineOptions,
  type PromptTokenizePool,
  type RouterPort,
  type ServedModel,
  type WorkerPort,
} from './pipeline/index.js';
import { renderStream, renderUnary, sendJson } from './render.js';

const log = createLogger('frontend/http');

export { DECODE_WORKER_HEADER, PREFILL_WORKER_HEADER } from './render.js';
/** The request's id, echoed or made; it joins the logs of every process that served the request. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** Pins a request to one worker (tests, debugging). */
export const PIN_WORKER_HEADER = 'x-armature-worker-id';

/** What the HTTP face asks of upstream (Upstream, over gRPC): the pipeline's ports, the models, the routers. */
export interface HttpUpstream extends RouterPort, WorkerPort, ModelCatalog {
  /** Models with at least one live worker, for /v1/models and /health. */
  models(): Map<string, ServedModel>;
  readonly routerCount: number;
}

export interface HttpOptions {
  upstream: HttpUpstream;
  metrics: MetricsRegistry;
  pipeline: PipelineOptions;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  /**
   * How long a request body may take to arrive, ms (default 30 000, and never past
   * requestTimeoutMs); a slower one is answered 408 instead of holding a connection for
   * Node's 300 s.
   */
  bodyTimeoutMs?: number;
  /** Where large prompts are tokenized off the event loop (default: the process's shared pool). */
  tokenizePool?: PromptTokenizePool;
  /** Admission control (default: a gate with Admission's defaults). */
  admission?: Admission;
  /**
   * How long a streamed answer waits for a client that reads nothing (its socket buffer
   * full), ms (default 30 000); past it the client is dropped and its request cancelled.
   */
  slowClientTimeoutMs?: number;
}

const DEFAULT_BODY_TIMEOUT_MS = 30_000;
const DEFAULT_SLOW_CLIENT_MS = 30_000;
/** Retry-After of the 503 a draining frontend answers: time for a load balancer to take it out. */
const DRAINING_RETRY_AFTER_S = 5;

const GET = ['GET', 'HEAD'];
const POST = ['POST'];
/** The methods each URL answers; any other method is a 405 naming them. */
const ROUTES = new Map<string, readonly string[]>([
  ['/live', GET],
  ['/health', GET],
  ['/metrics', GET],
  ['/v1/models', GET],
  ['/v1/chat/completions', POST],
  ['/v1/completions', POST],
]);

const statusOf = (e: ArmatureError): number => (e instanceof HttpError ? e.status : httpStatusOf(e.cls));

export class FrontendHttp {
  readonly inFlight = new InFlight();
  readonly server: Server;
  private draining = false;
  readonly admission: Admission;
  /** The requests being served, so that a shutdown past its drain deadline can end them cleanly. */
  private readonly active = new Set<RequestContext>();

  constructor(private readonly options: HttpOptions) {
    this.admission = options.admission ?? new Admission();
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        log.error('unhandled error', { err });
        if (!res.headersSent) sendError(res, asArmatureError(err));
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 65_000;
    this.server.on('clientError', answerClientError);
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** /health turns 503 and new inference requests get 503 with Retry-After; /live stays 200. */
  startDraining(): void {
    this.draining = true;
  }

  /**
   * The drain deadline passed: ends every request still running with a clean error (503
   * before its status line, an error event then the end of a stream after it), never a reset.
   */
  abandon(): number {
    const n = this.active.size;
    const err = new ArmatureError('unavailable', 'shutting_down', 'the server is shutting down; retry the request');
    for (const ctx of this.active) ctx.cancel(err);
    return n;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const methods = ROUTES.get(path);
    if (!methods)
      return sendError(res, new ArmatureError('not_found', 'unknown_url', `unknown URL: ${method} ${path}`));
    if (!methods.includes(method)) {
      const allow = methods.join(', ');
      return sendError(
        res,
        new HttpError(
          405,
          'invalid_argument',
          'method_not_allowed',
          `${method} is not allowed on ${path}; use ${allow}`,
          {
            allow,
          },
        ),
      );
    }
    if (path === '/live') return sendJson(res, 200, { status: 'live' });
    if (path === '/health') return this.health(res);
    if (path === '/metrics') {
      const body = await this.options.metrics.expose();
      res.writeHead(200, { 'content-type': this.options.metrics.contentType });
      res.end(body);
      return;
    }
    if (path === '/v1/models') return this.listModels(res);
    return this.inference(path === '/v1/chat/completions' ? 'chat' : 'completion', req, res);
  }

  private health(res: ServerResponse): void {
    const models = [...this.options.upstream.models().entries()].map(([id, m]) => ({ id, workers: m.workers.size }));
    const routers = this.options.upstream.routerCount;
    const healthy = !this.draining && routers > 0 && models.length > 0;
    sendJson(res, healthy ? 200 : 503, {
      status: this.draining ? 'draining' : healthy ? 'healthy' : 'unhealthy',
      routers,
      models,
    });
  }

  private listModels(res: ServerResponse): void {
    const data = [...this.options.upstream.models().entries()].map(([id, m]) => ({
      id,
      object: 'model',
      created: m.created,
      owned_by: 'armature',
      max_model_len: m.card.contextLength,
    }));
    sendJson(res, 200, { object: 'list', data });
  }

  private inference(kind: 'chat' | 'completion', req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The client's x-request-id when it is a sane token, else a fresh one: in the response,
    // and in the logs of every process the request reaches (gRPC metadata).
    const given = headerValue(req, REQUEST_ID_HEADER);
    const requestId = given && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    res.setHeader(REQUEST_ID_HEADER, requestId);
    // With tracing on, the request's root span (or a child of the client's traceparent).
    const path = kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    const attributes = { 'http.request.method': 'POST', 'url.path': path, 'armature.request_id': requestId };
    const headers = { get: (key: string) => req.headers[key] };
    return withLogContext({ requestId }, () =>
      serveInSpan(headers, `POST ${path}`, attributes, (span) => this.serve(kind, req, res, span)),
    );
  }

  private async serve(
    kind: 'chat' | 'completion',
    req: IncomingMessage,
    res: ServerResponse,
    span: Span | undefined,
  ): Promise<void> {
    const endpoint = ENDPOINT_LABELS[kind];
    const started = performance.now();
    const metrics = this.options.metrics;
    let modelLabel = 'unknown';
    const end = this.inFlight.begin();
    const ctx = new RequestContext({ deadline: Date.now() + this.options.requestTimeoutMs });
    this.active.add(ctx);
    const onClose = (): void => {
      if (!res.writableFinished) {
        metrics.get('armature_frontend_disconnects_total').inc({ model: modelLabel });
        ctx.cancel();
      }
    };
    res.on('close', onClose);
    let status = 200;
    let releaseSlot: (() => void) | undefined;
    try {
      if (this.draining) {
        throw new HttpError(503, 'unavailable', 'draining', 'the server is shutting down', {
          'retry-after': String(DRAINING_RETRY_AFTER_S),
        });
      }
      const bodyTimeoutMs = Math.min(
        this.options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
        this.options.requestTimeoutMs,
      );
      const body = await readJsonBody(req, this.options.maxBodyBytes, bodyTimeoutMs);
      const request = validateRequest(kind, body);
      modelLabel = request.model;
      // Before anything costly (tokenizing, routing): over capacity, the answer is a quick 503.
      releaseSlot = await this.admission.admit(request.model, clientKey(req), ctx.signal);
      const stage = (name: FrontendStage, since: number): void =>
        metrics
          .get('armature_frontend_stage_seconds')
          .observe({ model: modelLabel, stage: name }, (performance.now() - since) / 1000);
      const tokenizeStarted = performance.now();
      const prepared = await inSpan('tokenize', undefined, async (s) => {
        const p = await prepare(this.options.upstream, ctx, request, this.options.tokenizePool);
        s?.setAttribute('armature.prompt_tokens', p.promptIds.length);
        return p;
      });
      stage('tokenize', tokenizeStarted);
      span?.setAttributes({ 'armature.model': request.model, 'armature.stream': request.stream });
      metrics.get('armature_frontend_inflight_requests').inc({ model: modelLabel });
      // The response span runs from the status line to the last byte.
      let responseSpan: Span | undefined;
      const firstByte = (): void => {
        stage('first_byte', started);
        responseSpan = startSpan('response');
      };
      try {
        const pinned = headerValue(req, PIN_WORKER_HEADER);
        const upstream = this.options.upstream;
        const output = run({ router: upstream, workers: upstream }, this.options.pipeline, ctx, prepared, pinned);
        if (request.stream) {
          const events = observeEvents(metrics, request.model, started, output, firstByte);
          await renderStream(prepared, events, res, this.options.slowClientTimeoutMs ?? DEFAULT_SLOW_CLIENT_MS);
        } else {
          const events = observeEvents(metrics, request.model, started, output);
          await renderUnary(prepared, events, res, firstByte);
        }
      } finally {
        responseSpan?.end();
        metrics.get('armature_frontend_inflight_requests').dec({ model: modelLabel });
      }
    } catch (err) {
      // A cancellation is the client's leaving, unless the deadline or a shutdown did it.
      const reason: unknown = ctx.signal.reason;
      const ours =
        reason instanceof ArmatureError && (reason.cls === 'deadline_exceeded' || reason.cls === 'unavailable');
      const e = ctx.cancelled
        ? ours
          ? reason
          : new ArmatureError('cancelled', 'client_disconnected', 'client disconnected')
        : asArmatureError(err);
      status = statusOf(e);
      failSpan(span, e);
      if (e.cls === 'internal') log.error('request failed', { reason: e.reason, detail: e.detail });
      if (!res.headersSent) sendError(res, e);
      else if (!res.writableEnded) {
        // Mid-stream failure: the status line is gone, so say it in the stream.
        res.write(`data: ${JSON.stringify(openAiErrorBody(e))}\n\n`);
        res.end();
      }
    } finally {
      log.debug('request done', { status, model: modelLabel, ms: Math.round(performance.now() - started) });
      releaseSlot?.();
      this.active.delete(ctx);
      res.off('close', onClose);
      ctx.dispose();
      end();
      metrics.get('armature_frontend_requests_total').inc({ model: modelLabel, endpoint, status: String(status) });
      span?.setAttribute('http.response.status_code', status);
      span?.end();
      if (status === 200)
        metrics
          .get('armature_frontend_request_duration_seconds')
          .observe({ model: modelLabel }, (performance.now() - started) / 1000);
    }
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v || undefined;
}

function sendError(res: ServerResponse, err: ArmatureError): void {
  const status = statusOf(err);
  const headers: Record<string, string> = err instanceof HttpError ? { ...err.headers } : {};
  // Every refusal for capacity says when to come back: 503 (the server's) and 429 (the client's own).
  if (err instanceof AdmissionError) headers['retry-after'] = String(err.retryAfterS);
  else if ((status === 503 || status === 429) && !headers['retry-after']) headers['retry-after'] = '1';
  sendJson(res, status === 499 ? 400 : status, openAiErrorBody(err), headers);
}

/** Whose request this is, for the per-client limit: its API key, else one shared anonymous client. */
function clientKey(req: IncomingMessage): string {
  const auth = headerValue(req, 'authorization');
  return auth ? `key:${auth}` : 'anonymous';
}
