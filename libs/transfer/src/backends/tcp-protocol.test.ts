// The TCP wire format and the server's robustness: the frame decoder gives the same result
// however the stream is cut into reads, and a server fed malformed frames over a raw
// socket answers with ERROR frames or closes that connection, and keeps serving others.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TransferAgent } from '../agent.js';
import { createMemoryRegion } from '../region.js';
import { fillPattern } from '../testing/patterns.js';
import { FrameDecoder, type DataSink } from './frame-decoder.js';
import {
  HEADER_BYTES,
  MAGIC,
  Op,
  WireError,
  controlFrame,
  decodeErrorBody,
  decodeHeader,
  encodeHeader,
  idsToBody,
  type FrameHeader,
} from './protocol.js';
import { parseAddress } from './tcp.js';

const header = (h: Partial<FrameHeader>): Omit<FrameHeader, 'bodyBytes'> => ({
  op: Op.READ,
  checksum: 0,
  flags: 0,
  requestId: 1,
  regionId: 1,
  blockBytes: 1024,
  count: 0,
  first: 0,
  n: 0,
  ...h,
});

/** A DATA frame of `blocks` (each blockBytes long), no checksums. */
function dataFrame(requestId: number, first: number, blocks: Uint8Array[]): Uint8Array {
  const blockBytes = blocks[0]!.length;
  const out = new Uint8Array(HEADER_BYTES + blocks.length * blockBytes);
  encodeHeader(
    {
      ...header({ op: Op.DATA, requestId, blockBytes, first, n: blocks.length }),
      bodyBytes: blocks.length * blockBytes,
    },
    out,
  );
  blocks.forEach((b, i) => out.set(b, HEADER_BYTES + i * blockBytes));
  return out;
}

describe('frame decoder', () => {
  // Decodes what `feed` pushes: DATA lands in `dst` at the block ids `placement` gives
  // (request 99's is discarded); control frames and DATA ends are recorded in order.
  function decodeAll(feed: (decoder: FrameDecoder) => void): { dst: Uint8Array; controls: number[] } {
    const dst = new Uint8Array(16 * 1024);
    const controls: number[] = [];
    const placement = [5, 6, 7, 0, 2, 9, 10, 11];
    const decoder = new FrameDecoder({
      onControl: (h) => controls.push(h.requestId),
      onData: (h): DataSink => ({
        target: (i) => {
          const id = placement[h.first + i]!;
          return h.requestId === 99 ? undefined : dst.subarray(id * 1024, (id + 1) * 1024);
        },
        end: () => controls.push(-h.requestId),
      }),
      onProtocolError: (message) => {
        throw new Error(message);
      },
    });
    feed(decoder);
    return { dst, controls };
  }

  const blocks = Array.from({ length: 8 }, (_, i) => new Uint8Array(1024).fill(i + 1));
  const parts = [
    controlFrame(header({ requestId: 3, count: 2 }), idsToBody(Uint32Array.of(1, 2))),
    dataFrame(7, 0, blocks.slice(0, 3)),
    dataFrame(99, 0, blocks.slice(0, 2)), // discarded
    controlFrame(header({ op: Op.DONE, requestId: 4 })),
    dataFrame(7, 3, blocks.slice(3, 8)),
  ];
  const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((off, p) => (stream.set(p, off), off + p.length), 0);
  const expected = decodeAll((d) => d.push(stream));

  it('lands blocks where the sink says and reports control frames in order', () => {
    expect(expected.controls).toEqual([3, -7, -99, 4, -7]);
    const placement = [5, 6, 7, 0, 2, 9, 10, 11];
    placement.forEach((id, i) => expect(expected.dst[id * 1024]).toBe(i + 1));
    expect(expected.dst[1 * 1024]).toBe(0);
  });

  it('gives the same result for any split of the stream into chunks', () => {
    for (let trial = 0; trial < 50; trial++) {
      const got = decodeAll((d) => {
        let off = 0;
        while (off < stream.length) {
          const n = 1 + Math.floor(Math.random() * (trial % 2 ? 3000 : 50));
          d.push(stream.subarray(off, off + n));
          off += n;
        }
      });
      expect(got.controls).toEqual(expected.controls);
      expect(Buffer.compare(got.dst, expected.dst)).toBe(0);
    }
  });

  it('gives the same result read through nextBuffer/advance (onread), with short reads', () => {
    const got = decodeAll((d) => {
      let off = 0;
      while (off < stream.length) {
        const buffer = d.nextBuffer();
        expect(buffer.length).toBeGreaterThan(0);
        const n = Math.min(buffer.length, stream.length - off, 1 + Math.floor(Math.random() * 2000));
        buffer.set(stream.subarray(off, off + n));
        d.advance(n);
        off += n;
      }
    });
    expect(got.controls).toEqual(expected.controls);
    expect(Buffer.compare(got.dst, expected.dst)).toBe(0);
  });

  it('rejects headers it cannot trust', () => {
    const h = new Uint8Array(HEADER_BYTES);
    expect(decodeHeader(h)).toBe('bad magic');
    encodeHeader({ ...header({ op: 42 }), bodyBytes: 0 }, h);
    expect(decodeHeader(h)).toMatch(/unknown op/);
    encodeHeader({ ...header({ op: Op.READ, count: 3 }), bodyBytes: 8 }, h);
    expect(decodeHeader(h)).toMatch(/request body/);
    encodeHeader({ ...header({ op: Op.DATA, n: 2, blockBytes: 16 }), bodyBytes: 31 }, h);
    expect(decodeHeader(h)).toMatch(/data body/);
    encodeHeader({ ...header({ op: Op.READ, count: 1 << 30 }), bodyBytes: 4 }, h);
    expect(decodeHeader(h)).toMatch(/exceeds/);
    new DataView(h.buffer).setUint8(4, 9);
    expect(decodeHeader(h)).toMatch(/version/);
  });

  it('parses addresses', () => {
    expect(parseAddress('10.0.0.1:5000')).toEqual({ host: '10.0.0.1', port: 5000 });
    expect(parseAddress('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseAddress('host:0')).toMatch(/bad tcp address/);
    expect(parseAddress('nocolon')).toMatch(/bad tcp address/);
  });
});

describe('TCP server under malformed input', () => {
  const agents: TransferAgent[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(agents.splice(0).map((a) => a.close()));
  });

  async function server(): Promise<{ agent: TransferAgent; port: number }> {
    const agent = await TransferAgent.create({ agentId: `fuzz-${process.pid}-${agents.length}`, backends: ['tcp'] });
    agents.push(agent);
    fillPattern(agent.registerRegion(1, 8, 1024), 1);
    const port = Number(agent.metadata().tcp!.address.split(':')[1]);
    return { agent, port };
  }

  /** Sends bytes on a raw socket; resolves with what came back before the server closed it (or 300 ms passed). */
  async function exchange(
    port: number,
    bytes: Uint8Array,
  ): Promise<{ frames: { h: FrameHeader; body: Uint8Array }[]; closed: boolean }> {
    const socket = connect({ port, host: '127.0.0.1' });
    sockets.push(socket);
    let received = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    socket.on('error', () => {});
    socket.write(bytes);
    const closed = await new Promise<boolean>((resolve) => {
      socket.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 300);
    });
    const frames: { h: FrameHeader; body: Uint8Array }[] = [];
    let off = 0;
    while (received.length - off >= HEADER_BYTES) {
      const h = decodeHeader(received.subarray(off, off + HEADER_BYTES));
      if (typeof h === 'string') throw new Error(`server sent a bad frame: ${h}`);
      frames.push({ h, body: received.subarray(off + HEADER_BYTES, off + HEADER_BYTES + h.bodyBytes) });
      off += HEADER_BYTES + h.bodyBytes;
    }
    return { frames, closed };
  }

  async function stillServes(agent: TransferAgent): Promise<void> {
    const client = await TransferAgent.create({
      agentId: `fuzz-client-${process.pid}-${agents.length}`,
      backends: ['tcp'],
    });
    agents.push(client);
    const local = createMemoryRegion(1, 8, 1024);
    await client.readBlocks(agent.metadata(), { regionId: 1, remoteBlockIds: [3], local, localBlockIds: [0] });
    expect(Buffer.compare(local.view(0), agent.region(1)!.view(3))).toBe(0);
  }

  it('answers requests it cannot serve with ERROR frames and keeps the connection', async () => {
    const { agent, port } = await server();
    const frames = [
      controlFrame(header({ requestId: 1, regionId: 9, count: 1 }), idsToBody(Uint32Array.of(0))), // unknown region
      controlFrame(header({ requestId: 2, count: 1 }), idsToBody(Uint32Array.of(8))), // id out of range
      controlFrame(header({ requestId: 3, blockBytes: 512, count: 1 }), idsToBody(Uint32Array.of(0))), // block size
      controlFrame(header({ requestId: 4, checksum: 77, count: 1 }), idsToBody(Uint32Array.of(0))), // checksum
      controlFrame(header({ op: Op.DONE, requestId: 5 })), // server-only op
      dataFrame(6, 0, [new Uint8Array(1024)]), // data for no request: discarded silently
      controlFrame(header({ op: Op.WRITE, requestId: 7, count: 1 }), idsToBody(Uint32Array.of(2))),
      dataFrame(7, 1, [new Uint8Array(1024)]), // does not continue the write
      controlFrame(header({ requestId: 8, count: 1 }), idsToBody(Uint32Array.of(4))), // a good read
    ];
    const stream = Buffer.concat(frames);
    const { frames: replies, closed } = await exchange(port, stream);
    expect(closed).toBe(false);
    const errors = replies.filter((f) => f.h.op === Op.ERROR).map((f) => [f.h.requestId, decodeErrorBody(f.body).code]);
    expect(errors).toEqual([
      [1, WireError.BAD_REQUEST],
      [2, WireError.BAD_REQUEST],
      [3, WireError.BAD_REQUEST],
      [4, WireError.BAD_REQUEST],
      [5, WireError.BAD_REQUEST],
      [7, WireError.BAD_REQUEST],
    ]);
    const data = replies.find((f) => f.h.op === Op.DATA);
    expect(data?.h).toMatchObject({ requestId: 8, first: 0, n: 1 });
    expect(Buffer.compare(data!.body, agent.region(1)!.view(4))).toBe(0);
    expect(agent.counters.servedErrors).toBe(6);
    await stillServes(agent);
  });

  it('closes a connection whose stream cannot be decoded, and keeps serving others', async () => {
    const { agent, port } = await server();
    const badMagic = new Uint8Array(HEADER_BYTES).fill(0xab);
    const hugeBody = controlFrame(header({ op: Op.ERROR }), new Uint8Array(1)).slice(0, HEADER_BYTES);
    new DataView(hugeBody.buffer).setUint32(32, 0xffffffff, true);
    const wrongVersion = controlFrame(header({ op: Op.CANCEL }));
    wrongVersion[4] = 2;
    for (const bytes of [badMagic, hugeBody, wrongVersion]) {
      const { frames, closed } = await exchange(port, bytes);
      expect(closed).toBe(true);
      expect(frames.map((f) => [f.h.op, f.h.requestId])).toEqual([[Op.ERROR, 0]]);
    }
    await stillServes(agent);
  });

  it('survives random garbage and truncated frames', async () => {
    const { agent, port } = await server();
    for (let trial = 0; trial < 20; trial++) {
      // Even trials start with the magic, so they need its 4 bytes at least.
      const garbage = new Uint8Array((trial % 2 === 0 ? 4 : 1) + Math.floor(Math.random() * 4096));
      for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(Math.random() * 256);
      if (trial % 2 === 0) new DataView(garbage.buffer).setUint32(0, MAGIC, true); // past the magic check
      await exchange(port, garbage);
    }
    // A frame cut in the middle of its body, then the connection closed by the client.
    const truncated = controlFrame(header({ count: 4 }), idsToBody(Uint32Array.of(1, 2, 3, 4))).subarray(0, 50);
    const socket = connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    socket.end(truncated);
    await new Promise((resolve) => socket.once('close', resolve));
    await stillServes(agent);
  });
});
