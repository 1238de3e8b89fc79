// The OpenAI-compatible HTTP face: /v1/models, /v1/chat/completions, /v1/completions,
// /health, /live and /metrics. It parses and renders; pipeline.ts does the work.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  chatChunk,
  chatCompletion,
  textCompletion,
  usage,
  usageChunk,
  validateRequest,
  type OpenAiFinishReason,
  type ResponseIdentity,
} from '@armature/openai';
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
import { prepare, run, type PreparedRequest } from './pipeline.js';
import type { Upstream } from './upstream.js';

const log = createLogger('frontend/http');

export const DECODE_WORKER_HEADER = 'x-armature-decode-worker';
/** Set when a separate prefill worker ran the prompt (disaggregated serving). */
export const PREFILL_WORKER_HEADER = 'x-armature-prefill-worker';
export const PIN_WORKER_HEADER = 'x-armature-worker-id';

export interface HttpOptions {
  upstream: Upstream;
  metrics: MetricsRegistry;
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
      const prepared = await prepare(this.options.upstream, request);
      modelLabel = request.model;
      metrics.get('armature_frontend_inflight_requests').inc({ model: modelLabel });
      try {
        const pinned = headerValue(req, PIN_WORKER_HEADER);
        if (request.stream) await this.stream(prepared, ctx, res, started, pinned);
        else await this.unary(prepared, ctx, res, started, pinned);
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

  private async *timed(p: PreparedRequest, ctx: RequestContext, started: number, pinned: string | undefined) {
    const metrics = this.options.metrics;
    const model = p.request.model;
    let last: number | undefined;
    for await (const ev of run(this.options.upstream, p, ctx, pinned)) {
      if (ev.type === 'text' && ev.tokens > 0) {
        const now = performance.now();
        if (last === undefined)
          metrics.get('armature_frontend_time_to_first_token_seconds').observe({ model }, (now - started) / 1000);
        else {
          const gap = (now - last) / 1000 / ev.tokens;
          for (let i = 0; i < ev.tokens; i++)
            metrics.get('armature_frontend_inter_token_latency_seconds').observe({ model }, gap);
        }
        last = now;
      }
      if (ev.type === 'start') {
        metrics.get('armature_frontend_input_tokens_total').inc({ model }, ev.promptTokens);
        metrics.get('armature_frontend_cached_tokens_total').inc({ model }, ev.cachedTokens);
        metrics.get('armature_frontend_input_sequence_tokens').observe({ model }, ev.promptTokens);
      }
      if (ev.type === 'end') {
        metrics.get('armature_frontend_output_tokens_total').inc({ model }, ev.completionTokens);
        metrics.get('armature_frontend_output_sequence_tokens').observe({ model }, ev.completionTokens);
      }
      yield ev;
    }
  }

  private async unary(
    p: PreparedRequest,
    ctx: RequestContext,
    res: ServerResponse,
    started: number,
    pinned?: string,
  ): Promise<void> {
    const who = identity(p);
    let text = p.request.echo && typeof p.request.prompt === 'string' ? p.request.prompt : '';
    let worker = '';
    let prefillWorker: string | undefined;
    let cached = 0;
    let finish: OpenAiFinishReason = null;
    let completionTokens = 0;
    for await (const ev of this.timed(p, ctx, started, pinned)) {
      if (ev.type === 'start') {
        worker = ev.worker;
        prefillWorker = ev.prefillWorker;
        cached = ev.cachedTokens;
      } else if (ev.type === 'text') text += ev.text;
      else {
        finish = ev.finishReason;
        completionTokens = ev.completionTokens;
      }
    }
    const u = usage(p.promptIds.length, completionTokens, cached);
    const body =
      p.request.kind === 'chat' ? chatCompletion(who, text, finish, u) : textCompletion(who, text, finish, u);
    sendJson(res, 200, body, {
      [DECODE_WORKER_HEADER]: worker,
      ...(prefillWorker ? { [PREFILL_WORKER_HEADER]: prefillWorker } : {}),
    });
  }

  private async stream(
    p: PreparedRequest,
    ctx: RequestContext,
    res: ServerResponse,
    started: number,
    pinned?: string,
  ): Promise<void> {
    const who = identity(p);
    const chat = p.request.kind === 'chat';
    const send = (obj: unknown): void => {
      res.write(`data: ${JSON.stringify(obj)}\n\n`);
    };
    let cached = 0;
    for await (const ev of this.timed(p, ctx, started, pinned)) {
      if (ev.type === 'start') {
        cached = ev.cachedTokens;
        // Headers wait for the worker's first answer, so a request re-routed before it
        // still gets a clean status line.
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          [DECODE_WORKER_HEADER]: ev.worker,
          ...(ev.prefillWorker ? { [PREFILL_WORKER_HEADER]: ev.prefillWorker } : {}),
        });
        if (chat) send(chatChunk(who, { role: 'assistant', content: '' }, null));
        else if (p.request.echo && typeof p.request.prompt === 'string')
          send(textCompletion(who, p.request.prompt, null));
      } else if (ev.type === 'text') {
        if (ev.text) send(chat ? chatChunk(who, { content: ev.text }, null) : textCompletion(who, ev.text, null));
      } else {
        send(chat ? chatChunk(who, {}, ev.finishReason) : textCompletion(who, '', ev.finishReason));
        if (p.request.includeUsage) {
          send(
            usageChunk(
              who,
              chat ? 'chat.completion.chunk' : 'text_completion',
              usage(p.promptIds.length, ev.completionTokens, cached),
            ),
          );
        }
      }
    }
    res.write('data: [DONE]\n\n');
    res.end();
  }
}

function identity(p: PreparedRequest): ResponseIdentity {
  return {
    id: `${p.request.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${p.requestId}`,
    created: Math.floor(Date.now() / 1000),
    model: p.request.model,
  };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v || undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
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
