// In-process discovery for tests and single-process simulations. Several MemoryDiscovery
// clients sharing one MemoryDiscoveryHub see each other, with real lease expiry.
import {
  DEFAULT_LEASE_MS,
  diffSnapshots,
  matchesFilter,
  type Discovery,
  type DiscoveryEvent,
  type DiscoveryFilter,
  type InstanceRecord,
  type RegisterOptions,
  type Registration,
  type Watch,
} from './types.js';

interface Entry {
  record: InstanceRecord;
  expiresAt: number;
}

/** The shared store behind MemoryDiscovery clients. */
export class MemoryDiscoveryHub {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<() => void>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly sweepMs = 50) {}

  put(record: InstanceRecord, leaseMs: number): void {
    this.entries.set(record.instanceId, { record: structuredClone(record), expiresAt: Date.now() + leaseMs });
    this.ensureSweeper();
    this.notify();
  }

  renew(instanceId: string, leaseMs: number): void {
    const entry = this.entries.get(instanceId);
    if (entry) entry.expiresAt = Date.now() + leaseMs;
  }

  delete(instanceId: string): void {
    if (this.entries.delete(instanceId)) this.notify();
  }

  snapshot(filter?: DiscoveryFilter): Map<string, InstanceRecord> {
    const now = Date.now();
    const out = new Map<string, InstanceRecord>();
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt > now && matchesFilter(entry.record, filter)) out.set(id, structuredClone(entry.record));
    }
    return out;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    this.ensureSweeper();
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  private ensureSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      let expired = false;
      for (const [id, entry] of this.entries) {
        if (entry.expiresAt <= now) {
          this.entries.delete(id);
          expired = true;
        }
      }
      if (expired) this.notify();
      if (this.entries.size === 0 && this.listeners.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, this.sweepMs);
    this.sweeper.unref();
  }
}

export class MemoryDiscovery implements Discovery {
  private readonly renewals = new Set<NodeJS.Timeout>();
  private readonly unsubscribers = new Set<() => void>();

  constructor(private readonly hub: MemoryDiscoveryHub = new MemoryDiscoveryHub()) {}

  async register(record: InstanceRecord, options: RegisterOptions = {}): Promise<Registration> {
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.hub.put(record, leaseMs);
    const timer = setInterval(() => this.hub.renew(record.instanceId, leaseMs), Math.max(10, leaseMs / 3));
    timer.unref();
    this.renewals.add(timer);
    const stop = (): void => {
      clearInterval(timer);
      this.renewals.delete(timer);
    };
    return {
      instanceId: record.instanceId,
      update: async (next) => this.hub.put({ ...next, instanceId: record.instanceId }, leaseMs),
      unregister: async () => {
        stop();
        this.hub.delete(record.instanceId);
      },
      abandon: stop,
    };
  }

  async list(filter?: DiscoveryFilter): Promise<InstanceRecord[]> {
    return [...this.hub.snapshot(filter).values()];
  }

  watch(filter: DiscoveryFilter, listener: (event: DiscoveryEvent) => void): Watch {
    let known = new Map<string, InstanceRecord>();
    const refresh = (): void => {
      const next = this.hub.snapshot(filter);
      const events = diffSnapshots(known, next);
      known = next;
      for (const e of events) listener(e);
    };
    const unsubscribe = this.hub.subscribe(refresh);
    this.unsubscribers.add(unsubscribe);
    queueMicrotask(refresh);
    return {
      close: () => {
        unsubscribe();
        this.unsubscribers.delete(unsubscribe);
      },
    };
  }

  async close(): Promise<void> {
    for (const t of this.renewals) clearInterval(t);
    this.renewals.clear();
    for (const u of this.unsubscribers) u();
    this.unsubscribers.clear();
  }
}
