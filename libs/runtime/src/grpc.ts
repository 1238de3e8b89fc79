// Small helpers shared by every gRPC server and client in Armature.
import { Metadata, Server, ServerCredentials, credentials, type ChannelOptions } from '@grpc/grpc-js';
import { currentLogContext, withLogContext } from './log.js';

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

/** Metadata for a call made while serving a request: its request id, for the callee's logs. */
export function requestMetadata(): Metadata {
  const md = new Metadata();
  const id = currentLogContext()?.requestId;
  if (id) md.set(REQUEST_ID_KEY, id);
  return md;
}

type AnyHandler = (call: { metadata?: Metadata }, ...rest: never[]) => unknown;

/**
 * Wraps each gRPC handler so that what it logs (and everything it starts) carries the
 * caller's request id from the call's metadata.
 */
export function withRequestIds<T extends object>(handlers: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    out[name] =
      typeof handler !== 'function'
        ? handler
        : (call: { metadata?: Metadata }, ...rest: never[]) => {
            const id = call?.metadata?.get(REQUEST_ID_KEY)[0];
            const run = (): unknown => (handler as AnyHandler)(call, ...rest);
            return typeof id === 'string' && id ? withLogContext({ requestId: id }, run) : run();
          };
  }
  return out as T;
}
