// The event plane's contract: publishers that stamp each message with a per-topic
// sequence number, and subscribers that connect to publishers by address and report
// gaps. Two backends implement it (ZeroMQ for real, memory for tests); both pass one
// conformance suite (@armature/testing eventPlaneConformance).
//
// Gap semantics (every backend):
// - Sequence numbers count per (publisher, topic) from 0.
// - The first message a subscriber sees from a (publisher, topic) is never a gap: PUB/SUB
//   joins late, so a consumer that needs the full state loads a dump from the publisher
//   (gRPC) when it joins, then applies events from the sequence number it saw first.
// - A message whose seq is greater than last seen + 1 is a gap: gap listeners hear
//   `{expectedSeq: last + 1, receivedSeq: seq}` before message listeners get the message.
// - A message whose seq is less than or equal to the last seen means the publisher
//   restarted (its counters began again). Tracking resets to the new seq and gap
//   listeners hear it too, with `receivedSeq < expectedSeq` (see isPublisherRestart):
//   the remedy is the same as for a loss, reload a dump.
// - disconnect() forgets the tracking for that address; a later connect() starts fresh.

/** One received event. `publisher` is the address the subscriber connected through. */
export interface EventMessage {
  publisher: string;
  topic: string;
  seq: bigint;
  payload: Uint8Array;
}

/** Messages were lost (receivedSeq > expectedSeq) or the publisher restarted (receivedSeq < expectedSeq). */
export interface SequenceGap {
  publisher: string;
  topic: string;
  expectedSeq: bigint;
  receivedSeq: bigint;
}

/** What a publisher has done since it was created. */
export interface PublisherCounters {
  /** publish() calls, dropped ones included. */
  published: number;
  /** Messages handed to the transport. */
  sent: number;
  /** Messages dropped because the send queue was full or the transport refused them. */
  dropped: number;
}

/** What a subscriber has seen since it was created (over all its connections). */
export interface SubscriberCounters {
  /** Messages delivered to listeners. */
  messages: number;
  /** Gaps reported (losses and publisher restarts). */
  gaps: number;
  /** Sequence numbers skipped over by loss gaps (sum of receivedSeq - expectedSeq). */
  missed: number;
  /** Malformed messages (not [topic, 8-byte seq, payload]) counted and skipped. */
  badFrames: number;
  /** Exceptions thrown by listeners, caught so delivery goes on. */
  listenerErrors: number;
  /** Transport receive errors, counted and retried after a short pause. */
  receiveErrors: number;
}

export interface EventPublisher {
  /** The endpoint subscribers connect to (advertise it through discovery). */
  readonly address: string;
  /**
   * Queues one message and returns the sequence number it used. Never blocks; when the
   * send queue is full the message is dropped and counted (subscribers see a gap).
   * The plane takes the payload as is: do not mutate it after publishing.
   * Throws if the publisher is closed.
   */
  publish(topic: string, payload: Uint8Array): bigint;
  readonly counters: Readonly<PublisherCounters>;
  /** Flushes what is queued (bounded wait), then releases the socket. Idempotent. */
  close(): Promise<void>;
}

export interface EventSubscriber {
  /** Starts receiving from a publisher's address (idempotent). Throws on a malformed address. */
  connect(address: string): void;
  /** Stops receiving from an address and forgets its sequence tracking (no-op if unknown). */
  disconnect(address: string): void;
  /** Addresses currently connected, in connection order. */
  readonly addresses: readonly string[];
  /** Adds a message listener; returns a function that removes it. */
  onMessage(listener: (msg: EventMessage) => void): () => void;
  /** Adds a gap listener; returns a function that removes it. */
  onGap(listener: (gap: SequenceGap) => void): () => void;
  readonly counters: Readonly<SubscriberCounters>;
  /** Disconnects everything and stops the receive loops. Idempotent. */
  close(): Promise<void>;
}

export interface PublisherOptions {
  /** Interface to bind (default 127.0.0.1). Ignored when `address` is given. */
  host?: string;
  /** Port to bind (default 0: a free port; the real one is in `address`). */
  port?: number;
  /** Full endpoint to bind instead of host/port, e.g. `ipc:///run/armature/kv.sock`. */
  address?: string;
  /** Host to advertise in `address` when binding a wildcard such as 0.0.0.0 (default: the bound host). */
  advertiseHost?: string;
}

export interface SubscriberOptions {
  /** Topic prefixes to receive; `['']` receives everything. */
  topics: string[];
}

export interface EventPlane {
  createPublisher(options?: PublisherOptions): Promise<EventPublisher>;
  createSubscriber(options: SubscriberOptions): EventSubscriber;
}

/** True when a gap reports a publisher restart (sequence went backwards) rather than a loss. */
export const isPublisherRestart = (gap: SequenceGap): boolean => gap.receivedSeq < gap.expectedSeq;
