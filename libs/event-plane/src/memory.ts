// The in-process event plane for tests and single-process simulations. Planes sharing one
// MemoryEventHub see each other's publishers by address (`memory://<n>`). Messages travel
// as the same three frames as on the wire, asynchronously (setImmediate), with a bounded
// inbox per connection like ZeroMQ's receive high-water mark. Loss is simulated on demand
// (dropNext) and raw frames can be injected (sendFrames) so gap and restart handling is
// testable without sockets. There is no slow joiner: a connection hears what is published
// after connect().
import { ArmatureError } from '@armature/runtime';
import { EventDispatcher } from './dispatch.js';
import { encodeSeq } from './frame.js';
import type {
  EventMessage,
  EventPlane,
  EventPublisher,
  EventSubscriber,
  PublisherCounters,
  PublisherOptions,
  SequenceGap,
  SubscriberCounters,
  SubscriberOptions,
} from './types.js';

/** What the hub delivers to: one subscriber's link to one address. */
interface HubConnection {
  offer(frames: readonly Uint8Array[]): void;
}

class MemoryConnection implements HubConnection {
  private inbox: Uint8Array[][] = [];
  private scheduled = false;
  open = true;

  constructor(
    private readonly address: string,
    private readonly prefixes: readonly Buffer[],
    private readonly dispatcher: EventDispatcher,
    private readonly inboxLimit: number,
  ) {}

  offer(frames: readonly Uint8Array[]): void {
    const topic = frames[0];
    if (!this.open || !topic || !this.prefixes.some((p) => startsWith(topic, p))) return;
    // Over the limit the message is lost silently, as with ZeroMQ's RCVHWM.
    if (this.inbox.length >= this.inboxLimit) return;
    // Copy, so a subscriber never shares bytes with the publisher or another subscriber.
    this.inbox.push(frames.map((f) => new Uint8Array(f)));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.inbox;
    this.inbox = [];
    for (const frames of batch) {
      if (!this.open) return;
      this.dispatcher.deliverFrames(this.address, frames);
    }
  }
}

function startsWith(bytes: Uint8Array, prefix: Buffer): boolean {
  if (prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

export interface MemoryEventHubOptions {
  /** Messages buffered per connection before new ones are lost (default 100000). */
  inboxLimit?: number;
}

/** The shared in-process "network" behind MemoryEventPlane instances. */
export class MemoryEventHub {
  private nextAddress = 0;
  private readonly bound = new Set<string>();
  private readonly connections = new Map<string, Set<HubConnection>>();
  private readonly dropBudget = new Map<string, number>();
  readonly inboxLimit: number;

  constructor(options: MemoryEventHubOptions = {}) {
    this.inboxLimit = options.inboxLimit ?? 100_000;
  }

  /** A fresh, unused `memory://<n>` address. */
  allocateAddress(): string {
    let address: string;
    do address = `memory://${this.nextAddress++}`;
    while (this.bound.has(address));
    return address;
  }

  /** Loses the next `count` messages sent from `address` (for every subscriber), as a network would. */
  dropNext(address: string, count: number): void {
    this.dropBudget.set(address, (this.dropBudget.get(address) ?? 0) + count);
  }

  /**
   * Sends raw frames as if a publisher at `address` had sent them, bypassing its sequence
   * counters: for tests of crafted sequence numbers, restarts and malformed messages.
   */
  sendFrames(address: string, frames: readonly Uint8Array[]): void {
    const budget = this.dropBudget.get(address) ?? 0;
    if (budget > 0) {
      if (budget === 1) this.dropBudget.delete(address);
      else this.dropBudget.set(address, budget - 1);
      return;
    }
    const connections = this.connections.get(address);
    if (connections) for (const connection of connections) connection.offer(frames);
  }

  /** @internal */
  bind(address: string): void {
    if (this.bound.has(address)) {
      throw new ArmatureError('unavailable', 'event_bind_failed', `event address ${address} is already bound`);
    }
    this.bound.add(address);
  }

  /** @internal */
  unbind(address: string): void {
    this.bound.delete(address);
  }

  /** @internal */
  attach(address: string, connection: HubConnection): void {
    let set = this.connections.get(address);
    if (!set) this.connections.set(address, (set = new Set()));
    set.add(connection);
  }

  /** @internal */
  detach(address: string, connection: HubConnection): void {
    const set = this.connections.get(address);
    if (!set) return;
    set.delete(connection);
    if (set.size === 0) this.connections.delete(address);
  }
}

/** In-process backend of the event plane. Pass one hub to several planes to connect them. */
export class MemoryEventPlane implements EventPlane {
  constructor(readonly hub: MemoryEventHub = new MemoryEventHub()) {}

  /** Binds `options.address` or a fresh `memory://<n>`; host and port are ignored. */
  async createPublisher(options: PublisherOptions = {}): Promise<EventPublisher> {
    const address = options.address ?? this.hub.allocateAddress();
    this.hub.bind(address);
    return new MemoryEventPublisher(this.hub, address);
  }

  createSubscriber(options: SubscriberOptions): EventSubscriber {
    return new MemoryEventSubscriber(this.hub, options.topics);
  }

  /** Loses the next `count` messages from the publisher at `address`. */
  dropNext(address: string, count: number): void {
    this.hub.dropNext(address, count);
  }
}

class MemoryEventPublisher implements EventPublisher {
  readonly counters: PublisherCounters = { published: 0, sent: 0, dropped: 0 };
  private readonly topics = new Map<string, { frame: Buffer; next: bigint }>();
  private closed = false;

  constructor(
    private readonly hub: MemoryEventHub,
    readonly address: string,
  ) {}

  publish(topic: string, payload: Uint8Array): bigint {
    if (this.closed) throw new ArmatureError('failed_precondition', 'publisher_closed', 'event publisher is closed');
    let state = this.topics.get(topic);
    if (!state) {
      state = { frame: Buffer.from(topic, 'utf8'), next: 0n };
      this.topics.set(topic, state);
    }
    const seq = state.next++;
    this.counters.published++;
    this.counters.sent++;
    this.hub.sendFrames(this.address, [state.frame, encodeSeq(seq), payload]);
    return seq;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.unbind(this.address);
  }
}

class MemoryEventSubscriber implements EventSubscriber {
  private readonly dispatcher = new EventDispatcher();
  private readonly connections = new Map<string, MemoryConnection>();
  private readonly prefixes: Buffer[];
  private closed = false;

  constructor(
    private readonly hub: MemoryEventHub,
    topics: readonly string[],
  ) {
    this.prefixes = topics.map((t) => Buffer.from(t, 'utf8'));
  }

  get addresses(): readonly string[] {
    return [...this.connections.keys()];
  }

  get counters(): Readonly<SubscriberCounters> {
    return this.dispatcher.counters;
  }

  connect(address: string): void {
    if (this.closed) throw new ArmatureError('failed_precondition', 'subscriber_closed', 'event subscriber is closed');
    if (this.connections.has(address)) return;
    const connection = new MemoryConnection(address, this.prefixes, this.dispatcher, this.hub.inboxLimit);
    this.connections.set(address, connection);
    this.dispatcher.attach(address);
    this.hub.attach(address, connection);
  }

  disconnect(address: string): void {
    const connection = this.connections.get(address);
    if (!connection) return;
    connection.open = false;
    this.connections.delete(address);
    this.dispatcher.detach(address);
    this.hub.detach(address, connection);
  }

  onMessage(listener: (msg: EventMessage) => void): () => void {
    return this.dispatcher.onMessage(listener);
  }

  onGap(listener: (gap: SequenceGap) => void): () => void {
    return this.dispatcher.onGap(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const address of [...this.connections.keys()]) this.disconnect(address);
  }
}
