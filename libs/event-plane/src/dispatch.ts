// The subscriber half both backends share: parses frames, tracks sequence numbers per
// (publisher, topic), reports gaps before the message that revealed them, and calls
// listeners without ever letting one listener's exception stop delivery. It does not
// own sockets or connections; the backend attaches and detaches publishers.
import { parseFrames } from './frame.js';
import type { EventMessage, SequenceGap, SubscriberCounters } from './types.js';

export class EventDispatcher {
  readonly counters: SubscriberCounters = {
    messages: 0,
    gaps: 0,
    missed: 0,
    badFrames: 0,
    listenerErrors: 0,
    receiveErrors: 0,
  };
  private readonly messageListeners = new Set<(msg: EventMessage) => void>();
  private readonly gapListeners = new Set<(gap: SequenceGap) => void>();
  /** publisher address -> topic -> last seq seen. Absent publisher = not attached. */
  private readonly lastSeq = new Map<string, Map<string, bigint>>();

  /** Starts tracking a publisher from scratch (its next message is not a gap). */
  attach(publisher: string): void {
    this.lastSeq.set(publisher, new Map());
  }

  /** Forgets a publisher; messages still in flight from it are ignored. */
  detach(publisher: string): void {
    this.lastSeq.delete(publisher);
  }

  onMessage(listener: (msg: EventMessage) => void): () => void {
    const own = (msg: EventMessage): void => listener(msg);
    this.messageListeners.add(own);
    return () => void this.messageListeners.delete(own);
  }

  onGap(listener: (gap: SequenceGap) => void): () => void {
    const own = (gap: SequenceGap): void => listener(gap);
    this.gapListeners.add(own);
    return () => void this.gapListeners.delete(own);
  }

  /** Delivers one raw multipart message; a malformed one is counted and skipped. Never throws. */
  deliverFrames(publisher: string, frames: readonly Uint8Array[]): void {
    let parsed: ReturnType<typeof parseFrames>;
    try {
      parsed = parseFrames(frames);
    } catch {
      parsed = undefined;
    }
    if (!parsed) {
      this.counters.badFrames++;
      return;
    }
    this.deliver(publisher, parsed.topic, parsed.seq, parsed.payload);
  }

  private deliver(publisher: string, topic: string, seq: bigint, payload: Uint8Array): void {
    const topics = this.lastSeq.get(publisher);
    if (!topics) return;
    const last = topics.get(topic);
    topics.set(topic, seq);
    if (last !== undefined && seq !== last + 1n) {
      const gap: SequenceGap = { publisher, topic, expectedSeq: last + 1n, receivedSeq: seq };
      this.counters.gaps++;
      if (seq > last + 1n) this.counters.missed += Number(seq - last - 1n);
      for (const listener of this.gapListeners) this.call(listener, gap);
    }
    this.counters.messages++;
    const msg: EventMessage = { publisher, topic, seq, payload };
    for (const listener of this.messageListeners) this.call(listener, msg);
  }

  private call<T>(listener: (value: T) => void, value: T): void {
    try {
      listener(value);
    } catch {
      this.counters.listenerErrors++;
    }
  }
}
