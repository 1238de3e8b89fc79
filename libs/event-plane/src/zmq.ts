// The real event plane: ZeroMQ PUB/SUB with no broker. Each publisher binds its own PUB
// socket; a subscriber opens one SUB socket per publisher it follows, so sequence tracking
// per publisher is exact and one publisher's disconnect never touches another's stream.
// Publishing is synchronous for callers: messages go through a bounded in-process queue
// that one pump drains into the socket (zeromq.js allows one pending send at a time).
import { ArmatureError } from '@armature/runtime';
import * as zmq from 'zeromq';
import { EventDispatcher } from './dispatch.js';
import { encodeSeq } from './frame.js';
import type {
  EventPlane,
  EventPublisher,
  EventSubscriber,
  EventMessage,
  PublisherCounters,
  PublisherOptions,
  SequenceGap,
  SubscriberCounters,
  SubscriberOptions,
} from './types.js';

export interface ZmqEventPlaneOptions {
  /** ZMQ_SNDHWM per subscriber connection (default 100000, as vLLM). */
  sendHighWaterMark?: number;
  /** ZMQ_RCVHWM per publisher connection (default 100000). */
  receiveHighWaterMark?: number;
  /** Messages queued in-process before publish() drops and counts (default 100000). */
  maxQueuedMessages?: number;
  /** How long close() waits for the queue to drain and the socket to flush (default 500 ms). */
  closeTimeoutMs?: number;
}

interface ResolvedOptions {
  sendHighWaterMark: number;
  receiveHighWaterMark: number;
  maxQueuedMessages: number;
  closeTimeoutMs: number;
}

function resolveOptions(raw: ZmqEventPlaneOptions): ResolvedOptions {
  const options: ResolvedOptions = {
    sendHighWaterMark: raw.sendHighWaterMark ?? 100_000,
    receiveHighWaterMark: raw.receiveHighWaterMark ?? 100_000,
    maxQueuedMessages: raw.maxQueuedMessages ?? 100_000,
    closeTimeoutMs: raw.closeTimeoutMs ?? 500,
  };
  for (const [key, value] of Object.entries(options)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new ArmatureError(
        'invalid_argument',
        'invalid_event_plane_option',
        `${key} must be a non-negative integer`,
      );
    }
  }
  return options;
}

/** ZeroMQ backend of the event plane. */
export class ZmqEventPlane implements EventPlane {
  private readonly options: ResolvedOptions;

  constructor(options: ZmqEventPlaneOptions = {}) {
    this.options = resolveOptions(options);
  }

  /** Binds a PUB socket (default tcp://127.0.0.1 on a free port) and reports the real endpoint. */
  async createPublisher(options: PublisherOptions = {}): Promise<EventPublisher> {
    const endpoint = options.address ?? `tcp://${options.host ?? '127.0.0.1'}:${options.port ?? 0}`;
    const socket = new zmq.Publisher({
      sendHighWaterMark: this.options.sendHighWaterMark,
      linger: this.options.closeTimeoutMs,
    });
    try {
      await socket.bind(endpoint);
    } catch (err) {
      socket.close();
      throw new ArmatureError('unavailable', 'event_bind_failed', `cannot bind event publisher to ${endpoint}`, {
        cause: err,
      });
    }
    const bound = socket.lastEndpoint ?? endpoint;
    return new ZmqEventPublisher(socket, advertise(bound, options.advertiseHost), this.options);
  }

  createSubscriber(options: SubscriberOptions): EventSubscriber {
    return new ZmqEventSubscriber(options.topics, this.options);
  }
}

/** Replaces the host of a tcp endpoint (for wildcard binds); other transports are unchanged. */
function advertise(endpoint: string, host: string | undefined): string {
  if (!host || !endpoint.startsWith('tcp://')) return endpoint;
  const port = endpoint.slice(endpoint.lastIndexOf(':') + 1);
  return `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

interface TopicState {
  frame: Buffer;
  next: bigint;
}

type Frames = [Buffer, Buffer, Uint8Array];

class ZmqEventPublisher implements EventPublisher {
  readonly counters: PublisherCounters = { published: 0, sent: 0, dropped: 0 };
  private readonly topics = new Map<string, TopicState>();
  private queue: Frames[] = [];
  /** Messages accepted but not yet handed to the socket (queue plus the batch in the pump). */
  private pending = 0;
  private pumping = false;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly socket: zmq.Publisher,
    readonly address: string,
    private readonly options: ResolvedOptions,
  ) {}

  publish(topic: string, payload: Uint8Array): bigint {
    if (this.closing) throw new ArmatureError('failed_precondition', 'publisher_closed', 'event publisher is closed');
    let state = this.topics.get(topic);
    if (!state) {
      state = { frame: Buffer.from(topic, 'utf8'), next: 0n };
      this.topics.set(topic, state);
    }
    const seq = state.next++;
    this.counters.published++;
    if (this.pending >= this.options.maxQueuedMessages) {
      this.counters.dropped++;
      return seq;
    }
    this.queue.push([state.frame, encodeSeq(seq), payload]);
    this.pending++;
    if (!this.pumping) void this.pump();
    return seq;
  }

  /** Drains the queue into the socket, one send at a time, in publish order. Never throws. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        for (const frames of batch) {
          try {
            await this.socket.send(frames);
            this.counters.sent++;
          } catch {
            this.counters.dropped++;
          }
          this.pending--;
        }
      }
    } finally {
      this.pumping = false;
      this.drained?.();
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.pumping) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.closeTimeoutMs))),
      ]);
      clearTimeout(timer);
    }
    // Whatever is still queued after the timeout is dropped by the pump once the socket is closed.
    this.socket.close();
  }
}

class ZmqEventSubscriber implements EventSubscriber {
  private readonly dispatcher = new EventDispatcher();
  private readonly sockets = new Map<string, zmq.Subscriber>();
  private readonly loops = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly topics: readonly string[],
    private readonly options: ResolvedOptions,
  ) {}

  get addresses(): readonly string[] {
    return [...this.sockets.keys()];
  }

  get counters(): Readonly<SubscriberCounters> {
    return this.dispatcher.counters;
  }

  connect(address: string): void {
    if (this.closed) throw new ArmatureError('failed_precondition', 'subscriber_closed', 'event subscriber is closed');
    if (this.sockets.has(address)) return;
    const socket = new zmq.Subscriber({ receiveHighWaterMark: this.options.receiveHighWaterMark, linger: 0 });
    try {
      socket.connect(address);
    } catch (err) {
      socket.close();
      throw new ArmatureError(
        'invalid_argument',
        'invalid_event_address',
        `cannot connect to event address ${address}`,
        {
          cause: err,
        },
      );
    }
    if (this.topics.includes('')) socket.subscribe();
    else for (const topic of this.topics) socket.subscribe(topic);
    this.sockets.set(address, socket);
    this.dispatcher.attach(address);
    const loop = this.receiveLoop(address, socket);
    this.loops.add(loop);
    void loop.finally(() => this.loops.delete(loop));
  }

  disconnect(address: string): void {
    const socket = this.sockets.get(address);
    if (!socket) return;
    this.sockets.delete(address);
    this.dispatcher.detach(address);
    socket.close();
  }

  onMessage(listener: (msg: EventMessage) => void): () => void {
    return this.dispatcher.onMessage(listener);
  }

  onGap(listener: (gap: SequenceGap) => void): () => void {
    return this.dispatcher.onGap(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const address of [...this.sockets.keys()]) this.disconnect(address);
    await Promise.all([...this.loops]);
  }

  /** Receives until the socket is closed. Never throws: errors are counted and the loop goes on. */
  private async receiveLoop(address: string, socket: zmq.Subscriber): Promise<void> {
    while (!socket.closed) {
      let frames: Buffer[];
      try {
        frames = await socket.receive();
      } catch {
        if (socket.closed) return;
        // Not expected on a SUB socket; back off briefly so a persistent error cannot spin.
        this.dispatcher.counters.receiveErrors++;
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      // A message that raced with disconnect() belongs to a connection we no longer follow.
      if (this.sockets.get(address) !== socket) return;
      this.dispatcher.deliverFrames(address, frames);
    }
  }
}
