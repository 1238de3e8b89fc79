// `armature up`: runs a deployment graph in the foreground until a signal. The replicas run
// in process groups of their own, so a terminal's Ctrl-C reaches only this process, which
// stops them in order (frontend first, each given its drain timeout); a second Ctrl-C, or
// this process exiting any other way, kills them at once rather than leaving them behind.
// The control API (GET and PUT /v1/replicas) runs beside them, for the planner and curl.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  findPrometheus,
  launch,
  livenessFromEnv,
  loadGraph,
  startPrometheus,
  waitHealthy,
  type LaunchedSupervisor,
  type PrometheusProcess,
} from '@armature/deploy';
import { FileDiscovery } from '@armature/runtime';

export interface UpOptions {
  /** Also run Prometheus over the stack. */
  prometheus?: boolean;
  /** Its host:port (default 127.0.0.1:9090). */
  prometheusAddress?: string;
  /** Where its config and rules are (the repository's infra/prometheus). */
  prometheusConfigDir: string;
}

/** npm exec forwards the terminal's Ctrl-C to its child, which then sees it twice: a signal this close to the first is that one. */
const SAME_SIGNAL_MS = 1_000;

/** Runs `graphPath` (default `defaultGraph`) until SIGINT, SIGTERM or SIGHUP. */
export async function up(graphPath: string | undefined, defaultGraph: string, options: UpOptions): Promise<void> {
  const path = resolve(graphPath ?? defaultGraph);
  const graph = await loadGraph(path);
  const liveness = livenessFromEnv();
  const aborted = new AbortController();
  let supervisor: LaunchedSupervisor | undefined;
  let prometheus: PrometheusProcess | undefined;
  if (options.prometheus) {
    // Before any service starts: a missing binary or a taken address is a start-up error.
    await findPrometheus();
    prometheus = await startPrometheus({
      discovery: new FileDiscovery({ dir: resolve(graph.discoveryDir) }),
      configDir: options.prometheusConfigDir,
      workDir: await mkdtemp(join(tmpdir(), 'armature-prometheus-')),
      address: options.prometheusAddress,
    });
  }
  let firstSignalAt: number | undefined;
  const stop = (): void => {
    if (firstSignalAt !== undefined) {
      if (Date.now() - firstSignalAt < SAME_SIGNAL_MS) return;
      process.stdout.write('armature: killing all services\n');
      process.exit(130);
    }
    firstSignalAt = Date.now();
    process.stdout.write('armature: stopping all services (Ctrl-C again to kill them)\n');
    if (supervisor)
      void supervisor
        .stop()
        .then(() => prometheus?.stop())
        .then(() => process.exit(0));
    else aborted.abort(); // still starting: launch() stops what it started, then rejects
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);
  process.on('exit', () => {
    supervisor?.killAll();
    prometheus?.kill();
  });
  try {
    supervisor = await launch(graph, { signal: aborted.signal, detached: true, liveness, control: true });
  } catch (err) {
    await prometheus?.stop();
    if (aborted.signal.aborted) process.exit(0);
    throw err;
  }
  if (supervisor.control)
    process.stdout.write(
      `armature: control API at ${supervisor.control.address} (GET, PUT /v1/replicas; address in ${supervisor.control.addressFile})\n`,
    );
  const hasFrontend = graph.services.some((s) => s.kind === 'frontend' && s.replicas > 0);
  if (hasFrontend) {
    if (await waitHealthy(supervisor.url, { timeoutMs: 60_000 })) {
      process.stdout.write(
        `\narmature: ${graph.name} is up — OpenAI API at ${supervisor.url}/v1 (model ${graph.model})\n` +
          (prometheus ? `armature: Prometheus at ${prometheus.url} scraping every service\n` : '') +
          '\n',
      );
    } else if (firstSignalAt === undefined) {
      process.stdout.write(`armature: the frontend at ${supervisor.url} is not healthy after 60 s\n`);
    }
  }
}
