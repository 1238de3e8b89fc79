// The frontend process: OpenAI-compatible HTTP over the router and the workers.
import { randomUUID } from 'node:crypto';
import { MetricsRegistry } from '@armature/metrics';
import {
  createLogger,
  createShutdown,
  discoveryFromEnv,
  envInt,
  envString,
  installSignalHandlers,
  leaseMsFromEnv,
} from '@armature/runtime';
import { FrontendHttp } from './http-server.js';
import { Upstream } from './upstream.js';

const log = createLogger('frontend');

async function main(): Promise<void> {
  const host = envString('ARMATURE_HOST', '127.0.0.1');
  const instanceId = envString('ARMATURE_INSTANCE_ID', `frontend-${randomUUID().slice(0, 8)}`);
  const discovery = discoveryFromEnv();
  const prefillTimeoutMs = envInt('ARMATURE_PREFILL_TIMEOUT_MS', 60_000, { min: 1 });
  const upstream = new Upstream(discovery);
  upstream.start();
  const metrics = new MetricsRegistry();
  const http = new FrontendHttp({
    upstream,
    metrics,
    pipeline: { prefillTimeoutMs },
    maxBodyBytes: envInt('ARMATURE_MAX_BODY_BYTES', 4 * 1024 * 1024, { min: 1024 }),
    requestTimeoutMs: envInt('ARMATURE_REQUEST_TIMEOUT_MS', 600_000, { min: 1 }),
  });
  const port = await http.listen(envInt('ARMATURE_HTTP_PORT', 8000, { min: 0, max: 65535 }), host);
  const registration = await discovery.register(
    {
      instanceId,
      role: 'frontend',
      metricsAddress: `${host}:${port}`,
      labels: { url: `http://${host}:${port}`, pid: String(process.pid) },
    },
    { leaseMs: leaseMsFromEnv() },
  );
  log.info(`frontend listening on http://${host}:${port}`, { instanceId });

  installSignalHandlers(
    createShutdown({
      stopAccepting: async () => {
        http.startDraining();
        await registration.unregister();
      },
      drain: () => http.inFlight.idle(),
      drainTimeoutMs: envInt('ARMATURE_DRAIN_TIMEOUT_MS', 30_000, { min: 0 }),
      cleanup: async () => {
        await http.close();
        upstream.close();
        await discovery.close();
      },
    }),
  );
}

main().catch((err: unknown) => {
  log.error('frontend failed to start', { err });
  process.exit(1);
});
