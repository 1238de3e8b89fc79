// The router's view of the workers: who serves which model in which role, decode or
// prefill (from discovery), and the load each last published (from the event plane). It
// chooses nothing itself.
import {
  decodeBody,
  followPublishers,
  LOAD_TOPIC,
  type EventPlane,
  type EventSubscriber,
  type LoadMessage,
} from '@armature/event-plane';
import { createLogger, type Discovery, type DiscoveryEvent, type InstanceRecord, type Watch } from '@armature/runtime';
import type { PublishedLoad } from '@armature/router-core';

const log = createLogger('router/workers');

export interface WorkerEntry {
  record: InstanceRecord;
  published: PublishedLoad | undefined;
}

export type WorkerRole = 'decode' | 'prefill';
const ROLES: readonly WorkerRole[] = ['decode', 'prefill'];

export class WorkerSet {
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly watches: Watch[] = [];
  private subscriber: EventSubscriber | undefined;
  private readonly removedListeners: Array<(id: string) => void> = [];
  private readonly changeListeners: Array<() => void> = [];

  constructor(
    private readonly discovery: Discovery,
    private readonly eventPlane: EventPlane,
  ) {}

  start(): void {
    for (const role of ROLES) this.watches.push(this.discovery.watch({ role }, (e) => this.onDiscovery(e)));
    this.subscriber = this.eventPlane.createSubscriber({ topics: [LOAD_TOPIC] });
    this.subscriber.onMessage((msg) => {
      try {
        const load = decodeBody<LoadMessage>(msg.payload);
        const entry = this.workers.get(load.instanceId);
        if (entry) {
          entry.published = {
            activeDecodeBlocks: Number(load.activeDecodeBlocks),
            activePrefillTokens: Number(load.activePrefillTokens),
            waitingRequests: Number(load.waitingRequests),
            runningRequests: Number(load.runningRequests),
            kvUsage: Number(load.kvUsage),
          };
          this.changed();
        }
      } catch (err) {
        log.warn('bad load message', { err, publisher: msg.publisher });
      }
    });
    for (const role of ROLES) this.watches.push(followPublishers(this.discovery, { role }, this.subscriber));
  }

  private onDiscovery(e: DiscoveryEvent): void {
    if (e.type === 'removed') {
      // An instance id that moved to the other role is not gone.
      if (this.workers.get(e.record.instanceId)?.record.role !== e.record.role) return;
      this.workers.delete(e.record.instanceId);
      log.info('worker left', { worker: e.record.instanceId, role: e.record.role });
      for (const l of this.removedListeners) l(e.record.instanceId);
      return;
    }
    if (!e.record.grpcAddress || !e.record.card || !e.record.model) {
      log.warn('ignoring worker record without address, model or card', { worker: e.record.instanceId });
      return;
    }
    const existing = this.workers.get(e.record.instanceId);
    this.workers.set(e.record.instanceId, { record: e.record, published: existing?.published });
    this.changed();
    if (!existing)
      log.info('worker joined', {
        worker: e.record.instanceId,
        role: e.record.role,
        model: e.record.model,
        address: e.record.grpcAddress,
      });
  }

  /** Workers serving `model` in `role`. */
  forModel(model: string, role: WorkerRole = 'decode'): WorkerEntry[] {
    const out: WorkerEntry[] = [];
    for (const w of this.workers.values()) if (w.record.model === model && w.record.role === role) out.push(w);
    return out;
  }

  get(instanceId: string): WorkerEntry | undefined {
    return this.workers.get(instanceId);
  }

  get size(): number {
    return this.workers.size;
  }

  onRemoved(listener: (instanceId: string) => void): void {
    this.removedListeners.push(listener);
  }

  /** Listens to changes that may give a busy cluster room (a worker joined, load was published). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  private changed(): void {
    for (const l of this.changeListeners) l();
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.close();
    await this.subscriber?.close();
  }
}
