// Small helpers shared by every gRPC server and client in Armature.
import { Server, ServerCredentials, credentials, type ChannelOptions } from '@grpc/grpc-js';

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
