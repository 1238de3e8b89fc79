import { MemoryDiscovery, MemoryDiscoveryHub, type InstanceRecord } from '@armature/runtime';
import { awaitEventFlow, eventPlaneConformance, waitFor, type RawEventPublisher } from '@armature/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { decodeBody, encodeBody } from './codec.js';
import { followPublishers } from './follow.js';
import { encodeFrames } from './frame.js';
import { MemoryEventHub, MemoryEventPlane } from './memory.js';
import type { EventMessage, EventSubscriber } from './types.js';
import { ZmqEventPlane } from './zmq.js';

/** A bare ZeroMQ PUB socket on loopback that sends whatever frames a test crafts. */
async function zmqRawPublisher(): Promise<RawEventPublisher> {
  const socket = new zmq.Publisher({ linger: 0 });
  await socket.bind('tcp://127.0.0.1:0');
  return {
    address: socket.lastEndpoint!,
    send: (topic, seq, payload) => socket.send(encodeFrames(topic, seq, payload)),
    sendFrames: (frames) => socket.send(frames),
    close: async () => socket.close(),
  };
}

eventPlaneConformance('zmq', () => new ZmqEventPlane(), { rawPublisher: zmqRawPublisher });

const memoryHub = new MemoryEventHub();
eventPlaneConformance('memory', () => new MemoryEventPlane(memoryHub), {
  lose: (address, count) => memoryHub.dropNext(address, count),
  rawPublisher: async () => {
    const address = memoryHub.allocateAddress();
    return {
      address,
      send: async (topic, seq, payload) => memoryHub.sendFrames(address, encodeFrames(topic, seq, payload)),
      sendFrames: async (frames) => memoryHub.sendFrames(address, frames),
      close: async () => {},
    };
  },
});

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
const track = <T extends { close(): Promise<void> | void }>(thing: T): T => {
  closers.push(() => thing.close());
  return thing;
};
const collect = (sub: EventSubscriber): EventMessage[] => {
  const messages: EventMessage[] = [];
  sub.onMessage((m) => messages.push(m));
  return messages;
};

describe('zmq event plane', () => {
  it('receives a vLLM-style raw frame intact', async () => {
    const socket = new zmq.Publisher({ linger: 0 });
    closers.push(() => socket.close());
    await socket.bind('tcp://127.0.0.1:0');
    const address = socket.lastEndpoint!;
    const sub = track(new ZmqEventPlane().createSubscriber({ topics: ['kv@'] }));
    const messages = collect(sub);
    sub.connect(address);
    // vLLM's KVEventBatch: [ts, [tagged positional events], dp_rank].
    const body = encodeBody([
      1_760_000_000.25,
      [
        ['BlockStored', [0xfedcba9876543210n, 42n], null, [1, 2, 3, 4], 4, null, 'GPU'],
        ['BlockRemoved', [42n], 'GPU'],
      ],
      0,
    ]);
    const topic = Buffer.from('kv@pod-7@Qwen/Qwen3-0.6B');
    const firstSeq = 0x0102_0304_0506n;
    let seq = firstSeq;
    await waitFor(
      async () => {
        if (messages.length === 0) {
          const seqBytes = Buffer.alloc(8);
          seqBytes.writeBigUInt64BE(seq++);
          await socket.send([topic, seqBytes, body]);
        }
        return messages.length > 0;
      },
      5_000,
      20,
      'a vLLM frame',
    );
    const [msg] = messages;
    expect(msg!.topic).toBe('kv@pod-7@Qwen/Qwen3-0.6B');
    expect(msg!.publisher).toBe(address);
    expect(msg!.seq >= firstSeq && msg!.seq < seq).toBe(true);
    expect(Buffer.from(msg!.payload).equals(Buffer.from(body))).toBe(true);
    const decoded = decodeBody<[number, unknown[][], number]>(msg!.payload);
    expect(decoded[1]![0]).toEqual(['BlockStored', [0xfedcba9876543210n, 42n], null, [1, 2, 3, 4], 4, null, 'GPU']);
  });

  it('binds an ipc:// address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'armature-ipc-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const plane = new ZmqEventPlane();
    const pub = track(await plane.createPublisher({ address: `ipc://${dir}/events.sock` }));
    expect(pub.address).toBe(`ipc://${dir}/events.sock`);
    const sub = track(plane.createSubscriber({ topics: [''] }));
    const messages = collect(sub);
    sub.connect(pub.address);
    await awaitEventFlow(pub, sub);
    pub.publish('kv', Uint8Array.of(7));
    await waitFor(() => messages.some((m) => m.topic === 'kv'));
    expect(messages.find((m) => m.topic === 'kv')).toMatchObject({ seq: 0n, payload: Uint8Array.of(7) });
  });

  it('reports the real port when binding port 0, and advertises a chosen host', async () => {
    const plane = new ZmqEventPlane();
    const pub = track(await plane.createPublisher({ host: '127.0.0.1', port: 0 }));
    expect(pub.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(pub.address).not.toMatch(/:0$/);
    const wildcard = track(await plane.createPublisher({ host: '0.0.0.0', advertiseHost: '127.0.0.1' }));
    expect(wildcard.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    await expect(plane.createPublisher({ address: 'bogus://nowhere' })).rejects.toThrow(/cannot bind/);
    expect(() => track(plane.createSubscriber({ topics: [''] })).connect('bogus://nowhere')).toThrow(/cannot connect/);
  });

  it('drops and counts when the send queue is full, without blocking or reordering', async () => {
    const plane = new ZmqEventPlane({ maxQueuedMessages: 100 });
    const pub = track(await plane.createPublisher());
    const sub = track(plane.createSubscriber({ topics: [''] }));
    const messages = collect(sub);
    const gaps: bigint[] = [];
    sub.onGap((g) => gaps.push(g.expectedSeq, g.receivedSeq));
    sub.connect(pub.address);
    await awaitEventFlow(pub, sub);
    const seqs: bigint[] = [];
    for (let i = 0; i < 1_000; i++) seqs.push(pub.publish('kv', Uint8Array.of(i & 0xff)));
    expect(seqs[999]).toBe(999n);
    // The bound counts messages not yet handed to the socket: 100 accepted, the rest overflowed.
    expect(pub.counters.dropped).toBe(900);
    expect(pub.publish('kv', Uint8Array.of(1))).toBe(1000n); // still synchronous: dropped too
    await waitFor(() => pub.counters.sent >= 100, 5_000, 10, 'queue drained');
    expect(pub.publish('kv', Uint8Array.of(1))).toBe(1001n);
    await waitFor(() => messages.some((m) => m.topic === 'kv' && m.seq === 1001n), 5_000, 10, 'the tail');
    const kv = messages.filter((m) => m.topic === 'kv').map((m) => m.seq);
    expect(kv).toEqual([...Array.from({ length: 100 }, (_, i) => BigInt(i)), 1001n]);
    expect(gaps).toEqual([100n, 1001n]);
    expect(sub.counters.missed).toBe(901);
    expect(pub.counters).toMatchObject({ published: expect.any(Number), dropped: 901 });
  });

  it('sustains a burst of 50k messages with no loss under the default bounds', async () => {
    const plane = new ZmqEventPlane();
    const pub = track(await plane.createPublisher());
    const sub = track(plane.createSubscriber({ topics: ['kv'] }));
    let count = 0;
    sub.onMessage((m) => m.topic === 'kv' && count++);
    sub.connect(pub.address);
    await awaitEventFlow(pub, sub, 'kv.warmup');
    const payload = new Uint8Array(64);
    for (let i = 0; i < 50_000; i++) pub.publish('kv', payload);
    await waitFor(() => count === 50_000, 10_000, 20, '50k events');
    expect(sub.counters.gaps).toBe(0);
    expect(pub.counters.dropped).toBe(0);
  });
});

describe('followPublishers', () => {
  const record = (id: string, eventAddress?: string): InstanceRecord => ({
    instanceId: id,
    role: 'decode',
    model: 'm',
    grpcAddress: '127.0.0.1:1',
    eventAddress,
  });

  it('connects to what discovery lists over zmq, and disconnects when it goes', async () => {
    const hub = new MemoryDiscoveryHub();
    const workers = track(new MemoryDiscovery(hub));
    const router = track(new MemoryDiscovery(hub));
    const plane = new ZmqEventPlane();
    const pubA = track(await plane.createPublisher());
    const pubB = track(await plane.createPublisher());
    const sub = track(plane.createSubscriber({ topics: ['kv'] }));
    const messages = collect(sub);
    const joined: string[] = [];
    const left: string[] = [];
    track(
      followPublishers(router, { role: 'decode' }, sub, {
        onJoin: (r) => joined.push(r.instanceId),
        onLeave: (r) => left.push(r.instanceId),
      }),
    );

    const regA = await workers.register(record('a', pubA.address));
    await workers.register(record('no-events'));
    await workers.register({ ...record('router', pubB.address), role: 'router' });
    await waitFor(() => joined.length === 1, 5_000, 10, 'join');
    expect(joined).toEqual(['a']);
    expect(sub.addresses).toEqual([pubA.address]);
    await awaitEventFlow(pubA, sub, 'kv.warmup');
    pubA.publish('kv', Uint8Array.of(1));
    await waitFor(() => messages.some((m) => m.topic === 'kv' && m.publisher === pubA.address));

    // Same address, other fields changed: no reconnect.
    await regA.update({ ...record('a', pubA.address), labels: { zone: 'x' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(joined).toEqual(['a']);

    // A new event address is a new publisher: leave, then join.
    await regA.update(record('a', pubB.address));
    await waitFor(() => sub.addresses[0] === pubB.address, 5_000, 10, 'address change');
    expect(sub.addresses).toEqual([pubB.address]);
    expect(left).toEqual(['a']);
    expect(joined).toEqual(['a', 'a']);
    await awaitEventFlow(pubB, sub, 'kv.warmup');

    await regA.unregister();
    await waitFor(() => sub.addresses.length === 0, 5_000, 10, 'disconnect');
    expect(left).toEqual(['a', 'a']);
    const before = messages.length;
    pubB.publish('kv', Uint8Array.of(2));
    await new Promise((r) => setTimeout(r, 150));
    expect(messages.length).toBe(before);
  });

  it('survives bad addresses and throwing hooks, and disconnects everything on close', async () => {
    const discovery = track(new MemoryDiscovery());
    const plane = new MemoryEventPlane();
    const pub = track(await plane.createPublisher());
    const sub = track(new ZmqEventPlane().createSubscriber({ topics: [''] }));
    const memorySub = track(plane.createSubscriber({ topics: [''] }));
    const follow = followPublishers(discovery, {}, sub, {
      onJoin: () => {
        throw new Error('hook failure');
      },
    });
    const followMemory = followPublishers(discovery, {}, memorySub);
    await discovery.register(record('bad', 'bogus://nowhere'));
    await discovery.register(record('good', pub.address));
    await waitFor(() => memorySub.addresses.length === 2, 5_000, 10, 'memory follow');
    // The zmq subscriber cannot connect a memory:// or bogus address: logged, skipped.
    expect(sub.addresses).toEqual([]);
    follow.close();
    followMemory.close();
    expect(memorySub.addresses).toEqual([]);
  });
});

describe('codec', () => {
  it('round-trips u64 block hashes as bigint and reuses no shared buffer', () => {
    const first = encodeBody({ hashes: [0xffff_ffff_ffff_ffffn, 1n], tokens: [1, 2, 3] });
    const second = encodeBody({ other: 'x' });
    expect(decodeBody(first)).toEqual({ hashes: [0xffff_ffff_ffff_ffffn, 1n], tokens: [1, 2, 3] });
    expect(decodeBody(second)).toEqual({ other: 'x' });
    expect(() => decodeBody(Uint8Array.of(0xc1))).toThrow();
  });
});
