// The router's one view of the cluster it follows: the workers serving each model in
// each role (decode, prefill) and the other router replicas, from one discovery watch
// per role; one event subscriber connected to every member's publisher (worker load,
// KV events, replicas' active load), whose sequence tracking and gap reports the
// consumers act on; and one pool of Worker gRPC clients. The KV feed, replica sync and
// routing all read it. It chooses nothing and applies no event itself, except the load
// a worker publishes, which it keeps next to the worker's record.
import { credentials } from '@grpc/grpc-js';
import { WorkerClient } from '@armature/proto';
import {
  decodeBody,
  followPublishers,
  LOAD_TOPIC,
  type EventMessage,
  type EventPlane,
  type EventSubscriber,
  type FollowHooks,
  type LoadMessage,
  type SequenceGap,
} from '@armature/event-plane';
import {
  CLIENT_CHANNEL_OPTIONS,
  createLogger,
  type Discovery,
  type DiscoveryEvent,
  toWorkerLoad,
  type InstanceRecord,
  type Watch,
  type WorkerLoad,
} from '@armature/runtime';

const log = createLogger('router/workers');

export interface WorkerEntry {
  record: InstanceRecord;
  published: WorkerLoad | undefined;
}

export type WorkerRole = 'decode' | 'prefill';
/** Roles a directory follows: the workers', and router replicas. */
export type MemberRole = WorkerRole | 'router';

export interface WorkerDirectoryOptions {
  /** Roles followed (default decode and prefill; add router for replica sync). */
  roles?: readonly MemberRole[];
  /** Topics received from the members' publishers (default the load topic only). */
  topics?: readonly string[];
}

const isWorkerRole = (role: string): role is WorkerRole => role === 'decode' || role === 'prefill';

export class WorkerDirectory {
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly watches: Watch[] = [];
  private readonly roles: readonly MemberRole[];
  private readonly topics: readonly string[];
  private subscriber: EventSubscriber | undefined;
  private readonly publisherHooks = new Map<MemberRole, FollowHooks[]>();
  private readonly messageListeners = new Map<string, Array<(msg: EventMessage) => void>>();
  private readonly gapListeners = new Map<string, Array<(gap: SequenceGap) => void>>();
  private readonly removedListeners: Array<(id: string) => void> = [];
  private readonly addedListeners: Array<(entry: WorkerEntry) => void> = [];
  private readonly changeListeners: Array<() => void> = [];
  private readonly clients = new Map<string, WorkerClient>();

  constructor(
    private readonly discovery: Discovery,
    private readonly eventPlane: EventPlane,
    options: WorkerDirectoryOptions = {},
  ) {
    this.roles = options.roles ?? ['decode', 'prefill'];
    this.topics = [...new Set([LOAD_TOPIC, ...(options.topics ?? [])])];
  }

  /**
   * Hooks on the publishers of one role's members: onJoin once connected to a member's
   * event address (again after it changes), onLeave when disconnected, onUpdate when its
   * record changes but not its publisher. Register before start().
   */
  followPublishers(role: MemberRole, hooks: FollowHooks): void {
    const list = this.publisherHooks.get(role) ?? [];
    list.push(hooks);
    this.publisherHooks.set(role, list);
  }

  /** Listens to one topic's messages from every member. */
  onMessage(topic: string, listener: (msg: EventMessage) => void): void {
    this.listenerList(this.messageListeners, topic).push(listener);
  }

  /** Listens to one topic's sequence gaps (losses and publisher restarts), reported before the message. */
  onGap(topic: string, listener: (gap: SequenceGap) => void): void {
    this.listenerList(this.gapListeners, topic).push(listener);
  }

  start(): void {
    const sub = this.eventPlane.createSubscriber({ topics: [...this.topics] });
    this.subscriber = sub;
    sub.onMessage((msg) => {
      if (msg.topic === LOAD_TOPIC) this.onLoad(msg);
      for (const l of this.messageListeners.get(msg.topic) ?? []) l(msg);
    });
    sub.onGap((gap) => {
      for (const l of this.gapListeners.get(gap.topic) ?? []) l(gap);
    });
    for (const role of this.roles) {
      const hooks = this.publisherHooks.get(role) ?? [];
      const each =
        (name: 'onJoin' | 'onLeave' | 'onUpdate') =>
        (record: InstanceRecord): void => {
          for (const h of hooks) h[name]?.(record);
        };
      this.watches.push(
        followPublishers(this.discovery, { role }, sub, {
          onRecord: (e) => this.onRecord(e),
          onJoin: each('onJoin'),
          onLeave: each('onLeave'),
          onUpdate: each('onUpdate'),
        }),
      );
    }
  }

  private listenerList<T>(map: Map<string, T[]>, topic: string): T[] {
    if (!this.topics.includes(topic)) throw new Error(`the directory does not receive topic ${JSON.stringify(topic)}`);
    let list = map.get(topic);
    if (!list) map.set(topic, (list = []));
    return list;
  }

  private onLoad(msg: EventMessage): void {
    try {
      const load = decodeBody<LoadMessage>(msg.payload);
      const entry = this.workers.get(load.instanceId);
      if (entry) {
        entry.published = toWorkerLoad(load);
        this.changed();
      }
    } catch (err) {
      log.warn('bad load message', { err, publisher: msg.publisher });
    }
  }

  private onRecord(e: DiscoveryEvent): void {
    const record = e.record;
    if (!isWorkerRole(record.role)) return;
    const existing = this.workers.get(record.instanceId);
    if (e.type === 'removed') {
      // An instance id that moved to the other role is not gone.
      if (existing?.record.role !== record.role) return;
      this.workers.delete(record.instanceId);
      this.dropClient(existing.record.grpcAddress);
      log.info('worker left', { worker: record.instanceId, role: record.role });
      for (const l of this.removedListeners) l(record.instanceId);
      return;
    }
    if (!record.grpcAddress || !record.card || !record.model) {
      log.warn('ignoring worker record without address, model or card', { worker: record.instanceId });
      return;
    }
    if (existing && existing.record.grpcAddress !== record.grpcAddress) this.dropClient(existing.record.grpcAddress);
    const entry: WorkerEntry = { record, published: existing?.published };
    this.workers.set(record.instanceId, entry);
    if (!existing) for (const l of this.addedListeners) l(entry);
    this.changed();
    if (!existing)
      log.info('worker joined', {
        worker: record.instanceId,
        role: record.role,
        model: record.model,
        address: record.grpcAddress,
      });
  }

  /** Workers serving `model` in `role`. */
  forModel(model: string, role: WorkerRole = 'decode'): WorkerEntry[] {
    const out: WorkerEntry[] = [];
    for (const w of this.workers.values()) if (w.record.model === model && w.record.role === role) out.push(w);
    return out;
  }

  /** Every worker known, both roles. */
  list(): WorkerEntry[] {
    return [...this.workers.values()];
  }

  get(instanceId: string): WorkerEntry | undefined {
    return this.workers.get(instanceId);
  }

  /** Workers known, both roles. */
  get size(): number {
    return this.workers.size;
  }

  /** The Worker client for a gRPC address, shared by everyone in this process; closed when its worker leaves. */
  client(address: string): WorkerClient {
    let client = this.clients.get(address);
    if (!client) {
      client = new WorkerClient(address, credentials.createInsecure(), CLIENT_CHANNEL_OPTIONS);
      this.clients.set(address, client);
    }
    return client;
  }

  private dropClient(address: string | undefined): void {
    if (!address) return;
    const client = this.clients.get(address);
    if (client) {
      client.close();
      this.clients.delete(address);
    }
  }

  /** Listens to workers joining (first seen with an address, a model and a card). */
  onAdded(listener: (entry: WorkerEntry) => void): void {
    this.addedListeners.push(listener);
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
    this.watches.length = 0;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await this.subscriber?.close();
  }
}
