// File discovery: a directory of leased JSON records, one file per instance, shared by
// every process on a host (or a compose volume). Writers renew their lease by rewriting
// their file; readers ignore and eventually delete records whose lease has run out.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../log.js';
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

interface LeasedRecord {
  record: InstanceRecord;
  /** Epoch ms after which the record is dead. */
  expiresAt: number;
}

export interface FileDiscoveryOptions {
  dir: string;
  /** How often watches rescan the directory (default 200 ms). */
  pollMs?: number;
}

const log = createLogger('discovery/file');

interface FileWatcher {
  filter: DiscoveryFilter;
  listener: (event: DiscoveryEvent) => void;
  known: Map<string, InstanceRecord>;
  closed: boolean;
}
const SAFE_ID = /^[A-Za-z0-9._-]{1,200}$/;

export class FileDiscovery implements Discovery {
  private readonly dir: string;
  private readonly pollMs: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private ready: Promise<void> | undefined;
  private readonly watchers = new Set<FileWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  /** Scans run one after another: each watcher sees snapshots in order. */
  private scans: Promise<void> = Promise.resolve();
  /** A scan for every watcher is queued and not started yet. */
  private scanPending = false;

  constructor(options: FileDiscoveryOptions) {
    this.dir = options.dir;
    this.pollMs = options.pollMs ?? 200;
  }

  private ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true }).then(() => undefined);
    return this.ready;
  }

  private pathOf(instanceId: string): string {
    return join(this.dir, `${instanceId}.json`);
  }

  private async write(record: InstanceRecord, leaseMs: number): Promise<void> {
    const body: LeasedRecord = { record, expiresAt: Date.now() + leaseMs };
    const tmp = `${this.pathOf(record.instanceId)}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(body));
    await rename(tmp, this.pathOf(record.instanceId)); // atomic: readers never see half a file
  }

  async register(record: InstanceRecord, options: RegisterOptions = {}): Promise<Registration> {
    if (!SAFE_ID.test(record.instanceId)) {
      throw new Error(`instance id ${JSON.stringify(record.instanceId)} must match ${SAFE_ID}`);
    }
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    await this.ensureDir();
    let current = structuredClone(record);
    let stopped = false;
    await this.write(current, leaseMs);
    const timer = setInterval(
      () => {
        if (stopped) return;
        this.write(current, leaseMs).catch((err: unknown) => log.warn('lease renewal failed', { err }));
      },
      Math.max(10, leaseMs / 3),
    );
    timer.unref();
    this.timers.add(timer);
    const stop = (): void => {
      stopped = true;
      clearInterval(timer);
      this.timers.delete(timer);
    };
    return {
      instanceId: record.instanceId,
      update: async (next) => {
        current = { ...structuredClone(next), instanceId: record.instanceId };
        if (!stopped) await this.write(current, leaseMs);
      },
      unregister: async () => {
        stop();
        await rm(this.pathOf(record.instanceId), { force: true });
      },
      abandon: stop,
    };
  }

  private async snapshot(filter?: DiscoveryFilter): Promise<Map<string, InstanceRecord>> {
    await this.ensureDir();
    const out = new Map<string, InstanceRecord>();
    const now = Date.now();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return out;
    }
    await Promise.all(
      names
        .filter((n) => n.endsWith('.json'))
        .map(async (name) => {
          const path = join(this.dir, name);
          let leased: LeasedRecord;
          try {
            leased = JSON.parse(await readFile(path, 'utf8')) as LeasedRecord;
          } catch {
            return; // vanished or being replaced between readdir and read
          }
          if (typeof leased?.expiresAt !== 'number' || !leased.record?.instanceId) return;
          if (leased.expiresAt <= now) {
            // Long dead: tidy up so the directory does not grow without bound.
            if (now - leased.expiresAt > 60_000) await rm(path, { force: true }).catch(() => undefined);
            return;
          }
          if (matchesFilter(leased.record, filter)) out.set(leased.record.instanceId, leased.record);
        }),
    );
    return out;
  }

  async list(filter?: DiscoveryFilter): Promise<InstanceRecord[]> {
    return [...(await this.snapshot(filter)).values()];
  }

  /**
   * Watches share one scan of the directory per poll (a process typically holds several:
   * roles, event publishers, replicas), and scans run one at a time, so every watcher sees
   * a consistent sequence of snapshots.
   */
  watch(filter: DiscoveryFilter, listener: (event: DiscoveryEvent) => void): Watch {
    const watcher: FileWatcher = { filter, listener, known: new Map(), closed: false };
    this.watchers.add(watcher);
    this.enqueueScan([watcher]); // the current records at once, not at the next poll
    if (!this.pollTimer) {
      this.pollTimer = setInterval(() => {
        if (!this.scanPending) this.enqueueScan(undefined);
      }, this.pollMs);
      this.pollTimer.unref();
    }
    return {
      close: () => {
        watcher.closed = true;
        this.watchers.delete(watcher);
        if (this.watchers.size === 0) this.stopPolling();
      },
    };
  }

  /** Queues a scan for `only` these watchers, or for every watcher when undefined. */
  private enqueueScan(only: FileWatcher[] | undefined): void {
    if (!only) this.scanPending = true;
    this.scans = this.scans.then(async () => {
      if (!only) this.scanPending = false;
      const watchers = (only ?? [...this.watchers]).filter((w) => !w.closed);
      if (watchers.length === 0) return;
      let all: Map<string, InstanceRecord>;
      try {
        all = await this.snapshot();
      } catch (err) {
        log.warn('discovery scan failed', { err });
        return;
      }
      for (const w of watchers) {
        if (w.closed) continue;
        const next = new Map<string, InstanceRecord>();
        for (const [id, record] of all) if (matchesFilter(record, w.filter)) next.set(id, record);
        const events = diffSnapshots(w.known, next);
        w.known = next;
        for (const e of events) {
          try {
            w.listener(e);
          } catch (err) {
            log.error('discovery listener threw', { err });
          }
        }
      }
    });
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.closed = true;
    this.watchers.clear();
    this.stopPolling();
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
  }
}
