// Worker health as the router sees it, before discovery's lease notices: each worker's
// gRPC Health is called on an interval with a short deadline, and after `failures`
// consecutive failures (or a DRAINING answer) the worker is inhibited in the router core,
// so no request goes to a worker that is stopped, stuck or leaving; the first good answer
// lifts the inhibition this checker set (an inhibition for a failed request runs its
// course). Optionally, a worker idle for `canaryIdleMs` gets a one-token canary request,
// Dynamo-style, which also proves its engine answers. The checker decides health only;
// the core decides routing.
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { MetricsRegistry } from '@armature/metrics';
import { HealthResponse_Status, type GenerateResponse, type HealthResponse } from '@armature/proto';
import { checkHealthOptions, type HealthCheckOptions, type RouterCore } from '@armature/router-core';
import { createLogger } from '@armature/runtime';
import type { WorkerDirectory, WorkerEntry } from './worker-directory.js';

const log = createLogger('router/health');

/** Results of a check (armature_router_health_checks_total's result). */
export const HEALTH_CHECK_RESULTS = ['ok', 'failed', 'canary_ok'] as const;
type HealthCheckResult = (typeof HEALTH_CHECK_RESULTS)[number];

interface WorkerHealth {
  failures: number;
  /** This checker inhibited the worker (and may lift it). */
  inhibited: boolean;
  checking: boolean;
  idleSince: number | undefined;
  lastCanary: number;
}

export class HealthChecker {
  private readonly options: Required<HealthCheckOptions>;
  private readonly state = new Map<string, WorkerHealth>();
  private timer: NodeJS.Timeout | undefined;
  private canaries = 0;

  constructor(
    private readonly directory: WorkerDirectory,
    private readonly core: RouterCore,
    private readonly metrics: MetricsRegistry,
    options: HealthCheckOptions = {},
  ) {
    this.options = checkHealthOptions(options);
    // A worker that joins is healthy (the core routes to it) until it fails its checks.
    if (this.options.intervalMs > 0)
      directory.onAdded(({ record }) =>
        this.metrics.get('armature_router_worker_healthy').set({ worker: record.instanceId }, 1),
      );
    directory.onRemoved((id) => {
      this.state.delete(id);
      this.metrics.get('armature_router_worker_healthy').remove({ worker: id });
    });
  }

  start(): void {
    if (this.options.intervalMs === 0 || this.timer) return;
    this.timer = setInterval(() => void this.checkAll(), this.options.intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round: every known worker not already being checked. */
  async checkAll(): Promise<void> {
    await Promise.all(this.directory.list().map((w) => this.check(w)));
  }

  private async check(entry: WorkerEntry): Promise<void> {
    const id = entry.record.instanceId;
    const address = entry.record.grpcAddress;
    if (!address) return;
    let h = this.state.get(id);
    if (!h) {
      h = { failures: 0, inhibited: false, checking: false, idleSince: undefined, lastCanary: 0 };
      this.state.set(id, h);
    }
    if (h.checking) return;
    h.checking = true;
    try {
      const res = await this.health(address);
      if (res.status === HealthResponse_Status.STATUS_DRAINING) return this.failed(id, h, 'draining');
      if (this.canaryDue(entry, h)) {
        h.lastCanary = Date.now();
        await this.canary(entry);
      }
      this.passed(id, h);
    } catch (err) {
      this.failed(id, h, (err as { reason?: string }).reason ?? 'health');
    } finally {
      h.checking = false;
    }
  }

  private passed(id: string, h: WorkerHealth): void {
    this.metrics.get('armature_router_health_checks_total').inc({ result: 'ok' satisfies HealthCheckResult });
    this.metrics.get('armature_router_worker_healthy').set({ worker: id }, 1);
    h.failures = 0;
    if (h.inhibited) {
      h.inhibited = false;
      log.info('worker healthy again', { worker: id });
      this.core.uninhibit(id);
    }
  }

  private failed(id: string, h: WorkerHealth, reason: string): void {
    this.metrics.get('armature_router_health_checks_total').inc({ result: 'failed' satisfies HealthCheckResult });
    h.failures++;
    if (reason === 'draining' || h.failures >= this.options.failures) {
      this.metrics.get('armature_router_worker_healthy').set({ worker: id }, 0);
      if (!h.inhibited) log.warn('worker failed its health check', { worker: id, reason, failures: h.failures });
      h.inhibited = true;
      this.core.inhibit(id, reason === 'draining' ? 'draining' : 'health'); // extended while it keeps failing
    }
  }

  private health(address: string): Promise<HealthResponse> {
    const client = this.directory.client(address);
    return new Promise((resolve, reject) =>
      client.health({}, new Metadata(), { deadline: Date.now() + this.options.timeoutMs }, (err, res) =>
        err ? reject(asReason(err)) : resolve(res!),
      ),
    );
  }

  /** A worker idle (nothing running or waiting, nothing routed) for canaryIdleMs, not canaried since. */
  private canaryDue(entry: WorkerEntry, h: WorkerHealth): boolean {
    if (this.options.canaryIdleMs === 0 || entry.record.role !== 'decode') return false;
    const load = entry.published;
    const idle =
      (!load || (load.runningRequests === 0 && load.waitingRequests === 0)) &&
      this.core.kv.active.of(entry.record.instanceId).requests === 0;
    const now = Date.now();
    if (!idle) {
      h.idleSince = undefined;
      return false;
    }
    h.idleSince ??= now;
    return now - h.idleSince >= this.options.canaryIdleMs && now - h.lastCanary >= this.options.canaryIdleMs;
  }

  /** One token of generation, within the check's deadline; rejects when the engine does not answer. */
  private canary(entry: WorkerEntry): Promise<void> {
    const client = this.directory.client(entry.record.grpcAddress!);
    const call = client.generate(
      {
        requestId: `canary-${entry.record.instanceId}-${++this.canaries}`,
        model: entry.record.model ?? '',
        tokenIds: [1],
        sampling: { temperature: 0 },
        stop: { maxTokens: 1, ignoreEos: true, stopTokenIds: [] },
      },
      new Metadata(),
      { deadline: Date.now() + this.options.timeoutMs },
    );
    return new Promise<void>((resolve, reject) => {
      call.on('data', (_msg: GenerateResponse) => {
        resolve();
        call.cancel();
      });
      call.on('error', (err: ServiceError) => reject(asReason(err, 'canary')));
      call.on('end', () => resolve());
    }).then(() => {
      this.metrics.get('armature_router_health_checks_total').inc({ result: 'canary_ok' satisfies HealthCheckResult });
    });
  }
}

function asReason(err: ServiceError, prefix = 'health'): Error & { reason: string } {
  return Object.assign(new Error(err.message), { reason: `${prefix}_${err.code}` });
}
