// The router's view of the workers: who serves which model (from discovery) and the
// load each last published (from the event plane). It chooses nothing itself.
import {
  decodeBody,
  followPublishers,
  LOAD_TOPIC,
  type EventPlane,
  type EventSubscriber,
  type LoadMessage,
} from '@armature/event-plane';
import { createLogger, type Discovery, type InstanceRecord, type Watch } from '@armature/runtime';
import type { PublishedLoad } from '@armature/router-core';

const log = createLogger('router/workers');

export interface WorkerEntry {
  record: InstanceRecord;
  published: PublishedLoad | undefined;
}

export class WorkerSet {
  private readonly workers = new Map<string, WorkerEntry>();
  private watch: Watch | undefined;
  private follow: Watch | undefined;
  private subscriber: EventSubscriber | undefined;
  private readonly removedListeners: Array<(id: string) => void> = [];
  private readonly changeListeners: Array<() => void> = [];

  constructor(
    private readonly discovery: Discovery,
    private readonly eventPlane: EventPlane,
  ) {}

  start(): void {
    this.watch = this.discovery.watch({ role: 'decode' }, (e) => {
      if (e.type === 'removed') {
        this.workers.delete(e.record.instanceId);
        log.info('worker left', { worker: e.record.instanceId });
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
          model: e.record.model,
          address: e.record.grpcAddress,
        });
    });
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
    this.follow = followPublishers(this.discovery, { role: 'decode' }, this.subscriber);
  }

  /** Workers serving `model`. */
  forModel(model: string): WorkerEntry[] {
    const out: WorkerEntry[] = [];
    for (const w of this.workers.values()) if (w.record.model === model) out.push(w);
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
    this.watch?.close();
    this.follow?.close();
    await this.subscriber?.close();
  }
}
