// Where the planner's counts go. One interface, three connectors:
// - local: the `armature up` supervisor's control API (ARMATURE_CONTROL_ADDRESS); a
//   scale-down there drains the surplus replicas (SIGTERM: unregister, finish in-flight
//   requests), so nothing is lost.
// - kubernetes: the scale of the graph's Deployments through a KubernetesScaleApi (the
//   deployment work supplies the real API client; tests use an in-memory one).
// - advisory: changes nothing; it remembers what it would have asked for and reads the
//   ready counts from discovery, so the decisions can be watched before they are trusted.
// The planner calls `status()` before each decision and `scale()` for each change.
import { ControlClient, type ReplicaStatus } from '@armature/deploy';
import type { Pool, PoolReplicas } from '@armature/planner-core';
import type { Discovery } from '@armature/runtime';

export interface Connector {
  readonly name: 'local' | 'kubernetes' | 'advisory';
  /** Whether scale() changes anything. */
  readonly applies: boolean;
  /** Each pool's counts now. */
  status(pools: readonly Pool[]): Promise<Partial<Record<Pool, PoolReplicas>>>;
  /** Asks for `replicas` of `pool`; resolves once the connector has it (local: once ready or drained). */
  scale(pool: Pool, replicas: number): Promise<void>;
}

/** The supervisor's control API. */
export class LocalConnector implements Connector {
  readonly name = 'local' as const;
  readonly applies = true;

  constructor(private readonly client: ControlClient) {}

  async status(pools: readonly Pool[]): Promise<Partial<Record<Pool, PoolReplicas>>> {
    const status: ReplicaStatus = await this.client.status();
    const out: Partial<Record<Pool, PoolReplicas>> = {};
    for (const pool of pools) {
      const s = status.services[pool];
      if (s) out[pool] = { desired: s.desired, ready: s.ready, starting: s.starting };
    }
    return out;
  }

  async scale(pool: Pool, replicas: number): Promise<void> {
    await this.client.scale(pool, replicas);
  }
}

/** The narrow slice of the Kubernetes API the connector needs: a Deployment's scale subresource. */
export interface KubernetesScaleApi {
  /** spec.replicas, status.readyReplicas and status.replicas of the Deployment. */
  readScale(deployment: string): Promise<{ desired: number; ready: number; current: number }>;
  /** Patches spec.replicas (PATCH .../deployments/<name>/scale). */
  patchScale(deployment: string, replicas: number): Promise<void>;
}

/** Scales `<graph>-<pool>` Deployments (the names the Kubernetes renderer gives them). */
export class KubernetesConnector implements Connector {
  readonly name = 'kubernetes' as const;
  readonly applies = true;

  constructor(
    private readonly api: KubernetesScaleApi,
    private readonly deploymentOf: (pool: Pool) => string,
  ) {}

  async status(pools: readonly Pool[]): Promise<Partial<Record<Pool, PoolReplicas>>> {
    const out: Partial<Record<Pool, PoolReplicas>> = {};
    for (const pool of pools) {
      const s = await this.api.readScale(this.deploymentOf(pool));
      out[pool] = { desired: s.desired, ready: s.ready, starting: Math.max(0, s.desired - s.ready) };
    }
    return out;
  }

  scale(pool: Pool, replicas: number): Promise<void> {
    return this.api.patchScale(this.deploymentOf(pool), replicas);
  }
}

/** Logs and exposes what it would do; the counts are the workers discovery lists. */
export class AdvisoryConnector implements Connector {
  readonly name = 'advisory' as const;
  readonly applies = false;
  private readonly wanted: Partial<Record<Pool, number>> = {};

  constructor(private readonly discovery: Pick<Discovery, 'list'>) {}

  async status(pools: readonly Pool[]): Promise<Partial<Record<Pool, PoolReplicas>>> {
    const records = await this.discovery.list();
    const out: Partial<Record<Pool, PoolReplicas>> = {};
    for (const pool of pools) {
      const ready = records.filter((r) => r.role === pool).length;
      out[pool] = { desired: this.wanted[pool] ?? ready, ready, starting: 0 };
    }
    return out;
  }

  async scale(pool: Pool, replicas: number): Promise<void> {
    this.wanted[pool] = replicas;
  }
}
