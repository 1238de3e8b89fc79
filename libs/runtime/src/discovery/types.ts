// Discovery: how services find each other. One interface, several backends (file for a
// host or compose, memory for tests, Kubernetes later); all pass one conformance suite.

export type InstanceRole = 'frontend' | 'router' | 'planner' | 'encoder' | 'prefill' | 'decode';

/** What a worker serves and how its KV cache is shaped (proto ModelDeploymentCard). */
export interface ModelCard {
  model: string;
  blockSize: number;
  totalKvBlocks: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  contextLength: number;
  tokenizer: string;
  chatTemplate: string;
  eosTokenIds: number[];
  engine: string;
  /**
   * How the worker reports its KV cache: `armature` (KV events whose block hashes are our
   * sequence hashes), `opaque` (KV events with engine-private hashes, e.g. vLLM: the router
   * recomputes ours from the token ids) or `none` (no events: the router predicts the
   * cache from its own decisions). Absent means `opaque` when the record has an event
   * address, else `none`.
   */
  kvEvents?: 'armature' | 'opaque' | 'none';
}

/** One registered instance. */
export interface InstanceRecord {
  instanceId: string;
  role: InstanceRole;
  model?: string;
  /** host:port of its gRPC server. */
  grpcAddress?: string;
  /** ZeroMQ endpoint of its event PUB socket, e.g. tcp://127.0.0.1:5557. */
  eventAddress?: string;
  /** host:port serving /metrics. */
  metricsAddress?: string;
  card?: ModelCard;
  /** Free-form labels. */
  labels?: Record<string, string>;
}

export interface DiscoveryFilter {
  role?: InstanceRole;
  model?: string;
}

export type DiscoveryEvent =
  | { type: 'added'; record: InstanceRecord }
  | { type: 'updated'; record: InstanceRecord }
  | { type: 'removed'; record: InstanceRecord };

export interface Registration {
  readonly instanceId: string;
  /** Replaces the advertised record (same instance id). */
  update(record: InstanceRecord): Promise<void>;
  /** Removes the record now (graceful exit). */
  unregister(): Promise<void>;
  /** Stops renewing the lease without removing the record, as a crashed process would. */
  abandon(): void;
}

export interface Watch {
  close(): void;
}

export interface RegisterOptions {
  /** Lease length; the record disappears this long after the last renewal (default 10 s). */
  leaseMs?: number;
}

export interface Discovery {
  /** Advertises a record under a lease that is renewed until unregister(). */
  register(record: InstanceRecord, options?: RegisterOptions): Promise<Registration>;
  /** Live records matching the filter. */
  list(filter?: DiscoveryFilter): Promise<InstanceRecord[]>;
  /** Calls the listener with `added` for every live record, then with each change. */
  watch(filter: DiscoveryFilter, listener: (event: DiscoveryEvent) => void): Watch;
  /** Stops all watches and renewals (records are left to expire unless unregistered). */
  close(): Promise<void>;
}

export const DEFAULT_LEASE_MS = 10_000;

export function matchesFilter(record: InstanceRecord, filter: DiscoveryFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.role !== undefined && record.role !== filter.role) return false;
  if (filter.model !== undefined && record.model !== filter.model) return false;
  return true;
}

/** Diffs two snapshots (by instance id) into watch events. */
export function diffSnapshots(
  before: Map<string, InstanceRecord>,
  after: Map<string, InstanceRecord>,
): DiscoveryEvent[] {
  const events: DiscoveryEvent[] = [];
  for (const [id, record] of after) {
    const old = before.get(id);
    if (!old) events.push({ type: 'added', record });
    else if (JSON.stringify(old) !== JSON.stringify(record)) events.push({ type: 'updated', record });
  }
  for (const [id, record] of before) if (!after.has(id)) events.push({ type: 'removed', record });
  return events;
}
