// The conformance suite every EventPlane backend must pass. A backend's test file calls
// `eventPlaneConformance(name, makePlane, options)`; the same assertions run against each.
// Real sockets join late (ZeroMQ's slow joiner), so every test first publishes on a
// warm-up topic until the subscriber hears it, and only then asserts on sequences.
import { afterEach, describe, expect, it } from 'vitest';
import type { EventMessage, EventPlane, EventPublisher, EventSubscriber, SequenceGap } from '@armature/event-plane';
import { waitFor } from './wait.js';

/** A publisher that sends crafted frames, to cause real loss and restarts. */
export interface RawEventPublisher {
  readonly address: string;
  /** Sends one well-formed `[topic, seq, payload]` message with the given seq. */
  send(topic: string, seq: bigint, payload: Uint8Array): Promise<void>;
  /** Sends arbitrary frames (malformed messages); optional. */
  sendFrames?(frames: Uint8Array[]): Promise<void>;
  close(): Promise<void>;
}

export interface EventPlaneConformanceOptions {
  /** Loses the next `count` messages from the publisher at this address. */
  lose?: (publisherAddress: string, count: number) => void | Promise<void>;
  /** A raw publisher the plane's subscribers can connect to. */
  rawPublisher?: () => Promise<RawEventPublisher>;
}

const WARMUP = '_warmup';
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

/** Records what a subscriber hears. */
function record(sub: EventSubscriber): {
  messages: EventMessage[];
  gaps: SequenceGap[];
  of(topic: string): EventMessage[];
} {
  const messages: EventMessage[] = [];
  const gaps: SequenceGap[] = [];
  sub.onMessage((m) => messages.push(m));
  sub.onGap((g) => gaps.push(g));
  return { messages, gaps, of: (topic) => messages.filter((m) => m.topic === topic) };
}

/**
 * Publishes on `topic` until `sub` hears `pub` (bounded: 5 s): after this, nothing the
 * publisher sends is lost to the connection handshake.
 */
export async function awaitEventFlow(pub: EventPublisher, sub: EventSubscriber, topic = WARMUP): Promise<void> {
  let heard = false;
  const off = sub.onMessage((m) => {
    if (m.publisher === pub.address && m.topic === topic) heard = true;
  });
  try {
    await waitFor(
      () => {
        if (!heard) pub.publish(topic, new Uint8Array(0));
        return heard;
      },
      5_000,
      20,
      `first event from ${pub.address}`,
    );
  } finally {
    off();
  }
}

async function awaitRawFlow(raw: RawEventPublisher, sub: EventSubscriber): Promise<void> {
  let heard = false;
  let seq = 0n;
  const off = sub.onMessage((m) => {
    if (m.publisher === raw.address && m.topic === WARMUP) heard = true;
  });
  try {
    await waitFor(
      async () => {
        if (!heard) await raw.send(WARMUP, seq++, new Uint8Array(0));
        return heard;
      },
      5_000,
      20,
      `first event from ${raw.address}`,
    );
  } finally {
    off();
  }
}

const settle = (ms = 150): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Registers a test only when the backend offers what it needs (so nothing shows as skipped). */
const itIf = (enabled: boolean): typeof it | ((name: string, fn: () => unknown) => void) =>
  enabled ? it : () => undefined;

export function eventPlaneConformance(
  name: string,
  makePlane: () => EventPlane | Promise<EventPlane>,
  options: EventPlaneConformanceOptions = {},
): void {
  describe(`event plane conformance: ${name}`, () => {
    const closers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close();
    });
    const setup = async () => {
      const plane = await makePlane();
      return {
        publisher: async (): Promise<EventPublisher> => {
          const pub = await plane.createPublisher({ host: '127.0.0.1' });
          closers.push(() => pub.close());
          return pub;
        },
        subscriber: (topics: string[] = ['']): EventSubscriber => {
          const sub = plane.createSubscriber({ topics });
          closers.push(() => sub.close());
          return sub;
        },
      };
    };
    const raw = async (): Promise<RawEventPublisher> => {
      const pub = await options.rawPublisher!();
      closers.push(() => pub.close());
      return pub;
    };

    it('delivers [topic, seq, payload] in order, seq counting from 0 per topic', async () => {
      const { publisher, subscriber } = await setup();
      const pub = await publisher();
      const sub = subscriber();
      const heard = record(sub);
      sub.connect(pub.address);
      expect(sub.addresses).toEqual([pub.address]);
      await awaitEventFlow(pub, sub);

      const returned: bigint[] = [];
      for (let i = 0; i < 20; i++) returned.push(pub.publish(i % 2 === 0 ? 'kv' : 'load', bytes(i, 255 - i)));
      await waitFor(() => heard.of('kv').length === 10 && heard.of('load').length === 10, 5_000, 10, '20 events');

      expect(returned).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(i >> 1)));
      expect(heard.of('kv').map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i)));
      expect(heard.of('load').map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i)));
      expect(heard.of('kv').map((m) => [...m.payload])).toEqual(
        Array.from({ length: 10 }, (_, i) => [2 * i, 255 - 2 * i]),
      );
      expect(heard.of('kv')[3]).toMatchObject({ publisher: pub.address, topic: 'kv', seq: 3n });
      expect(heard.of('kv')[3]!.payload).toBeInstanceOf(Uint8Array);
      // Joining mid-stream (the warm-up topic) is not a gap.
      expect(heard.gaps).toEqual([]);
      expect(sub.counters.gaps).toBe(0);
      expect(pub.counters.dropped).toBe(0);
      expect(pub.counters.published).toBeGreaterThanOrEqual(21);
    });

    it('delivers only topics matching the subscribed prefixes', async () => {
      const { publisher, subscriber } = await setup();
      const pub = await publisher();
      const sub = subscriber(['kv.', 'load']);
      const heard = record(sub);
      sub.connect(pub.address);
      await awaitEventFlow(pub, sub, 'kv.warmup');
      for (const topic of ['kv.stored', 'metrics', 'load', 'loadavg', 'kv', 'kv.removed', 'other', 'kv.end']) {
        pub.publish(topic, bytes(1));
      }
      await waitFor(() => heard.of('kv.end').length === 1, 5_000, 10, 'sentinel');
      await settle(50);
      expect(heard.messages.map((m) => m.topic).filter((t) => t !== 'kv.warmup')).toEqual([
        'kv.stored',
        'load',
        'loadavg',
        'kv.removed',
        'kv.end',
      ]);
    });

    it('numbers each publisher separately for one subscriber', async () => {
      const { publisher, subscriber } = await setup();
      const a = await publisher();
      const b = await publisher();
      expect(a.address).not.toBe(b.address);
      const sub = subscriber();
      const heard = record(sub);
      sub.connect(a.address);
      sub.connect(b.address);
      sub.connect(a.address); // idempotent
      expect([...sub.addresses].sort()).toEqual([a.address, b.address].sort());
      await awaitEventFlow(a, sub);
      await awaitEventFlow(b, sub);
      for (let i = 0; i < 5; i++) {
        a.publish('kv', bytes(0xa, i));
        if (i < 3) b.publish('kv', bytes(0xb, i));
      }
      await waitFor(() => heard.of('kv').length === 8, 5_000, 10, '8 events');
      const from = (address: string) => heard.of('kv').filter((m) => m.publisher === address);
      expect(from(a.address).map((m) => m.seq)).toEqual([0n, 1n, 2n, 3n, 4n]);
      expect(from(b.address).map((m) => m.seq)).toEqual([0n, 1n, 2n]);
      expect(from(b.address).every((m) => m.payload[0] === 0xb)).toBe(true);
      expect(heard.gaps).toEqual([]);
    });

    itIf(!!options.lose)('reports a gap when messages are lost, then keeps delivering', async () => {
      const { publisher, subscriber } = await setup();
      const pub = await publisher();
      const sub = subscriber();
      const heard = record(sub);
      const order: string[] = [];
      sub.onGap(() => order.push('gap'));
      sub.onMessage((m) => m.topic === 'kv' && order.push(`msg ${m.seq}`));
      sub.connect(pub.address);
      await awaitEventFlow(pub, sub);
      for (let i = 0; i < 3; i++) pub.publish('kv', bytes(i));
      await waitFor(() => heard.of('kv').length === 3, 5_000, 10, 'first 3 events');
      await options.lose!(pub.address, 2);
      for (let i = 3; i < 7; i++) pub.publish('kv', bytes(i));
      await waitFor(() => heard.of('kv').length === 5, 5_000, 10, 'events after the loss');
      expect(heard.of('kv').map((m) => m.seq)).toEqual([0n, 1n, 2n, 5n, 6n]);
      expect(heard.gaps).toEqual([{ publisher: pub.address, topic: 'kv', expectedSeq: 3n, receivedSeq: 5n }]);
      expect(order).toEqual(['msg 0', 'msg 1', 'msg 2', 'gap', 'msg 5', 'msg 6']);
      expect(sub.counters).toMatchObject({ gaps: 1, missed: 2 });
    });

    itIf(!!options.rawPublisher)('detects gaps and publisher restarts in crafted sequences', async () => {
      const { subscriber } = await setup();
      const pub = await raw();
      const sub = subscriber();
      const heard = record(sub);
      sub.connect(pub.address);
      await awaitRawFlow(pub, sub);
      for (const seq of [0n, 1n, 2n, 5n]) await pub.send('kv', seq, bytes(Number(seq)));
      await waitFor(() => heard.of('kv').length === 4, 5_000, 10, '4 events');
      expect(heard.gaps).toEqual([{ publisher: pub.address, topic: 'kv', expectedSeq: 3n, receivedSeq: 5n }]);
      // Sequence going backwards: the publisher restarted; reported, and tracking resets.
      for (const seq of [0n, 1n, 2n]) await pub.send('kv', seq, bytes(Number(seq)));
      // Another topic has its own numbering: its first message is no gap.
      await pub.send('load', 7n, bytes(7));
      await waitFor(() => heard.of('load').length === 1, 5_000, 10, 'events after restart');
      expect(heard.of('kv').map((m) => m.seq)).toEqual([0n, 1n, 2n, 5n, 0n, 1n, 2n]);
      expect(heard.gaps).toEqual([
        { publisher: pub.address, topic: 'kv', expectedSeq: 3n, receivedSeq: 5n },
        { publisher: pub.address, topic: 'kv', expectedSeq: 6n, receivedSeq: 0n },
      ]);
      expect(sub.counters).toMatchObject({ gaps: 2, missed: 2 });
      // Large sequence numbers use all 64 bits.
      await pub.send('big', (1n << 64n) - 2n, bytes(1));
      await pub.send('big', (1n << 64n) - 1n, bytes(2));
      await waitFor(() => heard.of('big').length === 2, 5_000, 10, 'big seqs');
      expect(heard.of('big').map((m) => m.seq)).toEqual([(1n << 64n) - 2n, (1n << 64n) - 1n]);
      expect(heard.gaps).toHaveLength(2);
    });

    itIf(!!options.rawPublisher)('counts and skips malformed messages', async () => {
      const { subscriber } = await setup();
      const pub = await raw();
      if (!pub.sendFrames) return;
      const sub = subscriber();
      const heard = record(sub);
      sub.connect(pub.address);
      await awaitRawFlow(pub, sub);
      await pub.send('kv', 0n, bytes(0));
      await pub.sendFrames([bytes(0x6b, 0x76), bytes(0, 1)]); // two frames
      await pub.sendFrames([bytes(0x6b, 0x76), bytes(0, 0, 0, 1), bytes(1)]); // 4-byte seq
      await pub.sendFrames([bytes(0x6b, 0x76), new Uint8Array(8), bytes(1), bytes(2)]); // four frames
      await pub.send('kv', 1n, bytes(1));
      await waitFor(() => heard.of('kv').length === 2, 5_000, 10, 'events around bad frames');
      expect(heard.of('kv').map((m) => m.seq)).toEqual([0n, 1n]);
      expect(sub.counters.badFrames).toBe(3);
      expect(heard.gaps).toEqual([]);
    });

    it('keeps delivering when a listener throws, and stops calling removed listeners', async () => {
      const { publisher, subscriber } = await setup();
      const pub = await publisher();
      const sub = subscriber(['kv']);
      sub.onMessage(() => {
        throw new Error('listener failure');
      });
      const heard = record(sub);
      let removedCalls = 0;
      const off = sub.onMessage(() => removedCalls++);
      off();
      sub.connect(pub.address);
      await awaitEventFlow(pub, sub, 'kv.warmup');
      pub.publish('kv', bytes(1));
      pub.publish('kv', bytes(2));
      await waitFor(() => heard.of('kv').length === 2, 5_000, 10, '2 events');
      expect(removedCalls).toBe(0);
      expect(sub.counters.listenerErrors).toBeGreaterThanOrEqual(3);
    });

    it('stops delivery on disconnect, and a reconnect starts sequence tracking afresh', async () => {
      const { publisher, subscriber } = await setup();
      const pub = await publisher();
      const other = await publisher();
      const sub = subscriber();
      const heard = record(sub);
      sub.connect(pub.address);
      sub.connect(other.address);
      await awaitEventFlow(pub, sub);
      await awaitEventFlow(other, sub);
      pub.publish('kv', bytes(0));
      await waitFor(() => heard.of('kv').length === 1, 5_000, 10, 'first event');

      sub.disconnect(pub.address);
      sub.disconnect(pub.address); // no-op
      sub.disconnect('tcp://127.0.0.1:1'); // unknown: no-op
      expect(sub.addresses).toEqual([other.address]);
      for (let i = 1; i < 5; i++) pub.publish('kv', bytes(i));
      other.publish('kv', bytes(9));
      await waitFor(() => heard.of('kv').some((m) => m.publisher === other.address), 5_000, 10, 'other publisher');
      await settle();
      expect(
        heard
          .of('kv')
          .filter((m) => m.publisher === pub.address)
          .map((m) => m.seq),
      ).toEqual([0n]);

      sub.connect(pub.address);
      await awaitEventFlow(pub, sub);
      pub.publish('kv', bytes(5));
      await waitFor(
        () => heard.of('kv').filter((m) => m.publisher === pub.address).length === 2,
        5_000,
        10,
        'after reconnect',
      );
      expect(
        heard
          .of('kv')
          .filter((m) => m.publisher === pub.address)
          .map((m) => m.seq),
      ).toEqual([0n, 5n]);
      expect(heard.gaps).toEqual([]);
    });

    it('closes cleanly and idempotently; closed objects refuse work', async () => {
      const { publisher, subscriber } = await setup();
      const pub = await publisher();
      const sub = subscriber();
      const heard = record(sub);
      sub.connect(pub.address);
      sub.connect('tcp://127.0.0.1:1'); // never answers: close must not wait for it
      await awaitEventFlow(pub, sub);
      for (let i = 0; i < 100; i++) pub.publish('kv', bytes(i));
      const started = Date.now();
      await Promise.all([pub.close(), pub.close()]);
      await sub.close();
      await sub.close();
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(sub.addresses).toEqual([]);
      expect(() => pub.publish('kv', bytes(1))).toThrow();
      expect(() => sub.connect(pub.address)).toThrow();
      const count = heard.messages.length;
      await settle(50);
      expect(heard.messages.length).toBe(count);
    });
  });
}
