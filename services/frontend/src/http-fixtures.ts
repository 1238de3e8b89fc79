// Shared by the HTTP tests (http-hygiene.test.ts, fuzz.test.ts): a real FrontendHttp on
// 127.0.0.1 over an in-memory router and worker, and a client that sends exactly the
// bytes and headers a test names. Every message the pipeline sends upstream goes through
// the proto encoder and back first, as over gRPC, so a value the wire cannot carry fails
// here as it would in production. Test support only; not exported.
import { request as httpRequest, Agent, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { GenerateRequest, RouteRequest } from '@armature/proto';
import { MetricsRegistry } from '@armature/metrics';
import { FakeWorker, TEST_MODEL, fakeFleet, testModelCard } from '@armature/testing';
import { FrontendHttp, type HttpOptions, type HttpUpstream } from './http-server.js';
import type { ServedModel } from './pipeline/index.js';

interface WireType<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

/** The message as a gRPC peer would get it; throws where the encoder does. */
const onTheWire = <T>(type: WireType<T>, message: T): T => type.decode(type.encode(message).finish());

/** One router and one decode worker serving TEST_MODEL, behind the HttpUpstream interface. */
export function fakeUpstream(): HttpUpstream & { worker: FakeWorker } {
  const worker = new FakeWorker('decode-0', { tokens: [[13225], [11], [2375]] });
  const { router, workers } = fakeFleet([worker]);
  const served: ServedModel = { card: testModelCard(), workers: new Set([worker.instanceId]), created: 1 };
  return {
    worker,
    routerCount: 1,
    models: () => new Map([[TEST_MODEL, served]]),
    model: (name) => (name === TEST_MODEL ? served : undefined),
    route: (req, signal) => router.route(onTheWire(RouteRequest, req), signal),
    markPrefillComplete: (id) => router.markPrefillComplete(id),
    markPrefillLocal: (id) => router.markPrefillLocal(id),
    free: (id) => router.free(id),
    generate: (address, req, signal) => workers.generate(address, onTheWire(GenerateRequest, req), signal),
    prefill: (address, req, signal, deadline) =>
      workers.prefill(address, onTheWire(GenerateRequest, req), signal, deadline),
    releaseKv: (address, pin) => workers.releaseKv(address, pin),
    forgetWorker: (address) => workers.forgetWorker(address),
  };
}

/** A FrontendHttp over fakeUpstream listening on 127.0.0.1 (a free port); `overrides` replace its options. */
export async function startFrontend(overrides: Partial<HttpOptions> = {}) {
  const http = new FrontendHttp({
    upstream: fakeUpstream(),
    metrics: new MetricsRegistry(),
    pipeline: { prefillTimeoutMs: 5_000 },
    maxBodyBytes: 64 * 1024,
    requestTimeoutMs: 10_000,
    bodyTimeoutMs: 400,
    ...overrides,
  });
  const port = await http.listen(0, '127.0.0.1');
  return { http, port, url: `http://127.0.0.1:${port}` };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const agent = new Agent({ keepAlive: true });

/** Sends one request with exactly these headers (no content-type unless given) and body. */
export function send(
  port: number,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: OutgoingHttpHeaders = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Node frames a GET's or DELETE's body only when told its length.
    const framed =
      body === undefined || 'transfer-encoding' in headers
        ? headers
        : { 'content-length': Buffer.byteLength(body), ...headers };
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: framed, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POSTs JSON text (or bytes) as application/json. */
export const postJson = (port: number, path: string, body: string | Buffer, headers: OutgoingHttpHeaders = {}) =>
  send(port, 'POST', path, body, { 'content-type': 'application/json', ...headers });

/** Writes raw bytes on a fresh connection and reads until the server closes it. */
export function sendRaw(port: number, bytes: string | Buffer, holdOpenMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
    socket.write(bytes);
    if (holdOpenMs === 0) socket.end();
    else setTimeout(() => socket.end(), holdOpenMs);
  });
}

/** The status and JSON body of a raw HTTP/1.1 answer. */
export function parseRaw(raw: string): { status: number; head: string; body: unknown } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  return { status: Number(head.split(' ')[1]), head, body: JSON.parse(raw.slice(split + 4)) };
}

/** Whether a body is OpenAI's error JSON: {error: {message, type, param, code}}. */
export function isOpenAiError(body: unknown): boolean {
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof error.message === 'string' &&
    error.message.length > 0 &&
    typeof error.type === 'string' &&
    typeof error.code === 'string' &&
    (error.param === null || typeof error.param === 'string')
  );
}

export const chatBody = (extra: object = {}) => ({
  model: TEST_MODEL,
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 3,
  ...extra,
});
