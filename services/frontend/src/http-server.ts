// The OpenAI-compatible HTTP face: /v1/models, /v1/chat/completions, /v1/completions,
// /health, /live and /metrics. It reads and validates the body, runs the pipeline under a
// request context it cancels on disconnect, and renders errors; pipeline/ does the work
// and render.ts writes the answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { validateRequest } from '@armature/openai';
import type { MetricsRegistry } from '@armature/metrics';
import {
  ArmatureError,
  InFlight,
  RequestContext,
  asArmatureError,
  createLogger,
  httpStatusOf,
  openAiErrorBody,
} from '@armature/runtime';
import { observeEvents } from './event-metrics.js';
import { prepare, run, type PipelineOptions } from './pipeline/index.js';
import { renderStream, renderUnary, sendJson } from './render.js';
import type { Upstream } from './upstream.js';

const log = createLogger('frontend/http');

export { DECODE_WORKER_HEADER, PREFILL_WORKER_HEADER } from './render.js';
/** Pins a request to one worker (tests, debugging). */
export const PIN_WORKER_HEADER = 'x-armature-worker-id';

export interface HttpOptions {
  upstream: Upstream;
  metrics: MetricsRegistry;
  pipeline: PipelineOptions;
  maxBodyBytes: number;
  requestTimeoutMs: number;
}

export class FrontendHttp {
  readonly inFlight = new InFlight();
  readonly server: Server;
  private draining = false;

  constructor(private readonly options: HttpOptions) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        log.error('unhandled error', { err });
        if (!res.headersSent) sendError(res, asArmatureError(err));
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 65_000;
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

  /** /health turns 503 and new inference requests are refused; /live stays 200. */
  startDraining(): void {
    this.draining = true;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if (path === '/live') return sendJson(res, 200, { status: 'live' });
    if (path === '/health') return this.health(res);
    if (path === '/metrics' && method === 'GET') {
      const body = await this.options.metrics.expose();
      res.writeHead(200, { 'content-type': this.options.metrics.contentType });
      res.end(body);
      return;
    }
    if (path === '/v1/models' && method === 'GET') return this.listModels(res);
    if (path === '/v1/chat/completions' || path === '/v1/completions') {
      if (method !== 'POST') {
        return sendError(res, new ArmatureError('invalid_argument', 'method_not_allowed', `use POST for ${path}`), 405);
      }
      return this.inference(path === '/v1/chat/completions' ? 'chat' : 'completion', req, res);
    }
    sendError(res, new ArmatureError('not_found', 'unknown_url', `unknown URL: ${method} ${path}`));
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

  private async inference(kind: 'chat' | 'completion', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const endpoint = kind === 'chat' ? 'chat_completions' : 'completions';
    const started = performance.now();
    const metrics = this.options.metrics;
    let modelLabel = 'unknown';
    const end = this.inFlight.begin();
    const ctx = new RequestContext({ deadline: Date.now() + this.options.requestTimeoutMs });
    const onClose = (): void => {
      if (!res.writableFinished) {
        metrics.get('armature_frontend_disconnects_total').inc({ model: modelLabel });
        ctx.cancel();
      }
    };
    res.on('close', onClose);
    let status = 200;
    try {
      if (this.draining) throw new ArmatureError('unavailable', 'draining', 'the server is shutting down');
      const body = await readJsonBody(req, this.options.maxBodyBytes);
      const request = validateRequest(kind, body);
      const prepared = await prepare(this.options.upstream, ctx, request);
      modelLabel = request.model;
      metrics.get('armature_frontend_inflight_requests').inc({ model: modelLabel });
      try {
        const pinned = headerValue(req, PIN_WORKER_HEADER);
        const upstream = this.options.upstream;
        const output = run({ router: upstream, workers: upstream }, this.options.pipeline, ctx, prepared, pinned);
        const events = observeEvents(metrics, request.model, started, output);
        if (request.stream) await renderStream(prepared, events, res);
        else await renderUnary(prepared, events, res);
      } finally {
        metrics.get('armature_frontend_inflight_requests').dec({ model: modelLabel });
      }
    } catch (err) {
      const e =
        ctx.cancelled && !(ctx.signal.reason instanceof ArmatureError && ctx.signal.reason.cls === 'deadline_exceeded')
          ? new ArmatureError('cancelled', 'client_disconnected', 'client disconnected')
          : asArmatureError(err);
      status = httpStatusOf(e.cls);
      if (e.cls === 'internal') log.error('request failed', { reason: e.reason, detail: e.detail });
      if (!res.headersSent) sendError(res, e);
      else if (!res.writableEnded) {
        // Mid-stream failure: the status line is gone, so say it in the stream.
        res.write(`data: ${JSON.stringify(openAiErrorBody(e))}\n\n`);
        res.end();
      }
    } finally {
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

function sendError(res: ServerResponse, err: ArmatureError, status = httpStatusOf(err.cls)): void {
  sendJson(res, status === 499 ? 400 : status, openAiErrorBody(err));
}

async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  const tooLarge = (): ArmatureError =>
    new ArmatureError('payload_too_large', 'request_too_large', `the request body exceeds the limit of ${limit} bytes`);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // discard, so the connection can answer
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
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
