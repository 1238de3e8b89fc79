// The frontend process: OpenAI-compatible HTTP over the router and the workers.
import { frontendSettingsFromEnv, processSettingsFromEnv } from '@armature/deploy/settings';
import { MetricsRegistry, startProcessMetrics } from '@armature/metrics';
import { TokenizePool } from '@armature/tokenizer';
import {
  createLogger,
  createShutdown,
  discoveryFromEnv,
  installSignalHandlers,
  leaseMsFromEnv,
  setLogIdentity,
  initTracing,
  tracingStats,
} from '@armature/runtime';
import { Admission } from './admission.js';
import { FrontendHttp } from './http-server.js';
import { zeroFrontendSeries, zeroModelSeries } from './metric-series.js';
import { Upstream } from './upstream.js';

const log = createLogger('frontend');

async function main(): Promise<void> {
  // Typed and checked through @armature/deploy's tables: the defaults the graph compiles with.
  const { host, instanceId, drainTimeoutMs } = processSettingsFromEnv('frontend');
  setLogIdentity('frontend', instanceId);
  initTracing('frontend', instanceId);
  const settings = frontendSettingsFromEnv();
  const discovery = discoveryFromEnv();
  const upstream = new Upstream(discovery, {
    routerWaitMs: settings.routerWaitMs,
    workerKeepaliveMs: settings.workerKeepaliveMs,
  });
  upstream.start();
  const metrics = new MetricsRegistry();
  startProcessMetrics(metrics, { service: 'frontend', tracing: tracingStats });
  zeroFrontendSeries(metrics);
  upstream.onModel((model) => zeroModelSeries(metrics, model));
  const http = new FrontendHttp({
    upstream,
    metrics,
    pipeline: {
      prefillTimeoutMs: settings.prefillTimeoutMs,
      migrationLimit: settings.migrationLimit,
      migrationMaxSeqLen: settings.migrationMaxSeqLen,
      stallTimeoutMs: settings.stallTimeoutMs,
      acceptTimeoutMs: settings.acceptTimeoutMs,
      onStage: (stage, seconds, model) =>
        metrics.get('armature_frontend_stage_seconds').observe({ model, stage }, seconds),
      onRetry: (kind, reason) => metrics.get('armature_frontend_retries_total').inc({ kind, reason }),
      onRetriesExhausted: (kind) => metrics.get('armature_frontend_retries_exhausted_total').inc({ kind }),
    },
    maxBodyBytes: settings.maxBodyBytes,
    requestTimeoutMs: settings.requestTimeoutMs,
    bodyTimeoutMs: settings.bodyTimeoutMs,
    tokenizePool: new TokenizePool({ threads: settings.tokenizeThreads, deadlineMs: settings.tokenizeTimeoutMs }),
    slowClientTimeoutMs: settings.slowClientTimeoutMs,
    admission: new Admission(
      {
        maxInflight: settings.maxInflight,
        queueSize: settings.admissionQueue,
        queueTimeoutMs: settings.admissionTimeoutMs,
        maxInflightPerClient: settings.maxInflightPerClient,
      },
      {
        rejected: (model, reason) => metrics.get('armature_frontend_admission_rejected_total').inc({ model, reason }),
        waited: (model, s) => metrics.get('armature_frontend_admission_wait_seconds').observe({ model }, s),
        depth: (model, _running, waiting) => metrics.get('armature_frontend_admission_waiting').set({ model }, waiting),
      },
    ),
  });
  const port = await http.listen(settings.port, host);
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
      abandon: async () => {
        const n = http.abandon();
        if (n > 0) log.warn('drain deadline passed; ended the requests still running', { requests: n });
        await Promise.race([http.inFlight.idle(), new Promise((r) => setTimeout(r, 2_000))]);
      },
      drainTimeoutMs,
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
