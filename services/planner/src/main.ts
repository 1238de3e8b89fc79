// The planner process: reads its settings (the graph's services.planner, through the
// environment), loads and checks its profile, then every interval observes the cluster's
// metrics (Prometheus's HTTP API when a URL is set, else the services' own /metrics found
// through discovery), decides with @armature/planner-core and applies the counts through
// its connector. Serves the Planner gRPC service and its metrics, and registers itself.
import { PlannerService } from '@armature/proto';
import { ControlClient } from '@armature/deploy';
import { plannerConfigInput, plannerSettingsFromEnv, processSettingsFromEnv } from '@armature/deploy/settings';
import { MetricsRegistry, serveMetrics, startProcessMetrics } from '@armature/metrics';
import { checkProfileFits, compilePlannerConfig, loadProfile, Planner, ProfileModel } from '@armature/planner-core';
import {
  ArmatureError,
  bindGrpcServer,
  createGrpcServer,
  createLogger,
  createShutdown,
  discoveryFromEnv,
  initTracing,
  installSignalHandlers,
  leaseMsFromEnv,
  setLogIdentity,
  shutdownGrpcServer,
  tracingStats,
  withRequestIds,
} from '@armature/runtime';
import { AdvisoryConnector, LocalConnector, type Connector } from './connectors.js';
import { PlannerRunner } from './planner-runner.js';
import { plannerGrpcHandlers } from './planner-service.js';
import { PrometheusSource, ScrapeSource, type MetricsSource } from './sources.js';

const log = createLogger('planner');

async function main(): Promise<void> {
  const { host, instanceId, grpcPort, metricsPort } = processSettingsFromEnv('planner');
  setLogIdentity('planner', instanceId);
  initTracing('planner', instanceId);
  const settings = plannerSettingsFromEnv();
  // The same compiler the graph ran: a bad option is a start-up error naming the field.
  const config = compilePlannerConfig(plannerConfigInput(settings));
  let profile: ProfileModel | undefined;
  if (config.profile !== '') {
    const loaded = await loadProfile(config.profile);
    checkProfileFits(loaded, { model: settings.servedModel, engine: settings.engine }, config.allowProfileMismatch);
    profile = new ProfileModel(loaded);
  }
  const planner = new Planner(config, { profile });
  const discovery = discoveryFromEnv();
  const source: MetricsSource =
    settings.prometheusUrl !== ''
      ? new PrometheusSource(settings.prometheusUrl, discovery)
      : new ScrapeSource(discovery);
  let connector: Connector;
  if (settings.connector === 'local') connector = new LocalConnector(ControlClient.fromEnv());
  else if (settings.connector === 'advisory') connector = new AdvisoryConnector(discovery);
  else
    throw new ArmatureError(
      'invalid_argument',
      'bad_planner_config',
      'planner.connector: kubernetes needs the Kubernetes API client, which `armature up` does not run; use local or advisory here',
      { param: 'connector' },
    );
  const metrics = new MetricsRegistry();
  startProcessMetrics(metrics, { service: 'planner', tracing: tracingStats });
  const runner = new PlannerRunner({ planner, source, connector, metrics });

  const server = createGrpcServer();
  server.addService(PlannerService, withRequestIds(plannerGrpcHandlers(runner, connector.name), 'armature.v1.Planner'));
  const port = await bindGrpcServer(server, host, grpcPort);
  const metricsServer = await serveMetrics(metrics, host, metricsPort);
  const registration = await discovery.register(
    {
      instanceId,
      role: 'planner',
      grpcAddress: `${host}:${port}`,
      metricsAddress: `${host}:${metricsServer.port}`,
      labels: { pid: String(process.pid), mode: config.mode, connector: connector.name },
    },
    { leaseMs: leaseMsFromEnv() },
  );
  runner.start();
  log.info('planner ready', {
    instanceId,
    grpc: `${host}:${port}`,
    metrics: `${host}:${metricsServer.port}`,
    mode: config.mode,
    predictor: config.predictor.id,
    intervalMs: config.intervalMs,
    connector: connector.name,
    source: source.name,
    pools: config.pools,
  });

  installSignalHandlers(
    createShutdown({
      stopAccepting: () => registration.unregister(),
      cleanup: async () => {
        await runner.close();
        await shutdownGrpcServer(server);
        metricsServer.server.close();
        await discovery.close();
      },
    }),
  );
}

main().catch((err: unknown) => {
  // A bad setting is the operator's to fix: one line naming it, not a stack.
  if (err instanceof ArmatureError && err.cls === 'invalid_argument') {
    log.error('planner failed to start', { error: err.message, param: err.param });
    process.stderr.write(`planner: ${err.message}\n`);
  } else log.error('planner failed to start', { err });
  process.exit(1);
});
