// The serving half of the TCP backend: answers peers' READ requests by streaming blocks of
// a registered region (straight from the region's memory, checksummed, never copied
// unless a fault hook replaces them) and WRITE requests by landing the received blocks in the
// region and verifying their checksums. Bad input from a peer (unknown region, ids out of
// range, malformed frames) is answered with an ERROR frame; a stream that cannot be
// decoded any further is closed. Nothing a peer sends can throw out of this file.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ArmatureError } from '@armature/runtime';
import type { BlockChecksummer } from '../checksum.js';
import { CHECKSUM_OF_CODE, checksumWireBytes } from '../checksum.js';
import type { TransferFaultHooks } from '../fault-hooks.js';
import type { MemoryRegion } from '../region.js';
import { FrameDecoder, type DataSink } from './frame-decoder.js';
import { DrainWaiters, writeBlockRuns } from './socket-io.js';
import {
  HEADER_BYTES,
  MAX_QUEUED_BYTES,
  Op,
  WireError,
  blocksPerFrame,
  checksumBytesPerBlock,
  controlFrame,
  encodeHeader,
  errorFrame,
  idsFromBody,
  type FrameHeader,
  type WireErrorCode,
} from './protocol.js';

export interface TcpServerOptions {
  host: string;
  port: number;
  /** The region a peer names, if registered. */
  region(id: number): MemoryRegion | undefined;
  /** Checksum implementations by wire code ('none' is always accepted). */
  checksummers: ReadonlyMap<number, BlockChecksummer>;
  /** Where tests make the server misbehave (NO_FAULTS in production). */
  faults: TransferFaultHooks;
  /** Called with bytes served and errors answered. */
  onServed(bytes: number): void;
  onError(): void;
}

/** A peer's request the server refuses: answered with an ERROR frame. */
class Refusal {
  constructor(
    readonly code: WireErrorCode,
    readonly message: string,
  ) {}
}

/** Accepts peer connections and serves the agent's regions over them. */
export class TcpServer {
  private readonly server: Server;
  private readonly connections = new Set<ServerConnection>();
  private closing = false;

  private constructor(
    readonly options: TcpServerOptions,
    server: Server,
  ) {
    this.server = server;
  }

  /** Listens on host:port (0: a free port). */
  static async listen(options: TcpServerOptions): Promise<TcpServer> {
    const server = createServer({ noDelay: true });
    const tcp = new TcpServer(options, server);
    server.on('connection', (socket) => tcp.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(
          new ArmatureError(
            'unavailable',
            'transfer_listen_failed',
            `cannot listen on ${options.host}:${options.port}`,
            {
              detail: err.code ?? err.message,
              cause: err,
            },
          ),
        );
      server.once('error', onError);
      server.listen(options.port, options.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', () => options.onError()); // after listening: accept errors are counted, never thrown
    return tcp;
  }

  /** The port it listens on. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const connection = new ServerConnection(socket, this.options);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.destroy();
    await closed;
  }
}

interface ReadState {
  cancelled: boolean;
}

interface WriteState {
  region: MemoryRegion;
  ids: Uint32Array;
  checksumCode: number;
  checksummer: BlockChecksummer | undefined;
  nextFirst: number;
  sums: BigUint64Array;
}

/** One peer connection: a decoder for what it sends, the reads and writes it has open. */
class ServerConnection {
  private readonly decoder: FrameDecoder;
  private readonly reads = new Map<number, ReadState>();
  private readonly writes = new Map<number, WriteState>();
  private readonly drain: DrainWaiters;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: TcpServerOptions,
  ) {
    this.decoder = new FrameDecoder({
      onControl: (h, body) => this.guard(() => this.onControl(h, body)),
      onData: (h) => this.guard(() => this.onData(h)),
      onProtocolError: (message) => this.protocolError(message),
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.protocolError(`server error: ${String(err)}`);
      }
    });
    this.drain = new DrainWaiters(socket);
    socket.on('error', () => {}); // 'close' follows; a peer resetting is not our failure
    socket.once('close', () => this.onClose());
  }

  destroy(): void {
    this.socket.destroy();
  }

  // Runs a handler; anything it throws becomes an ERROR frame on the connection, never an exception.
  private guard<T>(handle: () => T): T | undefined {
    try {
      return handle();
    } catch (err) {
      this.options.onError();
      this.send(errorFrame(0, WireError.BAD_REQUEST, `server error: ${String(err)}`));
      return undefined;
    }
  }

  private onControl(h: FrameHeader, body: Uint8Array): void {
    if ((h.op === Op.READ || h.op === Op.WRITE) && this.options.faults.dropsRequest()) return;
    switch (h.op) {
      case Op.READ:
        this.startRead(h, body);
        return;
      case Op.WRITE:
        this.startWrite(h, body);
        return;
      case Op.CANCEL: {
        const read = this.reads.get(h.requestId);
        if (read) read.cancelled = true;
        this.writes.delete(h.requestId);
        return;
      }
      default:
        // DONE and ERROR only flow from server to client.
        this.refuse(h.requestId, new Refusal(WireError.BAD_REQUEST, `unexpected op ${h.op} from a client`));
    }
  }

  // Validates a READ or WRITE: the region, its block size, the checksum and every id.
  private validate(h: FrameHeader, body: Uint8Array): Refusal | { region: MemoryRegion; ids: Uint32Array } {
    if (this.reads.has(h.requestId) || this.writes.has(h.requestId)) {
      return new Refusal(WireError.BAD_REQUEST, `request ${h.requestId} is already open`);
    }
    const region = this.options.region(h.regionId);
    if (!region) return new Refusal(WireError.BAD_REQUEST, `unknown region ${h.regionId}`);
    if (h.blockBytes !== region.blockBytes) {
      return new Refusal(
        WireError.BAD_REQUEST,
        `region ${h.regionId} has ${region.blockBytes}-byte blocks, request says ${h.blockBytes}`,
      );
    }
    if (h.checksum !== 0 && !this.options.checksummers.has(h.checksum)) {
      const name = CHECKSUM_OF_CODE[h.checksum] ?? `code ${h.checksum}`;
      return new Refusal(WireError.BAD_REQUEST, `checksum ${name} is not supported`);
    }
    const ids = idsFromBody(body, h.count);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! >= region.blocks) {
        return new Refusal(
          WireError.BAD_REQUEST,
          `block id ${ids[i]} at ${i} is out of range [0, ${region.blocks}) of region ${h.regionId}`,
        );
      }
    }
    return { region, ids };
  }

  private startRead(h: FrameHeader, body: Uint8Array): void {
    const checked = this.validate(h, body);
    if (checked instanceof Refusal) {
      this.refuse(h.requestId, checked);
      return;
    }
    const state: ReadState = { cancelled: false };
    this.reads.set(h.requestId, state);
    void this.streamRead(h, checked.region, checked.ids, state)
      .catch((err: unknown) => {
        this.options.onError();
        if (!this.closed) this.send(errorFrame(h.requestId, WireError.BAD_REQUEST, `read failed: ${String(err)}`));
      })
      .finally(() => this.reads.delete(h.requestId));
  }

  // Sends the blocks in DATA frames of about DATA_FRAME_TARGET_BYTES, waiting for the socket
  // to drain whenever more than MAX_QUEUED_BYTES are queued on it.
  private async streamRead(h: FrameHeader, region: MemoryRegion, ids: Uint32Array, state: ReadState): Promise<void> {
    const faults = this.options.faults;
    const checksummer = this.options.checksummers.get(h.checksum);
    const sumBytes = checksumBytesPerBlock(h.checksum);
    const perFrame = blocksPerFrame(region.blockBytes);
    const sums = new BigUint64Array(Math.min(perFrame, ids.length));
    for (let first = 0; first < ids.length; first += perFrame) {
      const delay = faults.beforeReadFrame();
      if (delay) await delay;
      if (state.cancelled || this.closed) return;
      const n = Math.min(perFrame, ids.length - first);
      const frameIds = ids.subarray(first, first + n);
      const prelude = new Uint8Array(HEADER_BYTES + n * sumBytes);
      encodeHeader(
        {
          op: Op.DATA,
          checksum: h.checksum,
          flags: 0,
          requestId: h.requestId,
          regionId: h.regionId,
          blockBytes: region.blockBytes,
          count: ids.length,
          first,
          n,
          bodyBytes: n * (sumBytes + region.blockBytes),
        },
        prelude,
      );
      if (checksummer) {
        checksummer.checksumBlocks(region.buffer, frameIds, region.blockBytes, sums.subarray(0, n));
        prelude.set(checksumWireBytes(sums).subarray(0, n * 8), HEADER_BYTES);
      }
      this.socket.cork();
      this.socket.write(prelude);
      const replaced = faults.replaceSentBlocks(region, frameIds);
      if (replaced) for (const block of replaced) this.socket.write(block);
      else writeBlockRuns(this.socket, region, frameIds);
      this.socket.uncork(); // one writev for the frame
      this.options.onServed(n * region.blockBytes);
      if (this.socket.writableLength > MAX_QUEUED_BYTES) await this.drain.wait();
    }
  }

  private startWrite(h: FrameHeader, body: Uint8Array): void {
    const checked = this.validate(h, body);
    if (checked instanceof Refusal) {
      this.refuse(h.requestId, checked);
      return;
    }
    if (checked.ids.length === 0) {
      this.send(controlFrame({ ...h, op: Op.DONE, count: 0, first: 0, n: 0 }));
      return;
    }
    this.writes.set(h.requestId, {
      region: checked.region,
      ids: checked.ids,
      checksumCode: h.checksum,
      checksummer: this.options.checksummers.get(h.checksum),
      nextFirst: 0,
      sums: new BigUint64Array(0),
    });
  }

  // DATA of a write: its blocks land in the region. Frames of unknown (refused, cancelled)
  // requests are discarded.
  private onData(h: FrameHeader): DataSink | undefined {
    const write = this.writes.get(h.requestId);
    if (!write) return undefined;
    const { region, ids } = write;
    if (
      h.first !== write.nextFirst ||
      h.n > ids.length - h.first ||
      h.blockBytes !== region.blockBytes ||
      h.checksum !== write.checksumCode
    ) {
      this.writes.delete(h.requestId);
      this.refuse(h.requestId, new Refusal(WireError.BAD_REQUEST, 'data frame does not continue its write request'));
      return undefined;
    }
    write.nextFirst += h.n;
    return {
      target: (i) => region.view(ids[h.first + i]!),
      end: (checksums) => this.guard(() => this.endWriteFrame(h, write, checksums)),
    };
  }

  private endWriteFrame(h: FrameHeader, write: WriteState, checksums: Uint8Array): void {
    if (this.writes.get(h.requestId) !== write) return; // cancelled meanwhile
    const { region, ids } = write;
    const frameIds = ids.subarray(h.first, h.first + h.n);
    this.options.faults.receivedBlocks(region, frameIds);
    if (write.checksummer) {
      if (write.sums.length < h.n) write.sums = new BigUint64Array(h.n);
      write.checksummer.checksumBlocks(region.buffer, frameIds, region.blockBytes, write.sums.subarray(0, h.n));
      const actual = checksumWireBytes(write.sums);
      for (let i = 0; i < h.n * 8; i++) {
        if (actual[i] !== checksums[i]) {
          this.writes.delete(h.requestId);
          const block = frameIds[Math.floor(i / 8)];
          this.refuse(
            h.requestId,
            new Refusal(WireError.CHECKSUM_MISMATCH, `block ${block} of region ${region.id} arrived corrupted`),
          );
          return;
        }
      }
    }
    this.options.onServed(h.n * region.blockBytes);
    if (write.nextFirst === ids.length) {
      this.writes.delete(h.requestId);
      this.send(controlFrame({ ...h, op: Op.DONE, count: ids.length, first: 0, n: 0 }));
    }
  }

  private refuse(requestId: number, refusal: Refusal): void {
    this.options.onError();
    this.send(errorFrame(requestId, refusal.code, refusal.message));
  }

  // The stream is out of sync: say why, then close the connection (other connections go on).
  private protocolError(message: string): void {
    this.options.onError();
    if (this.closed) return;
    this.socket.end(errorFrame(0, WireError.BAD_REQUEST, `protocol error: ${message}`));
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  private send(frame: Uint8Array): void {
    if (!this.closed && this.socket.writable) this.socket.write(frame);
  }

  private onClose(): void {
    this.closed = true;
    this.decoder.fail();
    for (const read of this.reads.values()) read.cancelled = true;
    this.writes.clear();
  }
}
