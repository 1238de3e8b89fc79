// Small helpers shared by every gRPC server and client in Armature.
import { Metadata, Server, ServerCredentials, credentials, type ChannelOptions } from '@grpc/grpc-js';
import { currentLogContext, withLogContext } from './log.js';
import { failSpan, injectTraceContext, serveInSpan, tracingEnabled, type Span } from './tracing.js';

/** Channel options every client uses: fail fast, keep idle connections alive. */
export const CLIENT_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
};

export const insecureCredentials = () => credentials.createInsecure();

/** Creates a server with the project's limits. */
export function createGrpcServer(): Server {
  return new Server({
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
}

/** Binds a server on host:port (0 picks a free port) and returns the bound port. */
export function bindGrpcServer(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
}

/** Stops a server, waiting up to `graceMs` for calls to finish before forcing. */
export function shutdownGrpcServer(server: Server, graceMs = 1_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** gRPC metadata key that carries the request id from the frontend into every service it calls. */
export const REQUEST_ID_KEY = 'x-request-id';

/** Metadata for a call made while serving a request: its request id, for the callee's logs, and the active trace context. */
export function requestMetadata(): Metadata {
  const md = new Metadata();
  const id = currentLogContext()?.requestId;
  if (id) md.set(REQUEST_ID_KEY, id);
  injectTraceContext(md);
  return md;
}

type AnyHandler = (call: { metadata?: Metadata }, ...rest: never[]) => unknown;
type Done = (err: unknown, ...rest: unknown[]) => void;

/**
 * Wraps each gRPC handler of `service` (e.g. `armature.worker.v1.Worker`) so that what it
 * logs (and everything it starts) carries the caller's request id from the call's
 * metadata, and, with tracing on, runs it in a server span `<service>/<Method>` that is a
 * child of the caller's span (W3C traceparent in the metadata). A unary call's span ends
 * at its callback, a stream's when the stream ends, fails or is cancelled.
 */
export function withRequestIds<T extends object>(handlers: T, service: string): T {
  const out: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    if (typeof handler !== 'function') {
      out[name] = handler;
      continue;
    }
    const method = name.charAt(0).toUpperCase() + name.slice(1);
    const spanName = `${service}/${method}`;
    const attributes = { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method };
    out[name] = (call: { metadata?: Metadata }, ...rest: never[]) => {
      const id = call?.metadata?.get(REQUEST_ID_KEY)[0];
      const traced = (): unknown =>
        !tracingEnabled() || !call?.metadata
          ? (handler as AnyHandler)(call, ...rest)
          : serveInSpan(call.metadata, spanName, attributes, (span) => {
              const done = rest[0] as unknown;
              if (typeof done === 'function') {
                const wrapped: Done = (err, ...more) => {
                  endRpcSpan(span, err);
                  (done as Done)(err, ...more);
                };
                return (handler as AnyHandler)(call, wrapped as never, ...(rest.slice(1) as never[]));
              }
              onStreamEnd(call as unknown as NodeJS.EventEmitter, span);
              return (handler as AnyHandler)(call, ...rest);
            });
      return typeof id === 'string' && id ? withLogContext({ requestId: id }, traced) : traced();
    };
  }
  return out as T;
}

function endRpcSpan(span: Span | undefined, err: unknown): void {
  if (!span) return;
  if (err) failSpan(span, err);
  span.end();
}

function onStreamEnd(stream: NodeJS.EventEmitter, span: Span | undefined): void {
  let ended = false;
  const end = (err?: unknown): void => {
    if (ended) return;
    ended = true;
    endRpcSpan(span, err);
  };
  stream.once('finish', () => end());
  stream.once('error', (err: unknown) => end(err));
  stream.once('cancelled', () => end(new Error('cancelled by the caller')));
  stream.once('close', () => end());
}
