// The OpenAI-compatible HTTP face: /v1/models, /v1/chat/completions, /v1/completions,
// /health, /live and /metrics. It reads and validates the body, runs the pipeline under a
// request context it cancels on disconnect, and renders errors; pipeline/ does the work
// and render.ts writes the answer. Whatever a client sends, the answer is OpenAI's error
// JSON with a 4xx rather than Node's bare defaults or a 5xx: each route answers only its
// methods (405 with Allow), a body must be identity-encoded UTF-8 application/json (415
// otherwise), arrive within a deadline (408) and fit the size limit (413), and even the
// requests Node's parser refuses itself (400, 431) get a JSON body.
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { validateRequest } from '@armature/openai';
import type { MetricsRegistry } from '@armature/metrics';
import {
  ArmatureError,
  InFlight,
  RequestContext,
  asArmatureError,
  createLogger,
  httpStatusOf,
  withLogContext,
  openAiErrorBody,
} from '@armature/runtime';
import { Admission, AdmissionError } from './admission.js';
import { observeEvents } from './event-metrics.js';
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

/** An answer whose status (and headers) its error class does not say: 405, 408, 415, a 503 with Retry-After. */
class HttpError extends ArmatureError {
  constructor(
    readonly status: number,
    cls: ArmatureError['cls'],
    reason: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(cls, reason, message);
  }
}

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
    return withLogContext({ requestId }, () => this.serve(kind, req, res));
  }

  private async serve(kind: 'chat' | 'completion', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const endpoint = kind === 'chat' ? 'chat_completions' : 'completions';
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
      const prepared = await prepare(this.options.upstream, ctx, request, this.options.tokenizePool);
      metrics.get('armature_frontend_inflight_requests').inc({ model: modelLabel });
      try {
        const pinned = headerValue(req, PIN_WORKER_HEADER);
        const upstream = this.options.upstream;
        const output = run({ router: upstream, workers: upstream }, this.options.pipeline, ctx, prepared, pinned);
        const events = observeEvents(metrics, request.model, started, output);
        if (request.stream)
          await renderStream(prepared, events, res, this.options.slowClientTimeoutMs ?? DEFAULT_SLOW_CLIENT_MS);
        else await renderUnary(prepared, events, res);
      } finally {
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

/** A client-sent header, shortened so an error never echoes a huge one back. */
const shown = (value: string): string => JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);

/** application/json, with charset utf-8 if a charset is given; anything else is a 415. */
function checkContentType(req: IncomingMessage): void {
  const header = req.headers['content-type'];
  const [mediaType, ...params] = (header ?? '').split(';').map((p) => p.trim().toLowerCase());
  const refuse = (message: string): HttpError =>
    new HttpError(415, 'invalid_argument', 'unsupported_media_type', message);
  if (mediaType !== 'application/json') {
    throw refuse(
      `the request body must be application/json; got ${header === undefined ? 'no content-type' : shown(header)}`,
    );
  }
  for (const param of params) {
    const [name, value = ''] = param.split('=', 2).map((p) => p.trim());
    if (name === 'charset' && !['utf-8', 'utf8'].includes(value.replace(/^"(.*)"$/, '$1'))) {
      throw refuse(`the request body must be UTF-8; got charset ${shown(value)}`);
    }
  }
}

/** Only identity: a compressed body would need its own size limit after inflating, which is not built. */
function checkContentEncoding(req: IncomingMessage): void {
  const header = req.headers['content-encoding'];
  const coding = header?.trim().toLowerCase();
  if (coding === undefined || coding === '' || coding === 'identity') return;
  throw new HttpError(
    415,
    'invalid_argument',
    'unsupported_content_encoding',
    `content-encoding ${shown(header!)} is not supported; send the body uncompressed`,
    { 'accept-encoding': 'identity' },
  );
}

/** The body's bytes, within `limit` and `timeoutMs`; the client gone before its end reads as a disconnect. */
function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: ArmatureError | undefined): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onGone);
      if (!err) return resolve(Buffer.concat(chunks));
      req.resume(); // discard the rest, so the connection can answer
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onGone = (): void =>
      finish(new ArmatureError('cancelled', 'client_disconnected', 'the client went away before its body ended'));
    const timer = setTimeout(
      () =>
        finish(
          new HttpError(
            408,
            'deadline_exceeded',
            'body_timeout',
            `the request body did not arrive within ${timeoutMs} ms`,
            { connection: 'close' }, // what is still coming is not worth waiting for
          ),
        ),
      timeoutMs,
    );
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone);
  });
}

const tooLarge = (limit: number): ArmatureError =>
  new ArmatureError('payload_too_large', 'request_too_large', `the request body exceeds the limit of ${limit} bytes`);

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function readJsonBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<unknown> {
  checkContentType(req);
  checkContentEncoding(req);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // discard, so the connection can answer
    throw tooLarge(limit);
  }
  const bytes = await readBody(req, limit, timeoutMs);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ArmatureError('invalid_argument', 'invalid_utf8', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '')
    throw new ArmatureError('invalid_argument', 'invalid_json', 'the request body is empty; expected JSON');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ArmatureError(
      'invalid_argument',
      'invalid_json',
      `the request body is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/** Node's parser errors mapped as Node maps them itself, plus its own request timeout. */
function clientErrorOf(code: string | undefined): [number, string, string] | undefined {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'headers_too_large', 'the request headers are too large'];
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return [413, 'request_too_large', 'the chunk extensions are too large'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'request_timeout', 'the request did not arrive in time'];
  if (code?.startsWith('HPE_')) return [400, 'malformed_request', 'the request is not valid HTTP/1.1'];
  return undefined;
}

/**
 * Answers what Node's parser refused before any handler ran (there is no response object
 * yet, so the answer is written to the socket). A socket error, or a socket already in the
 * middle of an answer, is only closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const answer = clientErrorOf(err.code);
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!answer || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, reason, message] = answer;
  const body = JSON.stringify(openAiErrorBody(new ArmatureError('invalid_argument', reason, message)));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
