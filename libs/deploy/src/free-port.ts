// A port for a child process to bind, found by binding port 0 and letting it go: the
// launcher's free frontend port, and the supervisor's metrics ports for liveness probes.
import { createServer } from 'node:net';

/** A port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.unref();
    server.on('error', rej);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => res(port));
    });
  });
}
